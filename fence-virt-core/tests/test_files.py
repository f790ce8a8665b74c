"""The one secret-file check: regular files only, mode 0600 enforced like C."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from fence_virt.errors import UserError
from fence_virt.files import read_secret_file, secret_file_problem, tighten_permissions


def test_mode_is_tightened_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    key = tmp_path / "k"
    key.write_bytes(b"secret\n")
    key.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        assert read_secret_file(key, what="key file", max_bytes=4096) == b"secret\n"
    assert key.stat().st_mode & 0o777 == 0o600
    assert f"insecure permissions on key file {key}: changing from 0644 to 0600" in caplog.text


def test_read_stops_at_max_bytes(tmp_path: Path) -> None:
    key = tmp_path / "k"
    key.write_bytes(b"x" * 5000)
    key.chmod(0o600)
    assert read_secret_file(key, what="key file", max_bytes=4096) == b"x" * 4096


def test_a_directory_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    folder.mkdir(mode=0o755)
    with pytest.raises(UserError, match="is not a regular file"):
        read_secret_file(folder, what="key file", max_bytes=4096)
    assert folder.stat().st_mode & 0o777 == 0o755
    assert "is not a regular file" in (secret_file_problem(folder, what="key file") or "")


@pytest.mark.timeout(10)
def test_a_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o644)
    with pytest.raises(UserError, match="is not a regular file"):
        tighten_permissions(fifo, what="config file")
    assert fifo.stat().st_mode & 0o777 == 0o644


def test_missing_file_names_what_and_where(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(UserError, match=rf"key file {missing}: No such file"):
        read_secret_file(missing, what="key file", max_bytes=1)
    assert (
        secret_file_problem(missing, what="key file")
        == f"key file {missing}: No such file or directory"
    )


def test_problem_check_changes_nothing(tmp_path: Path) -> None:
    key = tmp_path / "k"
    key.write_bytes(b"k")
    key.chmod(0o644)
    assert secret_file_problem(key, what="key file") is None
    assert key.stat().st_mode & 0o777 == 0o644
