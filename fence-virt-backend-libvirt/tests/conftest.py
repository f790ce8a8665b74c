"""Fixtures for the libvirt backend's tests.

The plugin is driven through a pluggy manager holding core's hookspecs, exactly as
fence_virtd calls it (keyword arguments, spec-checked signatures).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest

from fence_virt import Target, hookspecs
from fence_virt.config import parse_text
from fence_virt.protocol import Response
from fence_virt_backend_libvirt.plugin import LibvirtBackendPlugin

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


@pytest.fixture
def new_backend() -> Callable[[], Any]:
    """A fresh, not yet started plugin behind a pluggy manager: ``new_backend()`` -> hook."""
    return lambda: _hooks(LibvirtBackendPlugin())


@pytest.fixture
def node_uri(tmp_path: Path) -> str:
    """``test:///ABS/PATH`` of a node file with one running VM, ``vm1`` (in-process test
    driver; each connection reads the file afresh)."""
    path = tmp_path / "node.xml"
    path.write_text(NODE_XML)
    return f"test://{path}"


@pytest.fixture
def start_backend() -> Iterator[Callable[..., Any]]:
    """``start_backend(uri, ..., extra='reboot_timeout = "5";')`` -> the started plugin's
    ``pm.hook``; every backend started here is stopped after the test."""
    started: list[Any] = []

    def start(*uris: str, extra: str = "") -> Any:
        config = parse_text(config_text(*uris, extra=extra))
        hook = _hooks(LibvirtBackendPlugin())
        assert hook.fence_virt_backend_start(section=config.node("backends/libvirt"), config=config)
        started.append(hook)
        return hook

    yield start
    for hook in started:
        hook.fence_virt_backend_stop()


@pytest.fixture
def fence() -> Callable[..., Response]:
    """``fence(hook, "off", "vm1", by_uuid=False)`` -> the backend's Response."""

    def call(hook: Any, operation: str, domain: str, by_uuid: bool = False) -> Response:
        target = Target(domain=domain, by_uuid=by_uuid, requester="198.51.100.7", seqno=42)
        return Response(getattr(hook, f"fence_virt_backend_{operation}")(target=target))

    return call
