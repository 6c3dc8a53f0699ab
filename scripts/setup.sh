#!/usr/bin/env bash
# Installs everything hyper2kvm's build, demo, tests and benchmark need on a fresh Debian 12
# machine: Debian packages, cargo tools (pinned), and a Python virtualenv (.venv) with the
# Python tools (pinned). Idempotent: only what is missing is installed, so `make` runs it
# every time at little cost.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO=sudo
updated=""
apt_install() {
  local missing=() p
  for p in "$@"; do
    [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == "install ok installed" ]] || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  echo "setup: installing Debian packages: ${missing[*]}"
  [[ -n $updated ]] || { $SUDO apt-get update -qq; updated=1; }
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# qemu-system-x86 first and alone: on machines with a newer qemu-utils from backports it
# replaces it, and Debian 12's qemu-utils (7.2) is installed in the next step to match.
apt_install qemu-system-x86
# qemu-utils: qemu-img/qemu-io; libguestfs (+ a kernel in /boot for its appliance): guest
# access; debootstrap, grub-pc-bin, e2fsprogs, fdisk, dosfstools, mtools: building test guests
# and the demo sample without loop devices; ovmf: UEFI boots; libvirt-dev, libvirt-clients,
# libxml2-utils: libvirt integration, virt-xml-validate (which runs xmllint); util-linux: setpriv (unreadable-file test);
# python3-venv: the .venv; time: peak RSS in the benchmark; rpm, cpio, systemd: building and
# checking the RPMs and units (rpmbuild, rpm2cpio, systemd-analyze); golang-go: the cgo client;
# libwin-hivex-perl, libhivex-bin, ntfs-3g: the Windows stand-ins (hivexregedit, mkntfs);
# genisoimage: a virtio-win ISO for the tests; xfsprogs, btrfs-progs, libguestfs-xfs: the XFS
# and btrfs test guests (made on plain files, and read by the appliance); podman, runc: the
# container image (scripts/test-container.sh).
apt_install \
  qemu-utils libguestfs-tools libguestfs-dev linux-image-cloud-amd64 supermin \
  debootstrap grub-pc-bin e2fsprogs fdisk dosfstools mtools ovmf libvirt-dev libvirt-clients libxml2-utils \
  virt-v2v nbdkit libnbd-bin \
  util-linux coreutils xz-utils gzip tar bc openssl \
  gcc libc6-dev make pkg-config python3 python3-venv python3-pip patchelf time curl ca-certificates \
  rpm cpio systemd golang-go libwin-hivex-perl libhivex-bin ntfs-3g genisoimage \
  xfsprogs btrfs-progs libguestfs-xfs podman runc

# Rust toolchain (rustup) when the machine has none.
if ! command -v cargo >/dev/null; then
  [[ -x "$HOME/.cargo/bin/cargo" ]] || curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  export PATH="$HOME/.cargo/bin:$PATH"
fi
rustup component add clippy rustfmt >/dev/null 2>&1 || true

# Cargo tools, pinned.
CBINDGEN_VERSION=0.29.2
if [[ "$(cbindgen --version 2>/dev/null)" != "cbindgen $CBINDGEN_VERSION" ]]; then
  echo "setup: installing cbindgen $CBINDGEN_VERSION"
  cargo install --quiet --locked cbindgen --version "$CBINDGEN_VERSION"
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "setup: installing cargo-nextest"
  cargo install --quiet --locked cargo-nextest
fi

# Fuzzing: the nightly toolchain (cargo-fuzz needs its sanitizer flags) and cargo-fuzz, pinned.
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "setup: installing the nightly Rust toolchain (for cargo-fuzz)"
  rustup toolchain install nightly --profile minimal
fi
CARGO_FUZZ_VERSION=0.13.2
if [[ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
  echo "setup: installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install --quiet --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

# Python tools, pinned, in a virtualenv of the project's own.
# jsonschema, PyYAML: validating our Kubernetes and KubeVirt YAML against the published schemas.
PY_TOOLS=(maturin==1.9.6 pytest==8.4.2 mypy==1.18.2 aiosmtpd==1.4.6 jsonschema==4.23.0 PyYAML==6.0.2)
if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
fi
if ! .venv/bin/python -c 'import maturin, pytest, mypy, aiosmtpd, jsonschema, yaml' 2>/dev/null; then
  echo "setup: installing Python tools: ${PY_TOOLS[*]}"
  .venv/bin/pip install --quiet --disable-pip-version-check "${PY_TOOLS[@]}"
fi

# kubectl as Debian 12 ships it (kubernetes-client), unpacked into .tools/ so that the tests
# use that one version whatever else the machine has on its PATH.
KUBECTL=.tools/kubernetes-client/usr/bin/kubectl
if [[ ! -x $KUBECTL ]]; then
  echo "setup: unpacking Debian's kubernetes-client into .tools/"
  rm -rf .tools/kubernetes-client && mkdir -p .tools/kubernetes-client
  (cd .tools && apt-get download kubernetes-client >/dev/null 2>&1 ||
    { $SUDO apt-get update -qq && apt-get download kubernetes-client; })
  dpkg-deb -x .tools/kubernetes-client_*.deb .tools/kubernetes-client
  rm -f .tools/kubernetes-client_*.deb
fi
