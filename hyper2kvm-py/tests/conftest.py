"""Shared fixtures: real images made by qemu-img, and libguestfs kept on TCG (this machine's
KVM cannot run guests)."""

import os
import subprocess

import pytest

os.environ.setdefault("LIBGUESTFS_BACKEND", "direct")
os.environ.setdefault("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg")


@pytest.fixture()
def vmdk(tmp_path):
    path = tmp_path / "disk.vmdk"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vmdk", str(path), "64M"], check=True)
    return path


@pytest.fixture()
def big_raw(tmp_path):
    """256 MiB of random data: compressing it takes seconds, long enough to interrupt."""
    path = tmp_path / "big.raw"
    with open(path, "wb") as f:
        for _ in range(256):
            f.write(os.urandom(1 << 20))
    return path


def write_manifest(dir, name="web01", disk="disk.vmdk", **extra):
    import json

    m = {
        "manifest_version": "1.0",
        "source": {"vm_name": name},
        "disks": [{"id": "disk-0", "source_format": "vmdk", "bytes": 64 << 20, "local_path": disk}],
        "pipeline": {"inspect": {"enabled": False}, "fix": {"enabled": False}},
    }
    m.update(extra)
    path = dir / f"{name}.json"
    path.write_text(json.dumps(m))
    return path
