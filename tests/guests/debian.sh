#!/usr/bin/env bash
# Builds a Debian test guest set up the way a VMware guest is, and exports it as a
# stream-optimized VMDK. No loop devices and no mounts of the disk: file systems are made on
# plain files (`mkfs.ext4 -d`, `mkfs.xfs`, `mkfs.btrfs`, `mkswap`), the disk is a plain file
# partitioned with sfdisk, and whatever must be done inside the file systems (a btrfs
# subvolume, unpacking the tree, the guest's own grub-install and update-grub) is done by the
# libguestfs appliance.
#
#   tests/guests/debian.sh VARIANT     prints the path of the cached VMDK (building it if needed)
#
# Next to the VMDK: `mac` (the first NIC's VMware MAC), `macs` (all of them, one per line),
# `kernel` (the kernel version) and `expect` (what the guest's marker line must say after a
# conversion to virtio: `root=`, each `net=`, `swap=`), so the tests know what to look for.
#
# VARIANT (Debian 12 unless named otherwise):
#   bios        MBR, GRUB for BIOS from a handwritten grub.cfg, root on /dev/sda1.
#   virtio      the same, but the initramfs already holds the virtio drivers (a guest that was
#               prepared for KVM before export: the rebuild must be skipped).
#   lvm         one partition holding an LVM volume group vg0 with the root on vg0/root.
#   uefi        GPT with an EFI system partition (/dev/sda1, vfat, /boot/efi) and the root on
#               /dev/sda2; GRUB for x86_64-efi as \EFI\BOOT\BOOTX64.EFI, booted with OVMF.
# The variants below have GRUB as an installed system has it: grub2-common (update-grub,
# /etc/grub.d) and /etc/default/grub, installed by the guest's own grub-install and its
# grub.cfg written by the guest's own update-grub, run inside the libguestfs appliance on the
# finished disk (so grub-probe sees a real /dev/sda1, as on VMware):
#   grub-nouuid GRUB_DISABLE_LINUX_UUID=true, so update-grub writes root=/dev/sda1 (and writes
#               it again when the fixer runs it in the appliance).
#   netplan     netplan.io (networkd renderer): ens192 matched by `match: {macaddress: …}`
#               with `set-name: ens192`.
#   nm          NetworkManager: a keyfile with interface-name=ens192 and mac-address=.
#   dracut      dracut instead of initramfs-tools (the RHEL family's tool; hostonly="yes" as
#               RHEL configures it, the image holding only VMware's drivers) and the network in
#               /etc/sysconfig/network-scripts/ifcfg-ens192 with HWADDR= (RHEL's layout). Debian
#               has no network-scripts: /usr/local/sbin/ifcfg-up is a stand-in that applies
#               ifcfg files as RHEL's ifup does (the NIC found by HWADDR when it is set, else by
#               DEVICE; a HWADDR no NIC has is "ignoring").
#   sepboot     /boot on its own partition (/dev/sda1), the root on /dev/sda2; fstab by name.
#   xfs         the root on XFS, by UUID in fstab and on the kernel line (the installer's way).
#   btrfs       the root on a btrfs subvolume `@` (UUID + subvol=@ in fstab; update-grub writes
#               rootflags=subvol=@).
#   swap        a swap partition /dev/sda2 in fstab, and resume=/dev/sda2 both on the kernel
#               line and in initramfs-tools' conf.d/resume.
#   twonic      two NICs: ens192 and ens224 (vmxnet3 in PCI slots 192 and 224), each pinned to
#               its MAC, each with its static address.
#   uefi-shim   UEFI as Debian's installer leaves it: GPT, ESP (/dev/sda1) and root (/dev/sda2)
#               by UUID in fstab, shim-signed and grub-efi-amd64-signed installed by the guest's
#               grub-install into \EFI\debian\ (shimx64.efi, grubx64.efi, mmx64.efi and the
#               grub.cfg stub that configfiles /boot/grub/grub.cfg), no \EFI\BOOT\BOOTX64.EFI:
#               the boot entry lived in the VMware VM's NVRAM, which a new domain does not have.
#   bullseye    Debian 11 (kernel 5.10, GRUB 2.06 of bullseye), root by UUID.
#   trixie      Debian 13 (kernel 6.12, merged /usr, GRUB 2.12), root by UUID.
# What makes each a VMware guest: an initramfs holding only IDE/SCSI drivers (no virtio_blk),
# device names in /etc/fstab (unless said otherwise), the network pinned to the VMware MAC with
# a persistent-net udev rule, open-vm-tools enabled by systemd's absolute `.wants/` links. A
# systemd unit prints a marker line on ttyS0 once userspace is up:
#   HYPER2KVM-BOOT-OK root=<root device> net=<iface>:<operstate>:<addresses> [net=…]
#     swap=<active swap devices> host=<hostname> users=<regular users> networkd=<state>
#
# The result is cached in $HYPER2KVM_GUEST_CACHE (default /var/tmp/hyper2kvm-guests) under a
# hash of this script and the variant, so CI (a fresh clone) builds it once per machine; the
# debootstrapped tree is cached too (base/, by suite and package set), so a change to this
# script rebuilds the guests without downloading them again.
set -euo pipefail
variant=${1:-bios}
case $variant in
  bios | virtio | uefi | uefi-shim | lvm | grub-nouuid | netplan | nm | dracut | sepboot | xfs | btrfs | swap | twonic | bullseye | trixie) ;;
  *) echo "unknown variant $variant" >&2; exit 2 ;;
