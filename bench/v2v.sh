#!/usr/bin/env bash
# hyper2kvm against virt-v2v 2.2 on the same VMware-style Debian 12 guest (tests/guests/debian.sh),
# in the same run, both with the same libguestfs backend (direct, TCG on machines whose KVM
# cannot run a guest; set LIBGUESTFS_BACKEND_SETTINGS yourself to choose). Each tool does the
# whole job: inspect, fix (initramfs with virtio, fstab, boot loader, network, tools), convert
# to qcow2. Prints both wall times and the ratio hyper2kvm / virt-v2v (target <= 0.5).
set -euo pipefail
cd "$(dirname "$0")/.."
H2K=${H2K:-$PWD/target/release/hyper2kvm}
RUNS=${RUNS:-1}
export LIBGUESTFS_BACKEND=${LIBGUESTFS_BACKEND:-direct}
export LIBGUESTFS_BACKEND_SETTINGS=${LIBGUESTFS_BACKEND_SETTINGS:-force_tcg}
vmdk=$(tests/guests/debian.sh bios)
out=$(mktemp -d "${TMPDIR:-/var/tmp}/hyper2kvm-v2v.XXXXXX")
trap 'rm -rf "$out"' EXIT
now() { date +%s.%N; }
echo "bench: $vmdk, backend $LIBGUESTFS_BACKEND ($LIBGUESTFS_BACKEND_SETTINGS), $RUNS run(s) each"
h_total=0 v_total=0
for ((r = 0; r < RUNS; r++)); do
  rm -rf "$out"/* && mkdir -p "$out/h" "$out/v"
  t0=$(now)
  "$H2K" convert "$vmdk" -o "$out/h" > "$out/h.log" 2>&1 || { cat "$out/h.log"; exit 1; }
  t1=$(now)
  virt-v2v -i disk "$vmdk" -o local -os "$out/v" -of qcow2 > "$out/v.log" 2>&1 || { tail -30 "$out/v.log"; exit 1; }
  t2=$(now)
  h=$(echo "$t1 - $t0" | bc -l) v=$(echo "$t2 - $t1" | bc -l)
  printf 'run %d: hyper2kvm %.1f s, virt-v2v %.1f s, ratio %.3f\n' "$r" "$h" "$v" "$(echo "$h / $v" | bc -l)"
  h_total=$(echo "$h_total + $h" | bc -l) v_total=$(echo "$v_total + $v" | bc -l)
done
printf 'total: hyper2kvm %.1f s, virt-v2v %.1f s, ratio hyper2kvm/virt-v2v %.3f (target <= 0.5)\n' \
  "$h_total" "$v_total" "$(echo "$h_total / $v_total" | bc -l)"
