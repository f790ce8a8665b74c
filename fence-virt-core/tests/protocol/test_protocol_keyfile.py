"""Key files: raw bytes, at most 4096, newline kept, empty allowed (c-suite-spec §3.1)."""

from __future__ import annotations

import os

import pytest

from fence_virt.errors import UserError
from fence_virt.protocol import MAX_KEY_LEN, KeyFileError, read_key_file


def test_raw_bytes_with_newline(tmp_path):
    path = tmp_path / "key"
    path.write_bytes(b"  secret key \r\n\n")
    assert read_key_file(path) == b"  secret key \r\n\n"
    assert read_key_file(str(path)) == b"  secret key \r\n\n"


def test_truncated_to_4096(tmp_path):
    path = tmp_path / "key"
    data = os.urandom(5000)
    path.write_bytes(data)
    assert MAX_KEY_LEN == 4096
    assert read_key_file(path) == data[:4096]


def test_exactly_4096(tmp_path):
    path = tmp_path / "key"
    path.write_bytes(b"k" * 4096)
    assert read_key_file(path) == b"k" * 4096


def test_empty_file_is_an_empty_key(tmp_path):
    path = tmp_path / "key"
    path.write_bytes(b"")
    assert read_key_file(path) == b""


def test_missing_file(tmp_path):
    path = tmp_path / "nokey"
    with pytest.raises(KeyFileError, match="No such file") as info:
        read_key_file(path)
    assert isinstance(info.value, UserError)
    assert info.value.path == str(path)
    assert str(path) in str(info.value)


def test_directory_is_an_error(tmp_path):
    with pytest.raises(KeyFileError, match="cannot read key file"):
        read_key_file(tmp_path)
