from os import PathLike
from typing import Any, Dict, Union

__version__: str

def probe(
    path: Union[str, PathLike[str]], *, cross_check: bool = ..., verify_manifest: bool = ...
) -> Dict[str, Any]: ...
