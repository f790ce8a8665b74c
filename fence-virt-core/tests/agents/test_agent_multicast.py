"""What our fence_xvm puts on the wire, seen by a UDP socket that joined the group in the
namespace: one signed datagram per local address per attempt, TTL 2, one seqno per run
(c-suite-spec §4.6, §9.1 item 13); nothing at all without a key; the timeout path.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from fence_virt.protocol import FenceRequest, HashType, verify_request
from fence_virt_testinfra import c_suite
from fence_virt_testinfra.netns import NetNS, netns
from fence_virt_testinfra.topology import veth_pair

pytestmark = pytest.mark.netns

# Runs inside the namespace: join the group on every given local address (IPv4) or
# interface index (IPv6), print "ready", then one JSON line per datagram until stdin closes.
SINK = r"""
import json, select, socket, struct, sys
group, port, joins = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
v6 = ":" in group
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::" if v6 else "0.0.0.0", port))
for join in joins:
    if v6:
        mreq = socket.inet_pton(socket.AF_INET6, group) + struct.pack("@I", int(join))
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
    else:
        mreq = socket.inet_aton(group) + socket.inet_aton(join)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
if v6:
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
else:
    s.setsockopt(socket.IPPROTO_IP, getattr(socket, "IP_RECVTTL", 12), 1)  # linux/in.h
print("ready", flush=True)
stdin_open = True
while True:
    ready, _, _ = select.select([s] + ([sys.stdin] if stdin_open else []), [], [], 0.3)
    if s in ready:
        data, anc, _flags, src = s.recvmsg(2048, 64)
        ttl = struct.unpack("@i", anc[0][2])[0] if anc else None
        print(json.dumps({"src": src[0], "ttl": ttl, "data": data.hex()}), flush=True)
    elif sys.stdin in ready:
        if not sys.stdin.readline():
            stdin_open = False
    elif not stdin_open:
        break
"""


def words(line: str, *values: object) -> list[str]:
    """argv from one line of text, ``{0}``, ``{1}``... filled from ``values``."""
    return line.format(*values).split()


class Sink:
    """The datagrams a sink process received."""

    def __init__(self) -> None:
        self.datagrams: list[dict[str, object]] = []

    @property
    def requests(self) -> list[FenceRequest]:
        return [FenceRequest.decode(bytes.fromhex(str(d["data"]))) for d in self.datagrams]


@contextmanager
def sink(space: NetNS, group: str, port: int, joins: list[str]) -> Iterator[Sink]:
    """Listen in ``space`` while the body runs; fill the Sink when the body is done."""
    process = subprocess.Popen(
        space.argv(sys.executable, "-c", SINK, group, str(port), *joins),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    result = Sink()
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        yield result
        out, _ = process.communicate("", timeout=10)
        result.datagrams = [json.loads(line) for line in out.splitlines()]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def two_addresses(ns: NetNS) -> Iterator[str]:
    """Give the module namespace a second IPv4 address, on a veth whose peer is up."""
    with netns("peer") as peer:
        veth_pair(ns, peer, ("fvtm0", "fvtm1"), ("198.51.100.10/24", "198.51.100.11/24"))
        yield "198.51.100.10"


def test_one_signed_datagram_per_address_per_attempt(
    ns: NetNS, two_addresses: str, key: Path, ours: str, run
) -> None:
    with sink(ns, "225.0.0.12", 1231, ["127.0.0.1", two_addresses]) as seen:
        result = run(words("{0} -k {1} -p 1231 -o off -H vm1 -t 1 -r 5", ours, key))
    assert result.returncode == 1
    requests = seen.requests
    # timeout*10/retrans = 2 attempts, 2 local addresses each
    assert len(requests) == 4
    assert [r.connect_back() for r in requests] == [
        ("127.0.0.1", 1231), (two_addresses, 1231), ("127.0.0.1", 1231), (two_addresses, 1231),
    ]  # fmt: skip
    assert {d["ttl"] for d in seen.datagrams} == {2}
    assert len({r.seqno for r in requests}) == 1
    assert len({r.random for r in requests}) == 4
    for datagram in seen.datagrams:
        request = verify_request(
            bytes.fromhex(str(datagram["data"])), key.read_bytes(), HashType.SHA256
        )
        assert (request.request, request.domain, request.flags, request.addrlen) == (1, "vm1", 0, 4)


def test_uuid_flag_and_hash_type_travel(ns: NetNS, key: Path, ours: str, run) -> None:
    uuid = "22222222-2222-2222-2222-222222222222"
    with sink(ns, "225.0.0.12", 1232, ["127.0.0.1"]) as seen:
        run(words("{0} -k {1} -p 1232 -o status -u -H {2} -c sha512 -t 1 -r 10", ours, key, uuid))
    (request,) = [r for r in seen.requests if r.connect_back()[0] == "127.0.0.1"]
    verify_request(request.encode(), key.read_bytes(), HashType.SHA512)
    assert (request.request, request.flags, request.domain) == (4, 1, uuid)


def test_hash_none_needs_no_key_and_sends_zero_signature(ns: NetNS, ours: str, run) -> None:
    with sink(ns, "225.0.0.12", 1233, ["127.0.0.1"]) as seen:
        result = run(words("{0} -c none -C none -p 1233 -o list -t 1 -r 10", ours))
    assert result.returncode == 1
    assert b'fence_virtd must accept unsigned requests (hash = "none")' in result.stdout
    (request,) = [r for r in seen.requests if r.connect_back()[0] == "127.0.0.1"]
    assert (request.hashtype, request.random, request.hash) == (0, bytes(6), bytes(64))


def test_missing_key_sends_nothing(
    ns: NetNS, key: Path, ours: str, run, without_default_key
) -> None:
    """The C agent would send unsigned requests here; we print why and stop."""
    with sink(ns, "225.0.0.12", 1234, ["127.0.0.1"]) as silent:
        result = run(without_default_key(words("{0} -p 1234 -o off -H vm1 -t 1 -r 10", ours)))
    assert result.returncode == 1
    assert result.stdout == (
        b"Could not read /etc/cluster/fence_xvm.key: No such file or directory; not sending an "
        b"unauthenticated request (set both auth and hash to none to fence without a key)\n"
    )
    assert silent.datagrams == []
    # the same sink does see a request once the key is there: the check above can fail
    with sink(ns, "225.0.0.12", 1234, ["127.0.0.1"]) as control:
        run(words("{0} -k {1} -p 1234 -o off -H vm1 -t 1 -r 10", ours, key))
    assert len(control.datagrams) >= 1


def test_unreadable_key_file_is_an_error_too(ns: NetNS, ours: str, run, tmp_path: Path) -> None:
    """``-k`` passes C's stat check for a directory, but it cannot be read as a key."""
    with sink(ns, "225.0.0.12", 1235, ["127.0.0.1"]) as silent:
        result = run(words("{0} -k {1} -p 1235 -o off -H vm1 -t 1", ours, tmp_path))
    assert result.returncode == 1
    assert result.stdout.startswith(f"Could not read {tmp_path}: Is a directory;".encode())
    assert silent.datagrams == []


