"""The runner in-process, inside a test namespace: concurrency, duplicates, replays, floods.

The listener runs on an event loop whose thread entered the namespace, so its group socket
and connect-backs live there. Requests come from a small Python client (conftest ``PyClient``;
the C fence_xvm is used in test_multicast_daemon.py). The dispatcher is a stand-in for core's
that can hold a VM's operation until the test lets it go: no real backend blocks on demand.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import socket
from collections.abc import Sequence

import pytest

from fence_virt import Target
from fence_virt.config import ConfigSection, parse_text
from fence_virt.errors import AuthenticationError, UserError
from fence_virt.listening import RequestHistory
from fence_virt.protocol import AuthExchange, HashType, HostState, Operation, Response
from fence_virt.testing.factories import fence_datagram, raw_domain_request
from fence_virt_listener_multicast.listener import MulticastListener
from fence_virt_listener_multicast.settings import resolve_settings

pytestmark = pytest.mark.netns

LOG = "fence_virt.listener.multicast"


class GatedDispatcher:
    """Records calls; an operation on a VM in ``held`` waits until ``release(vm)``."""

    def __init__(self, *held: str) -> None:
        self.calls: list[tuple[Operation, Target]] = []
        self._gates = {vm: asyncio.Event() for vm in held}
        self.entered = {vm: asyncio.Event() for vm in held}

    def release(self, vm: str) -> None:
        self._gates[vm].set()

    async def fence(self, operation: Operation, target: Target) -> Response:
        self.calls.append((operation, target))
        if target.domain in self._gates:
            self.entered[target.domain].set()
            await self._gates[target.domain].wait()
        return Response.SUCCESS

    async def hostlist(self, requester: str) -> Sequence[HostState]:
        return [HostState("vm1", "11111111-1111-1111-1111-111111111111", 1)]

    def dropped(self, requester: str, kind: object, reason: str) -> None:
        pass

    async def should_answer(self, operation: Operation, target: Target) -> bool:
        return target.domain != "elsewhere"

    def domains(self) -> list[str]:
        return [target.domain for _, target in self.calls]


async def start(key_file, dispatcher, history=None, **settings: str) -> MulticastListener:
    values = {"key_file": str(key_file), "interface": "lo", **settings}
    body = "".join(f'{k} = "{v}"; ' for k, v in values.items())
    tree = parse_text(f"listeners {{ multicast {{ {body} }} }}\n", source="test.conf")
    listener = MulticastListener(
        resolve_settings(ConfigSection("listeners/multicast", tree.node("listeners/multicast"))),
        key_file.read_bytes(),
        history,
    )
    await listener.start(dispatcher)
    return listener


def stalled_server(port: int) -> socket.socket:
    """A TCP port whose connections complete but are never read: a guest that never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", port))
    sock.listen(16)
    return sock


def test_requests_are_served_and_answered(ns_loop, key_file, py_client) -> None:
    async def scenario() -> tuple[bytes, bytes, list[str]]:
        dispatcher = GatedDispatcher()
        listener = await start(key_file, dispatcher)
        try:
            status = await py_client.call(Operation.STATUS, "vm1")
            listing = await py_client.call(Operation.HOSTLIST, seqno=5)
            return status, listing, dispatcher.domains()
        finally:
            await listener.stop()

    status, listing, domains = ns_loop.run(scenario())
    assert status == b"\x00"
    assert listing[0] == 0xFD
    assert listing[1:4] == b"vm1"
    assert len(listing) == 1 + 2 * 130 + 1
    assert domains == ["vm1"]


def test_copies_and_retransmits_execute_once(ns_loop, key_file, py_client) -> None:
    """Three copies at once (fresh signatures, as C sends them), then a late retransmit."""

    async def scenario() -> list[str]:
        dispatcher = GatedDispatcher()
        listener = await start(key_file, dispatcher)
        try:
            assert await py_client.call(Operation.REBOOT, "vm1", seqno=1, copies=3) == b"\x00"
            py_client.send(py_client.datagram(Operation.REBOOT, "VM1", seqno=1))
            # datagrams are handled in arrival order: once this one is answered, so was that
            assert await py_client.call(Operation.REBOOT, "vm1", seqno=2) == b"\x00"
            return dispatcher.domains()
        finally:
            await listener.stop()

    assert ns_loop.run(scenario()) == ["vm1", "vm1"]


