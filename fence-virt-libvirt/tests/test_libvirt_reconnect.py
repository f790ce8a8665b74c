"""Surviving a libvirtd restart: the Fencer reconnects on the next request, and while
libvirtd is down each request fails at once with the reason, instead of blocking (C loops
with 1 s sleeps until the connection comes back)."""

from __future__ import annotations

import logging

import libvirt
import pytest

from fence_virt.errors import BackendError
from fence_virt.protocol import Response

pytestmark = pytest.mark.timeout(120)


def domstate(uri):
    conn = libvirt.open(uri)
    try:
        return conn.lookupByName("test").state()[0]
    finally:
        conn.close()


@pytest.mark.parametrize("how", ["kill", "stop"])
def test_requests_fail_while_libvirtd_is_down_and_work_after_restart(
    private_libvirtd, start_fencer, fence, caplog, how
):
    caplog.set_level(logging.INFO, logger="fence_virt_libvirt")
    uri = private_libvirtd.test_uri
    fencer = start_fencer(uri)
    assert fence(fencer, "off", "test") is Response.SUCCESS
    assert domstate(uri) == libvirt.VIR_DOMAIN_SHUTOFF  # through libvirtd: the same state

    getattr(private_libvirtd, how)()
    with pytest.raises(BackendError, match=r"cannot connect to test\+unix:///default\?socket="):
        fence(fencer, "status", "test")
    assert "connection to test+unix:///default" in caplog.text  # "... lost (...); reconnecting"
    with pytest.raises(BackendError, match="cannot connect to"):
        fencer.hostlist()
    assert fencer.devstatus() is Response.FAIL

    private_libvirtd.start()
    assert fence(fencer, "status", "test") is Response.SUCCESS  # a new libvirtd: fresh state
    assert fence(fencer, "off", "test") is Response.SUCCESS
    assert domstate(uri) == libvirt.VIR_DOMAIN_SHUTOFF
    assert fencer.devstatus() is Response.SUCCESS
    assert "reconnected to test+unix:///default" in caplog.text


def test_restart_between_requests_is_invisible(private_libvirtd, start_fencer, fence):
    fencer = start_fencer(private_libvirtd.test_uri)
    assert fence(fencer, "status", "test") is Response.SUCCESS
    private_libvirtd.stop()
    private_libvirtd.start()
    assert fence(fencer, "off", "test") is Response.SUCCESS
    assert fence(fencer, "status", "test") is Response.OFF
    assert [s.domain for s in fencer.hostlist()] == ["test"]
