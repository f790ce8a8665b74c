"""Fixtures for the libvirt library's tests.

The fencing operations are driven exactly as a backend plugin drives them: a
:class:`~fence_virt_libvirt.Fencer` over one :class:`~fence_virt_libvirt.Hypervisor` per URI,
connected up front (a URI that does not open is retried on each request), called with a
:class:`fence_virt.Target`. libvirtd and QEMU come from the shared pytest fixtures
(``private_libvirtd``, ``libvirtd``, ``qemu_guest``), used by name only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from fence_virt import Target
from fence_virt.protocol import Response
from fence_virt_libvirt import Fencer, Hypervisor, HypervisorUnreachable, quiet_libvirt

T = TypeVar("T")
DATA = Path(__file__).parent / "data"
#: seconds, as the libvirt backend's default reboot_timeout
TIMEOUT = 30.0


@pytest.fixture(autouse=True)
def _quiet_libvirt() -> None:
    quiet_libvirt()


@pytest.fixture
def data_uri() -> Callable[[str], str]:
    """``test:///ABS/PATH`` for a node file in tests/data (in-process test driver)."""
    return lambda name: f"test://{DATA / name}"


@pytest.fixture
def start_fencer() -> Iterator[Callable[..., Fencer]]:
    """``start_fencer(uri, ..., timeout=30.0, **options)`` -> a connected :class:`Fencer`
    (``options``: its keyword arguments, e.g. ``qemu_pid_dirs``); every fencer started here is
    closed after the test."""
    started: list[Fencer] = []

    def start(*uris: str, timeout: float = TIMEOUT, **options: Any) -> Fencer:
        hypervisors = [Hypervisor(uri) for uri in uris]
        for hv in hypervisors:
            with contextlib.suppress(HypervisorUnreachable):
                hv.connect()
        fencer = Fencer(hypervisors, timeout, **options)
        started.append(fencer)
        return fencer

    yield start
    for fencer in started:
        fencer.close()


@pytest.fixture
def fence() -> Callable[..., Response]:
    """``fence(fencer, "off", "vm1", by_uuid=False)`` -> the Fencer's Response."""

    def call(fencer: Fencer, operation: str, domain: str, by_uuid: bool = False) -> Response:
        target = Target(domain=domain, by_uuid=by_uuid, requester="198.51.100.7", seqno=42)
        return Response(getattr(fencer, operation)(target))

    return call


@pytest.fixture
def run_async() -> Callable[[Callable[[], Coroutine[Any, Any, T]]], T]:
    """``run_async(scenario)`` -> ``asyncio.run(scenario())`` on a fresh loop in debug mode
    (which raises on asyncio calls from a wrong thread); any error the loop's exception
    handler sees (a failed callback or task) fails the test."""

    def run(scenario: Callable[[], Coroutine[Any, Any, T]]) -> T:
        errors: list[dict[str, Any]] = []

        async def main() -> T:
            asyncio.get_running_loop().set_exception_handler(lambda _loop, c: errors.append(c))
            return await scenario()

        result = asyncio.run(main(), debug=True)
        assert errors == []
        return result

    return run
