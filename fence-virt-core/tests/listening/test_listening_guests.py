"""GuestSocketServer over real UNIX sockets: the host connects to each guest's socket, as
fence_virtd does to QEMU's (c-suite-spec §1.5, §7.2); the guest side is a Python listener
(``fence_virt.testing.guests.GuestEnd``) writing what a guest's fence_virt writes.
The dispatcher is the kit's recording one (what reaches the backend, answered as told)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from fence_virt import Target
from fence_virt.listening import GuestSocketServer, RequestHistory
from fence_virt.protocol import SERIAL_MAGIC, HostState, Operation, Response
from fence_virt.testing import RecordingDispatcher
from fence_virt.testing.guests import GuestEnd, short_tmp_dir

pytestmark = pytest.mark.timeout(60)

VM1 = "11111111-1111-1111-1111-111111111111"
VM2 = "22222222-2222-2222-2222-222222222222"
#: short timers so the tests run fast (seconds)
FAST = {"idle_timeout": 0.2, "write_timeout": 0.5, "retry_interval": 0.05}


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    with short_tmp_dir() as path:
        yield path


@pytest.fixture
def run() -> Callable[[Coroutine[Any, Any, Any]], Any]:
    """asyncio.run in debug mode; an error in any callback or task fails the test."""

    def runner(coro: Coroutine[Any, Any, Any]) -> Any:
        errors: list[dict[str, Any]] = []

        async def main() -> Any:
            asyncio.get_running_loop().set_exception_handler(lambda _l, c: errors.append(c))
            return await coro

        result = asyncio.run(main(), debug=True)
        assert errors == []
        return result

    return runner


class SlowDispatcher(RecordingDispatcher):
    """Recording dispatcher whose fence for ``held`` domains waits until ``release`` is set
    (a backend stuck in a long reboot)."""

    def __init__(self) -> None:
        super().__init__()
        self.held: set[str] = set()
        self.release = asyncio.Event()
        self.entered = asyncio.Event()

    async def fence(self, operation: Operation, target: Target) -> Response:
        if target.domain in self.held:
            self.entered.set()
            await self.release.wait()
        return await super().fence(operation, target)


def lines(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


# ---------------------------------------------------------------------------------------------
# serving one guest


def test_every_operation_reaches_the_dispatcher_with_the_guest_uuid_as_requester(
    sock_dir, run, dispatcher
):
    async def scenario():
        server = GuestSocketServer(dispatcher, **FAST)
        async with GuestEnd(sock_dir / "vm1.sock") as guest:
            server.add(VM1, str(sock_dir / "vm1.sock"), name="vm1")
            await guest.connected()
            dispatcher.answers["vm2"] = Response.OFF
            got = [
                await guest.call(Operation.STATUS, "vm2"),
                await guest.call(Operation.OFF, "vm2"),
                await guest.call(Operation.ON, VM2),
                await guest.call(Operation.REBOOT, "vm1"),
                await guest.call(Operation.DEVSTATUS),
                await guest.call(Operation.NULL, "vm1"),
                await guest.call(7, "vm2"),  # metadata: client-local, the host answers FAIL
            ]
            listed = await guest.hostlist()
        await server.close()
        return got, listed

    got, listed = run(scenario())
    assert got == [Response.OFF] * 2 + [Response.SUCCESS] * 4 + [Response.FAIL]
    assert listed == (Response.HOSTLIST, list(dispatcher.vms))
    fenced = [(op, t.domain, t.requester, t.by_uuid) for op, t in dispatcher.fenced]
    assert fenced == [
        (Operation.STATUS, "vm2", VM1, False),
        (Operation.OFF, "vm2", VM1, False),
        (Operation.ON, VM2, VM1, False),
        (Operation.REBOOT, "vm1", VM1, False),
        (Operation.DEVSTATUS, "", VM1, False),
        (Operation.NULL, "vm1", VM1, False),
    ]
    assert ("hostlist", VM1) in dispatcher.calls


def test_a_failed_list_answers_fail_alone(sock_dir, run, dispatcher):
    dispatcher.fail_list = True

    async def scenario():
        server = GuestSocketServer(dispatcher, **FAST)
        async with GuestEnd(sock_dir / "vm1.sock") as guest:
            server.add(VM1, str(sock_dir / "vm1.sock"))
            await guest.connected()
            listed = await guest.call(Operation.HOSTLIST)
        await server.close()
        return listed

    assert run(scenario()) is Response.FAIL


# ---------------------------------------------------------------------------------------------
# bad input: one line each, and the guest is still served


@pytest.mark.parametrize(
    ("junk", "reason"),
    [
        (b"login: root\r\n", "no serial magic"),
        (b"\x00" * 74, "no serial magic"),  # C would carry out request 0 for domain ""
        (b"abba" + bytes([2, 0x80]) + b"vm1".ljust(64, b"\0") + bytes(4), "unknown flags"),
        (b"abba\x02\x00vm1\x00garbage".ljust(74, b"\x01"), "after the domain's NUL"),
    ],
    ids=["console-line", "zeros", "bad-flags", "garbage-after-domain"],
)
def test_junk_costs_one_line_and_the_next_request_is_served(
    sock_dir, run, dispatcher, caplog, junk, reason
):
    async def scenario():
        server = GuestSocketServer(dispatcher, **FAST)
        async with GuestEnd(sock_dir / "vm1.sock") as guest:
            server.add(VM1, str(sock_dir / "vm1.sock"), name="vm1")
            await guest.connected()
            await guest.send(junk)
            answer = await guest.call(Operation.STATUS, "vm2")
        await server.close()
        return answer

    assert run(scenario()) is Response.SUCCESS
    dropped = lines(caplog, "dropped input")
    assert len(dropped) == 1, dropped
    assert reason in dropped[0]
    assert f"guest {VM1} (vm1)" in dropped[0]
    assert [(op, t.domain) for op, t in dispatcher.fenced] == [(Operation.STATUS, "vm2")]


def test_a_request_cut_short_is_dropped_after_a_quiet_moment(sock_dir, run, dispatcher, caplog):
    """A client killed in the middle of its write: C would read the next request's first
    bytes as the rest of this one; here the stub is dropped once the guest is quiet."""

    async def scenario():
        server = GuestSocketServer(dispatcher, **FAST)
        async with GuestEnd(sock_dir / "vm1.sock") as guest:
            server.add(VM1, str(sock_dir / "vm1.sock"))
            await guest.connected()
            await guest.send(guest.request(Operation.OFF, "vm2")[:40])
            await asyncio.sleep(3 * FAST["idle_timeout"])
            answer = await guest.call(Operation.STATUS, "vm2")
        await server.close()
        return answer

    assert run(scenario()) is Response.SUCCESS
    dropped = lines(caplog, "dropped input")
    assert len(dropped) == 1
    assert "40 bytes: incomplete request" in dropped[0]
    assert [(op, t.domain) for op, t in dispatcher.fenced] == [(Operation.STATUS, "vm2")]


def test_a_request_split_in_slow_pieces_is_still_one_request(sock_dir, run, dispatcher):
    """Pieces closer together than the idle timeout make one request (a slow serial line)."""

    async def scenario():
        server = GuestSocketServer(dispatcher, **FAST)
        async with GuestEnd(sock_dir / "vm1.sock") as guest:
            server.add(VM1, str(sock_dir / "vm1.sock"))
            await guest.connected()
            data = guest.request(Operation.REBOOT, "vm2")
            for start in range(0, len(data), 10):
                await guest.send(data[start : start + 10])
                await asyncio.sleep(FAST["idle_timeout"] / 4)
            answer = await guest.answer()
        await server.close()
        return answer

    assert run(scenario()) == Response.SUCCESS
    assert [(op, t.domain) for op, t in dispatcher.fenced] == [(Operation.REBOOT, "vm2")]


def test_a_repeated_request_runs_once_and_another_guest_is_not_affected(
    sock_dir, run, dispatcher, caplog
):
    """C's history key (operation, seqno, domain), but per guest: the same request from
    another guest within the window is carried out."""

    async def scenario():
        server = GuestSocketServer(dispatcher, **FAST)
        async with GuestEnd(sock_dir / "a.sock") as one, GuestEnd(sock_dir / "b.sock") as two:
            server.add(VM1, str(sock_dir / "a.sock"))
            server.add(VM2, str(sock_dir / "b.sock"))
            await one.connected()
            await two.connected()
            first = await one.call(Operation.REBOOT, "vm3", seqno=77)
            await one.send(one.request(Operation.REBOOT, "VM3", seqno=77))  # case-folded
            with pytest.raises(TimeoutError):
                await one.answer(timeout=0.5)
            other = await two.call(Operation.REBOOT, "vm3", seqno=77)
            fresh = await one.call(Operation.REBOOT, "vm3", seqno=78)
        await server.close()
        return first, other, fresh

    assert run(scenario()) == (Response.SUCCESS,) * 3
    assert [t.requester for _op, t in dispatcher.fenced] == [VM1, VM2, VM1]
    assert len(lines(caplog, "the same request came in the last 10 s")) == 1


def test_the_history_window_comes_from_the_given_history(sock_dir, run, dispatcher):
    clock = [0.0]
    history = RequestHistory(window=10.0, clock=lambda: clock[0])

    async def scenario():
        server = GuestSocketServer(dispatcher, history=history, **FAST)
        async with GuestEnd(sock_dir / "a.sock") as guest:
            server.add(VM1, str(sock_dir / "a.sock"))
            await guest.connected()
            await guest.call(Operation.OFF, "vm2", seqno=5)
            clock[0] = 10.0
            again = await guest.call(Operation.OFF, "vm2", seqno=5)
        await server.close()
        return again

    assert run(scenario()) is Response.SUCCESS
    assert len(dispatcher.fenced) == 2


# ---------------------------------------------------------------------------------------------
# independence of guests


def test_a_guest_flooding_its_socket_does_not_hold_up_another(sock_dir, run, dispatcher, caplog):
    """One guest writes junk and valid requests as fast as it can for the whole test; the
    other's requests are answered meanwhile, and the flood costs a bounded number of lines."""

    async def scenario():
        server = GuestSocketServer(dispatcher, **FAST)
        async with GuestEnd(sock_dir / "a.sock") as noisy, GuestEnd(sock_dir / "b.sock") as calm:
            server.add(VM1, str(sock_dir / "a.sock"))
            server.add(VM2, str(sock_dir / "b.sock"))
            await noisy.connected()
            await calm.connected()
            stop = asyncio.Event()

            async def flood() -> int:
                sent = 0
                while not stop.is_set():
                    await noisy.send(os.urandom(4000) + noisy.request(Operation.STATUS, "vm9"))
                    sent += 1
                    await asyncio.sleep(0)
                return sent

            flooding = asyncio.create_task(flood())
            loop = asyncio.get_running_loop()
            took: list[float] = []
            end = loop.time() + 1.5
            while loop.time() < end:
                start = loop.time()
                got = await calm.call(Operation.STATUS, f"calm{len(took)}")
                assert got is Response.SUCCESS
                took.append(loop.time() - start)
            stop.set()
            sent = await flooding
        await server.close()
        return took, sent

    took, sent = run(scenario())
    assert sent > 200, "the flood did not flood"
    assert len(took) > 20
    assert max(took) < 1.0, took
    calm = [t.domain for _op, t in dispatcher.fenced if t.requester == VM2]
    assert calm == [f"calm{n}" for n in range(len(took))]
    assert len([t for _op, t in dispatcher.fenced if t.requester == VM1]) > 100
    dropped = lines(caplog, "dropped input")
    assert 100 <= len(dropped) <= 100 + 2 * 20  # the drop log's burst, then 20 lines/s


