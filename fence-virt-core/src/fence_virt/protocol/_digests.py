"""SHA-1/256/512 digests for the keyed hashes, from the cheapest module to import.

:mod:`hashlib` loads OpenSSL's ``_hashlib``: +3.7-5.1 ms of CPU time on every ``fence_xvm
-o status``, measured with ``bench/client_startup.py --interleave`` (the table in
:mod:`fence_virt.agents`; ``python -X importtime`` gives hashlib 2.8 ms). CPython's builtin
``_sha1``/``_sha256``/``_sha512`` (``_sha2`` from 3.12) compute the same digests. hashlib is
the fallback where they are missing, and the first choice once something else has loaded it
(as in the daemon): OpenSSL hashes a 4 KiB key about five times faster.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # not typing's: +9-11 ms per agent start, see fence_virt.agents
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

_BUILTIN_MODULES = {
    "sha1": ("_sha1",),
    "sha256": ("_sha256", "_sha2"),
    "sha512": ("_sha512", "_sha2"),
}
_constructors: dict[str, Callable[[bytes], Any]] = {}


def digest(name: str, data: bytes) -> bytes:
    """The ``name`` digest (``sha1``, ``sha256`` or ``sha512``) of ``data``."""
    constructor = _constructors.get(name)
    if constructor is None:
        constructor = _constructors[name] = _constructor(name)
    result: bytes = constructor(data).digest()
    return result


def _constructor(name: str) -> Callable[[bytes], Any]:
    loaded = sys.modules.get("hashlib")
    if loaded is not None:
        return getattr(loaded, name)  # type: ignore[no-any-return]
    for module in _BUILTIN_MODULES[name]:
        try:
            found: Callable[[bytes], Any] = getattr(__import__(module), name)
        except (ImportError, AttributeError):
            continue
        return found
    import hashlib  # noqa: PLC0415

    return getattr(hashlib, name)  # type: ignore[no-any-return]
