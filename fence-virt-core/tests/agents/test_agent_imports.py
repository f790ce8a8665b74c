"""What a fencing run of ``fence_xvm`` or ``fence_virt`` imports (issue 6: Pacemaker starts
an agent per monitor).

Each case runs the real agent in a subprocess inside the test's namespace and lists
``sys.modules`` at its end, so a heavy import that creeps back onto the request path fails
here. No timing is asserted: ``bench/client_startup.py`` measures, and the table in
:mod:`fence_virt.agents` says what each module in :data:`HEAVY` cost when it was tried.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fence_virt.protocol import SERIAL_REQ_SIZE, Response, SerialResponse
from fence_virt.protocol.hostlist import encode_serial_hostlist
from fence_virt.testing import RECORDED_VMS
from fence_virt_testinfra import c_suite, c_tcp
from fence_virt_testinfra.netns import NetNS
from fence_virt_testinfra.tools import unavailable

pytestmark = pytest.mark.netns

#: never on an agent's path: each costs milliseconds per start, or is daemon-only
HEAVY = (
    "dataclasses",
    "typing",
    "secrets",
    "inspect",
    "pluggy",
    "stevedore",
    "click",
    "libvirt",
    # what the codec used to load; CPython's builtin _sha256 stands in for hashlib
    "hashlib",
    "hmac",
    "ipaddress",
)
#: proof that the run got as far as signing a request and opening sockets
REACHED = ("socket", "_sha256", "fence_virt.agents.multicast", "fence_virt.protocol.exchange")
#: what ``-o metadata`` loads on purpose since the agents take their constants and codes from
#: the codec (not copies): its constants and enums, so :mod:`enum` (measured at 9 ms there)
METADATA_REACHED = ("fence_virt.agents.text", "fence_virt.protocol.constants", "enum")
#: and what it still never loads: sockets, and the rest of the codec
METADATA_NEVER = (
    "socket",
    "fence_virt.agents.multicast",
    "fence_virt.protocol.auth",
    "fence_virt.protocol.fence_request",
    "fence_virt.protocol.hostlist",
)

#: fence_virt -T: the same, over its TCP transport instead of multicast
VIRT_REACHED = ("socket", "_sha256", "fence_virt.agents.stream", "fence_virt.protocol.exchange")
VIRT_NEVER = ("fence_virt.agents.multicast",)

#: fence_virt -D: the serial device and the serial codec, and nothing of the key, the
#: signing, the challenge/response or sockets (a guest's monitor runs this path)
SERIAL_REACHED = ("termios", "fcntl", "fence_virt.agents.line", "fence_virt.agents.device",
                  "fence_virt.protocol.serial")  # fmt: skip
SERIAL_NEVER = (
    "socket",
    "_sha256",
    "fence_virt.agents.session",
    "fence_virt.agents.stream",
    "fence_virt.agents.keys",
    "fence_virt.agents.multicast",
    "fence_virt.agents.connect",
    "fence_virt.agents.addresses",
    "fence_virt.protocol.auth",
    "fence_virt.protocol.exchange",
    "fence_virt.protocol.fence_request",
    "fence_virt.protocol.keyfile",
    "fence_virt.protocol.hostlist",
)
#: fence_virt -A: the same exchange over a TCP connection instead of the device
CHANNEL_REACHED = ("socket", "fence_virt.agents.line", "fence_virt.agents.connect",
                   "fence_virt.protocol.serial")  # fmt: skip
_CHANNEL_NEEDS = ("socket", "fence_virt.agents.connect", "fence_virt.agents.addresses")
CHANNEL_NEVER = (
    *(name for name in SERIAL_NEVER if name not in _CHANNEL_NEEDS),
    "termios",
    "fence_virt.agents.device",
)

# the agent as its console script runs it, then its modules on stderr (it writes none there)
AGENT = (
    "import sys\n"
    "sys.argv[0] = {program!r}\n"
    "from fence_virt.agents.{module} import main\n"
    "status = main()\n"
    "sys.stderr.write(' '.join(sorted(sys.modules)))\n"
    "sys.exit(status)\n"
)
PORT = 1251
TCP_PORT = 1253


@pytest.fixture(scope="module")
def c_daemon(ns: NetNS, key: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    if not c_suite.have_c_suite():
        unavailable("the C fence-virt suite is not installed")
    work = tmp_path_factory.mktemp("daemon")
    uri = c_suite.write_test_node(work / "node.xml")
    setup = c_suite.MulticastSetup(key_file=key, uri=uri, port=PORT)
    with c_suite.c_fence_virtd(ns, work, setup):
        yield


@pytest.fixture(scope="module")
def c_tcp_daemon(ns: NetNS, key: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    if not c_tcp.have_c_fence_virt():
        unavailable("the C fence-virt suite is not installed")
    work = tmp_path_factory.mktemp("tcp-daemon")
    uri = c_suite.write_test_node(work / "node.xml")
    with c_tcp.c_fence_virtd_tcp(ns, work, c_tcp.TcpSetup(key_file=key, uri=uri, port=TCP_PORT)):
        yield


def run_agent(
    ns: NetNS, *argv: str, module: str = "xvm", stdin: bytes | None = None
) -> tuple[subprocess.CompletedProcess[bytes], set[str]]:
    program = {"xvm": "fence_xvm", "virt": "fence_virt"}[module]
    script = AGENT.format(program=program, module=module)
    result = c_suite.run_in(ns, [sys.executable, "-c", script, *argv], stdin)
    return result, set(result.stderr.decode().split())


def check_modules(modules: set[str], reached: tuple[str, ...] = REACHED) -> None:
    assert set(reached) <= modules
    assert sorted(modules.intersection(HEAVY)) == []


def test_metadata_loads_the_codec_constants_but_no_sockets(ns: NetNS) -> None:
    result, modules = run_agent(ns, "-o", "metadata")
    assert result.returncode == 0
    assert result.stdout.startswith(b'<?xml version="1.0" ?>\n<resource-agent name="fence_xvm"')
    check_modules(modules, METADATA_REACHED)
    assert sorted(modules.intersection(METADATA_NEVER)) == []


def test_a_status_request_that_times_out(ns: NetNS, key: Path) -> None:
    """Everything up to the sockets: parse, key, sign, send, wait (no host answers)."""
    result, modules = run_agent(
        ns, "-k", str(key), "-p", str(PORT + 1), "-o", "status", "-H", "vm1", "-t", "1"
    )
    assert result.returncode == 1
    assert result.stdout.startswith(b"Timed out waiting for response\n")
    check_modules(modules)


@pytest.mark.c_suite
@pytest.mark.usefixtures("c_daemon")
@pytest.mark.parametrize(
    ("operation", "status", "first_line"),
    [
        ("status", 0, b"Status: ON"),
        ("list", 0, b"vm1" + b" " * 30 + b"11111111-1111-1111-1111-111111111111 on"),
    ],
    ids=["status", "list"],
)
def test_a_request_the_c_daemon_answers(
    ns: NetNS, key: Path, operation: str, status: int, first_line: bytes
) -> None:
    """The whole path, challenge/response and result (or host list) included."""
    result, modules = run_agent(
        ns, "-k", str(key), "-p", str(PORT), "-o", operation, "-H", "vm1", "-t", "5"
    )
    assert (result.returncode, result.stdout.splitlines()[0]) == (status, first_line)
    check_modules(modules)


def test_fence_virt_metadata_like_pacemaker_loads_no_sockets(ns: NetNS) -> None:
    """stdin, no -T (an explicit vmchannel address instead: nothing may send here anyway)."""
    result, modules = run_agent(
        ns, module="virt", stdin=b"action=metadata\nchannel_address=127.0.0.1\n"
    )
    assert result.returncode == 0
    assert result.stdout.startswith(b'<?xml version="1.0" ?>\n<resource-agent name="fence_virt"')
    check_modules(modules, METADATA_REACHED)
    assert sorted(modules.intersection((*METADATA_NEVER, "fence_virt.agents.stream"))) == []


def test_fence_virt_tcp_status_nobody_answers(ns: NetNS, key: Path) -> None:
    """Everything up to the connect: parse, key, sign, connect (refused: nothing listens)."""
    result, modules = run_agent(
        ns, "-T", "127.0.0.1", "-p", str(TCP_PORT + 1), "-k", str(key), "-o", "status",
        "-H", "vm1", module="virt",
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stdout.startswith(b"Unable to connect to fence_virtd host 127.0.0.1:1254 ")
    check_modules(modules, ("socket", "_sha256", "fence_virt.agents.stream"))
    assert sorted(modules.intersection(VIRT_NEVER)) == []


@pytest.mark.c_suite
@pytest.mark.usefixtures("c_tcp_daemon")
@pytest.mark.parametrize(
    ("operation", "status", "first_line"),
    [
        ("status", 0, b"Status: ON"),
        ("list", 0, b"vm1" + b" " * 30 + b"11111111-1111-1111-1111-111111111111 on"),
    ],
    ids=["status", "list"],
)
def test_a_tcp_request_the_c_daemon_answers(
    ns: NetNS, key: Path, operation: str, status: int, first_line: bytes
) -> None:
    """fence_virt -T: the whole path, challenge/response and result (or host list) included."""
    result, modules = run_agent(
        ns, "-T", "127.0.0.1", "-p", str(TCP_PORT), "-k", str(key), "-o", operation, "-H",
        "vm1", "-t", "5", module="virt",
    )  # fmt: skip
    assert (result.returncode, result.stdout.splitlines()[0]) == (status, first_line)
    check_modules(modules, VIRT_REACHED)
    assert sorted(modules.intersection(VIRT_NEVER)) == []


def answer_one(fd: int, answer: bytes) -> threading.Thread:
    """On a thread: read one serial request from ``fd``, write ``answer``."""

    def serve() -> None:
        received = b""
        while len(received) < SERIAL_REQ_SIZE and select.select([fd], [], [], 10)[0]:
            received += os.read(fd, SERIAL_REQ_SIZE - len(received))
        os.write(fd, answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


STATUS_ON = SerialResponse(Response.SUCCESS).encode()
LISTED = encode_serial_hostlist(RECORDED_VMS, Response.SUCCESS)


@pytest.mark.parametrize(
    ("operation", "answer", "first_line", "more"),
    [
        ("status", STATUS_ON, b"Status: ON", ()),
        ("list", LISTED, b"vm1" + b" " * 30 + b"11111111-1111-1111-1111-111111111111 on",
         ("fence_virt.protocol.hostlist",)),
    ],
    ids=["status", "list"],
)  # fmt: skip
def test_fence_virt_serial_device(
    ns: NetNS, operation: str, answer: bytes, first_line: bytes, more: tuple[str, ...]
) -> None:
    """fence_virt -D on a PTY made here: no key, no hashing, no sockets; a list adds the
    host-list codec only."""
    master, slave = os.openpty()
    try:
        host = answer_one(master, answer)
        result, modules = run_agent(
            ns, "-D", os.ttyname(slave), "-o", operation, "-H", "vm1", "-t", "5", module="virt"
        )
        host.join(10)
    finally:
        os.close(master)
        os.close(slave)
    assert (result.returncode, result.stdout.splitlines()[0]) == (0, first_line)
    check_modules(modules, (*SERIAL_REACHED, *more))
    never = [name for name in SERIAL_NEVER if name not in more]
    assert sorted(modules.intersection(never)) == []


def test_fence_virt_vmchannel(ns: NetNS, netns_call: Callable[..., socket.socket]) -> None:
    """fence_virt -A 127.0.0.1 (inside the test's namespace): sockets, but no key, no
    hashing, no termios."""
    listener = netns_call(ns, lambda: socket.create_server(("127.0.0.1", 0)))

    def accept() -> None:
        conn, _ = listener.accept()
        with conn:
            answer_one(conn.fileno(), STATUS_ON).join(10)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        port = str(listener.getsockname()[1])
        result, modules = run_agent(
            ns, "-A", "127.0.0.1", "-p", port, "-o", "status", "-H", "vm1", module="virt"
        )
        thread.join(10)
    finally:
        listener.close()
    assert (result.returncode, result.stdout) == (0, b"Status: ON\n")
    check_modules(modules, CHANNEL_REACHED)
    assert sorted(modules.intersection(CHANNEL_NEVER)) == []