def test_a_guest_whose_request_is_slow_does_not_hold_up_another(sock_dir, run):
    dispatcher = SlowDispatcher()
    dispatcher.held.add("slow-vm")

    async def scenario():
        server = GuestSocketServer(dispatcher, **FAST)
        async with GuestEnd(sock_dir / "a.sock") as stuck, GuestEnd(sock_dir / "b.sock") as free:
            server.add(VM1, str(sock_dir / "a.sock"))
            server.add(VM2, str(sock_dir / "b.sock"))
            await stuck.connected()
            await free.connected()
            await stuck.send(stuck.request(Operation.REBOOT, "slow-vm"))
            await asyncio.wait_for(dispatcher.entered.wait(), 5)
            answers = [await free.call(Operation.STATUS, f"vm{n}") for n in range(5)]
            dispatcher.release.set()
            late = await stuck.answer()
        await server.close()
        return answers, late

    answers, late = run(scenario())
    assert answers == [Response.SUCCESS] * 5
    assert late == Response.SUCCESS


def test_a_guest_that_never_reads_is_cut_off_and_reconnected(sock_dir, run, dispatcher, caplog):
    """Answers the guest does not take fill the socket; the write times out, the socket is
    reconnected, and another guest is served all the while."""
    dispatcher.vms = tuple(HostState(f"vm{n}", f"uuid-{n}", 1) for n in range(500))

    async def scenario():
        server = GuestSocketServer(dispatcher, **FAST)
        async with GuestEnd(sock_dir / "a.sock") as deaf, GuestEnd(sock_dir / "b.sock") as fine:
            server.add(VM1, str(sock_dir / "a.sock"))
            server.add(VM2, str(sock_dir / "b.sock"))
            await deaf.connected()
            await fine.connected()
            for _ in range(40):  # about 2.6 MB of host lists, never read
                await deaf.send(deaf.request(Operation.HOSTLIST))
            answers = [await fine.call(Operation.STATUS, "vm1") for _ in range(3)]
            for _ in range(100):
                if deaf.connections == 2:
                    break
                await asyncio.sleep(0.1)
            reconnected = deaf.connections
        await server.close()
        return answers, reconnected

    answers, reconnected = run(scenario())
    assert answers == [Response.SUCCESS] * 3
    assert reconnected == 2
    assert lines(caplog, "the answer was not taken within 0.5 s; reconnecting")