esac
cache=${HYPER2KVM_GUEST_CACHE:-/var/tmp/hyper2kvm-guests}
key=$( (cat "$0"; echo "$variant") | sha256sum | cut -c1-16)
dir=$cache/debian-$variant-$key
vmdk=$dir/debian-$variant.vmdk
mkdir -p "$cache"
exec 9> "$cache/.lock-$variant"
flock 9
if [[ -f $vmdk ]]; then
  echo "$vmdk"
  exit 0
fi
log() { echo "debian.sh: $*" >&2; }
work=$(mktemp -d "$cache/build.XXXXXX")
cleanup() {
  umount "$work/tree/proc" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
tree=$work/tree
fish() { LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=force_tcg guestfish "$@" >&2; }

# The recipe: suite, how GRUB is installed, the disk layout, the initramfs tool, the network.
suite=bookworm grub=real layout=plain initrd=initramfs-tools net=ifupdown nics=1 byname=yes
case $variant in
  bios | virtio) grub=hand ;;
  lvm | uefi) grub=hand layout=$variant ;;
  netplan) net=netplan ;;
  nm) net=nm ;;
  dracut) initrd=dracut net=ifcfg ;;
  sepboot | xfs | btrfs | swap) layout=$variant ;;
  twonic) nics=2 ;;
  uefi-shim) layout=efi byname=no ;;
  bullseye | trixie) suite=$variant byname=no ;;
esac
[[ $layout == xfs || $layout == btrfs ]] && byname=no
MACS=(00:50:56:8a:00:01 00:50:56:8a:00:02)
NAMES=(ens192 ens224)
ADDRS=(10.0.2.15/24 10.0.3.15/24)

mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)\/\?$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
[[ -n $mirror ]] || mirror=$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
[[ -n $mirror ]] || mirror=http://deb.debian.org/debian
include=systemd-sysv,udev,kmod,linux-image-cloud-amd64,initramfs-tools,grub-pc-bin,grub-efi-amd64-bin,lvm2,ifupdown,iproute2,open-vm-tools,e2fsprogs
[[ $grub == real ]] && include+=,grub2-common
[[ $net == netplan ]] && include+=,netplan.io
[[ $layout == xfs ]] && include+=,xfsprogs
[[ $layout == btrfs ]] && include+=,btrfs-progs
# Packages debootstrap cannot configure among the base ones (network-manager needs dbus set
# up; dracut replaces initramfs-tools, which the kernel package pulls in first): apt in the
# finished tree installs them, with services kept from starting.
extra=""
[[ $net == nm ]] && extra=network-manager
[[ $initrd == dracut ]] && extra=dracut
[[ $layout == efi ]] && extra="shim-signed grub-efi-amd64-signed"

