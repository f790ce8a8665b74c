"""Pacemaker fences a real QEMU guest through fence_xvm or fence_virt and fence_virtd
(issues 7 and 12).

One single-node cluster (corosync + Pacemaker in a sandbox: a network namespace with only
``lo`` and private tmpfs state) and one tiny QEMU guest serve the whole module. Each row of
``CHAINS`` pairs an agent with a daemon (ours or the C suite's) over one transport and
registers a device mapping cluster node ``guest1`` to the guest; the same tests then check
what Pacemaker reports (exit status, fencing history) against the guest's real state
(``virsh domstate``, its QEMU process). The C agent with the C daemon is the baseline that
proves the harness itself.

* ``xvm`` rows: ``stonith:fence_xvm`` (multicast, inside the sandbox) to fence_virtd's
  multicast listener, whose libvirt backend runs the guest on ``qemu:///system`` of the
  session's hand-started libvirtd.
* ``serial`` rows: ``stonith:fence_virt`` with ``serial_device`` = a socat PTY standing in
  for a guest's ttyS1: socat listens on the UNIX socket of a test-driver domain (the
  cluster node's VM, on the same libvirtd's ``test:///default``) as QEMU would; fence_virtd's
  serial listener finds it there and its libvirt backend fences the QEMU guest on
  ``qemu:///system`` -- the listener's URI and the backend's differ, as C allows. A static
  map lets that domain fence the guest; a second domain's line, outside the group, is the
  serial counterpart of the wrong key.

Our agents are installed as for production (``scripts/install-agents``, into a throwaway
directory: fixture ``installed``) and replace the C ones inside the sandbox only (an overlay
on ``/usr/sbin`` with links to that install), so Pacemaker's controller, as hacluster, runs
them for their metadata as on a real node.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from fence_virt_testinfra.c_suite import (
    C_FENCE_XVM,
    MulticastSetup,
    c_fence_virtd,
    have_c_suite,
    write_key,
)
from fence_virt_testinfra.channels import (
    C_FENCE_VIRT,
    SerialSetup,
    c_fence_virtd_serial,
    socat_pty,
)
from fence_virt_testinfra.libvirtd import Libvirtd
from fence_virt_testinfra.ours import (
    missing_daemon_plugins,
    our_fence_virtd,
    running_fence_virtd,
)
from fence_virt_testinfra.pacemaker import (
    PACEMAKER_TOOLS,
    Cluster,
    FenceDevice,
    FenceResult,
    FenceVirtDevice,
    FenceXvmDevice,
    running_cluster,
)
from fence_virt_testinfra.processes import Daemon, wait_until
from fence_virt_testinfra.production import ProductionInstall
from fence_virt_testinfra.qemu import QEMU_BINARY, QemuGuest, tiny_guest
from fence_virt_testinfra.sandbox import Sandbox
from fence_virt_testinfra.tools import skip_unless_installed, unavailable

pytestmark = [pytest.mark.netns, pytest.mark.qemu]

NODE = "guest1"
DEVICE = "fence-guest"

CHAINS = [
    pytest.param(("xvm", "ours", "ours"), id="our-agent-our-daemon"),
    pytest.param(("xvm", "c", "ours"), id="c-agent-our-daemon", marks=pytest.mark.c_suite),
    pytest.param(("xvm", "ours", "c"), id="our-agent-c-daemon", marks=pytest.mark.c_suite),
    pytest.param(("xvm", "c", "c"), id="c-agent-c-daemon", marks=pytest.mark.c_suite),
    pytest.param(("serial", "ours", "ours"), id="serial-our-agent-our-daemon"),
    pytest.param(
        ("serial", "c", "ours"), id="serial-c-agent-our-daemon", marks=pytest.mark.c_suite
    ),
    pytest.param(
        ("serial", "ours", "c"), id="serial-our-agent-c-daemon", marks=pytest.mark.c_suite
    ),
    pytest.param(("serial", "c", "c"), id="serial-c-agent-c-daemon", marks=pytest.mark.c_suite),
]
#: the program each kind of row runs in the C suite (our agent shadows it in the sandbox)
AGENTS = {"xvm": "fence_xvm", "serial": "fence_virt"}
C_AGENTS = {"xvm": C_FENCE_XVM, "serial": C_FENCE_VIRT}


@dataclass
class Chain:
    cluster: Cluster
    guest: QemuGuest
    device: FenceDevice
    daemon: Daemon
    agent: str
    name: str
    #: "xvm" or "serial"
    kind: str
    #: the device a request must fail on: a wrong key (xvm), a line outside the group (serial)
    refused: FenceDevice

    def logs(self) -> str:
        return f"--- {self.name} daemon:\n{self.daemon.log()[-3000:]}\n--- fencer:\n" + "\n".join(
            line for line in self.cluster.log().splitlines()[-60:] if "fenced" in line
        )


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    skip_unless_installed(*PACEMAKER_TOOLS)
    with running_cluster("pcmk") as running:
        yield running


@pytest.fixture(scope="module")
def guest(libvirtd: Libvirtd) -> Iterator[QemuGuest]:
    """A tiny QEMU guest on the session's private libvirtd (fixture ``libvirtd``)."""
    skip_unless_installed(QEMU_BINARY)
    name = f"fvt-pcmk-{os.getpid()}"
    uri, pid_dir = libvirtd.qemu_uri, libvirtd.qemu_pid_dir
    with tiny_guest(uri, name, pid_dir=pid_dir) as running:
        yield running


