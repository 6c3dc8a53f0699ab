#!/usr/bin/env bash
# Builds the C ABI test with warnings as errors and AddressSanitizer + UBSan (leaks fail the
# run), links it to libhyper2kvm.so through pkg-config, makes its inputs (images by qemu-img,
# a good and a bad manifest) and runs it; then builds and runs the Go client (cgo).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${H2K_OUT:-target/c}
rm -rf "$out" && mkdir -p "$out/in/out"
export PKG_CONFIG_PATH="${H2K_LIBDIR:-$PWD/target/lib}"
gcc -Wall -Wextra -Werror -fsanitize=address,undefined -fno-omit-frame-pointer -g -pthread \
  $(pkg-config --cflags hyper2kvm) tests/c/api_test.c $(pkg-config --libs hyper2kvm) -o "$out/api_test"
in="$PWD/$out/in"
qemu-img create -q -f vmdk "$in/disk.vmdk" 64M
head -c 256M /dev/urandom > "$in/big.raw"
cat > "$in/good.json" <<JSON
{"manifest_version": "1.0", "source": {"vm_name": "web01"},
 "disks": [{"id": "disk-0", "source_format": "vmdk", "bytes": 67108864, "local_path": "disk.vmdk"}],
 "pipeline": {"inspect": {"enabled": false}, "fix": {"enabled": false}},
 "output": {"directory": "manifest-out"}}
JSON
echo '{"manifest_version": "2.0", "disks": []}' > "$in/bad.json"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  LD_LIBRARY_PATH="${H2K_LIBDIR:-$PWD/target/lib}" "$out/api_test" "$in"
# What the KubeVirt target wrote through the C ABI validates against the published schemas.
.venv/bin/python tests/kubernetes/validate.py "$in/kv/disk.kubevirt.yaml" \
  "$in/manifest-out/web01.kubevirt.yaml"

# The Go client: cgo through pkg-config, running the same good manifest.
if [[ -f tests/go/main.go ]]; then
  rm -rf "$in/manifest-out"
  gobin="$PWD/$out/h2k-go"
  (cd tests/go && CGO_ENABLED=1 GOFLAGS=-mod=mod go build -o "$gobin" .)
  got=$(LD_LIBRARY_PATH="${H2K_LIBDIR:-$PWD/target/lib}" "$gobin" "$in/good.json")
  echo "$got"
  grep -qx "Output: $in/manifest-out/web01.qcow2" <<<"$got" || { echo "test-c: the Go client did not print the disk" >&2; exit 1; }
  [[ -f "$in/manifest-out/web01.qcow2" ]] || { echo "test-c: the Go client wrote no disk" >&2; exit 1; }
  if LD_LIBRARY_PATH="${H2K_LIBDIR:-$PWD/target/lib}" "$gobin" "$in/bad.json" 2> "$out/go.err"; then
    echo "test-c: the Go client accepted a bad manifest" >&2; exit 1
  fi
  grep -q 'invalid_input' "$out/go.err" || { echo "test-c: Go error: $(cat "$out/go.err")" >&2; exit 1; }
  echo "go client: manifest run, outputs printed, bad manifest refused"
fi
