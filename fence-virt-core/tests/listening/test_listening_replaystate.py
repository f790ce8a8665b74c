"""The replay memory's state file: format, atomic 0600 writes, loud but harmless failures.

Real files in the test's directory; the guard is the real one. Nothing here may raise out
of :meth:`ReplayStore.open` or :meth:`ReplayStore.close`: a listener must start and stop
whatever the state file looks like.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import stat
import struct
from pathlib import Path

import pytest

from fence_virt.listening import (
    DEFAULT_STATE_DIRECTORY,
    REPLAY_CAPACITY,
    ReplayGuard,
    ReplayStore,
    StateFileError,
    default_replay_state,
)
from fence_virt.listening.replaystate import MAX_STATE_SIZE, read_state, write_state
from fence_virt.protocol import FenceRequest, Operation
from fence_virt.testing.factories import fence_request

KEY = b"state key\n"
LOGGER = "fence_virt.listener.state-test"


def signed() -> FenceRequest:
    return fence_request(Operation.STATUS, "vm1", key=KEY)


def guard() -> ReplayGuard:
    return ReplayGuard(window=600, log=logging.getLogger(LOGGER))


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


async def served(path: Path, requests: list[FenceRequest]) -> ReplayStore:
    """A store on ``path`` that remembered ``requests`` and was closed."""
    store = ReplayStore(guard(), path, logging.getLogger(LOGGER))
    store.open()
    for request in requests:
        store.guard.remember(request)
    await store.close()
    return store


# ---------------------------------------------------------------------------------------------
# where


def test_the_default_is_per_instance_under_var_lib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    assert Path("/var/lib/fence-virt") == DEFAULT_STATE_DIRECTORY
    assert default_replay_state("cluster-b") == Path("/var/lib/fence-virt/replay-cluster-b.state")


def test_systemd_state_directory_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", "/run/a:/run/b")
    assert default_replay_state("multicast") == Path("/run/a/replay-multicast.state")


# ---------------------------------------------------------------------------------------------
# the file


def test_a_restart_keeps_what_was_received(tmp_path: Path) -> None:
    path = tmp_path / "state" / "replay-multicast.state"
    requests = [signed() for _ in range(3)]

    async def main() -> ReplayGuard:
        await served(path, requests)
        store = ReplayStore(guard(), path, logging.getLogger(LOGGER))
        store.open()
        await store.close()
        return store.guard

    restored = asyncio.run(main())
    assert all(restored.age(request) is not None for request in requests)
    assert len(restored) == 3
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.stat().st_size == 16 + 3 * 24
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name, path.name + ".lock"]


def test_every_change_is_saved_while_the_listener_runs(tmp_path: Path) -> None:
    """Saved within the event loop's next turns, not only at a clean stop."""
    path = tmp_path / "replay.state"
    first, second = signed(), signed()

    async def main() -> list[int]:
        store = ReplayStore(guard(), path, logging.getLogger(LOGGER))
        store.open()
        counts = []
        for request in (first, second):
            store.guard.remember(request)
            for _ in range(100):
                await asyncio.sleep(0.01)
                if path.exists() and len(read_state(path)) == len(counts) + 1:
                    break
            counts.append(len(read_state(path)))
        await store.close()
        return counts

    assert asyncio.run(main()) == [1, 2]


def test_the_write_is_atomic_and_tightens_a_loose_mode(tmp_path: Path) -> None:
    path = tmp_path / "replay.state"
    path.write_bytes(b"old")
    path.chmod(0o644)
    old_inode = path.stat().st_ino
    write_state(path, [(bytes(16), 1.5)])
    assert path.stat().st_ino != old_inode, "replaced by rename, never rewritten in place"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_state(path) == [(bytes(16), 1.5)]
    assert [p.name for p in tmp_path.iterdir()] == ["replay.state"]


def test_the_file_holds_at_most_the_capacity(tmp_path: Path) -> None:
    path = tmp_path / "replay.state"
    entries = [(n.to_bytes(16, "big"), float(n)) for n in range(REPLAY_CAPACITY + 5)]
    write_state(path, entries)
    assert path.stat().st_size == MAX_STATE_SIZE
    assert read_state(path) == entries[5:]


def test_a_loose_mode_is_tightened_on_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "replay.state"
    write_state(path, [(bytes(16), 1.0)])
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        assert len(read_state(path)) == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "insecure permissions on replay state file" in caplog.text


# ---------------------------------------------------------------------------------------------
# a bad file: one warning, an empty memory, never an exception


def _header(count: int, magic: bytes = b"FVREPLAY", version: int = 1) -> bytes:
    return struct.pack("<8sII", magic, version, count)


