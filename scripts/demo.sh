#!/usr/bin/env bash
# The main job end to end on the built-in sample (scripts/sample.sh; nothing is downloaded but the
# Debian packages debootstrap fetches from the machine's own mirror):
#  1. a small Debian 12 guest set up the way a VMware guest is (tests/guests/debian.sh: root and
#     fstab on /dev/sda1, an initramfs without virtio, ifupdown on ens192 pinned to the VMware
#     MAC, open-vm-tools), built once and cached in /var/tmp;
#  2. exported the way vSphere does it: stream-optimized VMDK in an OVA with a VMware-style OVF
#     (2 vCPUs, 2 GiB, one vmxnet3 NIC) and a SHA256 manifest;
#  3. `hyper2kvm probe`, `hyper2kvm inspect`, and `hyper2kvm convert` (inspect + fix + convert,
#     the disk read in place from the OVA);
#     with its own validation (`qemu-img check`, and `--boot-test`: the guest booted with the
#     devices of the libvirt domain it writes beside the disk);
#  4. independent validation: `qemu-img check`, `virt-xml-validate` of the domain, then a
#     bounded boot of the output on virtio-blk and virtio-net (TCG) until the guest prints its
#     marker with its root on /dev/vda1 and its NIC configured.
set -euo pipefail
cd "$(dirname "$0")/.."
H2K=${H2K:-target/release/hyper2kvm}
work=target/demo
rm -rf "$work" && mkdir -p "$work/out"

scripts/sample.sh "$work"
mac=$(cat "$work/mac")

echo "== hyper2kvm probe $work/web01.ova"
"$H2K" probe "$work/web01.ova"

echo "== hyper2kvm inspect $work/web01.ova"
"$H2K" inspect "$work/web01.ova"

echo "== hyper2kvm convert $work/web01.ova -o $work/out --compress --boot-test"
"$H2K" convert "$work/web01.ova" -o "$work/out" --compress --boot-test \
  --boot-marker HYPER2KVM-BOOT-OK | tee "$work/convert.out"

echo "== validating independently: qemu-img check, virt-xml-validate, a bounded boot on virtio (TCG)"
out=$(sed -n 's/^Output: \(.*\.qcow2\)$/\1/p' "$work/convert.out")
xml=$(sed -n 's/^Output: \(.*\.xml\)$/\1/p' "$work/convert.out")
qemu-img check -q "$out"
virt-xml-validate "$xml" domain
grep -q "<mac address=\"$mac\"/>" "$xml" || { echo "demo: FAILED — $xml lacks the OVF's MAC $mac"; exit 1; }
timeout 300 qemu-system-x86_64 -machine q35,accel=tcg -m 1024 -nodefaults -nographic -no-reboot \
  -display none -monitor none -serial "file:$work/console.log" \
  -drive "file=$out,format=qcow2,if=none,id=d0,snapshot=on" -device virtio-blk-pci,drive=d0 \
  -netdev user,id=n0 -device "virtio-net-pci,netdev=n0,mac=$mac" &
qemu=$!
trap 'kill $qemu 2>/dev/null || true' EXIT
for _ in $(seq 1 280); do
  if grep -aq 'HYPER2KVM-BOOT-OK.*net=' "$work/console.log" 2>/dev/null; then break; fi
  kill -0 $qemu 2>/dev/null || break
  sleep 1
done
kill $qemu 2>/dev/null || true
if marker=$(grep -a 'HYPER2KVM-BOOT-OK' "$work/console.log"); then
  echo "guest: $marker"
  echo "demo: OK — $out boots on KVM devices (virtio-blk, virtio-net)"
else
  echo "demo: FAILED — the converted guest did not reach its marker; last console lines:"
  tail -20 "$work/console.log"
  exit 1
fi
