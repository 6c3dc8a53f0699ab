"""Exception hierarchy of hyper2kvm: one class per engine error kind."""

from __future__ import annotations

from typing import Optional


class Error(Exception):
    """Base class of every hyper2kvm error.

    ``kind`` is the engine's error kind (``"invalid_input"``, ``"not_found"``, ...) and
    ``path`` the file concerned, when known.
    """

    def __init__(self, message: str, kind: str = "internal", path: Optional[str] = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.path = path


class IoError(Error):
    """An I/O error other than a missing file or a denied permission."""


class NotFoundError(Error, FileNotFoundError):
    """A path that does not exist."""


class PermissionDeniedError(Error, PermissionError):
    """A path that may not be read or written."""


class InvalidInputError(Error, ValueError):
    """Malformed input: bad header, truncated file, unsafe path, bad XML."""


class UnsupportedError(Error):
    """Well-formed input that hyper2kvm does not handle."""


class ChecksumError(Error):
    """A checksum did not match."""


class ToolFailedError(Error):
    """An external tool such as qemu-img failed."""


class GuestInspectionError(Error):
    """Inspecting or changing the guest failed."""


class CancelledError(Error):
    """The operation was cancelled."""


class OperationTimeoutError(Error, TimeoutError):
    """The operation ran past its time limit."""


class InternalError(Error):
    """A bug in hyper2kvm."""