# The debootstrapped tree, from its own cache when this suite and package set were fetched
# before.
basekey=$(echo "$suite $include $extra $(dpkg-query -W -f='${Version}' debootstrap)" | sha256sum | cut -c1-16)
base=$cache/base/$suite-$basekey.tar
mkdir -p "$cache/base" "$tree"
# Variants of the same package set built at once: one fetches, the others wait for it.
exec 8> "$base.lock"
flock 8
if [[ -f $base ]]; then
  log "tree from $base"
  tar -C "$tree" --numeric-owner -xf "$base"
else
  log "debootstrap $suite from $mirror ($include${extra:+ + $extra})"
  debootstrap --variant=minbase --include="$include" "$suite" "$tree" "$mirror" >&2
  if [[ -n $extra ]]; then
    printf '#!/bin/sh\nexit 101\n' > "$tree/usr/sbin/policy-rc.d" && chmod 755 "$tree/usr/sbin/policy-rc.d"
    mount -t proc proc "$tree/proc"
    chroot "$tree" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $extra >&2
    umount "$tree/proc"
    rm -f "$tree/usr/sbin/policy-rc.d"
  fi
  rm -rf "$tree/var/cache/apt/archives"/*.deb
  tar -C "$tree" --numeric-owner -cf "$base.tmp" . && mv "$base.tmp" "$base"
fi
exec 8>&-
kver=$(ls "$tree/lib/modules" | head -1)

log "configuring it as a VMware guest"
echo vmware-debian > "$tree/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 vmware-debian\n' > "$tree/etc/hosts"
uuid=$(cat /proc/sys/kernel/random/uuid)
bootuuid=$(cat /proc/sys/kernel/random/uuid)
swapuuid=$(cat /proc/sys/kernel/random/uuid)
# Partitions: where the root is, on the source (SCSI names) and after conversion (virtio).
rootdev=/dev/sda1 fstype=ext4 opts=errors=remount-ro
case $layout in
  uefi | efi | sepboot) rootdev=/dev/sda2 ;;
  lvm) rootdev=/dev/mapper/vg0-root ;;
  xfs) fstype=xfs opts=defaults ;;
  btrfs) fstype=btrfs opts=defaults,subvol=@ ;;
esac
rootref=$rootdev
[[ $byname == no ]] && rootref=UUID=$uuid
{
  echo "# /etc/fstab as this VMware install left it"
  echo "$rootref / $fstype $opts 0 $([[ $fstype == ext4 ]] && echo 1 || echo 0)"
  [[ $layout == uefi ]] && echo "/dev/sda1 /boot/efi vfat umask=0077 0 1"
  [[ $layout == efi ]] && echo "UUID=1A2B-3C4D /boot/efi vfat umask=0077 0 1"
  [[ $layout == sepboot ]] && echo "/dev/sda1 /boot ext4 defaults 0 2"
  [[ $layout == swap ]] && echo "/dev/sda2 none swap sw 0 0"
} > "$tree/etc/fstab"
[[ $layout == uefi || $layout == efi ]] && mkdir -p "$tree/boot/efi"
virtio_root=${rootdev/sda/vda}
[[ $layout == lvm ]] && virtio_root=$rootdev

cat > "$tree/etc/network/interfaces" <<NET
source /etc/network/interfaces.d/*
auto lo
iface lo inet loopback
NET
: > "$tree/etc/udev/rules.d/70-persistent-net.rules"
for ((n = 0; n < nics; n++)); do
  mac=${MACS[n]} name=${NAMES[n]} addr=${ADDRS[n]}
  gw="" ifgw="" ifprefix=${addr#*/}
  ((n == 0)) && gw="    gateway 10.0.2.2" ifgw="GATEWAY=10.0.2.2"
  cat >> "$tree/etc/udev/rules.d/70-persistent-net.rules" <<UDEV
# PCI device 0x15ad:0x07b0 (vmxnet3)
SUBSYSTEM=="net", ACTION=="add", DRIVERS=="?*", ATTR{address}=="$mac", ATTR{type}=="1", NAME="$name"
UDEV
  case $net in
    ifupdown)
      cat >> "$tree/etc/network/interfaces" <<NET

