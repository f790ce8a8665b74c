"""The shipped unit file under a real systemd.

A box booted by :func:`fence_virt_testinfra.systemd_box.booted_systemd` (systemd as PID 1 of
namespaces the test makes: the test machines' own PID 1 is not systemd) gets the unit as
``fence_virtd --systemd-unit`` prints it, every hardening directive included, and
``systemctl start``-s it. The drop-in the tests add changes no hardening: it only sets the
interpreter's ``LD_LIBRARY_PATH`` where the dev venv's Python needs one
(:func:`~fence_virt_testinfra.systemd_box.relocated_venv`), and, for the watchdog test, a
shorter ``WatchdogSec``/``RestartSec``.

The daemon serves the multicast listener on the box's ``lo`` (our fence_xvm runs in the
box's network namespace) and the libvirt backend through the session's hand-started
libvirtd, whose socket directory is bound at the box's ``/run/libvirt`` (so the default
``test+unix:///default`` reaches it), or the cpg backend through a corosync that the box's
systemd starts. What ProtectSystem=, PrivateTmp=, RestrictAddressFamilies=,
CapabilityBoundingSet= and the rest must leave it: its multicast socket, its pid file under
``/run``, libvirtd's and corosync's sockets, its replay state under ``/var/lib`` and the
notify socket.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from fence_virt.daemon.systemd import UNIT_NAME, render_unit
from fence_virt_testinfra.c_suite import MulticastSetup, write_key
from fence_virt_testinfra.corosync import corosync_conf
from fence_virt_testinfra.libvirtd import Libvirtd
from fence_virt_testinfra.ours import FENCE_XVM, missing_daemon_plugins
from fence_virt_testinfra.processes import wait_until
from fence_virt_testinfra.systemd_box import (
    BOX_PREFIX,
    SYSTEMD_BOX_TOOLS,
    Bind,
    SystemdBox,
    booted_systemd,
    relocated_venv,
)
from fence_virt_testinfra.tools import skip_unless_installed, skip_unless_netns, unavailable

pytestmark = pytest.mark.netns

KEY = "/etc/cluster/fence_xvm.key"
#: the running VM of libvirt's test:///default
VM = "test"
PID_FILE = "/run/fence_virtd.pid"
#: the multicast listener's replay memory, in the unit's StateDirectory=
STATE_FILE = "/var/lib/fence-virt/replay-multicast.state"
COROSYNC = "corosync.service"


@contextmanager
def unit_in_box(
    tmp_path: Path,
    libvirtd: Libvirtd,
    *,
    config: str,
    dropin: str = "",
    etc: dict[str, str | bytes] | None = None,
) -> Iterator[tuple[SystemdBox, Path]]:
    """A booted box with the shipped unit installed (not started), ``config`` as
    ``/etc/fence_virt.conf``; yields the box and the host's copy of the key."""
    skip_unless_netns()
    skip_unless_installed(*SYSTEMD_BOX_TOOLS)
    missing = missing_daemon_plugins()
    if missing:
        unavailable(f"our fence_virtd lacks {', '.join(missing)}")
    key = write_key(tmp_path / "fence_xvm.key")
    binds, env = relocated_venv(tmp_path / "venv")
    binds.append(Bind(libvirtd.socket_dir, "/run/libvirt"))
    service = "[Service]\n" + "".join(f"Environment={k}={v}\n" for k, v in env.items()) + dropin
    files: dict[str, str | bytes] = {
        "fence_virt.conf": config,
        KEY.removeprefix("/etc/"): key.read_bytes(),
        f"systemd/system/{UNIT_NAME}": render_unit(f"{BOX_PREFIX}/bin/fence_virtd"),
        f"systemd/system/{UNIT_NAME}.d/test.conf": service,
        **(etc or {}),
    }
    with booted_systemd(tmp_path / "box", files, binds) as box:
        try:
            yield box, key
        finally:
            # on failure pytest shows it: what the daemon and systemd said about the unit
            print(unit_journal(box, check=False)[-8000:])


def multicast_libvirt() -> str:
    return MulticastSetup(key_file=Path(KEY), uri="test+unix:///default").config_text()


def fence_xvm(box: SystemdBox, key: Path, *args: str) -> tuple[int, str]:
    """Our fence_xvm in the box's network namespace; (exit status, stdout + stderr)."""
    argv = box.net_argv(FENCE_XVM, "-k", str(key), "-t", "10", *args)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    return done.returncode, done.stdout + done.stderr


