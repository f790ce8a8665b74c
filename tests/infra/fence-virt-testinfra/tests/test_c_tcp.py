"""fence_virt_testinfra.c_tcp: the C fence_virt never runs without a TCP target or with -S,
the tcp config says what C will do, and the blackhole address really stays silent."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from fence_virt_testinfra.c_tcp import TcpSetup, blackhole, run_c_fence_virt
from fence_virt_testinfra.netns import NetNS, netns
from fence_virt_testinfra.setns import in_netns
from fence_virt_testinfra.tools import skip_unless_netns


@pytest.mark.parametrize(
    ("argv", "stdin"),
    [
        (["-o", "status", "-H", "vm1"], None),
        (["-A", "127.0.0.1", "-o", "list"], None),
        (["-T", "127.0.0.1", "-S", "-o", "list"], None),
        (["-T", "127.0.0.1", "-dS3", "-o", "list"], None),
        ([], b"action=list\n"),
        ([], b"action=list\nipaddr=127.0.0.1\nvsock=3\n"),
        ([], b"action=list\nipaddr=127.0.0.1\nVSOCK\n"),
    ],
)
def test_the_c_agent_is_refused_without_tcp_target_or_with_vsock(
    argv: list[str], stdin: bytes | None
) -> None:
    """Refused before anything starts: the namespace given does not even exist."""
    with pytest.raises(ValueError, match="refusing to run the C fence_virt"):
        run_c_fence_virt(NetNS("fvt-never-created"), argv, stdin)


def test_tcp_config_leaves_default_hash_and_auth_out(tmp_path: Path) -> None:
    """C's tcp listener reads ``auth`` into its hash minimum: a written default would reset it."""
    plain = TcpSetup(key_file=tmp_path / "k").config_text("/plugins")
    assert 'listener = "tcp";' in plain
    assert 'module_path = "/plugins";' in plain
    assert 'address = "127.0.0.1";' in plain
    assert "hash" not in plain
    assert "auth" not in plain
    sha1 = TcpSetup(key_file=tmp_path / "k", hash="sha1", family="ipv6").config_text()
    assert '\t\thash = "sha1";\n' in sha1
    assert 'address = "::1";' in sha1
    assert "auth" not in sha1


@pytest.mark.netns
def test_the_blackhole_address_never_answers() -> None:
    skip_unless_netns()
    with netns("bh") as ns:
        silent = blackhole(ns)

        def connect() -> str:
            with socket.socket() as sock:
                sock.settimeout(1)
                try:
                    sock.connect((silent, 1229))
                except TimeoutError:
                    return "timed out"
                except OSError as exc:
                    return str(exc)
            return "connected"

        assert in_netns(ns, connect) == "timed out"
