#!/usr/bin/env bash
# Builds a Debian 12 test guest set up the way a VMware guest is, and exports it as a
# stream-optimized VMDK. No loop devices and no mounts of the disk: the root filesystem is made
# from a folder (`mkfs.ext4 -d`), the disk is a plain file partitioned with sfdisk, and GRUB is
# put in place with the guest's own grub-mkimage.
#
#   tests/guests/debian.sh VARIANT     prints the path of the cached VMDK (building it if needed)
#
# VARIANT: bios   — MBR, GRUB for BIOS, root on /dev/sda1.
#          virtio — the same, but the initramfs already holds the virtio drivers (a guest that
#                   was prepared for KVM before export: the rebuild must be skipped).
#          lvm    — MBR, one partition holding an LVM volume group vg0 with the root on
#                   vg0/root; the disk is assembled by libguestfs (guestfish), not by hand.
#          uefi   — GPT with an EFI system partition (/dev/sda1, vfat, /boot/efi) and the root
#                   on /dev/sda2; GRUB for x86_64-efi as the removable-media loader
#                   \EFI\BOOT\BOOTX64.EFI, booted with OVMF.
# The variants below have GRUB as an installed system has it: grub2-common (update-grub,
# /etc/grub.d) and /etc/default/grub, installed by the guest's own grub-install and its
# grub.cfg written by the guest's own update-grub, both run inside the libguestfs appliance on
# the finished disk (so grub-probe sees a real /dev/sda1, as on VMware):
#          grub-nouuid — GRUB_DISABLE_LINUX_UUID=true in /etc/default/grub, so update-grub
#                   writes root=/dev/sda1 (what a VMware install with that setting has, and
#                   what any update-grub run in an appliance writes again).
#          netplan — netplan.io (networkd renderer) instead of ifupdown: ens192 matched by
#                   `match: {macaddress: …}` with `set-name: ens192`.
#          nm     — NetworkManager instead of ifupdown: a keyfile with interface-name=ens192
#                   and mac-address= the VMware MAC.
# What makes it a VMware guest: an initramfs built with MODULES=list holding only IDE/SCSI
# drivers (no virtio_blk), /etc/fstab and root= naming /dev/sda1, ifupdown configuring ens192
# with the VMware MAC pinned (hwaddress) and a persistent-net udev rule, open-vm-tools
# installed. A systemd unit prints a marker line on ttyS0 once userspace is up:
#   HYPER2KVM-BOOT-OK root=<root device> net=<iface>:<operstate>:<addresses> host=<hostname>
#     users=<regular users> networkd=<systemd-networkd's state>
#
# The result is cached in $HYPER2KVM_GUEST_CACHE (default /var/tmp/hyper2kvm-guests) under a
# hash of this script and the variant, so CI (a fresh clone) builds it once per machine.
set -euo pipefail
variant=${1:-bios}
case $variant in bios | virtio | uefi | lvm | grub-nouuid | netplan | nm) ;; *) echo "unknown variant $variant" >&2; exit 2 ;; esac
here=$(cd "$(dirname "$0")" && pwd)
cache=${HYPER2KVM_GUEST_CACHE:-/var/tmp/hyper2kvm-guests}
key=$( (cat "$0"; echo "$variant") | sha256sum | cut -c1-16)
dir=$cache/debian12-$variant-$key
vmdk=$dir/debian12-$variant.vmdk
mkdir -p "$cache"
exec 9> "$cache/.lock-$variant"
flock 9
if [[ -f $vmdk ]]; then
  echo "$vmdk"
  exit 0
fi
log() { echo "debian.sh: $*" >&2; }
work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
tree=$work/tree
MAC=00:50:56:8a:00:01

mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)\/\?$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
[[ -n $mirror ]] || mirror=$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
[[ -n $mirror ]] || mirror=http://deb.debian.org/debian
# What each variant adds: how GRUB is installed, and which network stack configures ens192.
grub=hand net=ifupdown
case $variant in
  grub-nouuid) grub=real ;;
  netplan) grub=real net=netplan ;;
  nm) grub=real net=nm ;;