# vmxnet3 on PCI slot ${name#ens}
allow-hotplug $name
auto $name
iface $name inet static
    address $addr
$gw
    hwaddress ether $mac
NET
      ;;
    netplan)
      # As Ubuntu's and Debian's cloud installers write it for a VMware NIC.
      mkdir -p "$tree/etc/netplan"
      cat > "$tree/etc/netplan/50-vmware.yaml" <<NETPLAN
network:
  version: 2
  renderer: networkd
  ethernets:
    $name:
      match:
        macaddress: "$mac"
      set-name: $name
      dhcp4: false
      addresses:
        - $addr
      routes:
        - to: default
          via: 10.0.2.2
NETPLAN
      chmod 600 "$tree/etc/netplan/50-vmware.yaml"
      ;;
    nm)
      # As NetworkManager writes a profile made on the VMware NIC (nmcli con add … ifname ens192).
      mkdir -p "$tree/etc/NetworkManager/system-connections"
      cat > "$tree/etc/NetworkManager/system-connections/$name.nmconnection" <<KEYFILE
[connection]
id=$name
uuid=6f1d2b0e-3c4a-4b8e-9a51-2f0c7d6e8a10
type=ethernet
interface-name=$name

[ethernet]
mac-address=${mac^^}

[ipv4]
address1=$addr,10.0.2.2
method=manual

[ipv6]
method=disabled

[proxy]
KEYFILE
      chmod 600 "$tree/etc/NetworkManager/system-connections/$name.nmconnection"
      ;;
    ifcfg)
      # As RHEL's installer (anaconda) writes it for a VMware NIC.
      mkdir -p "$tree/etc/sysconfig/network-scripts"
      cat > "$tree/etc/sysconfig/network-scripts/ifcfg-$name" <<IFCFG
TYPE=Ethernet
BOOTPROTO=none
DEFROUTE=yes
NAME=$name
UUID=7a3e1c55-0b6d-4f2e-8d1a-5c9e2b7f4a60
DEVICE=$name
ONBOOT=yes
HWADDR=${mac^^}
IPADDR=${addr%/*}
PREFIX=$ifprefix
$ifgw
IFCFG
      ;;
  esac
done
if [[ $net == ifcfg ]]; then
  # The stand-in for RHEL's network-scripts (see the header).
  cat > "$tree/usr/local/sbin/ifcfg-up" <<'IFUP'
#!/bin/sh
# Stand-in for RHEL's `ifup` on each ONBOOT=yes /etc/sysconfig/network-scripts/ifcfg-*: the
# device is the NIC with HWADDR when that is set (and none: "ignoring"), else DEVICE.
for f in /etc/sysconfig/network-scripts/ifcfg-*; do
  [ -f "$f" ] || continue
  ( . "$f"
    [ "$ONBOOT" = yes ] || exit 0
    dev=$DEVICE
    if [ -n "$HWADDR" ]; then
      want=$(echo "$HWADDR" | tr A-F a-f)
      dev=""
      for i in /sys/class/net/*; do [ "$(cat "$i/address")" = "$want" ] && dev=${i##*/}; done
      [ -n "$dev" ] || { echo "ifcfg-up: $f: no device has MAC $HWADDR, ignoring"; exit 0; }
    fi
    [ -e "/sys/class/net/$dev" ] || { echo "ifcfg-up: $f: no device $dev"; exit 0; }
    ip link set "$dev" up
    [ -n "$IPADDR" ] && ip addr add "$IPADDR/${PREFIX:-24}" dev "$dev"
    [ -n "$GATEWAY" ] && ip route add default via "$GATEWAY" dev "$dev"
    echo "ifcfg-up: $dev configured from $f" )
done
IFUP
  mkdir -p "$tree/usr/local/sbin"
  chmod 755 "$tree/usr/local/sbin/ifcfg-up"
  cat > "$tree/etc/systemd/system/network-scripts.service" <<'UNIT'
