"""The listener contract suite: what every listener plugin must do with what clients send.

Opt in by subclassing in a test module of your own and giving one fixture,
``listener_harness``, that returns a :class:`ListenerHarness`::

    class TestMyListenerContract(ListenerContract, WrongKeyContract, RetransmitContract):
        @pytest.fixture
        def listener_harness(self) -> ListenerHarness: ...

:class:`WrongKeyContract` is for listeners that authenticate requests and
:class:`RetransmitContract` for listeners that claim to run a retransmitted request once; a
harness listed with either must give what it needs, or the check fails (never skips).

The plugin is registered in a fresh plugin manager and called through core's typed facade;
the listener it creates is started with a :class:`~fence_virt.testing.RecordingDispatcher`
in place of core's, so the suite sees exactly which requests would reach the backend and
chooses what each answers (other answers than SUCCESS too, to prove they pass through).
Clients are the harness's: ``send`` and friends are coroutines run on the harness's
:attr:`ListenerHarness.run`, together with the listener (a multicast harness runs them on a
loop inside a network namespace).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest

from fence_virt.config import parse_text
from fence_virt.plugins import PluginKind
from fence_virt.protocol import Operation, Response
from fence_virt.testing.dispatcher import RecordingDispatcher
from fence_virt.testing.drive import CoroutineRunner, Plugged, plug, single_line
from fence_virt.types import DropKind, Listener

__all__ = [
    "ClientRequest",
    "ListenerContract",
    "ListenerHarness",
    "RetransmitContract",
    "ServedListener",
    "WrongKeyContract",
]

#: the file name the harness's configuration text is parsed under
CONTRACT_SOURCE = "contract.conf"
#: first sequence number of a test's requests; each request gets the next one
_FIRST_SEQNO = 1001


@dataclass(frozen=True)
class ClientRequest:
    """One request as a client would send it."""

    operation: Operation
    domain: str
    #: new for every request of a test (the same for copies of one request)
    seqno: int


#: sends a request as a client does; the response the client got, ``None`` if none came
Sender = Callable[[ClientRequest], Awaitable[Response | None]]


@dataclass(frozen=True)
class ListenerHarness:
    """Everything the listener suite needs; give a fresh one per test."""

    #: what the entry point names: the plugin class (core instantiates it) or an instance
    plugin: object
    #: the entry-point name, also the instance's name: ``listeners { NAME { ... } }``
    name: str
    #: a working configuration text holding the block
    config: str
    #: the requester identity the listener vouches for in every Target of these clients
    #: (the connect-back IP, the vsock CID, the guest UUID, ...)
    requester: str
    #: a valid request, as the plugin's client sends it (signed with the right key)
    send: Sender
    #: sends raw bytes as the transport carries one message (a datagram, a line, a stream)
    send_bytes: Callable[[bytes], Awaitable[None]]
    #: inputs the listener must drop without acting (at least one; see
    #: :func:`fence_virt.testing.factories.malformed_fence_datagrams`)
    malformed: Sequence[bytes]
    #: a valid request signed with a key the listener does not have (:class:`WrongKeyContract`)
    send_wrong_key: Sender | None = None
    #: ``send_copies(request, n)``: the request sent ``n`` times as a retransmitting client
    #: does, with the one answer the client got (:class:`RetransmitContract`)
    send_copies: Callable[[ClientRequest, int], Awaitable[Response | None]] | None = None
    #: runs each test's coroutine: the listener's start and stop, and every send
    run: CoroutineRunner = asyncio.run
    #: seconds any one start, stop or send may take
    timeout: float = 30.0


def plugged(harness: ListenerHarness) -> Plugged:
    """The harness's plugin in a fresh manager, with its working configuration."""
    config = parse_text(harness.config, source=CONTRACT_SOURCE)
    return plug(PluginKind.LISTENER, harness.name, harness.plugin, config)


def create(plugin: Plugged) -> Listener:
    """``fence_virt_listener_create`` through the facade (which checks the type)."""
    return plugin.hooks.listener_create(plugin.entry, plugin.section, plugin.config)