esac
include=systemd-sysv,udev,kmod,linux-image-cloud-amd64,initramfs-tools,grub-pc-bin,grub-efi-amd64-bin,lvm2,ifupdown,iproute2,open-vm-tools,e2fsprogs
[[ $grub == real ]] && include+=,grub2-common
[[ $net == netplan ]] && include+=,netplan.io
log "debootstrap bookworm from $mirror ($include)"
debootstrap --variant=minbase --include="$include" bookworm "$tree" "$mirror" >&2
if [[ $net == nm ]]; then
  # debootstrap cannot configure network-manager among the base packages (dbus is not yet
  # set up); apt in the finished tree can, with services kept from starting.
  printf '#!/bin/sh\nexit 101\n' > "$tree/usr/sbin/policy-rc.d" && chmod 755 "$tree/usr/sbin/policy-rc.d"
  mount -t proc proc "$tree/proc"
  trap 'umount "$tree/proc" 2>/dev/null || true; rm -rf "$work"' EXIT
  chroot "$tree" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends network-manager >&2
  umount "$tree/proc"
  rm -f "$tree/usr/sbin/policy-rc.d"
fi

log "configuring it as a VMware guest"
echo vmware-debian > "$tree/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 vmware-debian\n' > "$tree/etc/hosts"
rootdev=/dev/sda1
[[ $variant == uefi ]] && rootdev=/dev/sda2
[[ $variant == lvm ]] && rootdev=/dev/mapper/vg0-root
cat > "$tree/etc/fstab" <<FSTAB
# /etc/fstab as a VMware install leaves it: filesystems by their SCSI device names
$rootdev / ext4 errors=remount-ro 0 1
FSTAB
if [[ $variant == uefi ]]; then
  echo "/dev/sda1 /boot/efi vfat umask=0077 0 1" >> "$tree/etc/fstab"
  mkdir -p "$tree/boot/efi"
  printf 'vfat\nnls_cp437\nnls_ascii\n' > "$work/extra-modules"
fi
cat > "$tree/etc/network/interfaces" <<NET
source /etc/network/interfaces.d/*
auto lo
iface lo inet loopback
NET
case $net in
  ifupdown)
    cat >> "$tree/etc/network/interfaces" <<NET

# vmxnet3 on PCI slot 192
allow-hotplug ens192
auto ens192
iface ens192 inet static
    address 10.0.2.15/24
    gateway 10.0.2.2
    hwaddress ether $MAC
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
    ens192:
      match:
        macaddress: "$MAC"
      set-name: ens192
      dhcp4: false
      addresses:
        - 10.0.2.15/24
      routes:
        - to: default
          via: 10.0.2.2
NETPLAN
    chmod 600 "$tree/etc/netplan/50-vmware.yaml"
    ;;
  nm)
    # As NetworkManager writes a profile made on the VMware NIC (nmcli con add ... ifname ens192).
    mkdir -p "$tree/etc/NetworkManager/system-connections"
    cat > "$tree/etc/NetworkManager/system-connections/ens192.nmconnection" <<KEYFILE
[connection]
id=ens192
uuid=6f1d2b0e-3c4a-4b8e-9a51-2f0c7d6e8a10
type=ethernet
interface-name=ens192

[ethernet]
mac-address=${MAC^^}

[ipv4]
address1=10.0.2.15/24,10.0.2.2
method=manual

[ipv6]
method=disabled

[proxy]
KEYFILE
    chmod 600 "$tree/etc/NetworkManager/system-connections/ens192.nmconnection"
    ;;
esac
cat > "$tree/etc/udev/rules.d/70-persistent-net.rules" <<UDEV
# PCI device 0x15ad:0x07b0 (vmxnet3)
SUBSYSTEM=="net", ACTION=="add", DRIVERS=="?*", ATTR{address}=="$MAC", ATTR{type}=="1", NAME="ens192"
UDEV
cat > "$tree/etc/systemd/system/hyper2kvm-marker.service" <<'UNIT'
[Unit]
Description=Print a boot marker on the serial console
After=networking.service NetworkManager.service systemd-networkd.service systemd-user-sessions.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/hyper2kvm-marker

[Install]
WantedBy=multi-user.target
UNIT
mkdir -p "$tree/usr/local/sbin"
cat > "$tree/usr/local/sbin/hyper2kvm-marker" <<'MARKER'
#!/bin/sh
# The first NIC, its state and IPv4 addresses; the host name; regular users; networkd's state.
# Waits (at most 30 s) for the first NIC to get an address from whichever stack configures it.
sleep 2
i=$(ls /sys/class/net | grep -v '^lo$' | head -1)
n=0
while [ $n -lt 30 ] && [ -z "$(ip -o -4 addr show dev "$i" 2>/dev/null)" ]; do sleep 1; n=$((n + 1)); done
addrs=$(ip -o -4 addr show dev "$i" 2>/dev/null | awk '{print $4}' | tr '\n' ',')
users=$(awk -F: '$3 >= 1000 && $3 < 60000 {print $1}' /etc/passwd | tr '\n' ',')
echo "HYPER2KVM-BOOT-OK root=$(findmnt -n -o SOURCE /) net=$i:$(cat /sys/class/net/$i/operstate 2>/dev/null):$addrs host=$(hostname) users=$users networkd=$(systemctl is-active systemd-networkd)" > /dev/ttyS0
MARKER
chmod 755 "$tree/usr/local/sbin/hyper2kvm-marker"
ln -sf /etc/systemd/system/hyper2kvm-marker.service "$tree/etc/systemd/system/multi-user.target.wants/hyper2kvm-marker.service"
ln -sf /lib/systemd/system/serial-getty@.service "$tree/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service"
chroot "$tree" sh -c 'echo root:hyper2kvm | chpasswd'

log "initramfs with only the drivers a VMware guest boots from (MODULES=list)"
sed -i 's/^MODULES=.*/MODULES=list/' "$tree/etc/initramfs-tools/initramfs.conf"
printf 'ata_piix\nata_generic\npata_acpi\nsd_mod\nsr_mod\nvmw_pvscsi\next4\n' > "$tree/etc/initramfs-tools/modules"
[[ $variant == lvm ]] && printf 'dm_mod\n' > "$work/extra-modules"
[[ -f $work/extra-modules ]] && cat "$work/extra-modules" >> "$tree/etc/initramfs-tools/modules"
want=absent
if [[ $variant == virtio ]]; then
  printf 'virtio_pci\nvirtio_blk\nvirtio_scsi\nvirtio_net\n' >> "$tree/etc/initramfs-tools/modules"
  want=present
