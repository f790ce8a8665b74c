"""One request followed through our fence_virtd's log by its id: the C ``fence_xvm`` fences a
VM through the multicast listener and the libvirt backend (test driver), all in a namespace,
and ``grep ID`` on the foreground log shows the listener's, the backend's and core's lines
of that request and of no other."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fence_virt_testinfra.c_suite import MulticastSetup, write_key, write_test_node
from fence_virt_testinfra.netns import NetNS
from fence_virt_testinfra.ours import our_fence_virtd

pytestmark = [pytest.mark.netns, pytest.mark.c_suite]

TAG = re.compile(r" \[req=([0-9a-f]{8})\]$")


def loggers_of(log: str, request_id: str) -> list[str]:
    """The logger of every line carrying ``request_id``, in order."""
    tag = f" [req={request_id}]"
    return [line.split()[2] for line in log.splitlines() if line.endswith(tag)]


def test_one_request_is_followed_by_its_id(
    ns: NetNS, tmp_path: Path, fence_xvm: Callable[..., Any]
) -> None:
    key = write_key(tmp_path / "fence_xvm.key")
    setup = MulticastSetup(key_file=key, uri=write_test_node(tmp_path / "node.xml"))
    with our_fence_virtd(ns, tmp_path / "daemon", setup, debug=1) as daemon:
        assert fence_xvm(ns, key, "-o", "status", "-H", "vm1").returncode == 0
        assert fence_xvm(ns, key, "-o", "off", "-H", "vm1").returncode == 0
        # core logs its summary before the answer goes out; the listener's last line after
        off_tag = TAG.search(next(ln for ln in daemon.log().splitlines() if " off vm1 " in ln))
        assert off_tag is not None
        daemon.wait_for_log(f"answered 0 [req={off_tag[1]}]")
        log = daemon.log()
    [status_line] = [line for line in log.splitlines() if " INFO: status vm1 " in line]
    [off_line] = [line for line in log.splitlines() if " INFO: off vm1 " in line]
    assert "listener multicast): success in " in off_line
    status_tag, off_tag = TAG.search(status_line), TAG.search(off_line)
    assert status_tag is not None, status_line
    assert off_tag is not None, off_line
    assert status_tag[1] != off_tag[1]
    # listener (accepted) -> backend in its worker thread -> core's summary -> listener (answer)
    assert loggers_of(log, off_tag[1]) == [
        "fence_virt.listener.multicast",
        "fence_virt_libvirt",
        "fence_virt_libvirt",
        "fence_virt.dispatch",
        "fence_virt.listener.multicast",
    ], log
    off_lines = [line for line in log.splitlines() if off_tag[1] in line]
    assert "accepted (UDP from" in off_lines[0]
    assert "destroying VM vm1" in off_lines[1]
    assert "answered 0" in off_lines[-1]
    # lines outside any request carry no tag
    [started] = [line for line in log.splitlines() if "fence_virtd started" in line]
    assert "[req=" not in started
