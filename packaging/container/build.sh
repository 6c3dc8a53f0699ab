#!/usr/bin/env bash
# Builds the hyper2kvm container image with podman (or buildah: BUILDER=buildah).
#   packaging/container/build.sh [--tag T] [--base IMAGE] [--binary PATH] [--virtio-win ISO|DIR]
# Stages a small build context in target/container/context (the Containerfile, setup-image.sh,
# the release binary, virtio-win/) so the checkout's target/ is never sent to the builder, then
# builds it. --base defaults to docker.io/library/debian:bookworm-slim; the binary to
# target/release/hyper2kvm (run `make build` first; it links Debian 12's libguestfs and
# libvirt, which is why the image is Debian 12 too). Extra builder flags: $BUILD_FLAGS.
set -euo pipefail
cd "$(dirname "$0")/../.."
tag=localhost/hyper2kvm:$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
base=docker.io/library/debian:bookworm-slim
binary=target/release/hyper2kvm
virtio=""
while (($#)); do
  case $1 in
    --tag) tag=$2; shift 2 ;;
    --base) base=$2; shift 2 ;;
    --binary) binary=$2; shift 2 ;;
    --virtio-win) virtio=$2; shift 2 ;;
    *) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -x $binary ]] || { echo "build.sh: $binary: no such executable (make build)" >&2; exit 2; }
ctx=target/container/context
rm -rf "$ctx" && mkdir -p "$ctx/virtio-win"
cp packaging/container/Containerfile packaging/container/setup-image.sh "$ctx/"
cp "$binary" "$ctx/hyper2kvm"
strip "$ctx/hyper2kvm" 2>/dev/null || true
if [[ -n $virtio ]]; then
  if [[ -d $virtio ]]; then cp -a "$virtio/." "$ctx/virtio-win/"
  elif [[ -f $virtio ]]; then cp "$virtio" "$ctx/virtio-win/virtio-win.iso"
  else echo "build.sh: $virtio: neither a virtio-win ISO nor a directory" >&2; exit 2; fi
fi
# shellcheck disable=SC2086
case ${BUILDER:-podman} in
  podman) ${PODMAN:-podman} build ${BUILD_FLAGS:-} --build-arg "BASE=$base" -t "$tag" -f "$ctx/Containerfile" "$ctx" ;;
  buildah) buildah bud ${BUILD_FLAGS:-} --build-arg "BASE=$base" -t "$tag" -f "$ctx/Containerfile" "$ctx" ;;
  *) echo "build.sh: BUILDER must be podman or buildah" >&2; exit 2 ;;
esac
echo "built $tag"