def _skip_missing_pieces(kind: str, agent: str, daemon: str) -> None:
    listener = "multicast" if kind == "xvm" else "serial"
    if daemon == "ours" and missing_daemon_plugins(listener):
        unavailable(f"our fence_virtd lacks {', '.join(missing_daemon_plugins(listener))}")
    if "c" in (agent, daemon) and not have_c_suite():
        unavailable("the C fence-virt suite (fence-virt, fence-virtd) is not installed")
    if kind == "serial":
        skip_unless_installed("socat")


def _start_daemon(
    kind: str, box: Sandbox, setup: MulticastSetup
) -> contextlib.AbstractContextManager[Daemon]:
    workdir = box.workdir / f"fence_virtd-{kind}-{setup.port}"
    if kind == "ours":
        return our_fence_virtd(box.ns, workdir, setup)
    return c_fence_virtd(box.ns, workdir, setup)


def _xvm_devices(
    stack: contextlib.ExitStack, daemon_kind: str, box: Sandbox, guest: QemuGuest, row: int
) -> tuple[Daemon, FenceXvmDevice, FenceXvmDevice]:
    """fence_virtd's multicast listener; the device, and the device with a wrong key."""
    # a port per row: a daemon of an earlier row can never answer for this one
    port = 1229 + row
    key = write_key(box.workdir / f"fence_xvm-{port}.key")
    setup = MulticastSetup(key_file=key, uri=guest.uri, port=port)
    daemon = stack.enter_context(_start_daemon(daemon_kind, box, setup))
    device = FenceXvmDevice(DEVICE, key_file=key, port=port, host_map={NODE: guest.name})
    wrong = write_key(box.workdir / f"wrong-{port}.key")
    # timeout 2: the agent gives up after one 2 s attempt
    return daemon, device, replace(device, key_file=wrong, timeout=2)


