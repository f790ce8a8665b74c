"""The backend object the plugin builds, over the library's Fencer, on libvirt's in-process
test driver ``test:///default``: every method reaches the hypervisor, and methods outside
start/stop are a local error. What each operation does in every VM state is tested with the
library (fence-virt-libvirt/tests); "null" is answered by core, not by backends."""

from __future__ import annotations

import libvirt
import pytest

from fence_virt.errors import LocalError
from fence_virt.protocol import HostState, Response

TEST_UUID = "6695eb01-f6a4-8304-79aa-97f2502e193f"
SHUTOFF, RUNNING = libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_RUNNING


@pytest.fixture
def inspect():
    """A connection of our own to test:///default, opened first: while it is open the
    driver keeps one shared state, so it sees what the backend fences."""
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    conn = libvirt.open("test:///default")
    yield conn
    conn.close()


@pytest.fixture
def backend(start_backend, inspect):
    del inspect  # opened first, so the backend shares its state
    return start_backend("test:///default")


def state(conn):
    return conn.lookupByName("test").state()[0]


def test_every_hook_reaches_the_hypervisor(backend, inspect, fence):
    assert fence(backend, "status", "test") is Response.SUCCESS
    assert fence(backend, "off", "test") is Response.SUCCESS
    assert state(inspect) == SHUTOFF
    assert fence(backend, "status", TEST_UUID) is Response.OFF
    assert list(backend.hostlist("t")) == [HostState("test", TEST_UUID, SHUTOFF)]
    assert fence(backend, "on", "test") is Response.SUCCESS
    assert state(inspect) == RUNNING
    before = inspect.lookupByName("test").ID()
    assert fence(backend, "reboot", "test") is Response.SUCCESS
    assert inspect.lookupByName("test").ID() != before
    assert backend.devstatus() is Response.SUCCESS


def test_unknown_vm_fails_and_is_logged(backend, fence, caplog):
    assert fence(backend, "off", "nosuch") is Response.FAIL
    assert "off nosuch: no such VM on test:///default" in caplog.text


def test_describe_names_the_uris(new_backend):
    assert new_backend("test:///default").describe() == "libvirt test:///default"


def test_methods_before_start_are_a_local_error(new_backend, fence):
    with pytest.raises(LocalError):
        fence(new_backend("test:///default"), "status", "test")


def test_methods_after_stop_are_a_local_error(backend, fence):
    backend.stop()
    with pytest.raises(LocalError):
        fence(backend, "status", "test")