def unit_journal(box: SystemdBox, check: bool = True) -> str:
    """What systemd said about the unit, then what the daemon logged. By the daemon's tag
    (``-t``), not only ``-u``: journald may file an entry sent right after the exec under
    the context it cached for that PID before (``(ce_virtd)`` in ``init.scope``)."""
    about = box.journal("-u", UNIT_NAME, check=check)
    return about + "\n" + box.journal("-t", "fence_virtd", check=check)


def journal_with(box: SystemdBox, *texts: str, timeout: float = 10) -> str:
    """:func:`unit_journal` once it holds every one of ``texts`` (journald may lag behind
    what systemctl already reports)."""
    journal = ""

    def holds() -> bool:
        nonlocal journal
        journal = unit_journal(box)
        return all(text in journal for text in texts)

    try:
        wait_until(holds, timeout, f"{texts} in the journal", interval=0.2)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}:\n{journal[-4000:]}") from None
    return journal


def start(box: SystemdBox, *units: str) -> dict[str, str]:
    """``systemctl start`` (which returns once READY=1 came) and the unit's state after it."""
    done = box.systemctl("start", *units, check=False)
    assert done.returncode == 0, done.stderr
    return box.show(UNIT_NAME, "ActiveState", "SubState", "StatusText", "MainPID", "NRestarts")


def test_started_by_systemd_it_serves_through_libvirtd_and_stops_cleanly(
    tmp_path: Path, libvirtd: Libvirtd
) -> None:
    # debug = "1": the listener's and the backend's lines of a request reach the journal too
    config = multicast_libvirt().replace("fence_virtd {\n", 'fence_virtd {\n\tdebug = "1";\n', 1)
    with unit_in_box(tmp_path, libvirtd, config=config) as (box, key):
        state = start(box, UNIT_NAME)
        pid = state.pop("MainPID")
        assert state == {
            "ActiveState": "active",
            "SubState": "running",
            "StatusText": "serving 1 listener(s), backend libvirt",
            "NRestarts": "0",
        }
        # the shipped watchdog is armed (no drop-in changed it)
        assert box.show(UNIT_NAME, "WatchdogUSec") == {"WatchdogUSec": "30s"}
        # READY=1 came after the bind: the socket is ours the moment `systemctl start` returns
        sockets = box.run("ss", "-Hulpn", "sport = :1229").stdout
        assert f'"fence_virtd",pid={pid},' in sockets, sockets
        assert box.read(PID_FILE).strip() == pid
        assert fence_xvm(box, key, "-o", "status", "-H", VM) == (0, "Status: ON\n")
        follow_one_request_in_the_journal(box)
        # the replay memory reaches the disk (StateDirectory= makes it writable)
        wait_until(lambda: box.exists(STATE_FILE), 10, f"{STATE_FILE} in the box")
        box.systemctl("stop", UNIT_NAME)
        stopping = f"Got notification message from PID {pid} (STOPPING=1"
        exited = "Main process exited, code=exited, status=0/SUCCESS"
        journal = journal_with(box, stopping, exited, "fence_virtd shutting down")
    assert journal.index(stopping) < journal.index(exited)
    assert "Read-only file system" not in journal
    assert "Permission denied" not in journal


def journal_entries(box: SystemdBox, *matches: str) -> list[dict[str, str]]:
    """The journal entries of this boot matching ``FIELD=value`` ``matches``, as JSON."""
    text = box.journal(*matches, "-o", "json")
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def follow_one_request_in_the_journal(box: SystemdBox) -> None:
    """``journalctl REQUEST_ID=...`` shows the request from the listener to core's summary,
    whose fields say what was asked, by whom, through which listener and with what result."""

    def summaries() -> list[dict[str, str]]:
        return journal_entries(box, "OPERATION=status", f"TARGET={VM}")

    wait_until(lambda: bool(summaries()), 10, "the request's summary in the journal")
    (summary,) = summaries()
    assert summary["RESULT"] == "success"
    assert summary["LISTENER"] == "multicast"
    assert summary["REQUESTER"] == "127.0.0.1"
    assert float(summary["DURATION_MS"]) >= 0
    entries = journal_entries(box, f"REQUEST_ID={summary['REQUEST_ID']}")
    loggers = {entry["LOGGER"] for entry in entries}
    # a status changes nothing, so the backend says nothing at debug 1 (tests/test_request_log.py
    # follows an off through the backend's lines); the listener's and core's lines are here
    assert {"fence_virt.listener.multicast", "fence_virt.dispatch"} <= loggers, loggers
    assert len(entries) >= 3, entries
    assert all(entry["SYSLOG_IDENTIFIER"] == "fence_virtd" for entry in entries)


