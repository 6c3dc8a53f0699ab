#!/usr/bin/env bash
# Conversion benchmark: `hyper2kvm convert` against a bare `qemu-img convert -O qcow2` on the
# same input, in the same run.
#
# Inputs: a 2 GiB disk with 512 MiB of non-zero data (8 random 64 MiB runs spread over the
# disk, the rest sparse) as streamOptimized and monolithicSparse VMDKs, generated once and
# cached in /var/tmp keyed by this recipe's name.
# Each tool converts each input RUNS times, alternating, with the page cache warm for both;
# outputs go to BENCH_OUT (default /dev/shm, so disk writeback noise of this VM does not
# drown the comparison). hyper2kvm's time includes everything it does beyond qemu-img: the
# probe with grain-table walk, the qemu-img info cross-check, the fsync and the rename.
# Prints per input the median wall and CPU (user+sys) times, the ratio hyper2kvm/qemu-img
# (target <= 1.10) and hyper2kvm's own peak RSS (target <= 64 MiB; qemu-img's, a child
# process, is shown apart).
set -euo pipefail
cd "$(dirname "$0")/.."
H2K=${H2K:-$PWD/target/release/hyper2kvm}
RUNS=${RUNS:-9}
RECIPE=v1-2g-512m
cache=/var/tmp/hyper2kvm-bench-$RECIPE
base=${BENCH_OUT:-/dev/shm}
[[ -d $base && -w $base ]] || base=${TMPDIR:-/var/tmp}
out=$(mktemp -d "$base/hyper2kvm-bench.XXXXXX")
trap 'rm -rf "$out"' EXIT

if [[ ! -f $cache/done ]]; then
  echo "bench: generating inputs in $cache (once)"
  rm -rf "$cache" && mkdir -p "$cache"
  truncate -s 2G "$cache/disk.raw"
  for i in 0 1 2 3 4 5 6 7; do
    dd if=/dev/urandom of="$cache/disk.raw" bs=1M count=64 seek=$((i * 256)) conv=notrunc status=none
  done
  qemu-img convert -q -f raw -O vmdk -o subformat=streamOptimized "$cache/disk.raw" "$cache/streamOptimized.vmdk"
  qemu-img convert -q -f raw -O vmdk -o subformat=monolithicSparse "$cache/disk.raw" "$cache/monolithicSparse.vmdk"
  rm "$cache/disk.raw"
  touch "$cache/done"
fi

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
# Runs a command under GNU time; appends "wall cpu" to the file named by $1.
timed() {
  local log=$1
  shift
  /usr/bin/time -f '%e %U %S' -o "$out/time" "$@" > /dev/null 2> "$out/stderr" || { cat "$out/stderr"; exit 1; }
  awk '{printf "%s %s\n", $1, $2 + $3}' "$out/time" >> "$log"
}

echo "bench: outputs in $base, $RUNS runs each, medians"
printf '%-18s %9s %9s %7s %9s %9s %7s %11s %11s\n' input q_wall h_wall ratio q_cpu h_cpu ratio h2k_rss_MiB qemu_rss_MiB
for sub in streamOptimized monolithicSparse; do
  in=$cache/$sub.vmdk
  q=$out/q.log h=$out/h.log
  : > "$q"
  : > "$h"
  cat "$in" > /dev/null
  for ((r = 0; r < RUNS; r++)); do
    rm -f "$out"/*.qcow2
    timed "$q" qemu-img convert -O qcow2 "$in" "$out/bare.qcow2"
    rm -f "$out"/*.qcow2
    timed "$h" "$H2K" convert "$in" -o "$out" --json --no-fix
  done
  "$H2K" convert "$in" -o "$out" --json --no-fix --overwrite > "$out/report.json" 2> /dev/null
  rss=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["peak_rss_bytes"]["self"] / 1048576)' "$out/report.json")
  qrss=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["peak_rss_bytes"]["children"] / 1048576)' "$out/report.json")
  qw=$(cut -d' ' -f1 "$q" | median) hw=$(cut -d' ' -f1 "$h" | median)
  qc=$(cut -d' ' -f2 "$q" | median) hc=$(cut -d' ' -f2 "$h" | median)
  printf '%-18s %9.3f %9.3f %7.3f %9.3f %9.3f %7.3f %11.1f %11.1f\n' "$sub" "$qw" "$hw" \
    "$(echo "$hw / $qw" | bc -l)" "$qc" "$hc" "$(echo "$hc / $qc" | bc -l)" "$rss" "$qrss"
done
