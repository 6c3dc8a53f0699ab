"""hyper2kvm: convert VMware, Hyper-V, cloud and VirtualBox guests to KVM.

>>> import hyper2kvm
>>> isinstance(hyper2kvm.__version__, str)
True
"""

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
from hyper2kvm._hyper2kvm import __version__, probe

__all__ = [
    "__version__",
    "probe",
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
