#!/usr/bin/env bash
# Runs one step of `make test` and records how long it took in target/steps.txt, so the end
# of a CI log says where its minutes went:   scripts/timed.sh NAME COMMAND...
# When the step fails, every step's time so far is printed after its output.
set -uo pipefail
name=$1
shift
mkdir -p target
start=$(date +%s)
"$@"
rc=$?
secs=$(($(date +%s) - start))
printf '%-16s %5d s  exit %d\n' "$name" "$secs" "$rc" >> target/steps.txt
echo "step $name: ${secs} s (exit $rc)"
if ((rc != 0)); then
  echo "steps so far:"
  cat target/steps.txt
fi
exit "$rc"