def _serial_devices(
    stack: contextlib.ExitStack,
    daemon_kind: str,
    box: Sandbox,
    guest: QemuGuest,
    libvirtd: Libvirtd,
) -> tuple[Daemon, FenceVirtDevice, FenceVirtDevice]:
    """fence_virtd's serial listener on two test-driver domains' sockets (socat PTYs), one
    of them in the static map's group with the guest; the device on each one's line."""
    # imported here: the lab needs libvirt-python, which only these rows use
    from fence_virt_testinfra.channel_lab import Lab

    sockets = Path(tempfile.mkdtemp(prefix="fvp", dir="/tmp"))  # short: socket paths
    stack.callback(shutil.rmtree, sockets, ignore_errors=True)
    lab = Lab(libvirtd, sockets)
    stack.callback(lab.close)
    member, outsider = lab.start("pcmk-node"), lab.start("pcmk-outsider")
    ttys = []
    for domain in (member, outsider):
        tty = sockets / f"{domain.name}.tty"
        log = box.workdir / f"socat-{domain.name}.log"
        stack.enter_context(socat_pty(domain.serial[0], tty, log))
        ttys.append(tty)
    setup = SerialSetup(
        uri=libvirtd.test_uri,
        path=sockets,
        backend_uri=guest.uri,
        groups=[("cluster", [member.uuid], [guest.name, guest.uuid])],
    )
    workdir = Path(tempfile.mkdtemp(prefix=f"fence_virtd-serial-{daemon_kind}-", dir=box.workdir))
    if daemon_kind == "ours":
        config = setup.write(workdir / "fence_virt.conf")
        daemon = stack.enter_context(running_fence_virtd(box.ns, workdir, config))
    else:
        setup.key_file = write_key(workdir / "unused.key")
        daemon = stack.enter_context(c_fence_virtd_serial(workdir, setup))
    for tty in ttys:
        # socat makes the PTY once the daemon has connected to the domain's socket
        wait_until(tty.exists, 30, f"fence_virtd to connect to the socket behind {tty}")
    device = FenceVirtDevice(DEVICE, host_map={NODE: guest.name}, serial_device=ttys[0])
    return daemon, device, replace(device, serial_device=ttys[1])


@pytest.fixture(scope="module", params=CHAINS)
def chain(request: pytest.FixtureRequest) -> Iterator[Chain]:
    kind, agent, daemon_kind = request.param
    _skip_missing_pieces(kind, agent, daemon_kind)
    # only now: a row that skips costs no cluster start
    cluster: Cluster = request.getfixturevalue("cluster")
    guest: QemuGuest = request.getfixturevalue("guest")
    box = cluster.box
    with contextlib.ExitStack() as stack:
        if kind == "xvm":
            row = [p.values[0] for p in CHAINS].index(request.param)
            daemon, device, refused = _xvm_devices(stack, daemon_kind, box, guest, row)
        else:
            libvirtd: Libvirtd = request.getfixturevalue("libvirtd")
            daemon, device, refused = _serial_devices(stack, daemon_kind, box, guest, libvirtd)
        stack.callback(box.remove_agents)
        if agent == "ours":
            installed: ProductionInstall = request.getfixturevalue("installed")
            box.install_agent(AGENTS[kind], installed.agent(AGENTS[kind]))
        cluster.add_device(device)
        stack.callback(cluster.remove_device, DEVICE)
        name = f"{kind}: {agent} agent, {daemon_kind} daemon"
        yield Chain(cluster, guest, device, daemon, agent, name, kind, refused)


def _ensure_state(guest: QemuGuest, state: str) -> None:
    if guest.state() != state:
        guest.virsh("start" if state == "running" else "destroy", guest.name)
    assert guest.state() == state


def _assert_success(chain: Chain, result: FenceResult, action: str) -> None:
    context = f"{result.output}\n{chain.logs()}"
    assert result.returncode == 0, context
    assert result.event is not None, f"no history entry for {result.tag}\n{context}"
    assert (result.event.action, result.event.target) == (action, NODE)
    assert result.event.status == "success", context
    assert result.event.delegate == "node1"


def test_device_lists_the_guest_through_the_agent(chain: Chain) -> None:
    targets = chain.cluster.stonith_admin("--list-targets", DEVICE)
    assert targets.returncode == 0, f"{targets.stderr}\n{chain.logs()}"
    assert chain.guest.name in targets.stdout.split()
    assert chain.guest.uuid in targets.stdout.split()
    capable = chain.cluster.stonith_admin("--list", NODE)
    assert capable.returncode == 0, capable.stderr
    assert DEVICE in capable.stdout.split()


def test_query_runs_the_agents_monitor(chain: Chain) -> None:
    """The fencer runs the agent's monitor (with a wrong key it fails: see below)."""
    result = chain.cluster.stonith_admin("--query", DEVICE)
    assert result.returncode == 0, f"{result.stdout}{result.stderr}\n{chain.logs()}"