[Unit]
Description=Apply /etc/sysconfig/network-scripts (stand-in for RHEL's network service)
After=systemd-udev-settle.service systemd-udevd.service
Wants=systemd-udev-settle.service
Before=network.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/ifcfg-up

[Install]
WantedBy=multi-user.target
UNIT
  ln -sf /etc/systemd/system/network-scripts.service "$tree/etc/systemd/system/multi-user.target.wants/network-scripts.service"
fi

cat > "$tree/etc/systemd/system/hyper2kvm-marker.service" <<'UNIT'
[Unit]
Description=Print a boot marker on the serial console
After=networking.service NetworkManager.service systemd-networkd.service network-scripts.service systemd-user-sessions.service swap.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/hyper2kvm-marker

[Install]
WantedBy=multi-user.target
UNIT
mkdir -p "$tree/usr/local/sbin"
cat > "$tree/usr/local/sbin/hyper2kvm-marker" <<'MARKER'
#!/bin/sh
# Each NIC, its state and IPv4 addresses; active swap; the host name; regular users;
# networkd's state. Waits (at most 30 s in all) for every NIC to get an address from whichever
# stack configures it.
sleep 2
nics=$(ls /sys/class/net | grep -v '^lo$')
n=0
for i in $nics; do
  while [ $n -lt 30 ] && [ -z "$(ip -o -4 addr show dev "$i" 2>/dev/null)" ]; do sleep 1; n=$((n + 1)); done
done
net=""
for i in $nics; do
  addrs=$(ip -o -4 addr show dev "$i" 2>/dev/null | awk '{print $4}' | tr '\n' ',')
  net="$net net=$i:$(cat /sys/class/net/$i/operstate 2>/dev/null):$addrs"
done
swap=$(swapon --noheadings --show=NAME 2>/dev/null | tr '\n' ',')
users=$(awk -F: '$3 >= 1000 && $3 < 60000 {print $1}' /etc/passwd | tr '\n' ',')
echo "HYPER2KVM-BOOT-OK root=$(findmnt -n -o SOURCE /)$net swap=$swap host=$(hostname) users=$users networkd=$(systemctl is-active systemd-networkd)" > /dev/ttyS0
MARKER
chmod 755 "$tree/usr/local/sbin/hyper2kvm-marker"
ln -sf /etc/systemd/system/hyper2kvm-marker.service "$tree/etc/systemd/system/multi-user.target.wants/hyper2kvm-marker.service"
ln -sf /lib/systemd/system/serial-getty@.service "$tree/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service"
chroot "$tree" sh -c 'echo root:hyper2kvm | chpasswd'

# The drivers a VMware guest's initramfs holds, and what its root needs besides.
drivers="ata_piix ata_generic pata_acpi sd_mod sr_mod vmw_pvscsi $fstype"
[[ $layout == uefi ]] && drivers+=" vfat nls_cp437 nls_ascii"
[[ $layout == lvm ]] && drivers+=" dm_mod"
[[ $variant == virtio ]] && drivers+=" virtio_pci virtio_blk virtio_scsi virtio_net"
resume=""
[[ $layout == swap ]] && resume=/dev/sda2
if [[ $initrd == dracut ]]; then
  log "dracut image with only the drivers a VMware guest boots from (hostonly as on RHEL)"
  # RHEL's dracut.conf.d/01-dist.conf; the image itself as dracut made it on the VMware host.
  printf 'hostonly="yes"\nhostonly_cmdline="no"\n' > "$tree/etc/dracut.conf.d/01-dist.conf"
  mount -t proc proc "$tree/proc"
  chroot "$tree" dracut -q -f --no-hostonly --drivers "$drivers" --omit "qemu qemu-net" \
    "/boot/initrd.img-$kver" "$kver" >&2
  umount "$tree/proc"
  lsinit=(lsinitrd)
else
  log "initramfs with only the drivers a VMware guest boots from (MODULES=list)"
  sed -i 's/^MODULES=.*/MODULES=list/' "$tree/etc/initramfs-tools/initramfs.conf"
  printf '%s\n' $drivers > "$tree/etc/initramfs-tools/modules"
  [[ -n $resume ]] && echo "RESUME=$resume" > "$tree/etc/initramfs-tools/conf.d/resume"
  chroot "$tree" update-initramfs -u -k "$kver" >&2
  lsinit=(lsinitramfs)
fi
want=absent have=absent
[[ $variant == virtio ]] && want=present
chroot "$tree" sh -c "${lsinit[*]} /boot/initrd.img-$kver | grep -q '/virtio_blk.ko'" && have=present
[[ $have == "$want" ]] || { log "virtio_blk is $have in the initramfs, wanted $want"; exit 1; }
rm -rf "$tree/var/cache/apt/archives"/*.deb

log "disk: $layout layout, $fstype root, GRUB ($grub)"
disk=$work/disk.raw
truncate -s 2G "$disk"
# Copies the first 440 bytes of GRUB's boot.img into the MBR and core.img after it.
bios_grub() {
  dd if="$tree/usr/lib/grub/i386-pc/boot.img" of="$disk" bs=440 count=1 conv=notrunc status=none
  dd if="$tree/boot/grub/core.img" of="$disk" bs=512 seek=1 conv=notrunc status=none
}
# Writes a file system image into the disk at a MiB offset.
place() { dd if="$1" of="$disk" bs=1M seek="$2" conv=notrunc,sparse status=none; }
if [[ $grub == real ]]; then
  # /etc/default/grub as Debian's grub-pc installs it, for a serial console.
  cmdline_default=""
  [[ -n $resume ]] && cmdline_default="resume=$resume"
  cat > "$tree/etc/default/grub" <<DEFAULT
# If you change this file, run 'update-grub' afterwards to update
# /boot/grub/grub.cfg.
GRUB_DEFAULT=0
GRUB_TIMEOUT=1
GRUB_DISTRIBUTOR=\`lsb_release -i -s 2> /dev/null || echo Debian\`
GRUB_CMDLINE_LINUX_DEFAULT="$cmdline_default"
GRUB_CMDLINE_LINUX="console=ttyS0,115200 net.ifnames=1"
GRUB_TERMINAL="serial console"
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
DEFAULT
  [[ $variant == grub-nouuid ]] && printf '# root= by device name, as set on this VMware template\nGRUB_DISABLE_LINUX_UUID=true\n' >> "$tree/etc/default/grub"
  # The file systems, made empty on plain files (ext4 from the tree directly) and filled by
  # the appliance; then the guest's own grub-install and update-grub.
  mounts="mount /dev/sda1 /"
  case $layout in
    plain)
      echo 'start=2048, type=83, bootable' | sfdisk -q "$disk"
      truncate -s 2047M "$work/root.img"
      mkfs.ext4 -q -F -U "$uuid" -L root -d "$tree" "$work/root.img"
      place "$work/root.img" 1
      mounts=""
      ;;
    sepboot)
      printf 'start=2048, size=256MiB, type=83, bootable\nstart=526336, type=83\n' | sfdisk -q "$disk"
      mv "$tree/boot" "$work/boot" && mkdir "$tree/boot"
      truncate -s 256M "$work/boot.img"
      mkfs.ext4 -q -F -U "$bootuuid" -L boot -d "$work/boot" "$work/boot.img"
      truncate -s 1791M "$work/root.img"
      mkfs.ext4 -q -F -U "$uuid" -L root -d "$tree" "$work/root.img"
      place "$work/boot.img" 1
      place "$work/root.img" 257
      mounts=""
      ;;
    swap)
      printf 'start=2048, size=1791MiB, type=83, bootable\nstart=3670016, type=82\n' | sfdisk -q "$disk"
      truncate -s 1791M "$work/root.img"
      mkfs.ext4 -q -F -U "$uuid" -L root -d "$tree" "$work/root.img"
      truncate -s 256M "$work/swap.img"
      mkswap -q -U "$swapuuid" "$work/swap.img" >&2
      place "$work/root.img" 1
      place "$work/swap.img" 1792
      mounts=""
      ;;
    efi)
      printf 'label: gpt\nstart=2048, size=100MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\nstart=206848, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n' | sfdisk -q "$disk"
      mkfs.vfat -C -i 1A2B3C4D -n ESP "$work/esp.img" $((100 * 1024)) >&2
      truncate -s $((2048 - 101 - 1))M "$work/root.img"
      mkfs.ext4 -q -F -U "$uuid" -L root -d "$tree" "$work/root.img"
      place "$work/esp.img" 1
      place "$work/root.img" 101
      mounts=""
      ;;
    xfs)
      echo 'start=2048, type=83, bootable' | sfdisk -q "$disk"
      truncate -s 2047M "$work/root.img"
      mkfs.xfs -q -f -m uuid="$uuid" -L root "$work/root.img"
      place "$work/root.img" 1
      ;;
    btrfs)
      echo 'start=2048, type=83, bootable' | sfdisk -q "$disk"
      truncate -s 2047M "$work/root.img"
      mkfs.btrfs -q -f -U "$uuid" -L root "$work/root.img" >&2
      place "$work/root.img" 1
      mounts="mount /dev/sda1 /
btrfs-subvolume-create /@
umount /
mount-options subvol=@ /dev/sda1 /"
      ;;
  esac
  # The mounts for GRUB's step (btrfs: the subvolume the tree went into).
  remount="mount /dev/sda1 /"
  [[ $layout == btrfs ]] && remount="mount-options subvol=@ /dev/sda1 /"
  [[ $layout == sepboot ]] && remount="mount /dev/sda2 /
mount /dev/sda1 /boot"
  [[ $layout == efi ]] && remount="mount /dev/sda2 /
mount /dev/sda1 /boot/efi"
  if [[ -n $mounts ]]; then
    tar -C "$tree" --numeric-owner -cf "$work/tree.tar" .
    fish -a "$disk" <<FISH
run
$mounts
tar-in $work/tree.tar /
umount-all
FISH
  fi
  # Inside the appliance the kernel does not always name the guest's disk /dev/sda (its own
  # disk is sometimes probed first; grub-install /dev/sda then fails with "embedding is not
  # possible, but this is required for cross-disk install", and with GRUB_DISABLE_LINUX_UUID
  # update-grub would write the wrong name). A VMware guest sees its disk as /dev/sda, so
  # GRUB's step runs only in an appliance where it is: otherwise it is tried in a new one.
  install='disk=$(grub-probe -t disk /boot); if [ x$disk != x/dev/sda ]; then echo the guest disk is $disk in this appliance, not /dev/sda: trying a new one >&2; exit 3; fi'
  target='grub-install --target=i386-pc /dev/sda'
  # Debian's own EFI install (with the signed packages, --uefi-secure-boot is its default);
  # no NVRAM entry, as the VMware VM's NVRAM does not come along.
  [[ $layout == efi ]] && target='grub-install --target=x86_64-efi --efi-directory=/boot/efi --bootloader-id=debian --uefi-secure-boot --no-nvram'
  install+="; $target"
  for try in 1 2 3 4 5; do
    fish -a "$disk" <<FISH && break
run
$remount
sh "$install"
command "update-grub"
umount-all
FISH
    [[ $try -lt 5 ]] || { echo "debian.sh: GRUB could not be installed in five appliances" >&2; exit 1; }
  done
elif [[ $layout == lvm ]]; then
  mkdir -p "$tree/boot/grub"
  cat > "$tree/boot/grub/grub.cfg" <<GRUB
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=1
set default=0
menuentry 'Debian GNU/Linux, with Linux $kver' {
    search --no-floppy --fs-uuid --set=root $uuid
    linux /boot/vmlinuz-$kver root=$rootdev ro console=ttyS0,115200 net.ifnames=1
    initrd /boot/initrd.img-$kver
}
GRUB
  chroot "$tree" grub-mkimage -O i386-pc -o /boot/grub/core.img -p "(lvm/vg0-root)/boot/grub" \
    biosdisk part_msdos lvm ext2 search search_fs_uuid normal linux configfile echo serial terminal test
  mkdir -p "$tree/boot/grub/i386-pc" && cp "$tree"/usr/lib/grub/i386-pc/*.mod "$tree/boot/grub/i386-pc/"
  tar -C "$tree" --numeric-owner -cf "$work/tree.tar" .
  fish -a "$disk" <<FISH
run
part-init /dev/sda mbr
part-add /dev/sda p 2048 -1
part-set-bootable /dev/sda 1 true
pvcreate /dev/sda1
vgcreate vg0 /dev/sda1
lvcreate root vg0 1900
mkfs ext4 /dev/vg0/root
set-uuid /dev/vg0/root $uuid
mount /dev/vg0/root /
tar-in $work/tree.tar /
umount-all
FISH
  bios_grub
else
  # A handwritten grub.cfg, and GRUB's images made by the guest's own grub-mkimage.
  mkdir -p "$tree/boot/grub"
  cat > "$tree/boot/grub/grub.cfg" <<GRUB
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=1
set default=0
menuentry 'Debian GNU/Linux, with Linux $kver' {
    search --no-floppy --fs-uuid --set=root $uuid
    linux /boot/vmlinuz-$kver root=$rootdev ro console=ttyS0,115200 net.ifnames=1
    initrd /boot/initrd.img-$kver
}
GRUB
  if [[ $layout == uefi ]]; then
    chroot "$tree" grub-mkimage -O x86_64-efi -o /boot/grub/bootx64.efi -p "(hd0,gpt2)/boot/grub" \
      part_gpt ext2 fat search search_fs_uuid normal linux configfile echo serial terminal test efi_gop all_video
    mv "$tree/boot/grub/bootx64.efi" "$work/bootx64.efi"
    mkdir -p "$tree/boot/grub/x86_64-efi" && cp "$tree"/usr/lib/grub/x86_64-efi/*.mod "$tree/boot/grub/x86_64-efi/"
    printf 'label: gpt\nstart=2048, size=100MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\nstart=206848, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n' | sfdisk -q "$disk"
    mkfs.vfat -C -n ESP "$work/esp.img" $((100 * 1024)) >&2
    mmd -i "$work/esp.img" ::/EFI ::/EFI/BOOT
    mcopy -i "$work/esp.img" "$work/bootx64.efi" ::/EFI/BOOT/BOOTX64.EFI
    truncate -s $((2048 - 101 - 1))M "$work/root.img"
    mkfs.ext4 -q -F -U "$uuid" -L root -d "$tree" "$work/root.img"
    place "$work/esp.img" 1
    place "$work/root.img" 101
  else
    chroot "$tree" grub-mkimage -O i386-pc -o /boot/grub/core.img -p "(hd0,msdos1)/boot/grub" \
      biosdisk part_msdos ext2 search search_fs_uuid normal linux configfile echo serial terminal test
    mkdir -p "$tree/boot/grub/i386-pc" && cp "$tree"/usr/lib/grub/i386-pc/*.mod "$tree/boot/grub/i386-pc/"
    echo 'start=2048, type=83, bootable' | sfdisk -q "$disk"
    truncate -s 2047M "$work/root.img"
    mkfs.ext4 -q -F -U "$uuid" -L root -d "$tree" "$work/root.img"
    place "$work/root.img" 1
    bios_grub
  fi
fi

log "export as stream-optimized VMDK"
mkdir -p "$dir.tmp"
qemu-img convert -q -f raw -O vmdk -o subformat=streamOptimized,adapter_type=lsilogic "$disk" "$dir.tmp/debian-$variant.vmdk"
echo "${MACS[0]}" > "$dir.tmp/mac"
printf '%s\n' "${MACS[@]:0:nics}" > "$dir.tmp/macs"
echo "$kver" > "$dir.tmp/kernel"
{
  echo "root=$virtio_root"
  for ((n = 0; n < nics; n++)); do echo "net=${NAMES[n]}:up:${ADDRS[n]}"; done
  [[ $layout == swap ]] && echo "swap=/dev/vda2"
} > "$dir.tmp/expect"
rm -rf "$dir" && mv "$dir.tmp" "$dir"
# Older builds of this variant (from earlier versions of this script) are of no further use.
for old in "$cache"/debian-"$variant"-* "$cache"/debian12-"$variant"-*; do
  [[ $old == "$dir" ]] || rm -rf "$old"
done
echo "$vmdk"
