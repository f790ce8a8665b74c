"""Fixtures for the ovirt backend's tests: a fake engine on loopback, configs, backends.

The engine is :class:`fence_virt_testinfra.ovirt_engine.FakeEngine`, a test double (no oVirt
engine can run here; its docstring says what it models). Tests that need the daemon in a
network namespace start their own engine inside it (test_ovirt_daemon.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest

from fence_virt import Target, hookspecs
from fence_virt.config import ConfigSection, ConfigTree, parse_text
from fence_virt.protocol import Response
from fence_virt_backend_ovirt.plugin import OvirtBackend, OvirtBackendPlugin
from fence_virt_testinfra.ovirt_engine import FakeEngine, FakeVm
from fence_virt_testinfra.tls import Pki, throwaway_pki

USER = "fence@internal"
PASSWORD = "fence-secret"  # noqa: S105 - the fake engine's test account


def hooks() -> Any:
    """A fresh plugin behind a pluggy manager with core's hookspecs, as fence_virtd calls it."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(OvirtBackendPlugin(), name="ovirt")
    pm.check_pending()
    return pm.hook


def section_of(config: ConfigTree) -> ConfigSection:
    return ConfigSection("backends/ovirt", config.node("backends/ovirt"), config.source)


def password_file(directory: Path, password: str = PASSWORD) -> Path:
    path = directory / "ovirt.pass"
    path.write_text(password + "\n")
    path.chmod(0o600)
    return path


def block(**keys: object) -> str:
    """``backends { ovirt { KEY = "VALUE"; ... } }`` (``None`` values left out)."""
    lines = "".join(f'\t\t{k} = "{v}";\n' for k, v in keys.items() if v is not None)
    return f"backends {{\n\tovirt {{\n{lines}\t}}\n}}\n"


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return throwaway_pki(tmp_path / "pki", tag="engine")


@pytest.fixture
def engine(pki: Pki) -> Iterator[FakeEngine]:
    """A fake engine on 127.0.0.1 with vm1..vm3 (up) and vm4 (down) visible to USER."""
    fake = FakeEngine(pki, {USER: PASSWORD, "admin@internal": "admin-secret"})
    for name in ("vm1", "vm2", "vm3"):
        fake.add_vm(FakeVm(name, users={USER}))
    fake.add_vm(FakeVm("vm4", status="down", users={USER}))
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def config(engine: FakeEngine, pki: Pki, tmp_path: Path) -> Callable[..., str]:
    """``config(timeout=..., ...)``: a working block for ``engine``; keys given replace or
    add to the defaults (a value ``None`` removes a key)."""

    def text(**overrides: object) -> str:
        keys: dict[str, object] = {
            "url": engine.url,
            "username": USER,
            "password_file": password_file(tmp_path),
            "ca_file": pki.ca_file,
            "timeout": 2,
            "power_timeout": 5,
        }
        keys.update(overrides)
        return block(**keys)

    return text


@pytest.fixture
def start_backend(config: Callable[..., str]) -> Iterator[Callable[..., OvirtBackend]]:
    """``start_backend(**overrides)``: a started backend; stopped after the test."""
    started: list[OvirtBackend] = []

    def start(**overrides: object) -> OvirtBackend:
        tree = parse_text(config(**overrides))
        backend = hooks().fence_virt_backend_create(section=section_of(tree), config=tree)
        assert isinstance(backend, OvirtBackend)
        backend.start()
        started.append(backend)
        return backend

    yield start
    for backend in started:
        backend.stop()


@pytest.fixture
def backend(start_backend: Callable[..., OvirtBackend]) -> OvirtBackend:
    return start_backend()


def _fence(backend: OvirtBackend, operation: str, domain: str, by_uuid: bool = False) -> Response:
    target = Target(domain=domain, by_uuid=by_uuid, requester="198.51.100.7", seqno=7)
    try:
        return Response(getattr(backend, operation)(target))
    except Exception:  # noqa: BLE001 - the daemon's rule: a raising backend answers FAIL
        return Response.FAIL


def _failure(backend: OvirtBackend, operation: str, domain: str) -> str:
    target = Target(domain=domain, by_uuid=False, requester="198.51.100.7", seqno=7)
    with pytest.raises(Exception) as raised:  # noqa: PT011 - the message is what is checked
        getattr(backend, operation)(target)
    return str(raised.value)


@pytest.fixture
def fence() -> Callable[..., Response]:
    """``fence(backend, "off", "vm1", by_uuid=False)``: the answer, FAIL if it raised."""
    return _fence


@pytest.fixture
def failure() -> Callable[..., str]:
    """``failure(backend, "off", "vm1")``: the message of the error it raised (the test
    fails if it raised none)."""
    return _failure


@pytest.fixture
def plugin_hooks() -> Callable[[], Any]:
    """``plugin_hooks()``: a fresh plugin's ``pm.hook``."""
    return hooks


@pytest.fixture
def section() -> Callable[[str], tuple[ConfigSection, ConfigTree]]:
    """``section(text)``: the ovirt block of ``text`` (parsed as ``fv.conf``) and the tree."""

    def parse(text: str) -> tuple[ConfigSection, ConfigTree]:
        tree = parse_text(text, source="fv.conf")
        return section_of(tree), tree

    return parse
