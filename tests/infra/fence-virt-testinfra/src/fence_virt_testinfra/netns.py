"""Network namespaces that a test creates, uses and always removes.

Network-safety rule: multicast clients (ours and the C ``fence_xvm``) send on every interface
they have, so every multicast test runs inside a namespace made here, holding only ``lo`` or
veths the test adds. Addresses for namespace hosts come from 198.51.100.0/24 (TEST-NET-2).
Clean-up kills the processes left inside *our* namespace (they can only be ours) and deletes
it, even when the test failed.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

__all__ = ["NetNS", "netns", "run"]

_counter = itertools.count(1)
#: prefix of every namespace tests create; lets a leak be traced back to us
PREFIX = "fvt"


def run(
    argv: Sequence[str], *, check: bool = True, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), check=check, capture_output=True, text=True, timeout=timeout)


class NetNS:
    """One namespace; ``argv(...)`` prefixes a command to run inside it."""

    def __init__(self, name: str) -> None:
        self.name = name

    def argv(self, *command: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *command]

    def run(
        self, *command: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return run(self.argv(*command), check=check, timeout=timeout)

    def ip(self, *args: str) -> None:
        run(["ip", "-n", self.name, *args])

    def pids(self) -> list[int]:
        out = run(["ip", "netns", "pids", self.name], check=False).stdout
        return [int(p) for p in out.split()]

    def add_veth(self, other: NetNS, mine: str, theirs: str) -> None:
        """A veth pair between this namespace and ``other``; both ends left down."""
        run(
            [
                "ip",
                "link",
                "add",
                mine,
                "netns",
                self.name,
                "type",
                "veth",
                "peer",
                "name",
                theirs,
                "netns",
                other.name,
            ]
        )

    def destroy(self) -> None:
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        run(["ip", "netns", "delete", self.name], check=False)


@contextmanager
def netns(tag: str = "t") -> Iterator[NetNS]:
    """A fresh namespace with ``lo`` up, deleted on exit."""
    name = f"{PREFIX}-{tag}-{os.getpid()}-{next(_counter)}"
    run(["ip", "netns", "add", name])
    ns = NetNS(name)
    try:
        ns.ip("link", "set", "lo", "up")
        yield ns
    finally:
        ns.destroy()