# ---------------------------------------------------------------------------------------------
# life cycle of a socket


def test_a_socket_that_is_not_there_yet_is_retried_with_one_warning(
    sock_dir, run, dispatcher, caplog
):
    caplog.set_level(logging.DEBUG)

    async def scenario():
        server = GuestSocketServer(dispatcher, **FAST)
        server.add(VM1, str(sock_dir / "late.sock"))
        await asyncio.sleep(10 * FAST["retry_interval"])
        async with GuestEnd(sock_dir / "late.sock") as guest:
            await guest.connected()
            answer = await guest.call(Operation.STATUS, "vm2")
        await server.close()
        return answer

    assert run(scenario()) is Response.SUCCESS
    warnings = [r for r in caplog.records if "cannot connect" in r.getMessage()]
    assert len(warnings) >= 3
    assert [r.levelno for r in warnings].count(logging.WARNING) == 1


def test_a_socket_closed_by_qemu_is_reconnected(sock_dir, run, dispatcher, caplog):
    caplog.set_level(logging.INFO)

    async def scenario():
        server = GuestSocketServer(dispatcher, **FAST)
        async with GuestEnd(sock_dir / "vm1.sock") as guest:
            server.add(VM1, str(sock_dir / "vm1.sock"))
            await guest.connected()
            guest.hang_up()
            await guest.connected()
            answer = await guest.call(Operation.STATUS, "vm2")
            count = guest.connections
        await server.close()
        return answer, count

    assert run(scenario()) == (Response.SUCCESS, 2)
    assert lines(caplog, "the socket was closed at the other end; reconnecting")