BAD_FILES = {
    "empty": (b"", "cut short (0 bytes)"),
    "cut-short": (_header(2) + bytes(30), "do not hold the 2 records its header announces"),
    "too-long": (_header(1) + bytes(25), "do not hold the 1 records its header announces"),
    "other-format": (b"#!/bin/sh\necho hello\n", "not a version-1 state file"),
    "other-version": (_header(0, version=2), "not a version-1 state file"),
    "too-many": (_header(REPLAY_CAPACITY + 1), "its header announces"),
}


@pytest.mark.parametrize("case", BAD_FILES, ids=list(BAD_FILES))
def test_a_corrupt_file_is_a_loud_warning_and_an_empty_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    data, reason = BAD_FILES[case]
    path = tmp_path / "replay.state"
    path.write_bytes(data)
    path.chmod(0o600)
    with pytest.raises(StateFileError, match=re.escape(reason)):
        read_state(path)

    async def main() -> ReplayStore:
        store = ReplayStore(guard(), path, logging.getLogger(LOGGER))
        store.open()
        store.guard.remember(signed())
        await store.close()
        return store

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        store = asyncio.run(main())
    [line] = warnings(caplog)
    assert line.startswith(f"replay state file {path}: ")
    assert line.endswith(": starting with an empty replay memory")
    assert reason in line
    assert len(read_state(path)) == 1, "the next save replaced the bad file"
    assert len(store.guard) == 1


@pytest.mark.parametrize(
    ("kind", "saved"), [("fifo", True), ("directory", False)], ids=["fifo", "directory"]
)
def test_a_state_path_that_is_no_regular_file_is_refused_without_blocking(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, kind: str, saved: bool
) -> None:
    """A FIFO is replaced by the first save (rename); a directory stays and saves fail."""
    path = tmp_path / "replay.state"
    if kind == "fifo":
        os.mkfifo(path, 0o600)
    else:
        path.mkdir()

    async def main() -> int:
        store = ReplayStore(guard(), path, logging.getLogger(LOGGER))
        store.open()  # a blocking open of a FIFO would hang the test here
        store.guard.remember(signed())
        await store.close()
        return len(store.guard)

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert asyncio.run(asyncio.wait_for(main(), 10)) == 1
    messages = warnings(caplog)
    assert messages[0] == (
        f"replay state file {path} is not a regular file: starting with an empty replay memory"
    )
    if saved:
        assert messages[1:] == []
        assert len(read_state(path)) == 1
    else:
        assert messages[1:] == [
            f"cannot save the replay memory to {path}: Is a directory (retried at the next request)"
        ]


def test_an_unusable_directory_leaves_the_memory_in_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    path = blocker / "replay.state"
    request = signed()

    async def main() -> ReplayStore:
        store = ReplayStore(guard(), path, logging.getLogger(LOGGER))
        store.open()
        store.guard.remember(request)
        await store.close()
        return store

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        store = asyncio.run(main())
    assert store.guard.age(request) == pytest.approx(0, abs=1)
    assert warnings(caplog) == [
        f"replay state file {path}: {blocker}: File exists; replays stay refused only until "
        "a restart"
    ]


def test_a_failing_save_is_warned_once_until_a_save_works_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state" / "replay.state"

    async def main() -> None:
        store = ReplayStore(guard(), path, logging.getLogger(LOGGER))
        store.open()
        path.mkdir()  # the file's place is taken: rename over a directory fails
        for _ in range(3):
            store.guard.remember(signed())
            await asyncio.sleep(0.1)
        path.rmdir()
        store.guard.remember(signed())
        await store.close()

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        asyncio.run(main())
    assert warnings(caplog) == [
        f"cannot save the replay memory to {path}: Is a directory (retried at the next request)",
        f"replay memory saved to {path} again",
    ]
    assert len(read_state(path)) == 4


def test_a_second_process_on_the_same_file_keeps_its_memory_in_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The lock is per open file description: a second store in this process stands in
    for a second fence_virtd (flock(2) locks are not shared between them)."""
    path = tmp_path / "replay.state"
    theirs, ours = signed(), signed()

    async def main() -> None:
        first = ReplayStore(guard(), path, logging.getLogger(LOGGER))
        first.open()
        first.guard.remember(theirs)
        second = ReplayStore(guard(), path, logging.getLogger(LOGGER))
        second.open()
        second.guard.remember(ours)
        assert (first.active, second.active) == (True, False)
        await second.close()
        await first.close()

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        asyncio.run(main())
    [line] = warnings(caplog)
    assert line.startswith(f"replay state file {path}: the file is in use by another process")
    assert [fp for fp, _ in read_state(path)] == [theirs.hash[:16]], "the owner's file only"


def test_a_missing_file_is_a_first_start(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "replay.state"

    async def main() -> None:
        store = ReplayStore(guard(), path, logging.getLogger(LOGGER))
        store.open()
        await store.close()

    with caplog.at_level(logging.INFO, logger=LOGGER):
        asyncio.run(main())
    assert caplog.records == []
    assert read_state(path) == []