def test_reboot_restarts_the_guest(chain: Chain) -> None:
    guest = chain.guest
    _ensure_state(guest, "running")
    pid, domid = guest.qemu_pid(), guest.virsh("domid", guest.name).stdout.strip()
    result = chain.cluster.fence("reboot", NODE)
    _assert_success(chain, result, "reboot")
    assert guest.state() == "running"
    # a new QEMU process and a new domain id: the guest really went down and came back
    assert guest.qemu_pid() not in (None, pid)
    assert guest.virsh("domid", guest.name).stdout.strip() != domid


def test_off_destroys_the_guest(chain: Chain) -> None:
    _ensure_state(chain.guest, "running")
    result = chain.cluster.fence("off", NODE)
    _assert_success(chain, result, "off")
    assert chain.guest.state() == "shut off"
    assert chain.guest.qemu_pid() is None


def test_unfence_starts_the_guest(chain: Chain) -> None:
    _ensure_state(chain.guest, "shut off")
    result = chain.cluster.fence("on", NODE)
    _assert_success(chain, result, "on")
    assert chain.guest.state() == "running"
    assert chain.guest.qemu_pid() is not None


def test_a_refused_request_fails_and_leaves_the_guest_alone(chain: Chain) -> None:
    """xvm: a key the daemon does not have; serial: the line of a domain outside the static
    map's group (the requester is the socket's domain: exit 3, "Permission denied")."""
    guest, cluster = chain.guest, chain.cluster
    _ensure_state(guest, "running")
    pid = guest.qemu_pid()
    cluster.update_device(chain.refused)
    try:
        query = cluster.stonith_admin("--query", DEVICE)
        result = cluster.fence("reboot", NODE, timeout=30)
    finally:
        cluster.restore_device(chain.device)
    context = f"{result.output}\n{chain.logs()}"
    # the monitor needs the key; over serial it has no permission check (C's rule), only
    # fencing is refused
    assert (query.returncode == 0) == (chain.kind == "serial"), context
    assert result.returncode != 0, context
    assert result.event is not None, context
    assert (result.event.action, result.event.status) == ("reboot", "failed")
    # the failure came from the agent itself, not from a missing device
    ran = re.search(
        rf"Operation 'reboot' \[(\d+)\] targeting {NODE} using {DEVICE} returned ([1-9]\d*) "
        rf"\| call \d+ from \S*\.{result.tag}\.",
        cluster.log(),
    )
    assert ran is not None, context
    said = f"{DEVICE}[{ran.group(1)}] [ "
    if chain.kind == "serial":
        assert ran.group(2) == "3", context
        assert f"{said}Permission denied ]" in cluster.log(), context
    else:
        # and from the intended one: only ours explains its time-out with a hint line
        assert (f"{said}Hint:" in cluster.log()) == (chain.agent == "ours"), context
    assert guest.state() == "running"
    assert guest.qemu_pid() == pid


def test_pacemaker_runs_the_intended_agent(chain: Chain, request: pytest.FixtureRequest) -> None:
    """Ours only inside the sandbox, through the overlay: a link to the production install
    on the system interpreter; the host keeps the C programs (``fence_xvm`` a symlink to
    ``fence_virt``)."""
    box, program = chain.cluster.box, C_AGENTS[chain.kind]
    if chain.agent == "ours":
        installed: ProductionInstall = request.getfixturevalue("installed")
        real = box.run("readlink", "-f", program).stdout.strip()
        assert real == str(installed.prefix / "bin" / AGENTS[chain.kind])
        assert box.run("head", "-1", real).stdout == f"#!{installed.prefix}/bin/python\n"
        assert os.path.realpath(installed.prefix / "bin" / "python").startswith("/usr/bin/")
    else:
        inside = box.run("sha256sum", program).stdout.split()[0]
        assert inside == hashlib.sha256(Path(program).read_bytes()).hexdigest()
        assert box.run("readlink", C_FENCE_XVM).stdout.strip() == "fence_virt"
    assert os.readlink(C_FENCE_XVM) == "fence_virt"