def test_a_slow_operation_does_not_delay_others(ns_loop, key_file, py_client) -> None:
    async def scenario() -> list[str]:
        dispatcher = GatedDispatcher("slow")
        listener = await start(key_file, dispatcher)
        try:
            slow = asyncio.create_task(py_client.call(Operation.OFF, "slow", listen_port=1300))
            await asyncio.wait_for(dispatcher.entered["slow"].wait(), 10)
            assert await py_client.call(Operation.OFF, "fast", seqno=2) == b"\x00"
            assert not slow.done()
            dispatcher.release("slow")
            assert await slow == b"\x00"
            return dispatcher.domains()
        finally:
            await listener.stop()

    assert ns_loop.run(scenario()) == ["slow", "fast"]


def test_a_guest_that_never_answers_does_not_delay_others(
    ns_loop, key_file, py_client, caplog
) -> None:
    async def scenario() -> tuple[int, list[str]]:
        dispatcher = GatedDispatcher()
        listener = await start(key_file, dispatcher, io_timeout="0.5")
        with stalled_server(1301):
            py_client.send(py_client.datagram(Operation.OFF, "stuck", seqno=1, listen_port=1301))
            assert await py_client.call(Operation.OFF, "vm1", seqno=2) == b"\x00"
            stuck = listener.in_progress
            for _ in range(200):
                if "client sent nothing for 0.5 s" in caplog.text:
                    break
                await asyncio.sleep(0.05)
        await listener.stop()
        return stuck, dispatcher.domains()

    with caplog.at_level(logging.WARNING, logger=LOG):
        stuck, domains = ns_loop.run(scenario())
    assert stuck == 1
    assert domains == ["vm1"]
    assert "request 1 seqno 1 domain stuck from 127.0.0.1: client sent nothing" in caplog.text


def test_connect_back_falls_over_to_the_next_address(ns, ns_loop, key_file, py_client, caplog):
    """A copy whose address swallows the SYN holds the request; the copy from the guest's
    other address, queued behind it, is tried when the connect times out."""
    # a veth whose peer has no address: frames to a fake MAC are dropped there, unanswered
    ns.ip("link", "add", "sinka", "type", "veth", "peer", "name", "sinkb")
    ns.ip("addr", "add", "198.51.100.250/24", "dev", "sinka")
    for end in ("sinka", "sinkb"):
        ns.ip("link", "set", end, "up")
    ns.ip("neigh", "add", "198.51.100.77", "lladdr", "02:00:00:00:00:77", "dev", "sinka")

    async def scenario() -> list[str]:
        dispatcher = GatedDispatcher()
        listener = await start(key_file, dispatcher, connect_timeout="0.3")
        try:
            lost = py_client.datagram(Operation.OFF, "vm1", seqno=9, source="198.51.100.77")
            py_client.send(lost)
            assert await py_client.call(Operation.OFF, "vm1", seqno=9) == b"\x00"
            return dispatcher.domains()
        finally:
            await listener.stop()

    with caplog.at_level(logging.WARNING, logger=LOG):
        assert ns_loop.run(scenario()) == ["vm1"]
    assert "from 198.51.100.77: cannot connect back to port 1229: timed out" in caplog.text


def test_replay_of_a_served_request_is_refused(ns_loop, key_file, py_client, caplog) -> None:
    """The exact bytes of an answered request, sent again, are dropped with a reason."""

    async def scenario() -> list[str]:
        dispatcher = GatedDispatcher()
        listener = await start(key_file, dispatcher)
        try:
            answered = asyncio.get_running_loop().create_future()

            async def on_connect(reader, writer) -> None:
                exchange = AuthExchange.for_client(HashType.SHA256, py_client.key)
                while not exchange.done:
                    if out := exchange.data_to_send():
                        writer.write(out)
                    else:
                        exchange.receive_data(await reader.readexactly(exchange.bytes_needed))
                answered.set_result(await reader.read())
                writer.close()

            server = await asyncio.start_server(on_connect, "127.0.0.1", 1229)
            captured = py_client.datagram(Operation.OFF, "vm1", seqno=3)
            py_client.send(captured)
            assert await asyncio.wait_for(answered, 10) == b"\x00"
            server.close()
            py_client.send(captured)
            assert await py_client.call(Operation.STATUS, "vm2", seqno=4) == b"\x00"
            return dispatcher.domains()
        finally:
            await listener.stop()

    with caplog.at_level(logging.WARNING, logger=LOG):
        assert ns_loop.run(scenario()) == ["vm1", "vm2"]
    assert "replayed copy of a request received 0 s ago" in caplog.text


