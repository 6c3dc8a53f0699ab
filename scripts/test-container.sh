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
#     output on virtio until the guest prints its marker;
#  5. a Windows stand-in (Server 2019 as a VMware export) converted inside with the virtio-win
#     ISO the image was built with, its drivers, agent and first-boot script read back;
#  6. the Deployment's daemon converting a queued manifest to a KubeVirt VM.
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

# The Windows input and the virtio-win ISO the image is built with: the Server 2019 stand-in as
# a streamOptimized VMDK and a virtio-win ISO, made by the Rust test support
# (tests/support/windows.rs; the stand-in is cached in /var/tmp like every test guest).
echo "== the Windows input and the virtio-win ISO"
win=$PWD/target/container/win
rm -rf "$win" && mkdir -p "$win/out" && chown 10001:10001 "$win/out"
H2K_EXPORT_DIR=$win cargo nextest run --release -p hyper2kvm-daemon --test windows_guest \
  --run-ignored only -E 'test(=export_a_windows_guest_and_a_virtio_win_iso_for_the_container_test)' \
  > target/container/export.log 2>&1 || { tail -20 target/container/export.log; fail "making the Windows input"; }

echo "== building the image (packaging/container/build.sh)"
tag=localhost/hyper2kvm:test
PODMAN=$PODMAN BUILD_FLAGS="--network host" \
  packaging/container/build.sh --base localhost/hyper2kvm-base:bookworm --tag "$tag" \
  --virtio-win "$win/virtio-win.iso" \
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

echo "== a Windows guest with the image's virtio-win (the ISO build.sh --virtio-win put in)"
# No VIRTIO_WIN and no --virtio-win: the image's /usr/share/virtio-win/virtio-win.iso must be
# found, read as uid 10001 and used.
$PODMAN run --rm --read-only --tmpfs /tmp:rw,size=2g --cap-drop ALL \
  --security-opt no-new-privileges --network none \
  -v "$win:/in:ro" -v "$win/out:/out" \
  "$tag" convert /in/win2019-disk1.vmdk -o /out --json > "$work/win.json" 2> "$work/win.err" ||
  { tail -20 "$work/win.err"; fail "converting the Windows guest inside the container"; }
grep -q '"success": *true\|"changes"' "$work/win.json" || fail "no report from the Windows conversion"
# On the host: libguestfs under TCG (this machine's /dev/kvm cannot run Linux) and bounded.
LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=force_tcg timeout 600 \
  guestfish --ro -a "$win/out/win2019-disk1.qcow2" -m /dev/sda1 > "$work/win.back" 2>&1 <<'GF' ||
cat /Windows/System32/drivers/viostor.sys
echo ==virtio
ls /Windows/Drivers/VirtIO
echo ==hyper2kvm
ls /hyper2kvm
GF
  { cat "$work/win.back"; fail "reading the converted Windows disk back"; }
grep -qx 'viostor 2k19 amd64 sys' "$work/win.back" || { cat "$work/win.back"; fail "no viostor.sys from the image's ISO"; }
for f in netkvm.inf netkvm.sys balloon.sys vioserial.sys qemu-ga-x86_64.msi firstboot.cmd; do
  grep -qx "$f" "$work/win.back" || { cat "$work/win.back"; fail "$f missing in the converted guest"; }
done
grep -q "<model type=['\"]virtio['\"]" "$win/out/win2019-disk1.xml" || fail "the Windows domain has no virtio devices"
virt-xml-validate "$win/out/win2019-disk1.xml" domain > /dev/null