def test_timeout_prints_the_hint(ns: NetNS, key: Path, ours: str, run) -> None:
    result = run(words("{0} -k {1} -p 1236 -o status -H vm1 -t 1 -r 10", ours, key))
    assert result.returncode == 1
    assert result.stdout.decode().splitlines() == [
        "Timed out waiting for response",
        "Hint: no host connected back: inbound TCP port 1236 to this machine must be open, "
        f"and the key file {key} must match fence_virtd's",
        "Operation failed",
    ]
    assert result.stderr == b""


def test_retrans_longer_than_timeout_makes_one_attempt(
    ns: NetNS, key: Path, ours: str, run
) -> None:
    """C computes 0 attempts here and loops ~2**32 times; we send once and give up."""
    with sink(ns, "225.0.0.12", 1237, ["127.0.0.1"]) as seen:
        result = run(words("{0} -k {1} -p 1237 -o status -H vm1 -t 1 -r 30", ours, key), timeout=20)
    assert result.returncode == 1
    assert len([r for r in seen.requests if r.connect_back()[0] == "127.0.0.1"]) == 1


@pytest.mark.c_suite
def test_busy_port_retries_then_fails_like_c(
    ns: NetNS, key: Path, ours: str, c_fence_xvm: str, run
) -> None:
    """Another agent holds the TCP port: both retry per attempt, then exit 255."""
    holder = subprocess.Popen(
        ns.argv(sys.executable, "-c", HOLD_PORT, "1238"), stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        argv = words("-k {0} -p 1238 -o status -H vm1 -t 1 -r 5", key)
        mine, theirs = run([ours, *argv]), run([c_fence_xvm, *argv])
    finally:
        holder.kill()
        holder.wait()
    assert (mine.stdout, mine.returncode) == (theirs.stdout, theirs.returncode)
    assert (
        mine.stdout
        == b"Failed to listen: Address already in use\n" * 2 + b"Unknown response (-1)\n"
    )
    assert mine.returncode == 255


HOLD_PORT = r"""
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(1)
print("ready", flush=True)
time.sleep(60)
"""


def test_ipv6_goes_out_of_the_source_interface(key: Path, ours: str) -> None:
    """Two namespaces joined by a veth; the sink in the other one sees hop limit 2."""
    with netns("v6a") as client, netns("v6b") as host:
        veth_pair(client, host, ("fvt6a", "fvt6b"), ("2001:db8:6::1/64", "2001:db8:6::2/64"))
        index = host.run("cat", "/sys/class/net/fvt6b/ifindex").stdout.strip()
        with sink(host, "ff05::3:1", 1239, [index]) as seen:
            argv = words("{0} -k {1} -a ff05::3:1 -p 1239 -o list -t 1 -r 10", ours, key)
            result = c_suite.run_in(client, argv)
        assert result.returncode == 1
        (request,) = seen.requests
        assert request.connect_back() == ("2001:db8:6::1", 1239)
        assert (request.family, request.addrlen) == (10, 16)
        assert seen.datagrams[0]["ttl"] == 2
