"""hyper2kvm: convert VMware, Hyper-V, cloud and VirtualBox guests to KVM.

Every call runs the Rust engine with the GIL released (other Python threads keep running);
Ctrl-C cancels a running call cleanly (temporary files removed) and raises
``KeyboardInterrupt``. A ``progress(stage, item, done, total)`` callable is called as work
proceeds; if it raises, the work stops and the exception propagates. Failures raise
:class:`hyper2kvm.Error` subclasses, one per error kind (a missing file is also a
``FileNotFoundError``, a denied one a ``PermissionError``).

>>> import hyper2kvm
>>> isinstance(hyper2kvm.__version__, str)
True
"""

from __future__ import annotations

import os
from typing import Callable, List, Optional, Union

from hyper2kvm import _hyper2kvm
from hyper2kvm._errors import (
    CancelledError,
    ChecksumError,
    Error,
    GuestInspectionError,
    InternalError,
    InvalidInputError,
    IoError,
    NotFoundError,
    OperationTimeoutError,
    PermissionDeniedError,
    ToolFailedError,
    UnsupportedError,
)
from hyper2kvm._hyper2kvm import __version__
from hyper2kvm._results import (
    ConvertResult,
    InspectResult,
    Manifest,
    ManifestPlan,
    ManifestResult,
    ProbeResult,
    Result,
)

PathArg = Union[str, "os.PathLike[str]"]
Progress = Callable[[str, str, int, int], object]


def probe(path: PathArg, *, cross_check: bool = True, verify_manifest: bool = True) -> ProbeResult:
    """Identifies a disk image, OVA, OVF or VMX from its content.

    ``cross_check`` asks qemu-img for a second opinion; ``verify_manifest`` checks an OVA's
    or OVF's ``.mf`` checksums.
    """
    return ProbeResult(
        _hyper2kvm.probe(path, cross_check=cross_check, verify_manifest=verify_manifest)
    )


def inspect(*paths: PathArg) -> List[InspectResult]:
    """Inspects the guest on each input, read-only (each input is one guest), in order."""
    if not paths:
        raise TypeError("inspect() needs at least one path")
    return [InspectResult(r) for r in _hyper2kvm.inspect([os.fspath(p) for p in paths])]


def convert(
    input: PathArg,
    output_dir: PathArg,
    *,
    format: str = "qcow2",
    compress: Optional[int] = None,
    fix: bool = True,
    progress: Optional[Progress] = None,
    target: str = "libvirt",
    namespace: Optional[str] = None,
    datavolume_source: str = "upload",
) -> ConvertResult:
    """Converts a disk image, OVA, OVF or VMX into ``output_dir`` as ``format`` (``qcow2`` or
    ``raw``), compressed at level ``compress`` (1-9, qcow2 only), inspecting and fixing the
    guest unless ``fix`` is false, with the libvirt domain written beside the disks.

    With ``target="kubevirt"`` it also writes ``NAME.kubevirt.yaml`` (a KubeVirt
    ``VirtualMachine`` and one CDI ``DataVolume`` per disk; :attr:`ConvertResult.kubevirt_yaml`)
    in ``namespace`` (none: kubectl's), the DataVolumes filled by ``datavolume_source``:
    ``"upload"`` or ``"pvc:NAMESPACE"``. Bad values raise ``ValueError``."""
    if compress is not None and not 1 <= compress <= 9:
        raise ValueError(f"compress must be 1-9 or None, not {compress!r}")
    return ConvertResult(
        _hyper2kvm.convert(
            input,
            output_dir,
            format,
            compress,
            fix,
            progress,
            target,
            namespace,
            datavolume_source,
        )
    )


def run_manifest(
    path: PathArg,
    *,
    dry_run: bool = False,
    progress: Optional[Progress] = None,
    target: str = "libvirt",
) -> Union[ManifestResult, ManifestPlan]:
    """Runs an Artifact Manifest v1.0 or a batch manifest through the pipeline (verify,
    inspect, fix, convert, validate, output), as ``hyper2kvm MANIFEST`` does. With
    ``dry_run`` it checks and plans only (a :class:`ManifestPlan`) and writes nothing.
    ``target`` (``libvirt`` or ``kubevirt``) applies to manifests without ``output.target``,
    as ``hyper2kvm run --target``."""
    doc = _hyper2kvm.run_manifest(path, dry_run, progress, target)
    return ManifestPlan(doc) if dry_run else ManifestResult(doc)


__all__ = [
    "__version__",
    "probe",
    "inspect",
    "convert",
    "run_manifest",
    "Manifest",
    "Result",
    "ProbeResult",
    "InspectResult",
    "ConvertResult",
    "ManifestResult",
    "ManifestPlan",
    "Error",
    "IoError",
    "NotFoundError",
    "PermissionDeniedError",
    "InvalidInputError",
    "UnsupportedError",
    "ChecksumError",
    "ToolFailedError",
    "GuestInspectionError",
    "CancelledError",
    "OperationTimeoutError",
    "InternalError",
]