class ServedListener:
    """A started listener, the dispatcher behind it and the harness's clients."""

    def __init__(self, harness: ListenerHarness, dispatcher: RecordingDispatcher) -> None:
        self.harness = harness
        self.dispatcher = dispatcher
        self._seqnos = itertools.count(_FIRST_SEQNO)

    def request(self, operation: Operation, domain: str) -> ClientRequest:
        """A new request (its own sequence number)."""
        return ClientRequest(operation, domain, next(self._seqnos))

    async def send(self, request: ClientRequest, via: Sender | None = None) -> Response | None:
        """``via(request)`` (default :attr:`ListenerHarness.send`) within the harness's
        timeout. :raises AssertionError: no answer in time."""
        what = f"{request.operation.name.lower()} {request.domain}"
        try:
            async with asyncio.timeout(self.harness.timeout):
                return await (self.harness.send if via is None else via)(request)
        except TimeoutError:
            raise AssertionError(f"{what}: no answer within {self.harness.timeout:g} s") from None

    async def unanswered(self, send: Awaitable[Response | None]) -> Response | None:
        """What a send that may rightly get no answer got: ``None`` if it timed out or the
        client gave up with an error (a refused handshake, a closed connection)."""
        try:
            async with asyncio.timeout(self.harness.timeout):
                return await send
        except Exception:  # noqa: BLE001 - the client failing is what a refusal looks like
            return None

    def calls_for(self, domain: str) -> list[tuple[Operation, str]]:
        """(operation, domain) of every dispatcher call for ``domain``."""
        return [(op, t.domain) for op, t in self.dispatcher.fenced if t.domain == domain]

    async def served(self, request: ClientRequest, answer: Response, what: str) -> None:
        """Send ``request`` with the dispatcher answering ``answer``: it must be dispatched
        once, with the right target, and the client must get ``answer``."""
        self.dispatcher.answers[request.domain] = answer
        before = len(self.dispatcher.calls)
        got = await self.send(request)
        calls = self.dispatcher.calls[before:]
        name = f"{what}: {request.operation.name.lower()} {request.domain}"
        assert len(calls) == 1, f"{name}: reached the dispatcher {len(calls)} times: {calls}"
        operation, target = calls[0]
        assert operation == request.operation, f"{name}: dispatched as {operation!r}"
        assert not isinstance(target, str), f"{name}: dispatched as a host list"
        assert target.domain == request.domain, f"{name}: dispatched for {target.domain!r}"
        assert not target.by_uuid, f"{name}: dispatched with the UUID flag"
        assert target.requester == self.harness.requester, (
            f"{name}: requester {target.requester!r}, expected {self.harness.requester!r}"
        )
        assert got == answer, (
            f"{name}: the dispatcher answered {answer.name}, the client got {got!r}"
        )


@asynccontextmanager
async def serving(
    listener: Listener, dispatcher: RecordingDispatcher, timeout: float
) -> AsyncIterator[None]:
    """``listener`` started with ``dispatcher``; stopped afterwards whatever happens."""
    async with asyncio.timeout(timeout):
        await listener.start(dispatcher)
    try:
        yield
    finally:
        async with asyncio.timeout(timeout):
            await listener.stop()


def drive(harness: ListenerHarness, body: Callable[[ServedListener], Awaitable[None]]) -> None:
    """Create the listener (in this thread, as the daemon does before its loop runs), then
    serve ``body``'s requests on the harness's runner."""
    listener = create(plugged(harness))
    dispatcher = RecordingDispatcher()

    async def main() -> None:
        async with serving(listener, dispatcher, harness.timeout):
            await body(ServedListener(harness, dispatcher))

    harness.run(main())


#: operations with the answers the dispatcher gives in the pass-through check
_PASS_THROUGH = (
    (Operation.OFF, Response.SUCCESS),
    (Operation.ON, Response.FAIL),
    (Operation.REBOOT, Response.PERM),
    (Operation.STATUS, Response.OFF),
    (Operation.STATUS, Response.SUCCESS),
)