def test_remove_closes_the_socket_and_cancels_the_request_in_progress(sock_dir, run):
    dispatcher = SlowDispatcher()
    dispatcher.held.add("slow-vm")

    async def scenario():
        server = GuestSocketServer(dispatcher, **FAST)
        async with GuestEnd(sock_dir / "a.sock") as guest:
            server.add(VM1, str(sock_dir / "a.sock"))
            server.add(VM1, str(sock_dir / "a.sock"))  # twice: still one socket
            await guest.connected()
            assert server.sockets == {(VM1, str(sock_dir / "a.sock"))}
            await guest.send(guest.request(Operation.REBOOT, "slow-vm"))
            await asyncio.wait_for(dispatcher.entered.wait(), 5)
            server.remove(VM1)
            with pytest.raises(EOFError):
                await guest.answer(timeout=5)
            await asyncio.sleep(5 * FAST["retry_interval"])
            assert guest.connections == 1  # not reconnected
            assert server.sockets == set()
            assert server.connected == set()
        await server.close()

    run(scenario())
    assert dispatcher.fenced == []  # cancelled before the backend answered


def test_remove_of_one_path_keeps_the_guests_other_sockets(sock_dir, run, dispatcher):
    async def scenario():
        server = GuestSocketServer(dispatcher, **FAST)
        async with GuestEnd(sock_dir / "a.sock") as one, GuestEnd(sock_dir / "b.sock") as two:
            server.add(VM1, str(sock_dir / "a.sock"))
            server.add(VM1, str(sock_dir / "b.sock"))
            await one.connected()
            await two.connected()
            server.remove(VM1, str(sock_dir / "a.sock"))
            with pytest.raises(EOFError):
                await one.answer(timeout=5)
            answer = await two.call(Operation.STATUS, "vm2")
        await server.close()
        return answer

    assert run(scenario()) is Response.SUCCESS