def test_late_copies_are_refused_as_replays_once_the_window_ends(
    ns_loop, key_file, py_client, caplog
) -> None:
    """With a 0.2 s duplicate window: a late copy of an answered request, sent again after
    the window, is a replay; a freshly signed request with that seqno runs again (as in C)."""

    async def scenario() -> list[str]:
        dispatcher = GatedDispatcher()
        listener = await start(key_file, dispatcher, history=RequestHistory(window=0.2))
        try:
            assert await py_client.call(Operation.OFF, "vm1", seqno=5) == b"\x00"
            late = py_client.datagram(Operation.OFF, "vm1", seqno=5)
            py_client.send(late)
            assert await py_client.call(Operation.STATUS, "vm2", seqno=6) == b"\x00"
            await asyncio.sleep(0.3)
            py_client.send(late)
            assert await py_client.call(Operation.OFF, "vm1", seqno=5) == b"\x00"
            return dispatcher.domains()
        finally:
            await listener.stop()

    with caplog.at_level(logging.WARNING, logger=LOG):
        assert ns_loop.run(scenario()) == ["vm1", "vm2", "vm1"]
    assert caplog.text.count("replayed copy of a request received") == 1


def test_requests_beyond_max_requests_are_dropped(ns_loop, key_file, py_client, caplog) -> None:
    async def scenario() -> list[str]:
        dispatcher = GatedDispatcher("slow")
        listener = await start(key_file, dispatcher, max_requests="1")
        try:
            slow = asyncio.create_task(py_client.call(Operation.OFF, "slow", listen_port=1302))
            await asyncio.wait_for(dispatcher.entered["slow"].wait(), 10)
            with pytest.raises(TimeoutError):
                await py_client.call(Operation.OFF, "vm1", seqno=2, timeout=0.5)
            dispatcher.release("slow")
            await slow
            assert await py_client.call(Operation.OFF, "vm1", seqno=3) == b"\x00"
            return dispatcher.domains()
        finally:
            await listener.stop()

    with caplog.at_level(logging.WARNING, logger=LOG):
        assert ns_loop.run(scenario()) == ["slow", "vm1"]
    assert "1 requests in progress (max_requests)" in caplog.text


def test_requests_to_one_silent_address_cannot_take_every_slot(
    ns, ns_loop, key_file, py_client, caplog
) -> None:
    """Authentic requests whose connect-back address never answers (the blackhole helper of
    fence_virt_testinfra: connects time out) hold at most max_requests_per_source slots; a
    guest with a working address is still served."""
    from fence_virt_testinfra.c_tcp import blackhole

    silent = blackhole(ns)

    async def scenario() -> tuple[int, list[str]]:
        dispatcher = GatedDispatcher()
        listener = await start(key_file, dispatcher, max_requests="4", max_requests_per_source="2")
        try:
            for seqno in range(10, 20):
                py_client.send(py_client.datagram(Operation.OFF, "far", seqno=seqno, source=silent))
            await asyncio.sleep(0.2)
            held = listener.in_progress
            assert await py_client.call(Operation.OFF, "vm1", seqno=3) == b"\x00"
            return held, dispatcher.domains()
        finally:
            await listener.stop()

    with caplog.at_level(logging.WARNING, logger=LOG):
        held, domains = ns_loop.run(scenario())
    assert held == 2
    assert domains == ["vm1"]
    assert f"2 requests to {silent} in progress (max_requests_per_source)" in caplog.text