fi
kver=$(ls "$tree/lib/modules" | head -1)
chroot "$tree" update-initramfs -u -k "$kver" >&2
have=absent
chroot "$tree" sh -c "lsinitramfs /boot/initrd.img-$kver | grep -q '/virtio_blk.ko'" && have=present
[[ $have == "$want" ]] || { log "virtio_blk is $have in the initramfs, wanted $want"; exit 1; }

log "disk: partitions, ext4 root from the tree, GRUB"
uuid=$(cat /proc/sys/kernel/random/uuid)
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
disk=$work/disk.raw
truncate -s 2G "$disk"
if [[ $grub == real ]]; then
  # /etc/default/grub as Debian's grub-pc installs it, for a serial console; grub-install and
  # update-grub are the guest's own, run in the appliance on the finished disk.
  rm -f "$tree/boot/grub/grub.cfg"
  cat > "$tree/etc/default/grub" <<DEFAULT
# If you change this file, run 'update-grub' afterwards to update
# /boot/grub/grub.cfg.
GRUB_DEFAULT=0
GRUB_TIMEOUT=1
GRUB_DISTRIBUTOR=\`lsb_release -i -s 2> /dev/null || echo Debian\`
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=ttyS0,115200 net.ifnames=1"
GRUB_TERMINAL="serial console"
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
DEFAULT
  [[ $variant == grub-nouuid ]] && printf '# root= by device name, as set on this VMware template\nGRUB_DISABLE_LINUX_UUID=true\n' >> "$tree/etc/default/grub"
  rm -rf "$tree/var/cache/apt/archives"/*.deb
  echo 'start=2048, type=83, bootable' | sfdisk -q "$disk"
  truncate -s $((2048 - 1))M "$work/root.ext4"
  mkfs.ext4 -q -F -U "$uuid" -L root -d "$tree" "$work/root.ext4"
  dd if="$work/root.ext4" of="$disk" bs=1M seek=1 conv=notrunc,sparse status=none
  LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=force_tcg guestfish -a "$disk" >&2 <<FISH
run
mount /dev/sda1 /
command "grub-install --target=i386-pc /dev/sda"
command "update-grub"
umount-all
FISH
elif [[ $variant == lvm ]]; then
  chroot "$tree" grub-mkimage -O i386-pc -o /boot/grub/core.img -p "(lvm/vg0-root)/boot/grub" \
    biosdisk part_msdos lvm ext2 search search_fs_uuid normal linux configfile echo serial terminal test
  cp "$tree/boot/grub/core.img" "$work/core.img"
  cp "$tree/usr/lib/grub/i386-pc/boot.img" "$work/boot.img"
  mkdir -p "$tree/boot/grub/i386-pc" && cp "$tree"/usr/lib/grub/i386-pc/*.mod "$tree/boot/grub/i386-pc/"
  rm -rf "$tree/var/cache/apt/archives"/*.deb
  tar -C "$tree" --numeric-owner -cf "$work/tree.tar" .
  LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=force_tcg guestfish -a "$disk" >&2 <<FISH
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
  dd if="$work/boot.img" of="$disk" bs=440 count=1 conv=notrunc status=none
  dd if="$work/core.img" of="$disk" bs=512 seek=1 conv=notrunc status=none
elif [[ $variant == uefi ]]; then
  chroot "$tree" grub-mkimage -O x86_64-efi -o /boot/grub/bootx64.efi -p "(hd0,gpt2)/boot/grub" \
    part_gpt ext2 fat search search_fs_uuid normal linux configfile echo serial terminal test efi_gop all_video
  mv "$tree/boot/grub/bootx64.efi" "$work/bootx64.efi"
  mkdir -p "$tree/boot/grub/x86_64-efi" && cp "$tree"/usr/lib/grub/x86_64-efi/*.mod "$tree/boot/grub/x86_64-efi/"
  rm -rf "$tree/var/cache/apt/archives"/*.deb
  printf 'label: gpt\nstart=2048, size=100MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\nstart=206848, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n' | sfdisk -q "$disk"
  mkfs.vfat -C -n ESP "$work/esp.img" $((100 * 1024)) >&2
  mmd -i "$work/esp.img" ::/EFI ::/EFI/BOOT
  mcopy -i "$work/esp.img" "$work/bootx64.efi" ::/EFI/BOOT/BOOTX64.EFI
  dd if="$work/esp.img" of="$disk" bs=1M seek=1 conv=notrunc,sparse status=none
  truncate -s $((2048 - 101 - 1))M "$work/root.ext4"
  mkfs.ext4 -q -F -U "$uuid" -L root -d "$tree" "$work/root.ext4"
  dd if="$work/root.ext4" of="$disk" bs=1M seek=101 conv=notrunc,sparse status=none
else
  chroot "$tree" grub-mkimage -O i386-pc -o /boot/grub/core.img -p "(hd0,msdos1)/boot/grub" \
    biosdisk part_msdos ext2 search search_fs_uuid normal linux configfile echo serial terminal test
  cp "$tree/boot/grub/core.img" "$work/core.img"
  cp "$tree/usr/lib/grub/i386-pc/boot.img" "$work/boot.img"
  mkdir -p "$tree/boot/grub/i386-pc" && cp "$tree"/usr/lib/grub/i386-pc/*.mod "$tree/boot/grub/i386-pc/"
  rm -rf "$tree/var/cache/apt/archives"/*.deb
  echo 'start=2048, type=83, bootable' | sfdisk -q "$disk"
  truncate -s $((2048 - 1))M "$work/root.ext4"
  mkfs.ext4 -q -F -U "$uuid" -L root -d "$tree" "$work/root.ext4"
  dd if="$work/root.ext4" of="$disk" bs=1M seek=1 conv=notrunc,sparse status=none
  dd if="$work/boot.img" of="$disk" bs=440 count=1 conv=notrunc status=none
  dd if="$work/core.img" of="$disk" bs=512 seek=1 conv=notrunc status=none
fi

log "export as stream-optimized VMDK"
mkdir -p "$dir.tmp"
qemu-img convert -q -f raw -O vmdk -o subformat=streamOptimized,adapter_type=lsilogic "$disk" "$dir.tmp/debian12-$variant.vmdk"
echo "$MAC" > "$dir.tmp/mac"
echo "$kver" > "$dir.tmp/kernel"
rm -rf "$dir" && mv "$dir.tmp" "$dir"
# Older builds of this variant (from earlier versions of this script) are of no further use.
for old in "$cache"/debian12-"$variant"-*; do
  [[ $old == "$dir" ]] || rm -rf "$old"
done
echo "$vmdk"