echo "== the Deployment's daemon (packaging/kubernetes: its args, its ConfigMap) in the image"
# The pod as deployment.yaml makes it: the same args, the ConfigMap's file at /etc/hyper2kvm,
# the shared volume at /var/lib/hyper2kvm, emptyDirs (here a tmpfs and directories of the
# test's) for /tmp, the cache and the state; METRICS_LISTEN moved to a free loopback port (the environment overrides the file).
data=$PWD/$work/data
mkdir -p "$data/queue" "$data/output" "$data/exports" "$work/cache" "$work/state"
chown 10001:10001 "$work/cache" "$work/state"
tar -C "$data/exports" -xf "$work/in/web01.ova" web01-disk1.vmdk
mac=$(cat "$work/in/mac")
cat > "$data/queue/.web01.json.tmp" <<JSON
{"manifest_version": "1.0",
 "source": {"provider": "vsphere", "vm_id": "vm-101", "vm_name": "web01"},
 "vm": {"cpu": 2, "mem_gb": 2, "firmware": "bios", "os_hint": "linux"},
 "disks": [{"id": "disk-0", "source_format": "vmdk", "disk_type": "boot",
            "local_path": "/var/lib/hyper2kvm/exports/web01-disk1.vmdk",
            "bytes": $(stat -c %s "$data/exports/web01-disk1.vmdk")}],
 "nics": [{"id": "nic-0", "mac": "$mac", "network": "VM Network"}],
 "output": {"directory": "/var/lib/hyper2kvm/output"}}
JSON
mv "$data/queue/.web01.json.tmp" "$data/queue/web01.json"
chown -R 10001:10001 "$data"
mapfile -t args < <(.venv/bin/python -c '
import yaml
d = yaml.safe_load(open("packaging/kubernetes/deployment.yaml"))
print("\n".join(d["spec"]["template"]["spec"]["containers"][0]["args"]))')
port=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
$PODMAN rm -f hyper2kvm-daemon-test > /dev/null 2>&1 || true
$PODMAN run -d --name hyper2kvm-daemon-test --read-only --cap-drop ALL \
  --security-opt no-new-privileges --network host \
  --tmpfs /tmp:rw,size=2g -v "$PWD/$work/cache:/var/cache/hyper2kvm" \
  -v "$PWD/$work/state:/run/hyper2kvm" \
  -e LIBGUESTFS_BACKEND_SETTINGS=force_tcg -e "METRICS_LISTEN=127.0.0.1:$port" \
  -v "$PWD/packaging/kubernetes/hyper2kvm.conf:/etc/hyper2kvm/hyper2kvm.conf:ro" \
  -v "$data:/var/lib/hyper2kvm" "$tag" "${args[@]}" > /dev/null
trap '$PODMAN rm -f hyper2kvm-daemon-test > /dev/null 2>&1 || true' EXIT
for _ in $(seq 1 300); do
  [[ -e $data/output/web01.qcow2 || -e $data/output/web01.error ]] && break
  sleep 1
done
$PODMAN logs hyper2kvm-daemon-test > "$work/daemon.log" 2>&1 || true
[[ -e $data/output/web01.qcow2 ]] || { tail -20 "$work/daemon.log"; cat "$data/output/web01.error" 2>/dev/null; fail "the daemon did not convert the queued manifest"; }
health=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz")
[[ $health == 200 ]] || fail "/healthz answered $health"
grep -q '"level":"INFO"' "$work/daemon.log" || fail "the daemon did not log JSON (--log-format=json)"
qemu-img check -q "$data/output/web01.qcow2"
.venv/bin/python tests/kubernetes/validate.py "$data/output/web01.kubevirt.yaml" > "$work/kubevirt.out" 2>&1 ||
  { cat "$work/kubevirt.out"; fail "the daemon's KubeVirt YAML does not validate"; }
grep -q "macAddress: $mac" "$data/output/web01.kubevirt.yaml" || fail "the KubeVirt VM lacks the MAC $mac"
$PODMAN stop -t 90 hyper2kvm-daemon-test > /dev/null
code=$($PODMAN inspect hyper2kvm-daemon-test --format '{{.State.ExitCode}}')
[[ $code == 0 ]] || fail "the daemon exited $code on SIGTERM"
echo "test-container: the Deployment's daemon converted a queued manifest to a KubeVirt VM, /healthz 200"
echo "test-container: OK — the image converts the built-in sample, and the result boots"