class ListenerContract:
    """The checks every listener must pass; subclass it as ``Test...`` and give a
    ``listener_harness`` fixture returning :class:`ListenerHarness`."""

    def test_check_finds_the_working_config_usable(self, listener_harness: ListenerHarness) -> None:
        plugin = plugged(listener_harness)
        availability = plugin.hooks.listener_check(plugin.entry, plugin.section, plugin.config)
        single_line(availability.reason, "the availability reason")
        assert availability.usable, f"check refused the working config: {availability.reason}"

    def test_create_builds_a_listener(self, listener_harness: ListenerHarness) -> None:
        listener = create(plugged(listener_harness))
        single_line(listener.describe(), "describe()")

    def test_a_request_reaches_the_dispatcher_once_and_its_answer_comes_back(
        self, listener_harness: ListenerHarness
    ) -> None:
        """Each operation once, with the right target; the client gets exactly the
        dispatcher's answer, whatever it is."""

        async def body(served: ServedListener) -> None:
            for index, (operation, answer) in enumerate(_PASS_THROUGH):
                request = served.request(operation, f"contract-vm{index}")
                await served.served(request, answer, "valid request")

        drive(listener_harness, body)

    def test_malformed_input_is_dropped_and_the_listener_keeps_serving(
        self, listener_harness: ListenerHarness
    ) -> None:
        harness = listener_harness
        assert harness.malformed, "harness: give at least one malformed input"

        async def body(served: ServedListener) -> None:
            for data in harness.malformed:
                async with asyncio.timeout(harness.timeout):
                    await harness.send_bytes(data)
            assert not served.dispatcher.calls, (
                f"malformed input reached the dispatcher: {served.dispatcher.calls}"
            )
            request = served.request(Operation.OFF, "contract-after-garbage")
            await served.served(request, Response.OFF, "after malformed input")

        drive(harness, body)

    def test_stop_releases_what_start_took(self, listener_harness: ListenerHarness) -> None:
        """A second listener from the same block starts and serves once the first stopped
        (sockets, ports and files released)."""
        harness = listener_harness
        first, second = create(plugged(harness)), create(plugged(harness))

        async def main() -> None:
            for number, listener in enumerate((first, second), start=1):
                dispatcher = RecordingDispatcher()
                async with serving(listener, dispatcher, harness.timeout):
                    served = ServedListener(harness, dispatcher)
                    request = served.request(Operation.STATUS, f"contract-round{number}")
                    await served.served(request, Response.SUCCESS, f"listener {number}")

        harness.run(main())


class WrongKeyContract:
    """For listeners that authenticate: a request signed with another key is not carried
    out and gets no success answer (``send_wrong_key``)."""

    def test_a_request_signed_with_another_key_is_not_carried_out(
        self, listener_harness: ListenerHarness
    ) -> None:
        harness = listener_harness
        send_wrong_key = harness.send_wrong_key
        if send_wrong_key is None:
            pytest.fail("WrongKeyContract: the harness gives no send_wrong_key")

        async def body(served: ServedListener) -> None:
            request = served.request(Operation.OFF, "contract-wrong-key")
            got = await served.unanswered(send_wrong_key(request))
            assert not served.dispatcher.calls, (
                f"a request with another key reached the dispatcher: {served.dispatcher.calls}"
            )
            assert got is not Response.SUCCESS, "a request with another key was answered SUCCESS"
            valid = served.request(Operation.OFF, "contract-right-key")
            await served.served(valid, Response.SUCCESS, "after a wrong key")

        drive(harness, body)

    def test_a_request_signed_with_another_key_is_reported_as_an_authentication_failure(
        self, listener_harness: ListenerHarness
    ) -> None:
        """Metrics count key mismatches through ``Dispatcher.dropped``: the listener must
        report the refused request as ``DropKind.AUTHENTICATION``."""
        harness = listener_harness
        send_wrong_key = harness.send_wrong_key
        if send_wrong_key is None:
            pytest.fail("WrongKeyContract: the harness gives no send_wrong_key")

        async def body(served: ServedListener) -> None:
            request = served.request(Operation.OFF, "contract-wrong-key-reported")
            await served.unanswered(send_wrong_key(request))
            kinds = [kind for _requester, kind, _reason in served.dispatcher.drops]
            assert DropKind.AUTHENTICATION in kinds, (
                "a request with another key was not reported to dispatcher.dropped as "
                f"DropKind.AUTHENTICATION: {served.dispatcher.drops}"
            )

        drive(harness, body)


class RetransmitContract:
    """For listeners that claim duplicate filtering: copies of one request (same sequence
    number), sent together or after the answer, run once (``send_copies``)."""

    def test_retransmitted_copies_run_once(self, listener_harness: ListenerHarness) -> None:
        harness = listener_harness
        send_copies = harness.send_copies
        if send_copies is None:
            pytest.fail("RetransmitContract: the harness gives no send_copies")

        async def body(served: ServedListener) -> None:
            request = served.request(Operation.REBOOT, "contract-retransmit")
            served.dispatcher.answers[request.domain] = Response.OFF
            got = await served.send(request, via=lambda copy: send_copies(copy, 3))
            assert got is Response.OFF, f"copies: the dispatcher answered OFF, client got {got!r}"
            once = [(Operation.REBOOT, request.domain)]
            assert served.calls_for(request.domain) == once, "copies sent together ran again"
            late = await served.unanswered(send_copies(request, 1))
            assert late in (None, Response.OFF), f"a late copy was answered {late!r}"
            assert served.calls_for(request.domain) == once, "a copy sent after the answer ran"
            fresh = served.request(Operation.REBOOT, request.domain)
            await served.send(fresh)
            assert served.calls_for(request.domain) == once * 2, "a new request did not run"

        drive(harness, body)
