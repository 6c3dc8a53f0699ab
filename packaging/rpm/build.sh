#!/usr/bin/env bash
# Builds the hyper2kvm RPMs (hyper2kvm, hyper2kvm-devel, hyper2kvm-daemon) from this checkout:
# `cargo build --release`, then the binaries, header, units and config examples staged into a
# source tarball that packaging/rpm/hyper2kvm.spec installs.
#
#   packaging/rpm/build.sh [--version V] [--release R] [--clean] [--topdir DIR]
#
# --version  package version (default: the workspace version in Cargo.toml)
# --release  package release (default: 1)
# --clean    remove the rpmbuild tree first
# --topdir   the rpmbuild tree (default: target/rpm); the RPMs land in TOPDIR/RPMS/
#
# Needs rpmbuild (Fedora/RHEL: rpm-build; Debian: rpm). Build on the distribution you ship
# to: the binaries link that system's glibc, libguestfs and libvirt.
set -euo pipefail
cd "$(dirname "$0")/../.."

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
release=1
clean=""
topdir="$PWD/target/rpm"
while (($#)); do
  case "$1" in
    --version) version="$2"; shift 2 ;;
    --version=*) version="${1#*=}"; shift ;;
    --release) release="$2"; shift 2 ;;
    --release=*) release="${1#*=}"; shift ;;
    --clean) clean=1; shift ;;
    --topdir) topdir="$(realpath -m "$2")"; shift 2 ;;
    --topdir=*) topdir="$(realpath -m "${1#*=}")"; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ $version =~ ^[0-9A-Za-z._+~]+$ ]] || { echo "build.sh: bad --version: $version" >&2; exit 2; }
[[ $release =~ ^[0-9A-Za-z._+~]+$ ]] || { echo "build.sh: bad --release: $release" >&2; exit 2; }
command -v rpmbuild >/dev/null || { echo "build.sh: rpmbuild not found (install rpm-build, or rpm on Debian)" >&2; exit 1; }

[[ -n $clean ]] && rm -rf "$topdir"
cargo build --release --quiet -p hyper2kvm-daemon -p hyper2kvm-ffi

stage="$topdir/stage/hyper2kvm-$version"
rm -rf "$topdir/stage"
mkdir -p "$stage"/{bin,lib,include,systemd,config,man,completions} "$topdir"/{SOURCES,SPECS,BUILD,RPMS,SRPMS}
install -m 0755 target/release/hyper2kvm "$stage/bin/hyper2kvm"
# Manual pages and completions, generated from the command's own clap definitions.
target/release/hyper2kvm manpages "$stage/man"
for sh in bash zsh fish; do
  target/release/hyper2kvm completions "$sh" > "$stage/completions/hyper2kvm.$sh"
done
install -m 0755 target/release/libhyper2kvm.so "$stage/lib/libhyper2kvm.so.1"
install -m 0644 hyper2kvm-ffi/hyper2kvm.pc.in "$stage/lib/hyper2kvm.pc.in"
install -m 0644 include/hyper2kvm.h "$stage/include/hyper2kvm.h"
install -m 0644 packaging/systemd/* "$stage/systemd/"
install -m 0644 packaging/config/*.conf.example "$stage/config/"
install -m 0644 README.md "$stage/README.md"
install -m 0644 packaging/README.md "$stage/packaging-README.md"
tar -C "$topdir/stage" -czf "$topdir/SOURCES/hyper2kvm-$version.tar.gz" "hyper2kvm-$version"
cp packaging/rpm/hyper2kvm.spec "$topdir/SPECS/"

rpmbuild -bb --quiet \
  --define "_topdir $topdir" \
  --define "version $version" \
  --define "release $release" \
  "$topdir/SPECS/hyper2kvm.spec"
find "$topdir/RPMS" -name '*.rpm' -newer "$topdir/SOURCES/hyper2kvm-$version.tar.gz" | sort
