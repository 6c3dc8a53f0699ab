#!/usr/bin/env bash
# hyper2kvm against virt-v2v 2.2 on the same VMware-style Debian 12 guest (tests/guests/debian.sh
# bios), in the same run, both with the same libguestfs backend (direct, TCG on machines whose
# KVM cannot run a guest; set LIBGUESTFS_BACKEND_SETTINGS yourself to choose). Each tool does
# the whole job: inspect, fix (initramfs with virtio, fstab, boot loader, network, tools),
# convert to qcow2. hyper2kvm also runs once with libguestfs's inspect_os
# (HYPER2KVM_INSPECTOR=libguestfs) to show the inspection stage before and after our own.
# Prints the wall times, the ratio hyper2kvm / virt-v2v (target <= 0.25), both inspection
# times, and boots hyper2kvm's output to its marker (bench/boot.sh).
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
# Seconds from "appliance running" to "found ..." in a -v log: the inspection itself.
stamp() { sed -n "s/^hyper2kvm: \[ *\([0-9.]*\)s\].*$1.*/\1/p" "$2" | head -1; }
inspection() { echo "$(stamp 'info: found ' "$1") - $(stamp 'appliance running' "$1")" | bc -l; }
echo "bench: $vmdk, backend $LIBGUESTFS_BACKEND ($LIBGUESTFS_BACKEND_SETTINGS), $RUNS run(s) each"
h_total=0 v_total=0 own_total=0 lg_total=0
for ((r = 0; r < RUNS; r++)); do
  rm -rf "${out:?}"/* && mkdir -p "$out/h" "$out/l" "$out/v"
  t0=$(now)
  "$H2K" convert "$vmdk" -o "$out/h" -v > "$out/h.log" 2>&1 || { cat "$out/h.log"; exit 1; }
  t1=$(now)
  virt-v2v -i disk "$vmdk" -o local -os "$out/v" -of qcow2 > "$out/v.log" 2>&1 || { tail -30 "$out/v.log"; exit 1; }
  t2=$(now)
  HYPER2KVM_INSPECTOR=libguestfs "$H2K" convert "$vmdk" -o "$out/l" -v > "$out/l.log" 2>&1 || { cat "$out/l.log"; exit 1; }
  t3=$(now)
  h=$(echo "$t1 - $t0" | bc -l) v=$(echo "$t2 - $t1" | bc -l) l=$(echo "$t3 - $t2" | bc -l)
  own=$(inspection "$out/h.log") lg=$(inspection "$out/l.log")
  printf 'run %d: hyper2kvm %.1f s, virt-v2v %.1f s, ratio %.3f; with inspect_os %.1f s; inspection stage: inspect_os %.1f s, own %.1f s\n' \
    "$r" "$h" "$v" "$(echo "$h / $v" | bc -l)" "$l" "$lg" "$own"
  h_total=$(echo "$h_total + $h" | bc -l) v_total=$(echo "$v_total + $v" | bc -l)
  own_total=$(echo "$own_total + $own" | bc -l) lg_total=$(echo "$lg_total + $lg" | bc -l)
done
printf 'total: hyper2kvm %.1f s, virt-v2v %.1f s, ratio hyper2kvm/virt-v2v %.3f (target <= 0.25)\n' \
  "$h_total" "$v_total" "$(echo "$h_total / $v_total" | bc -l)"
printf 'inspection stage: libguestfs inspect_os %.1f s, own %.1f s (ratio %.2f)\n' \
  "$lg_total" "$own_total" "$(echo "$own_total / $lg_total" | bc -l)"
# The inspection stage alone, INSPECT_RUNS times each way (`hyper2kvm inspect`: appliance,
# inspection, kernels): medians.
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
: > "$out/own.t"
: > "$out/lg.t"
for ((r = 0; r < ${INSPECT_RUNS:-3}; r++)); do
  "$H2K" inspect -v "$vmdk" > "$out/i.log" 2>&1 && inspection "$out/i.log" >> "$out/own.t"
  HYPER2KVM_INSPECTOR=libguestfs "$H2K" inspect -v "$vmdk" > "$out/i.log" 2>&1 && inspection "$out/i.log" >> "$out/lg.t"
done
printf 'inspection stage alone (hyper2kvm inspect, %d runs each, medians): inspect_os %.1f s, own %.1f s\n' \
  "${INSPECT_RUNS:-3}" "$(median < "$out/lg.t")" "$(median < "$out/own.t")"
echo -n "hyper2kvm's output: "
bench/boot.sh "$out/h/debian-bios.qcow2" qcow2 "$(dirname "$vmdk")/macs"
