#!/usr/bin/env bash
# Builds the C ABI test with warnings as errors and AddressSanitizer + UBSan, links it to
# libhyper2kvm.so through pkg-config, and runs it on an image made by qemu-img.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/c
mkdir -p "$out"
export PKG_CONFIG_PATH="$PWD/target/lib"
gcc -Wall -Wextra -Werror -fsanitize=address,undefined -fno-omit-frame-pointer -g \
  $(pkg-config --cflags hyper2kvm) tests/c/probe_test.c $(pkg-config --libs hyper2kvm) -o "$out/probe_test"
rm -f "$out/disk.vmdk"
qemu-img create -q -f vmdk "$out/disk.vmdk" 64M
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1 \
  LD_LIBRARY_PATH="$PWD/target/lib" "$out/probe_test" "$out/disk.vmdk"