def test_the_watchdog_keeps_a_turning_loop_alive_and_restarts_a_frozen_one(
    tmp_path: Path, libvirtd: Libvirtd
) -> None:
    dropin = "WatchdogSec=3\nRestartSec=1\n"
    with unit_in_box(tmp_path, libvirtd, config=multicast_libvirt(), dropin=dropin) as (box, _):
        pid = start(box, UNIT_NAME)["MainPID"]
        assert box.show(UNIT_NAME, "WatchdogUSec") == {"WatchdogUSec": "3s"}
        pings = [box.show(UNIT_NAME, "WatchdogTimestampMonotonic")]
        time.sleep(3.5)
        pings.append(box.show(UNIT_NAME, "WatchdogTimestampMonotonic"))
        time.sleep(3.5)  # 7 s in all: more than twice WatchdogSec
        pings.append(box.show(UNIT_NAME, "WatchdogTimestampMonotonic"))
        alive = box.show(UNIT_NAME, "ActiveState", "MainPID", "NRestarts")
        assert alive == {"ActiveState": "active", "MainPID": pid, "NRestarts": "0"}
        stamps = [int(p["WatchdogTimestampMonotonic"]) for p in pings]
        assert stamps[0] < stamps[1] < stamps[2], stamps
        # a loop that stops turning: systemd aborts it and starts it again
        box.run("kill", "-STOP", pid)

        def restarted() -> bool:
            now = box.show(UNIT_NAME, "ActiveState", "MainPID", "NRestarts")
            return now["NRestarts"] == "1" and now["ActiveState"] == "active"

        wait_until(restarted, 15, "systemd to restart the frozen daemon", interval=0.2)
        assert box.show(UNIT_NAME, "MainPID")["MainPID"] != pid
        journal_with(box, "Watchdog timeout (limit 3s)!", "Failed with result 'watchdog'")


def test_the_cpg_backend_reaches_a_corosync_started_by_systemd(
    tmp_path: Path, libvirtd: Libvirtd
) -> None:
    skip_unless_installed("corosync")
    config = multicast_libvirt().replace('backend = "libvirt";', 'backend = "cpg";')
    config = config.replace("\tlibvirt {\n", '\tcpg {\n\t\trequest_timeout = "10";\n')
    # corosync's Debian unit and its state directory, as the package would leave them
    conf = corosync_conf("fvt-box", ["127.0.0.1"], Path("/var/lib/corosync"))
    etc: dict[str, str | bytes] = {"corosync/corosync.conf": conf}
    with unit_in_box(tmp_path, libvirtd, config=config, etc=etc) as (box, key):
        box.run("mkdir", "-p", "/var/lib/corosync")
        state = start(box, COROSYNC, UNIT_NAME)
        assert state["StatusText"] == "serving 1 listener(s), backend cpg", state
        assert fence_xvm(box, key, "-o", "status", "-H", VM) == (0, "Status: ON\n")
        journal = journal_with(box, "joined CPG group fence-agents", f"status {VM}: here")
    # the request went round the CPG group (sent, carried out here, answered)
    assert re.search(rf"request (\d+:\d+): status {VM} for 127\.0\.0\.1 .* sent to", journal)


def test_a_configuration_error_fails_the_unit_once_and_for_all(
    tmp_path: Path, libvirtd: Libvirtd
) -> None:
    """Exit 255 (the file's line in the journal) is not restarted: RestartPreventExitStatus."""
    broken = multicast_libvirt().replace('backend = "libvirt";', 'backend = "libvirt"', 1)
    with unit_in_box(tmp_path, libvirtd, config=broken) as (box, _):
        done = box.systemctl("start", UNIT_NAME, check=False)
        assert done.returncode != 0
        time.sleep(7)  # past RestartSec=5: a restart would have happened by now
        state = box.show(UNIT_NAME, "ActiveState", "Result", "NRestarts", "ExecMainStatus")
        assert state == {
            "ActiveState": "failed",
            "Result": "exit-code",
            "NRestarts": "0",
            "ExecMainStatus": "255",
        }
        journal_with(box, "/etc/fence_virt.conf:")
