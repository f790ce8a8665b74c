"""bench/flood.py, briefly (no timing target: the suite shares its CPUs): our fence_virtd in a
namespace is flooded with garbage and with authentic requests whose connect-back address is
black-holed, and still serves every valid request; its descriptors return to where they were."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fence_virt_testinfra.plugins import repo_root

pytestmark = pytest.mark.netns

FLOOD = repo_root() / "bench" / "flood.py"


SHORT = ("--rate", "2000", "--seconds", "2", "--samples", "3", "--no-timing")


def test_a_short_flood_leaves_requests_served() -> None:
    done = subprocess.run(
        [sys.executable, str(FLOOD), *SHORT],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout[: done.stdout.rindex("}") + 1])
    assert report["flood"]["sent"] == 4000
    assert report["flood"]["authentic_to_black_hole"] == 40
    assert report["flooded_latency_ms"]["samples"] == 3
    assert report["tracebacks"] == 0
    # every black-holed connect-back gave up and closed its socket
    assert report["memory_6s_later"]["fds"] == report["memory_before"]["fds"]
    assert 0 < report["drop_lines_logged"] < 4000, "drop lines are rate-limited"
    assert done.stdout.rstrip().splitlines()[-1].startswith("OK: 4000 datagrams")