def test_no_connect_back_when_the_dispatcher_keeps_silent(ns_loop, key_file, py_client) -> None:
    """Dispatcher.should_answer False (the backend's unknown_vm = silent, VM not here): the
    client gets no connection at all, and its retransmits are not asked about again."""

    async def scenario() -> list[str]:
        dispatcher = GatedDispatcher()
        listener = await start(key_file, dispatcher)
        try:
            with pytest.raises(TimeoutError):
                await py_client.call(Operation.OFF, "elsewhere", seqno=1, timeout=2.5)
            assert await py_client.call(Operation.OFF, "vm1", seqno=2) == b"\x00"
            return dispatcher.domains()
        finally:
            await listener.stop()

    assert ns_loop.run(scenario()) == ["vm1"]


def test_local_guests_only_serves_only_addresses_of_running_domains(
    ns, ns_loop, key_file, py_client, caplog
) -> None:
    """With local_guests_only on test:///default (libvirt's test driver, in-process: its
    running domain ``test`` has the interface address 192.168.122.3), a request asking for a
    connect-back to 127.0.0.1 is not connected back to at all -- the host stays silent --
    and one from the domain's address is served."""
    ns.ip("addr", "add", "192.168.122.3/32", "dev", "lo")

    async def scenario() -> list[str]:
        dispatcher = GatedDispatcher()
        listener = await start(
            key_file, dispatcher, local_guests_only="yes", local_guests_uri="test:///default"
        )
        try:
            with pytest.raises(TimeoutError):
                await py_client.call(Operation.OFF, "vm1", seqno=1, timeout=1.5)
            answer = await py_client.call(Operation.OFF, "vm2", seqno=2, source="192.168.122.3")
            assert answer == b"\x00"
            return dispatcher.domains()
        finally:
            await listener.stop()

    with caplog.at_level(logging.INFO, logger=LOG):
        assert ns_loop.run(scenario()) == ["vm2"]
    assert (
        "request 1 seqno 1 domain vm1 from 127.0.0.1: not served: 127.0.0.1 is no address of "
        "a domain running here (local_guests_only)" in caplog.text
    )


def test_local_guests_only_fails_closed_when_libvirt_cannot_answer(
    ns_loop, key_file, py_client, caplog
) -> None:
    async def scenario() -> list[str]:
        dispatcher = GatedDispatcher()
        listener = await start(
            key_file,
            dispatcher,
            local_guests_only="yes",
            local_guests_uri="test:///nonexistent/node.xml",
        )
        try:
            with pytest.raises(TimeoutError):
                await py_client.call(Operation.OFF, "vm1", seqno=1, timeout=1.5)
            return dispatcher.domains()
        finally:
            await listener.stop()

    with caplog.at_level(logging.INFO, logger=LOG):
        assert ns_loop.run(scenario()) == []
    assert "not served: cannot read the local domains' addresses" in caplog.text


def test_a_flood_of_bad_datagrams_changes_nothing(
    ns, ns_loop, key_file, py_client, netns_call, caplog
) -> None:
    """1500 bad datagrams from another thread, then a valid request (resent like fence_xvm)."""
    good = py_client.datagram(Operation.OFF, "vm1", seqno=1)
    wrong_key = py_client.datagram(Operation.OFF, "vm1", seqno=2, key=b"guess")
    bad = [b"", good[:100], good + b"x", secrets.token_bytes(176), wrong_key]

    def flood() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for n in range(1500):
                sock.sendto(bad[n % len(bad)], ("127.0.0.1", 1229))

    async def scenario() -> list[str]:
        dispatcher = GatedDispatcher()
        listener = await start(key_file, dispatcher)
        try:
            await asyncio.to_thread(netns_call, ns, flood)
            assert await py_client.call(Operation.STATUS, "vm2", seqno=3) == b"\x00"
            return dispatcher.domains()
        finally:
            await listener.stop()

    with caplog.at_level(logging.WARNING, logger=LOG):
        assert ns_loop.run(scenario()) == ["vm2"]
    drops = [m for m in caplog.messages if m.startswith("dropped datagram from 127.0.0.1:")]
    assert 0 < len(drops) < 1500, "one line per drop, rate-limited"
    assert "Traceback" not in caplog.text


