#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets) for a bounded time on the committed corpus:
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]      (default 20 s, every target)
# First each target replays its kept crashes (fuzz/regressions/TARGET, which must all pass now),
# then fuzzes from fuzz/corpus/TARGET. New inputs go to target/fuzz/corpus (not the checkout).
# Any crash, panic, leak, timeout or single allocation over the target's limit (64 MiB, see
# malloc_limit) fails the run and leaves the input under target/fuzz/artifacts/TARGET/: copy it
# into fuzz/regressions/TARGET/ with the fix.
# Two targets run at a time (the CI machine has 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-20}
shift || true
export PATH="$HOME/.cargo/bin:$PATH"
TARGETS=("$@")
if ((${#TARGETS[@]} == 0)); then
  mapfile -t TARGETS < <(ls fuzz/fuzz_targets | sed 's/\.rs$//')
fi
OUT=target/fuzz
FUZZ=(cargo +nightly fuzz)
mkdir -p "$OUT"
"${FUZZ[@]}" build -O --fuzz-dir fuzz --target-dir "$OUT/build" >"$OUT/build.log" 2>&1 || {
  tail -30 "$OUT/build.log"; echo "fuzz: build failed"; exit 1; }
BIN="$OUT/build/x86_64-unknown-linux-gnu/release"
export HYPER2KVM_FUZZ_SCRATCH="$OUT/scratch"
mkdir -p "$HYPER2KVM_FUZZ_SCRATCH"

# The largest single allocation a target may make. Every parser of a header stays under 64 MiB;
# an initramfs decompressor may take the 128 MiB window the kernel itself accepts for zstd
# (guest::initramfs::MAX_DECODER_MEMORY), and nothing more.
malloc_limit() {
  case $1 in initramfs) echo 160 ;; *) echo 64 ;; esac
}

run_one() {
  local t=$1 log="$OUT/$1.log"
  local art="$OUT/artifacts/$t/" corpus="$OUT/corpus/$t"
  mkdir -p "$art" "$corpus"
  local opts=(-artifact_prefix="$art" -malloc_limit_mb="$(malloc_limit "$t")" -rss_limit_mb=1024 -timeout=10 -max_len=1048576)
  if compgen -G "fuzz/regressions/$t/*" >/dev/null; then
    if ! "$BIN/$t" "${opts[@]}" -runs=0 fuzz/regressions/"$t"/* >"$log.regressions" 2>&1; then
      echo "fuzz: $t: a kept regression input fails again (see $log.regressions)"; return 1
    fi
  fi
  if ! "$BIN/$t" "${opts[@]}" -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 \
      "$corpus" "fuzz/corpus/$t" >"$log" 2>&1; then
    echo "fuzz: $t FAILED; the input is in $art, the log in $log:"
    grep -E "ERROR|panicked|SUMMARY|Test unit written" "$log" | head -10
    return 1
  fi
  local runs
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  echo "fuzz: $t: ${runs:-?} inputs in ${SECONDS_PER_TARGET} s, no crash"
}

failed=0
pids=()
for t in "${TARGETS[@]}"; do
  run_one "$t" & pids+=($!)
  if ((${#pids[@]} == 2)); then
    wait "${pids[0]}" || failed=1
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do wait "$p" || failed=1; done
((failed == 0)) || { echo "fuzz: failures above"; exit 1; }
echo "fuzz: ${#TARGETS[@]} targets passed"
