"""Operations from many worker threads at once, as fence_virtd's pool calls them, including
the first requests after libvirtd restarted (one reconnect, shared by every thread)."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import pytest

from fence_virt.protocol import Response

THREADS = 16


def node_file(path, count):
    domains = "".join(
        f"<domain type='test'><name>vm{i:02d}</name>"
        f"<uuid>c0c0c0c0-0000-4000-8000-0000000000{i:02d}</uuid>"
        "<memory>65536</memory><vcpu>1</vcpu><os><type arch='i686'>hvm</type></os></domain>\n"
        for i in range(count)
    )
    path.write_text(f"<node><memory>8388608</memory>\n{domains}</node>\n")
    return f"test://{path}"


def test_concurrent_operations_on_different_vms(tmp_path, start_fencer, fence):
    fencer = start_fencer(node_file(tmp_path / "many.xml", THREADS))
    names = [f"vm{i:02d}" for i in range(THREADS)]

    def run(operation):
        with ThreadPoolExecutor(THREADS) as pool:
            return list(pool.map(lambda name: fence(fencer, operation, name), names))

    assert run("reboot") == [Response.SUCCESS] * THREADS
    assert run("off") == [Response.SUCCESS] * THREADS
    assert run("status") == [Response.OFF] * THREADS
    assert run("on") == [Response.SUCCESS] * THREADS
    states = {s.domain: s.state for s in fencer.hostlist()}
    assert states == dict.fromkeys(names, 1)


@pytest.mark.timeout(120)
def test_concurrent_requests_after_a_restart_share_one_reconnect(
    private_libvirtd, start_fencer, fence, caplog
):
    caplog.set_level(logging.INFO, logger="fence_virt_libvirt")
    fencer = start_fencer(private_libvirtd.test_uri)
    assert fence(fencer, "status", "test") is Response.SUCCESS
    private_libvirtd.stop()
    private_libvirtd.start()
    with ThreadPoolExecutor(THREADS) as pool:
        answers = list(pool.map(lambda _: fence(fencer, "status", "test"), range(THREADS)))
    assert answers == [Response.SUCCESS] * THREADS
    assert caplog.text.count("reconnected to") == 1


def test_a_name_and_a_uuid_of_one_vm_are_one_vm(tmp_path, start_fencer, fence):
    """Core serializes by the text a request names: ``reboot <uuid>`` and ``off <name>`` of
    one VM reach the fencer together. The off must wait for the reboot, else it sees the VM
    shut off half-way, answers success, and the reboot starts the VM again."""
    import threading

    from fence_virt import Target

    fencer = start_fencer(node_file(tmp_path / "one.xml", 1))
    answers: list[Response] = []
    by_uuid = Target(
        domain="c0c0c0c0-0000-4000-8000-000000000000", by_uuid=True, requester="t", seqno=1
    )
    with fencer._find(by_uuid, "reboot") as found:
        assert found is not None
        off = threading.Thread(target=lambda: answers.append(fence(fencer, "off", "vm00")))
        off.start()
        off.join(0.5)
        assert off.is_alive(), "off ran while another operation held the same VM"
        assert answers == []
    off.join(10)
    assert answers == [Response.SUCCESS]
    assert fence(fencer, "status", "vm00") is Response.OFF
    assert len(fencer._locks) == 0
