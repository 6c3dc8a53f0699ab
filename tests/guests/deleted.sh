#!/usr/bin/env bash
# A test guest that has lived a while: the VMware-style guest of debian.sh (default: bios) after
# 1 GiB of data was written to its root file system and deleted again, as real guests are full
# of (logs rotated away, packages cleaned, a copied ISO removed). The freed blocks still hold the
# random data, so a copy that does not know which blocks the file system uses copies all of it.
#
#   tests/guests/deleted.sh [BASE_VARIANT]   prints the path of the cached VMDK (building it)
#
# The base guest's facts (mac, macs, kernel, expect) are copied beside it. Cached in
# $HYPER2KVM_GUEST_CACHE under a hash of this script and the base guest's own cache path.
set -euo pipefail
base_variant=${1:-bios}
here=$(cd "$(dirname "$0")" && pwd)
base=$("$here/debian.sh" "$base_variant")
cache=${HYPER2KVM_GUEST_CACHE:-/var/tmp/hyper2kvm-guests}
key=$( (cat "$0"; echo "$base") | sha256sum | cut -c1-16)
dir=$cache/deleted-$base_variant-$key
vmdk=$dir/deleted-$base_variant.vmdk
exec 9> "$cache/.lock-deleted-$base_variant"
flock 9
if [[ -f $vmdk ]]; then
  echo "$vmdk"
  exit 0
fi
work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "deleted.sh: 1 GiB written and deleted on the $base_variant guest" >&2
qemu-img create -q -f qcow2 -b "$base" -F vmdk "$work/disk.qcow2"
head -c 1G /dev/urandom > "$work/junk"
LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=force_tcg guestfish -a "$work/disk.qcow2" >&2 <<FISH
run
mount /dev/sda1 /
upload $work/junk /var/tmp/old-backup.tar
sync
rm /var/tmp/old-backup.tar
sync
umount-all
FISH
rm -f "$work/junk"
mkdir -p "$dir.tmp"
qemu-img convert -q -O vmdk -o subformat=streamOptimized,adapter_type=lsilogic "$work/disk.qcow2" "$dir.tmp/deleted-$base_variant.vmdk"
for f in mac macs kernel expect; do cp "$(dirname "$base")/$f" "$dir.tmp/"; done
rm -rf "$dir" && mv "$dir.tmp" "$dir"
for old in "$cache"/deleted-"$base_variant"-*; do
  [[ $old == "$dir" ]] || rm -rf "$old"
done
echo "$vmdk"
