"""Typed results of hyper2kvm calls: thin classes over the engine's JSON documents.

Each keeps the whole document (``to_dict()`` returns a copy; ``result["key"]`` reads it) and
offers the fields callers use most as typed properties.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Union


class Result:
    """Base of every result: the engine's JSON document with typed accessors."""

    def __init__(self, data: Dict[str, Any]) -> None:
        self._data = data

    def to_dict(self) -> Dict[str, Any]:
        """A deep copy of the whole document."""
        return copy.deepcopy(self._data)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._data == self._data  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._summary()})"

    def _summary(self) -> str:
        return ", ".join(f"{k}={self._data[k]!r}" for k in list(self._data)[:3])


class ProbeResult(Result):
    """What :func:`hyper2kvm.probe` found: a disk image or an appliance (OVA, OVF, VMX)."""

    @property
    def type(self) -> str:
        """``"disk"`` or ``"appliance"``."""
        return str(self._data["type"])

    @property
    def path(self) -> Path:
        return Path(self._data["path"])

    @property
    def format(self) -> Optional[str]:
        """The disk format (``vmdk``, ``qcow2``, ...), for a disk."""
        return self._data.get("format")

    @property
    def virtual_size(self) -> Optional[int]:
        """The guest-visible size in bytes, for a disk."""
        return self._data.get("virtual_size")


class InspectResult(Result):
    """The guest :func:`hyper2kvm.inspect` found on one input (``guest`` is None without an OS)."""

    @property
    def input(self) -> ProbeResult:
        return ProbeResult(self._data["input"])

    @property
    def guest(self) -> Optional[Dict[str, Any]]:
        return self._data.get("guest")

    @property
    def os(self) -> Optional[str]:
        """``linux``, ``windows``, ... or None."""
        g = self.guest
        return None if g is None else g.get("os")

    @property
    def distro(self) -> Optional[str]:
        g = self.guest
        return None if g is None else g.get("distro")

    @property
    def boot_verdict(self) -> Optional[Dict[str, Any]]:
        """Will the guest boot on KVM (virtio-blk) as it is: ``will_boot``, ``reason`` and
        every ``checks[]`` entry (Linux guests; None otherwise)."""
        return self._data.get("boot_verdict")


class ConvertResult(Result):
    """What :func:`hyper2kvm.convert` wrote and changed."""

    @property
    def outputs(self) -> List[Path]:
        """The disks written, boot disk first."""
        return [Path(o["path"]) for o in self._data["outputs"]]

    @property
    def domain_xml(self) -> Optional[Path]:
        """The libvirt domain written beside the disks."""
        d = self._data.get("domain")
        return None if d is None else Path(d["xml"])

    @property
    def kubevirt_yaml(self) -> Optional[Path]:
        """The KubeVirt objects written beside the disks (``target="kubevirt"``)."""
        d = self._data.get("domain")
        k = None if d is None else d.get("kubevirt")
        return None if k is None else Path(k)

    @property
    def changes(self) -> List[Dict[str, Any]]:
        """Every change made inside the guest."""
        return list(self._data["changes"])

    @property
    def boot_verdict(self) -> Optional[Dict[str, Any]]:
        """The boot-chain verifier's answer on the converted guest (Linux guests, fixes on)."""
        return self._data.get("boot_verdict")

    @property
    def warnings(self) -> List[str]:
        return list(self._data["warnings"])

    @property
    def duration_seconds(self) -> float:
        return float(self._data["duration_seconds"])


class ManifestResult(Result):
    """What :func:`hyper2kvm.run_manifest` did: the report of a VM or of a batch."""

    @property
    def success(self) -> bool:
        return bool(self._data["success"])

    @property
    def outputs(self) -> List[Path]:
        """Every file written (the paths ``hyper2kvm MANIFEST`` prints as ``Output:``)."""
        return [Path(p) for p in self._data["outputs"]]

    @property
    def kind(self) -> str:
        """``"vm"`` or ``"batch"``."""
        return str(self._data["result"]["kind"])

    @property
    def report(self) -> Dict[str, Any]:
        """The ``report.json`` (or ``batch-report.json``) document."""
        return copy.deepcopy(self._data["result"]["report"])


class ManifestPlan(Result):
    """What :func:`hyper2kvm.run_manifest` with ``dry_run=True`` would do; nothing written."""

    @property
    def outputs(self) -> List[Path]:
        """Every file that would be written, VM after VM."""
        return [Path(p) for vm in self._data["plan"]["vms"] for p in vm["plan"]["outputs"]]

    @property
    def planned_changes(self) -> List[Dict[str, Any]]:
        """The changes the fixes would make in the guests."""
        out: List[Dict[str, Any]] = []
        for vm in self._data["plan"]["vms"]:
            inspection = vm["plan"].get("inspection") or {}
            out.extend(inspection.get("planned_changes", []))
        return out

    @property
    def warnings(self) -> List[str]:
        return list(self._data["warnings"])


class Manifest(Result):
    """An Artifact Manifest v1.0 or a batch manifest, read and checked.

    >>> import hyper2kvm, tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> _ = open(os.path.join(d, "d.img"), "wb").truncate(1 << 20)
    >>> p = os.path.join(d, "m.json")
    >>> _ = open(p, "w").write('{"manifest_version": "1.0", "source": {"vm_name": "web01"},'
    ...     ' "disks": [{"id": "disk-0", "source_format": "raw", "bytes": 1048576, "local_path": "d.img"}]}')
    >>> m = hyper2kvm.Manifest.load(p)
    >>> (m.kind, m.vm_name, m.disks[0]["id"])
    ('vm', 'web01', 'disk-0')
    """

    @classmethod
    def load(cls, path: Union[str, "os.PathLike[str]"]) -> "Manifest":
        """Reads and checks ``path`` (JSON or YAML); every violation is in the one
        :class:`hyper2kvm.InvalidInputError`."""
        from hyper2kvm import _hyper2kvm

        return cls(_hyper2kvm.load_manifest(path))

    @property
    def kind(self) -> str:
        """``"vm"`` or ``"batch"``."""
        return str(self._data["kind"])

    @property
    def path(self) -> Path:
        return Path(self._data["path"])

    @property
    def vm_name(self) -> Optional[str]:
        """The name outputs are given (a VM manifest's)."""
        return self._data.get("vm_name")

    @property
    def disks(self) -> List[Dict[str, Any]]:
        """A VM manifest's disks, paths resolved."""
        if self.kind != "vm":
            return []
        return copy.deepcopy(self._data["manifest"]["disks"])

    @property
    def vms(self) -> List[Dict[str, Any]]:
        """A batch's VMs."""
        return copy.deepcopy(self._data.get("vms", []))

    @property
    def warnings(self) -> List[str]:
        """Unknown fields and the like."""
        return list(self._data["warnings"])
