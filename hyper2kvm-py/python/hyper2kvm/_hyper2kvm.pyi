# The compiled extension module; the typed public API is in hyper2kvm/__init__.py.
from os import PathLike
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

__all__ = [
    "__version__",
    "probe",
    "inspect",
    "convert",
    "load_manifest",
    "run_manifest",
    "error_classes",
]

__version__: str

_Path = Union[str, PathLike[str]]

def probe(path: _Path, *, cross_check: bool = ..., verify_manifest: bool = ...) -> Dict[str, Any]: ...
def inspect(paths: List[_Path]) -> List[Dict[str, Any]]: ...
def convert(
    input: _Path,
    output_dir: _Path,
    format: str,
    compress: Optional[int],
    fix: bool,
    progress: Optional[Callable[[str, str, int, int], object]],
    target: str,
    namespace: Optional[str],
    datavolume_source: str,
) -> Dict[str, Any]: ...
def load_manifest(path: _Path) -> Dict[str, Any]: ...
def error_classes() -> List[Tuple[str, str, int]]: ...
def run_manifest(
    path: _Path,
    dry_run: bool,
    progress: Optional[Callable[[str, str, int, int], object]],
    target: str,
) -> Dict[str, Any]: ...
