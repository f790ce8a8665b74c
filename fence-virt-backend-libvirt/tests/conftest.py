"""Fixtures for the libvirt backend's tests.

The plugin is driven through a pluggy manager holding core's hookspecs, exactly as
fence_virtd calls it (keyword arguments, spec-checked signatures); the backend object it
builds is then called as core's dispatcher calls it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest

from fence_virt import Target, hookspecs
from fence_virt.config import ConfigSection, ConfigTree, parse_text
from fence_virt.protocol import Response
from fence_virt_backend_libvirt.plugin import LibvirtBackend, LibvirtBackendPlugin

NODE_XML = """<node>
  <memory>8388608</memory>
  <domain type='test'>
    <name>vm1</name><uuid>11111111-1111-1111-1111-111111111111</uuid>
    <memory>1048576</memory><vcpu>1</vcpu><os><type arch='i686'>hvm</type></os>
  </domain>
</node>
"""


def _hooks(plugin: LibvirtBackendPlugin) -> Any:
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(plugin, name="libvirt")
    pm.check_pending()
    return pm.hook


def config_text(*uris: str, extra: str = "") -> str:
    keys = "".join(f'uri = "{uri}";\n' for uri in uris)
    return f"backends {{\nlibvirt {{\n{keys}{extra}\n}}\n}}\n"


def section_of(config: ConfigTree) -> ConfigSection:
    """The block as the daemon hands it to the plugin."""
    return ConfigSection("backends/libvirt", config.node("backends/libvirt"), config.source)


@pytest.fixture
def plugin_hooks() -> Callable[[], Any]:
    """A fresh plugin behind a pluggy manager: ``plugin_hooks()`` -> its ``pm.hook``."""
    return lambda: _hooks(LibvirtBackendPlugin())


@pytest.fixture
def new_backend() -> Callable[..., LibvirtBackend]:
    """``new_backend(uri, ...)``: a backend object built by the plugin, not started."""

    def create(*uris: str, extra: str = "") -> LibvirtBackend:
        config = parse_text(config_text(*uris, extra=extra))
        backend = _hooks(LibvirtBackendPlugin()).fence_virt_backend_create(
            section=section_of(config), config=config
        )
        assert isinstance(backend, LibvirtBackend)
        return backend

    return create


@pytest.fixture
def node_uri(tmp_path: Path) -> str:
    """``test:///ABS/PATH`` of a node file with one running VM, ``vm1`` (in-process test
    driver; each connection reads the file afresh)."""
    path = tmp_path / "node.xml"
    path.write_text(NODE_XML)
    return f"test://{path}"


@pytest.fixture
def start_backend(
    new_backend: Callable[..., LibvirtBackend],
) -> Iterator[Callable[..., LibvirtBackend]]:
    """``start_backend(uri, ..., extra='reboot_timeout = "5";')`` -> a started backend
    object; every backend started here is stopped after the test."""
    started: list[LibvirtBackend] = []

    def start(*uris: str, extra: str = "") -> LibvirtBackend:
        backend = new_backend(*uris, extra=extra)
        asyncio.run(backend.start())  # async: it binds libvirt's event loop (keepalives)
        started.append(backend)
        return backend

    yield start
    for backend in started:
        backend.stop()


@pytest.fixture
def fence() -> Callable[..., Response]:
    """``fence(backend, "off", "vm1", by_uuid=False)`` -> the backend's Response."""

    def call(backend: Any, operation: str, domain: str, by_uuid: bool = False) -> Response:
        target = Target(domain=domain, by_uuid=by_uuid, requester="198.51.100.7", seqno=42)
        return Response(getattr(backend, operation)(target))

    return call
