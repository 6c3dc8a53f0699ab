#!/usr/bin/env bash
# Boots a converted image under TCG on virtio (as the tests do) until the test guest's marker
# line appears on the serial console; exits 0 with the seconds it took, 1 when the guest gives
# up or LIMIT seconds pass:   bench/boot.sh IMAGE FORMAT MACS_FILE [LIMIT]
set -uo pipefail
image=$1 format=$2 macs=$3 limit=${4:-420}
log=$(mktemp)
nics=()
i=0
while read -r mac; do
  [[ -n $mac ]] || continue
  nics+=(-netdev "user,id=n$i" -device "virtio-net-pci,netdev=n$i,mac=$mac")
  i=$((i + 1))
done < "$macs"
qemu-system-x86_64 -m 1024 -nodefaults -nographic -no-reboot -display none -monitor none \
  -serial "file:$log" -machine q35,accel=tcg \
  -drive "file=$image,format=$format,snapshot=on,if=none,id=d0" -device virtio-blk-pci,drive=d0 \
  "${nics[@]}" 2>/dev/null &
pid=$!
start=$(date +%s)
rc=1
while (($(date +%s) - start < limit)) && kill -0 "$pid" 2>/dev/null; do
  if grep -q "HYPER2KVM-BOOT-OK" "$log"; then rc=0; break; fi
  if grep -qE "Gave up waiting for root|Kernel panic|Entering emergency mode" "$log"; then break; fi
  sleep 1
done
kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
secs=$(($(date +%s) - start))
if ((rc == 0)); then
  echo "boots: marker after ${secs} s: $(grep -a -m1 HYPER2KVM-BOOT-OK "$log" | tr -d '\r')"
else
  echo "DOES NOT BOOT after ${secs} s; console tail:"; tail -15 "$log"
fi
rm -f "$log"
exit "$rc"
