"""Real corosync for tests: one node on loopback, or three nodes in namespaces on a bridge.

Each node is a :class:`~fence_virt_testinfra.sandbox.Sandbox` (network namespace + private
mount namespace) whose ``/run`` is a private tmpfs: corosync takes a lock file at the
compiled-in ``/var/run/corosync.pid``, so without it only one could run per machine
(recipes §5a/§5c). CPG clients reach their corosync through abstract UNIX sockets, which
belong to the network namespace, plus shared-memory files in ``/dev/shm``:

* :func:`corosync_node` keeps the host's ``/dev/shm``, so a thread of the test process that
  entered the node's *network* namespace (``NetnsLoop``) can be a CPG client;
* :func:`corosync_cluster` gives each node a private ``/dev/shm`` too (nothing is left behind
  when a node's corosync is killed); its clients run through ``node.argv(...)``.

Three nodes: a switch namespace holds a bridge; node N is 198.51.100.N/24 on its ``eth0``.
Every process is stopped by PID and every namespace deleted, even when a test fails.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from fence_virt_testinfra.netns import NetNS, netns
from fence_virt_testinfra.processes import Daemon, wait_until
from fence_virt_testinfra.sandbox import Sandbox

__all__ = [
    "COROSYNC_TOOLS",
    "CorosyncNode",
    "corosync_cluster",
    "corosync_conf",
    "corosync_node",
]

#: programs these fixtures need
COROSYNC_TOOLS = ("corosync", "corosync-quorumtool", "corosync-cpgtool", "nsenter", "unshare")
#: address of node N in a cluster: 198.51.100.N (TEST-NET-2)
_SUBNET = "198.51.100"

_TOTEM = """\
totem {{
\tversion: 2
\tcluster_name: {name}
\ttransport: knet
\tcrypto_cipher: none
\tcrypto_hash: none
\ttoken: {token}
}}
"""
_NODE = """\
\tnode {{
\t\tring0_addr: {address}
\t\tname: node{nodeid}
\t\tnodeid: {nodeid}
\t}}
"""
_REST = """\
quorum {{
\tprovider: corosync_votequorum
}}
system {{
\tstate_dir: {state}
}}
logging {{
\tto_stderr: yes
\tto_syslog: no
\ttimestamp: on
}}
"""


def corosync_conf(name: str, addresses: list[str], state: Path, token_ms: int = 1000) -> str:
    """corosync.conf text: nodes 1..N at ``addresses``; ``token_ms`` sets how fast a dead
    node is noticed (corosync's default 3000 ms makes the tests slow)."""
    nodes = "".join(
        _NODE.format(address=address, nodeid=index)
        for index, address in enumerate(addresses, start=1)
    )
    return (
        _TOTEM.format(name=name, token=token_ms)
        + f"nodelist {{\n{nodes}}}\n"
        + _REST.format(state=state)
    )


class CorosyncNode:
    """One node: its sandbox, its corosync, its id and address."""

    def __init__(self, box: Sandbox, nodeid: int, address: str) -> None:
        self.box = box
        self.nodeid = nodeid
        self.address = address
        self.corosync: Daemon | None = None
        self.conf = box.workdir / f"corosync-{nodeid}.conf"

    @property
    def ns(self) -> NetNS:
        return self.box.ns

    @property
    def workdir(self) -> Path:
        return self.box.workdir

    def argv(self, *command: str) -> list[str]:
        """``command`` run on this node (its network and mount namespaces)."""
        return self.box.argv(*command)

    def start(self) -> None:
        """Start corosync (again); return once it runs its IPC (cfgtool answers)."""
        self.corosync = self.box.start(
            f"corosync-{self.nodeid}", "corosync", "-f", "-c", str(self.conf)
        )
        wait_until(self._answers, 30, f"corosync of node {self.nodeid}", interval=0.05)

    def _answers(self) -> bool:
        assert self.corosync is not None
        if self.corosync.process.poll() is not None:
            raise RuntimeError(f"corosync exited:\n{self.corosync.log()}")
        return self.box.run("corosync-cfgtool", "-s", check=False).returncode == 0

    def kill(self) -> None:
        """SIGKILL corosync by PID (a host that dies)."""
        if self.corosync is not None and self.corosync.process.poll() is None:
            self.corosync.process.kill()
            self.corosync.process.wait(10)

    def quorum(self) -> str:
        return self.box.run("corosync-quorumtool", "-s", check=False).stdout

    def quorate_with(self, nodes: int) -> bool:
        out = self.quorum()
        quorate = re.search(r"^Quorate:\s+Yes$", out, re.MULTILINE) is not None
        count = re.search(r"^Nodes:\s+(\d+)$", out, re.MULTILINE)
        return quorate and count is not None and int(count[1]) == nodes

    def group_members(self, group: str) -> list[tuple[int, int]]:
        """``(nodeid, pid)`` of each process in CPG ``group`` (``corosync-cpgtool``)."""
        out = self.box.run("corosync-cpgtool", "-e", check=False).stdout
        members: list[tuple[int, int]] = []
        current = None
        for line in out.splitlines():
            if not line.startswith((" ", "\t")):
                current = line.split()[0] if line.split() else None
                continue
            fields = line.split()
            if current == group and len(fields) >= 2 and fields[0].isdigit():
                members.append((int(fields[1]), int(fields[0])))
        return members


@contextmanager
def _workdir(tag: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"fvt-{tag}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def corosync_node(tag: str = "cs1") -> Iterator[CorosyncNode]:
    """A single corosync node on 127.0.0.1 in its own namespace (node id 1), quorate."""
    with _workdir(tag) as workdir, netns(tag) as ns:
        box = Sandbox(ns, workdir)
        try:
            box.mount_tmpfs("/run")
            node = CorosyncNode(box, 1, "127.0.0.1")
            node.conf.write_text(corosync_conf("fvt1", ["127.0.0.1"], workdir))
            node.start()
            wait_until(lambda: node.quorate_with(1), 30, "corosync quorum", interval=0.1)
            yield node
        finally:
            box.close()


@contextmanager
def corosync_cluster(size: int = 3, tag: str = "csn") -> Iterator[list[CorosyncNode]]:
    """``size`` corosync nodes, 198.51.100.1..N on a bridge, all quorate together."""
    with contextlib.ExitStack() as stack:
        switch = stack.enter_context(netns(f"{tag}sw"))
        switch.ip("link", "add", "br0", "type", "bridge")
        switch.ip("link", "set", "br0", "up")
        addresses = [f"{_SUBNET}.{i}" for i in range(1, size + 1)]
        nodes = []
        for index, address in enumerate(addresses, start=1):
            workdir = stack.enter_context(_workdir(f"{tag}{index}"))
            ns = stack.enter_context(netns(f"{tag}{index}"))
            box = Sandbox(ns, workdir)
            stack.callback(box.close)
            box.mount_tmpfs("/run")
            box.mount_tmpfs("/dev/shm", "1777")
            port = f"{tag}p{index}"
            ns.add_veth(switch, "eth0", port)
            switch.ip("link", "set", port, "master", "br0")
            switch.ip("link", "set", port, "up")
            ns.ip("addr", "add", f"{address}/24", "dev", "eth0")
            ns.ip("link", "set", "eth0", "up")
            node = CorosyncNode(box, index, address)
            node.conf.write_text(corosync_conf(f"fvt{size}", addresses, workdir))
            nodes.append(node)
        for node in nodes:
            node.start()
        for node in nodes:
            wait_until(partial(node.quorate_with, size), 30, "corosync quorum", interval=0.1)
        yield nodes