def test_datagrams_for_another_group_on_the_port_are_not_ours(ns_loop, key_file, py_client):
    async def scenario() -> list[str]:
        dispatcher = GatedDispatcher()
        listener = await start(key_file, dispatcher)
        member = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            other = socket.inet_aton("225.0.0.13")
            mreq = other + socket.inet_aton("127.0.0.1")
            member.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
            data = py_client.datagram(Operation.OFF, "elsewhere", seqno=1)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreq[4:])
                sock.sendto(data, ("225.0.0.13", 1229))
            assert await py_client.call(Operation.OFF, "vm1", seqno=2) == b"\x00"
            return dispatcher.domains()
        finally:
            member.close()
            await listener.stop()

    assert ns_loop.run(scenario()) == ["vm1"]


def test_port_in_use_is_a_clear_error_and_stop_releases_it(ns_loop, key_file) -> None:
    async def scenario() -> str:
        first = await start(key_file, GatedDispatcher())
        try:
            with pytest.raises(UserError) as caught:
                await start(key_file, GatedDispatcher())
        finally:
            await first.stop()
        again = await start(key_file, GatedDispatcher())
        await again.stop()
        return str(caught.value)

    assert ns_loop.run(scenario()) == "cannot bind UDP port 1229: Address already in use"


def test_stop_cancels_requests_in_progress(ns_loop, key_file, py_client) -> None:
    async def scenario() -> int:
        dispatcher = GatedDispatcher("slow")
        listener = await start(key_file, dispatcher)
        call = asyncio.create_task(py_client.call(Operation.OFF, "slow", listen_port=1303))
        await asyncio.wait_for(dispatcher.entered["slow"].wait(), 10)
        await listener.stop()
        call.cancel()
        return listener.in_progress

    assert ns_loop.run(scenario()) == 0


def test_netns_thread_really_is_isolated(ns_loop) -> None:
    """Guard for every test above: the loop's sockets must not be in the host namespace."""

    async def interfaces() -> list[str]:
        return [name for _, name in socket.if_nameindex()]

    assert ns_loop.run(interfaces()) == ["lo"]
    assert os.path.exists(f"/run/netns/{ns_loop.ns.name}")


async def answer_of(data: bytes, key: bytes, send, port: int = 1229) -> bytes:
    """Send one datagram and take the connect-back on 127.0.0.1:``port``, as fence_xvm."""
    answered: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def on_connect(reader, writer) -> None:
        exchange = AuthExchange.for_client(HashType.SHA256, key)
        while not exchange.done:
            if out := exchange.data_to_send():
                writer.write(out)
            else:
                exchange.receive_data(await reader.readexactly(exchange.bytes_needed))
        answered.set_result(await reader.read())
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", port, reuse_address=True)
    try:
        send(data)
        return await asyncio.wait_for(answered, 5)
    finally:
        server.close()


@pytest.mark.parametrize(
    ("domain", "shown"),
    [(b"caf\xe9", "caf\\xe9"), (b"x" * 64, "x" * 64)],
    ids=["latin-1", "no-nul"],
)
def test_an_authentic_request_that_names_no_decodable_vm_is_answered_fail(
    ns_loop, key_file, py_client, caplog, domain, shown
) -> None:
    """Issue 21 B6: connected back to and answered FAIL at once; the dispatcher is not asked,
    and a retransmit of it is one request (C's history), not a second answer."""

    async def scenario() -> tuple[bytes, list[str]]:
        dispatcher = GatedDispatcher()
        listener = await start(key_file, dispatcher)
        try:
            data = raw_domain_request(
                Operation.OFF, domain, key=py_client.key, address="127.0.0.1", port=1229
            )
            reply = await answer_of(data, py_client.key, py_client.send)
            assert await py_client.call(Operation.STATUS, "vm1", seqno=8) == b"\x00"
            return reply, dispatcher.domains()
        finally:
            await listener.stop()

    with caplog.at_level(logging.WARNING, logger=LOG):
        assert ns_loop.run(scenario()) == (bytes([Response.FAIL]), ["vm1"])
    assert f"domain {shown} from 127.0.0.1: cannot be carried out" in caplog.text


