"""The transport-free half of the dead-host rule: the administrator's ``fenced_check``."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fence_virt.hostfencing import FencedCheck
from fence_virt.locations import Locations, Placement


def _check(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "check"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return script


def test_without_a_command_no_host_is_ever_fenced():
    ok, why = asyncio.run(FencedCheck(None, 5).fenced(3, 100.0, "r1"))
    assert not ok
    assert why == "no fenced_check is configured"


def test_the_command_gets_host_and_left_at_and_a_success_is_remembered(tmp_path):
    args = tmp_path / "args"
    check = FencedCheck(_check(tmp_path, f'echo "$@" >> {args}; exit 0'), 5)
    assert asyncio.run(check.fenced(3, 1234.9, "r1"))[0]
    assert asyncio.run(check.fenced(3, 1234.9, "r2")) == (True, "fenced_check succeeded earlier")
    assert args.read_text() == "3 1234\n"
    check.forget(3)
    assert asyncio.run(check.fenced(3, 2000.0, "r3"))[0]
    assert args.read_text() == "3 1234\n3 2000\n"


def test_a_failing_or_hanging_or_missing_command_is_not_fenced(tmp_path):
    failing = FencedCheck(_check(tmp_path, "echo not yet; exit 1"), 5)
    ok, why = asyncio.run(failing.fenced(2, 10.0, "r"))
    assert not ok
    assert why.endswith("exit status 1: not yet")
    hanging = FencedCheck(_check(tmp_path, "exec sleep 30"), 0.3)
    ok, why = asyncio.run(hanging.fenced(2, 10.0, "r"))
    assert not ok
    assert why.endswith("no answer within 0.3 s")
    missing = FencedCheck(tmp_path / "nosuch", 5)
    ok, why = asyncio.run(missing.fenced(2, 10.0, "r"))
    assert not ok
    assert "cannot run it" in why


def test_a_vm_off_here_but_last_active_on_a_departed_host_is_found():
    locations = Locations(1)
    locations.membership([1, 2], 0.0)
    locations.report(2, "vm", "AAAA-1", 1, 1.0)
    assert locations.active_on_departed("aaaa-1") is None
    locations.membership([1], 5.0)
    locations.report(1, "vm", "aaaa-1", 5, 6.0)
    found = locations.active_on_departed("aaaa-1")
    assert found is not None
    assert (found.placement, found.owner, found.left_at) == (Placement.DEPARTED, 2, 5.0)
    locations.report(1, "vm", "aaaa-1", 1, 7.0)  # running here now: the old report is stale
    assert locations.active_on_departed("aaaa-1") is None
