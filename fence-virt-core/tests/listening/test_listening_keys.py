"""The listener key file: raw bytes, 0600 enforced, empty refused when used, and a check
that changes nothing (c-suite-spec §3.1, §9.1 #5, #23)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from fence_virt.errors import UserError
from fence_virt.listening import key_problem, load_key


def test_key_is_the_raw_bytes_and_empty_is_refused_when_used(tmp_path: Path) -> None:
    key = tmp_path / "k"
    key.write_bytes(b"x" * 5000)
    key.chmod(0o600)
    assert load_key(key, required=True) == b"x" * 4096
    key.write_bytes(b"")
    with pytest.raises(UserError, match="is empty"):
        load_key(key, required=True)
    assert load_key(key, required=False) == b""


def test_load_tightens_the_mode_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = tmp_path / "k"
    key.write_bytes(b"secret\n")
    key.chmod(0o640)
    with caplog.at_level(logging.WARNING):
        assert load_key(key, required=True) == b"secret\n"
    assert key.stat().st_mode & 0o777 == 0o600
    assert f"insecure permissions on key file {key}: changing from 0640 to 0600" in caplog.text


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_unusable_key_files_are_refused_naming_the_file(tmp_path: Path, kind: str) -> None:
    key = tmp_path / "k"
    if kind == "directory":
        key.mkdir()
    words = "No such file" if kind == "missing" else "is not a regular file"
    assert key_problem(key) == (
        f"key file {key}: No such file or directory"
        if kind == "missing"
        else f"key file {key} is not a regular file"
    )
    with pytest.raises(UserError, match=words):
        load_key(key, required=False)


def test_the_check_reads_and_changes_nothing(tmp_path: Path) -> None:
    key = tmp_path / "k"
    key.write_bytes(b"secret")
    key.chmod(0o644)
    assert key_problem(key) is None
    assert key.stat().st_mode & 0o777 == 0o644
