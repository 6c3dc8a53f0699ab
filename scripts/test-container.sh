#!/usr/bin/env bash
# The container image (packaging/container), built and used the way a cluster would:
#  1. a Debian 12 base image made here (debootstrap --variant=minbase from the machine's Debian
#     mirror, imported into podman; no registry is reachable from this machine, so
#     docker.io/library/debian:bookworm-slim cannot be pulled), cached in /var/tmp;
#  2. packaging/container/build.sh builds the image on it with podman (every step of the
#     Containerfile, the fixed appliance included);
#  3. the image runs as uid 10001 with the restrictions docs/kubernetes.md asks of a pod
#     (read-only root, a tmpfs /tmp, no capabilities, no-new-privileges, no network, no
#     /dev/kvm: TCG) and converts the built-in sample (scripts/sample.sh) read from a
#     read-only volume into a writable one;
#  4. outside the container: qemu-img check, virt-xml-validate, and a bounded TCG boot of the
#     output on virtio until the guest prints its marker.
# podman on this machine (cgroups v1/hybrid, no CAP_SYS_RESOURCE) needs runc, the cgroupfs
# manager and no default ulimits: set here through CONTAINERS_CONF, not in /etc.
set -euo pipefail
cd "$(dirname "$0")/.."
H2K=target/release/hyper2kvm
cache=/var/tmp/hyper2kvm-container
work=target/container/test
mkdir -p "$cache" target/container
export CONTAINERS_CONF=$PWD/target/container/containers.conf
printf '[containers]\ndefault_ulimits = []\n' > "$CONTAINERS_CONF"
PODMAN="podman --runtime runc --cgroup-manager cgroupfs"
fail() { echo "test-container: FAILED — $*" >&2; exit 1; }

mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)\/\?$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
[[ -n $mirror ]] || mirror=http://deb.debian.org/debian
key=$(echo "bookworm minbase $mirror $(dpkg-query -W -f='${Version}' debootstrap)" | sha256sum | cut -c1-16)
base=$cache/debian-bookworm-$key.tar
if [[ ! -f $base ]]; then
  echo "== debootstrap bookworm (minbase) from $mirror"
  rm -rf "$cache/root.tmp"
  debootstrap --variant=minbase bookworm "$cache/root.tmp" "$mirror" > "$cache/debootstrap.log" 2>&1 ||
    { tail -20 "$cache/debootstrap.log"; fail "debootstrap"; }
  tar -C "$cache/root.tmp" --numeric-owner -cf "$base.tmp" . && mv "$base.tmp" "$base"
  rm -rf "$cache/root.tmp"
fi
$PODMAN import -q "$base" localhost/hyper2kvm-base:bookworm > /dev/null

echo "== building the image (packaging/container/build.sh)"
tag=localhost/hyper2kvm:test
PODMAN=$PODMAN BUILD_FLAGS="--network host" \
  packaging/container/build.sh --base localhost/hyper2kvm-base:bookworm --tag "$tag" \
  > target/container/build.log 2>&1 || { tail -30 target/container/build.log; fail "image build"; }

user=$($PODMAN image inspect "$tag" --format '{{.Config.User}}')
entry=$($PODMAN image inspect "$tag" --format '{{json .Config.Entrypoint}}')
[[ $user == 10001:10001 ]] || fail "image user is '$user', not 10001:10001"
[[ $entry == '["/usr/bin/hyper2kvm"]' ]] || fail "image entrypoint is $entry"
inside=$($PODMAN run --rm "$tag" --version)
[[ $inside == "$("$H2K" --version)" ]] || fail "the image's hyper2kvm says '$inside'"
[[ $($PODMAN run --rm --entrypoint /usr/bin/id "$tag" -u) == 10001 ]] || fail "not running as 10001"

echo "== converting the built-in sample inside the container"
rm -rf "$work" && mkdir -p "$work/out"
scripts/sample.sh "$work/in" > /dev/null
chown 10001:10001 "$work/out"
$PODMAN run --rm --read-only --tmpfs /tmp:rw,size=2g --cap-drop ALL \
  --security-opt no-new-privileges --network none \
  -v "$PWD/$work/in:/in:ro" -v "$PWD/$work/out:/out" \
  "$tag" convert /in/web01.ova -o /out > "$work/convert.out" 2> "$work/convert.err" ||
  { tail -20 "$work/convert.err"; fail "hyper2kvm convert inside the container"; }
grep -qx 'Output: /out/web01.qcow2' "$work/convert.out" || fail "no Output line for the disk"
grep -qx 'Output: /out/web01.xml' "$work/convert.out" || fail "no Output line for the domain"
grep -q 'change: initramfs' "$work/convert.err" || fail "the guest was not fixed (no initramfs change)"
[[ $(stat -c %u "$work/out/web01.qcow2") == 10001 ]] || fail "output not owned by 10001"

echo "== validating outside: qemu-img check, virt-xml-validate, a bounded boot (TCG)"
qemu-img check -q "$work/out/web01.qcow2"
virt-xml-validate "$work/out/web01.xml" domain > /dev/null
bench/boot.sh "$work/out/web01.qcow2" qcow2 "$work/in/mac" 300 || fail "the output did not boot"
echo "test-container: OK — the image converts the built-in sample, and the result boots"
