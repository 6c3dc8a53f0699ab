#!/bin/sh
# Runs once inside the image build (the Containerfile's RUN), as root, on Debian 12:
# the runtime packages, the unprivileged user, its directories, and libguestfs's fixed
# appliance, so that a container starts converting at once and never needs supermin, root or
# a writable /usr.
set -eu
export DEBIAN_FRONTEND=noninteractive

# hyper2kvm links libguestfs0 and libvirt0; it runs qemu-img (qemu-utils), qemu-system-x86_64
# (the appliance, --boot-test), genisoimage (a Windows guest's driver ISO); ovmf boots UEFI
# guests in --boot-test; libguestfs-xfs reads XFS guests; linux-image-cloud-amd64 is the
# appliance's kernel; libguestfs-tools makes the fixed appliance.
apt-get update -q
apt-get install -y -q --no-install-recommends \
  qemu-utils qemu-system-x86 libguestfs0 libguestfs-tools libguestfs-xfs supermin \
  linux-image-cloud-amd64 libvirt0 genisoimage ovmf ca-certificates

# The user the image runs as (the RPM's hyper2kvm user, with a fixed id for Kubernetes'
# runAsUser and fsGroup).
groupadd --gid 10001 hyper2kvm
useradd --uid 10001 --gid 10001 --home-dir /var/lib/hyper2kvm --no-create-home \
  --shell /usr/sbin/nologin hyper2kvm
for d in /var/lib/hyper2kvm /var/lib/hyper2kvm/queue /var/lib/hyper2kvm/output \
  /var/cache/hyper2kvm /run/hyper2kvm; do
  install -d -o 10001 -g 10001 -m 0755 "$d"
done

# The fixed appliance: built by supermin and started once here (under TCG: a build may see no
# /dev/kvm, or one it cannot use), which also proves it boots. Its root is a 4 GiB sparse ext2
# image holding ~350 MiB: shrunk to its contents plus 256 MiB of room, so that the image layer
# does not carry 4 GiB.
appliance=/usr/lib/guestfs/appliance
mkdir -p /tmp/appliance-build
LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=force_tcg LIBGUESTFS_CACHEDIR=/tmp/appliance-build \
  libguestfs-make-fixed-appliance "$appliance"
e2fsck -fy "$appliance/root" >/dev/null || [ $? -le 1 ]
resize2fs -M "$appliance/root" >/dev/null 2>&1
blocks=$(dumpe2fs -h "$appliance/root" 2>/dev/null | sed -n 's/^Block count: *//p')
bsize=$(dumpe2fs -h "$appliance/root" 2>/dev/null | sed -n 's/^Block size: *//p')
truncate -s "$((blocks * bsize + 256 * 1024 * 1024))" "$appliance/root"
resize2fs "$appliance/root" >/dev/null 2>&1
chmod -R a+rX "$appliance"

rm -rf /tmp/appliance-build /var/lib/apt/lists/* /var/cache/apt/*.bin
