"""VMs on libvirt's test driver for tests: domain XML with known UUIDs, node files, and the
in-process ``test:///default`` seen through a connection of the test's own.

``test:///default`` keeps its state in the process while any connection to it is open, so a
test that holds one (:func:`witnessed_domains`) sees what a backend in the same process did,
without asking that backend.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import libvirt

from fence_virt.testing import Observed

__all__ = ["UUIDS", "domain_xml", "node_xml", "vm_uuid", "witnessed_domains"]

UUIDS = {
    "vmA": "aaaaaaaa-0000-0000-0000-000000000001",
    "vmB": "bbbbbbbb-0000-0000-0000-000000000002",
    "vmC": "cccccccc-0000-0000-0000-000000000003",
    "vmM": "dddddddd-0000-0000-0000-000000000004",
}


def vm_uuid(name: str) -> str:
    """The UUID of VM ``name``: from :data:`UUIDS`, else derived from the name."""
    return UUIDS.get(name) or str(uuidlib.uuid5(uuidlib.NAMESPACE_DNS, f"{name}.fvt.invalid"))


def domain_xml(name: str) -> str:
    """A test-driver domain ``name`` with UUID :func:`vm_uuid` (for a node file or
    ``defineXML``)."""
    return (
        f"<domain type='test'><name>{name}</name><uuid>{vm_uuid(name)}</uuid>"
        "<memory>1048576</memory><vcpu>1</vcpu><os><type arch='i686'>hvm</type></os></domain>"
    )


def node_xml(*names: str) -> str:
    """A test-driver node file holding the running VMs ``names``."""
    domains = "".join(domain_xml(n) for n in names)
    return f"<node><memory>8388608</memory>{domains}</node>"


@contextmanager
def witnessed_domains(*names: str) -> Iterator[Callable[[str], Observed]]:
    """Start ``names`` on ``test:///default`` (which holds ``test`` already) and yield
    ``observe(vm)``: whether it runs, and its domain ID (a new one after each start), read
    through the test's own connection. libvirt's error printing is silenced; the connection
    is closed on exit."""
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    witness = libvirt.open("test:///default")
    try:
        for name in names:
            witness.defineXML(domain_xml(name)).create()

        def observe(vm: str) -> Observed:
            domain = witness.lookupByName(vm)
            return Observed(
                running=domain.state()[0] == libvirt.VIR_DOMAIN_RUNNING, boot=domain.ID()
            )

        yield observe
    finally:
        witness.close()
