#!/usr/bin/env bash
# Copying only live blocks: a guest with 1 GiB of data written and then deleted
# (tests/guests/deleted.sh bios) converted by hyper2kvm (free blocks discarded after the fixes),
# by hyper2kvm --no-trim (the copy of everything), and by virt-v2v 2.2 (which trims an overlay
# before copying), all to qcow2, in the same run. Prints each output's allocated bytes and the
# guest's used space (statvfs of its root), the ratios hyper2kvm / virt-v2v (target <= 1.05)
# and hyper2kvm / used (target <= 1.10), and boots hyper2kvm's output to its marker.
set -euo pipefail
cd "$(dirname "$0")/.."
H2K=${H2K:-$PWD/target/release/hyper2kvm}
export LIBGUESTFS_BACKEND=${LIBGUESTFS_BACKEND:-direct}
export LIBGUESTFS_BACKEND_SETTINGS=${LIBGUESTFS_BACKEND_SETTINGS:-force_tcg}
vmdk=$(tests/guests/deleted.sh bios)
out=$(mktemp -d "${TMPDIR:-/var/tmp}/hyper2kvm-trim.XXXXXX")
trap 'rm -rf "$out"' EXIT
mkdir -p "$out/h" "$out/n" "$out/v"
used=$(guestfish --ro -a "$vmdk" -m /dev/sda1 statvfs / |
  awk '/^bsize:/ {b = $2} /^blocks:/ {n = $2} /^bfree:/ {f = $2} END {print (n - f) * b}')
"$H2K" convert "$vmdk" -o "$out/h" > "$out/h.log" 2>&1 || { cat "$out/h.log"; exit 1; }
"$H2K" convert "$vmdk" -o "$out/n" --no-trim > "$out/n.log" 2>&1 || { cat "$out/n.log"; exit 1; }
virt-v2v -i disk "$vmdk" -o local -os "$out/v" -of qcow2 > "$out/v.log" 2>&1 || { tail -30 "$out/v.log"; exit 1; }
alloc() { du -B1 "$1" | cut -f1; }
h=$(alloc "$out/h/deleted-bios.qcow2") n=$(alloc "$out/n/deleted-bios.qcow2") v=$(alloc "$out/v/deleted-bios-sda")
mib() { echo "scale=1; $1 / 1048576" | bc -l; }
echo "bench: $vmdk ($(mib "$(du -B1 "$vmdk" | cut -f1)") MiB), guest's used space $(mib "$used") MiB"
echo "allocated: hyper2kvm $(mib "$h") MiB, hyper2kvm --no-trim $(mib "$n") MiB, virt-v2v $(mib "$v") MiB"
printf 'ratio hyper2kvm/virt-v2v %.3f (target <= 1.05), hyper2kvm/used %.3f (target <= 1.10)\n' \
  "$(echo "$h / $v" | bc -l)" "$(echo "$h / $used" | bc -l)"
echo -n "hyper2kvm's output: "
bench/boot.sh "$out/h/deleted-bios.qcow2" qcow2 "$(dirname "$vmdk")/macs"