def test_an_ipv4_mapped_requester_is_named_dotted(ns_loop, key_file, py_client, caplog) -> None:
    """Issue 21 D10: a request whose connect-back address is ``::ffff:127.0.0.1`` is
    connected back to over IPv6 and logged and vouched for as C writes it (not
    ``::ffff:7f00:1``)."""

    async def scenario() -> tuple[bytes, list[str]]:
        dispatcher = GatedDispatcher()
        listener = await start(key_file, dispatcher)
        try:
            data = fence_datagram(
                Operation.STATUS,
                "vm1",
                key=py_client.key,
                seqno=11,
                address="::ffff:127.0.0.1",
                port=1229,
            )
            reply = await answer_of(data, py_client.key, py_client.send)
            return reply, [target.requester for _, target in dispatcher.calls]
        finally:
            await listener.stop()

    with caplog.at_level(logging.DEBUG, logger=LOG):
        assert ns_loop.run(scenario()) == (b"\x00", ["::ffff:127.0.0.1"])
    assert "domain vm1 from ::ffff:127.0.0.1: answered 0" in caplog.text
    assert "7f00" not in caplog.text


def big_endian_client(py_client):
    """conftest's PyClient, but as a C fence_xvm on a big-endian host: port, seqno and family
    byte-swapped in every datagram, which it signs as sent."""
    from fence_virt.protocol.auth import keyed_digest

    class BigEndianClient(type(py_client)):
        def datagram(self, *args, **kwargs) -> bytes:
            data = bytearray(super().datagram(*args, **kwargs))
            for offset, size in ((96, 2), (104, 4), (108, 4)):
                data[offset : offset + size] = data[offset : offset + size][::-1]
            data[112:] = bytes(64)
            data[112:] = keyed_digest(HashType.SHA256, self.key, bytes(data))
            return bytes(data)

    return BigEndianClient(py_client.key)


@pytest.mark.parametrize("policy", ["serve", "refuse"])
def test_a_big_endian_client_is_served_or_refused_by_config(
    ns_loop, key_file, py_client, caplog, policy
) -> None:
    client = big_endian_client(py_client)

    async def scenario() -> list[str]:
        dispatcher = GatedDispatcher()
        listener = await start(key_file, dispatcher, byte_swapped=policy)
        try:
            if policy == "serve":
                assert await client.call(Operation.OFF, "vm1", seqno=77) == b"\x00"
            else:
                with pytest.raises(TimeoutError):
                    await client.call(Operation.OFF, "vm1", seqno=77, timeout=1.5)
            return dispatcher.domains()
        finally:
            await listener.stop()

    with caplog.at_level(logging.INFO, logger=LOG):
        domains = ns_loop.run(scenario())
    if policy == "serve":
        assert domains == ["vm1"]
        assert (
            "request 1 seqno 77 domain vm1 from 127.0.0.1: byte-swapped request from a "
            "big-endian client: port, seqno and family read big-endian, served" in caplog.text
        )
    else:
        assert domains == []
        assert re.search(
            r"dropped datagram from 127\.0\.0\.1:\d+: byte-swapped request from a big-endian "
            r"client .*refused \(byte_swapped = refuse\)",
            caplog.text,
        )


def test_a_failed_handshake_is_logged_with_sender_and_reason_only(
    ns_loop, key_file, py_client, caplog
) -> None:
    """The datagram is signed with the right key but the client holds another one for the
    handshake: it rejects the host's proof and hangs up. The line names the requester and
    the reason, and no digest or challenge appears in any line (C logs the digest)."""
    right = py_client.key

    class SplitKeyClient(type(py_client)):
        def datagram(self, *args, **kwargs) -> bytes:
            return super().datagram(*args, **{**kwargs, "key": right})

    client = SplitKeyClient(b"another-key\n")

    async def scenario() -> list[str]:
        dispatcher = GatedDispatcher()
        listener = await start(key_file, dispatcher)
        try:
            with pytest.raises(AuthenticationError):
                await client.call(Operation.OFF, "vm1", seqno=5)
            await asyncio.sleep(0.3)
            return dispatcher.domains()
        finally:
            await listener.stop()

    with caplog.at_level(logging.DEBUG, logger=LOG):
        assert ns_loop.run(scenario()) == []
    assert (
        "request 1 seqno 5 domain vm1 from 127.0.0.1: client rejected our proof (auth or key "
        "differ?)" in caplog.text
    )
    assert not re.search(r"[0-9a-fA-F]{16,}", caplog.text)
