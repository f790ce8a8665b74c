"""What a fencing run of ``fence_xvm`` imports (issue 6: Pacemaker starts it per monitor).

Each case runs the real agent in a subprocess inside the test's namespace and lists
``sys.modules`` at its end, so a heavy import that creeps back onto the request path fails
here. No timing is asserted: ``bench/client_startup.py`` measures, and the table in
:mod:`fence_virt.agents` says what each module in :data:`HEAVY` cost when it was tried.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fence_virt_testinfra import c_suite
from fence_virt_testinfra.netns import NetNS

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

# the agent as its console script runs it, then its modules on stderr (it writes none there)
AGENT = (
    "import sys\n"
    "sys.argv[0] = 'fence_xvm'\n"
    "from fence_virt.agents.xvm import main\n"
    "status = main()\n"
    "sys.stderr.write(' '.join(sorted(sys.modules)))\n"
    "sys.exit(status)\n"
)
PORT = 1251


@pytest.fixture(scope="module")
def c_daemon(ns: NetNS, key: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    if not c_suite.have_c_suite():
        pytest.skip("the C fence-virt suite is not installed")
    work = tmp_path_factory.mktemp("daemon")
    uri = c_suite.write_test_node(work / "node.xml")
    setup = c_suite.MulticastSetup(key_file=key, uri=uri, port=PORT)
    with c_suite.c_fence_virtd(ns, work, setup):
        yield


def run_agent(ns: NetNS, *argv: str) -> tuple[subprocess.CompletedProcess[bytes], set[str]]:
    result = c_suite.run_in(ns, [sys.executable, "-c", AGENT, *argv])
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
