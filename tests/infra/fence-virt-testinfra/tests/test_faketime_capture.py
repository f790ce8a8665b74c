"""fence_virt_testinfra.faketime and .capture: a wrapped process's clocks follow the offset
while it runs; the sniffer sees every datagram a namespace sends on a bridge, which only a
socket bound to every protocol is shown."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from fence_virt_testinfra.capture import Sniffer, multicast_sender
from fence_virt_testinfra.faketime import FakeClock, require_libfaketime
from fence_virt_testinfra.netns import netns
from fence_virt_testinfra.tools import skip_unless_netns

#: prints wall and monotonic time, then again each time a line arrives on stdin
CLOCKS = (
    "import sys, time\n"
    "print(time.time(), time.monotonic(), flush=True)\n"
    "for _ in sys.stdin:\n"
    "    print(time.time(), time.monotonic(), flush=True)\n"
)


def test_a_wrapped_process_sees_the_offset_move_while_it_runs(tmp_path: Path) -> None:
    clock = FakeClock(tmp_path / "offset", require_libfaketime())
    process = subprocess.Popen(
        [*clock.wrapper(), sys.executable, "-c", CLOCKS],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        wall, monotonic = map(float, process.stdout.readline().split())
        assert abs(wall - time.time()) < 5
        clock.set(3600)
        process.stdin.write("\n")
        process.stdin.flush()
        later_wall, later_monotonic = map(float, process.stdout.readline().split())
    finally:
        process.stdin.close()
        process.wait(10)
    assert 3600 <= later_wall - wall < 3610
    assert 3600 <= later_monotonic - monotonic < 3610
    assert abs(time.time() - wall) < 10, "this process's clock is untouched"


def test_the_sniffer_sees_what_a_namespace_sends_on_a_bridge() -> None:
    skip_unless_netns()
    with netns("cap") as ns:
        ns.ip("link", "add", "br0", "type", "bridge")
        ns.ip("addr", "add", "198.51.100.1/24", "dev", "br0")
        ns.ip("link", "set", "br0", "up")
        sniffer = Sniffer(ns, "br0")
        sender = multicast_sender(ns, "198.51.100.1")
        try:
            sent = [bytes([n]) * 176 for n in range(3)] + [b"short"]
            for data in sent:
                sender.sendto(data, ("225.0.0.12", 1229))
            sender.sendto(b"\x09" * 176, ("225.0.0.12", 1230))
            assert sniffer.wait_for(3, timeout=5) == sent[:3]
            time.sleep(0.1)
            assert sniffer.collect() == [], "another port, or not a fence_req's size"
        finally:
            sniffer.close()
            sender.close()
