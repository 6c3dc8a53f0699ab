#!/usr/bin/env bash
# Manifest benchmark: `hyper2kvm MANIFEST` on a two-disk manifest (checksums on both disks, the
# guest fix stage off, compression off) against the sum of bare `qemu-img convert -O qcow2` +
# `sync -f` of the same two disks, in the same run. hyper2kvm's time includes the manifest
# checks, the SHA-256 verification of both disks (in the conversion's own read), the probes,
# the conversions (in parallel), the qemu-img checks, the domain XML and the report with the
# outputs' SHA-256s. Before each run the sources are dropped from the page cache, and the bytes
# each side reads from storage (read_bytes of /proc/PID/io, its reaped children included) are
# counted: one pass over the sources is about 1.0x their size. Outputs go to BENCH_OUT (default
# /var/tmp: real storage, which the baseline's sync and hyper2kvm's fsync write to).
# Inputs: the two stream-optimized VMDKs of bench/convert.sh's recipe shape (2 GiB, 512 MiB
# of data each), generated once and cached in /var/tmp. Prints the medians of RUNS runs and
# the ratio (target <= 1.0, excluding the guest fix stage).
set -euo pipefail
cd "$(dirname "$0")/.."
H2K=${H2K:-$PWD/target/release/hyper2kvm}
RUNS=${RUNS:-5}
RECIPE=v1-two-2g-512m
cache=/var/tmp/hyper2kvm-bench-$RECIPE
base=${BENCH_OUT:-/var/tmp}
[[ -d $base && -w $base ]] || base=${TMPDIR:-/var/tmp}
out=$(mktemp -d "$base/hyper2kvm-bench-manifest.XXXXXX")
trap 'rm -rf "$out"' EXIT

if [[ ! -f $cache/done ]]; then
  echo "bench: generating inputs in $cache (once)"
  rm -rf "$cache" && mkdir -p "$cache"
  for d in 0 1; do
    truncate -s 2G "$cache/disk.raw"
    for i in 0 1 2 3 4 5 6 7; do
      dd if=/dev/urandom of="$cache/disk.raw" bs=1M count=64 seek=$((i * 256)) conv=notrunc status=none
    done
    qemu-img convert -q -f raw -O vmdk -o subformat=streamOptimized "$cache/disk.raw" "$cache/disk-$d.vmdk"
  done
  rm "$cache/disk.raw"
  touch "$cache/done"
fi

cat > "$cache/artifact-manifest.json" <<JSON
{
  "manifest_version": "1.0",
  "source": {"provider": "vsphere", "vm_name": "bench"},
  "vm": {"cpu": 2, "mem_gb": 2},
  "disks": [
    {"id": "disk-0", "source_format": "vmdk", "bytes": 2147483648, "local_path": "disk-0.vmdk",
     "checksum": "sha256:$(sha256sum "$cache/disk-0.vmdk" | cut -c1-64)", "boot_order_hint": 0},
    {"id": "disk-1", "source_format": "vmdk", "bytes": 2147483648, "local_path": "disk-1.vmdk",
     "checksum": "sha256:$(sha256sum "$cache/disk-1.vmdk" | cut -c1-64)", "boot_order_hint": 1}
  ],
  "pipeline": {"inspect": {"enabled": false}, "fix": {"enabled": false}, "convert": {"compress": false}},
  "output": {"directory": "$out/h"}
}
JSON

# Drops a file's pages from the page cache (GNU dd: nocache with count=0 covers the file).
evict() { for f in "$@"; do dd if="$f" iflag=nocache count=0 status=none; done; }
# Runs a command in a shell that prints, after it, the bytes the shell's reaped children read
# from storage.
counted() { bash -c '"$@" || exit 1; sed -n "s/^read_bytes: //p" /proc/$$/io' counted "$@"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
now() { date +%s.%N; }
: > "$out/h.times"
: > "$out/q.times"
: > "$out/h.read"
: > "$out/q.read"
sources=$(($(stat -c %s "$cache/disk-0.vmdk") + $(stat -c %s "$cache/disk-1.vmdk")))
for ((r = 0; r < RUNS; r++)); do
  rm -rf "$out/h" "$out/q" && mkdir -p "$out/q"
  evict "$cache"/disk-*.vmdk
  t0=$(now)
  counted "$H2K" "$cache/artifact-manifest.json" > "$out/h.log" 2>&1 || { cat "$out/h.log"; exit 1; }
  t1=$(now)
  tail -1 "$out/h.log" >> "$out/h.read"
  evict "$cache"/disk-*.vmdk
  t2=$(now)
  counted bash -c "for d in 0 1; do qemu-img convert -O qcow2 -f vmdk '$cache'/disk-\$d.vmdk '$out'/q/disk-\$d.qcow2 && sync -f '$out'/q/disk-\$d.qcow2 || exit 1; done" > "$out/q.log" 2>&1 || { cat "$out/q.log"; exit 1; }
  t3=$(now)
  tail -1 "$out/q.log" >> "$out/q.read"
  echo "$t1 - $t0" | bc -l >> "$out/h.times"
  echo "$t3 - $t2" | bc -l >> "$out/q.times"
done
h=$(median < "$out/h.times") q=$(median < "$out/q.times")
hr=$(median < "$out/h.read") qr=$(median < "$out/q.read")
printf 'manifest (2 disks, %d runs): hyper2kvm %.2f s, sum of bare qemu-img + sync %.2f s, ratio %.3f (target <= 1.05)\n' \
  "$RUNS" "$h" "$q" "$(echo "$h / $q" | bc -l)"
printf 'read from storage (sources %d MiB): hyper2kvm %d MiB (%.2fx), bare qemu-img %d MiB (%.2fx)\n' \
  $((sources >> 20)) $((hr >> 20)) "$(echo "$hr / $sources" | bc -l)" $((qr >> 20)) "$(echo "$qr / $sources" | bc -l)"