def test_close_releases_every_socket(sock_dir, run, dispatcher):
    async def scenario():
        server = GuestSocketServer(dispatcher, **FAST)
        ends = [GuestEnd(sock_dir / f"{n}.sock") for n in range(3)]
        for number, end in enumerate(ends):
            await end.start()
            server.add(f"0000000{number}-0000-0000-0000-000000000000", str(end.path))
        for end in ends:
            await end.connected()
        await server.close()
        for end in ends:
            with pytest.raises(EOFError):
                await end.answer(timeout=5)
            await end.close()
        assert server.sockets == set()
        await server.close()  # idempotent

    run(scenario())


def test_magic_alone_is_not_a_request(sock_dir, run, dispatcher, caplog):
    """The magic followed by silence is held (a request may be starting), then dropped."""

    async def scenario():
        server = GuestSocketServer(dispatcher, **FAST)
        async with GuestEnd(sock_dir / "vm1.sock") as guest:
            server.add(VM1, str(sock_dir / "vm1.sock"))
            await guest.connected()
            await guest.send(SERIAL_MAGIC)
            await asyncio.sleep(3 * FAST["idle_timeout"])
            answer = await guest.call(Operation.ON, "vm2")
        await server.close()
        return answer

    assert run(scenario()) is Response.SUCCESS
    assert len(lines(caplog, "4 bytes: incomplete request")) == 1


def test_after_qemu_closed_the_socket_failing_to_reconnect_is_quiet_for_a_while(
    sock_dir, run, dispatcher, caplog
):
    """QEMU closes its end when the domain stops, before libvirt says so: the reconnect
    attempts meanwhile are debug lines, not warnings."""
    caplog.set_level(logging.DEBUG)

    async def scenario():
        server = GuestSocketServer(dispatcher, **FAST)
        guest = GuestEnd(sock_dir / "vm1.sock")
        await guest.start()
        server.add(VM1, str(sock_dir / "vm1.sock"))
        await guest.connected()
        await guest.close()  # QEMU exits: its socket is gone
        await asyncio.sleep(10 * FAST["retry_interval"])
        server.remove(VM1)  # the domain's stop event
        await server.close()

    run(scenario())
    failures = [r for r in caplog.records if "cannot connect" in r.getMessage()]
    assert len(failures) >= 3
    assert {r.levelno for r in failures} == {logging.DEBUG}
    closed = [r for r in caplog.records if "closed at the other end" in r.getMessage()]
    assert [r.levelno for r in closed] == [logging.INFO]
