#!/usr/bin/env bash
# Installs everything hyper2kvm's build, demo, tests and benchmark need on a fresh Debian 12
# machine: Debian packages, cargo tools (pinned), and a Python virtualenv (.venv) with the
# Python tools (pinned). Idempotent: only what is missing is installed, so `make` runs it
# every time at little cost.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages. qemu-utils: qemu-img/qemu-io; e2fsprogs, fdisk: the demo sample's disk;
# util-linux: setpriv (unreadable-file test); python3-venv: the .venv; time: peak RSS in bench.
APT_PACKAGES=(
  qemu-utils e2fsprogs fdisk util-linux coreutils xz-utils gzip tar
  gcc libc6-dev make pkg-config python3 python3-venv python3-pip patchelf time curl ca-certificates
)
SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO=sudo
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

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

# Python tools, pinned, in a virtualenv of the project's own.
PY_TOOLS=(maturin==1.9.6 pytest==8.4.2 mypy==1.18.2)
if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
fi
if ! .venv/bin/python -c 'import maturin, pytest, mypy' 2>/dev/null; then
  echo "setup: installing Python tools: ${PY_TOOLS[*]}"
  .venv/bin/pip install --quiet --disable-pip-version-check "${PY_TOOLS[@]}"
fi
