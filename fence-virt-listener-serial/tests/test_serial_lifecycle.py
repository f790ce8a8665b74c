"""Domains come and go, libvirtd restarts, guests misbehave: our daemon against the C
fence_virtd serial listener on the same setup. The guest side is a Python listener on each
domain's socket (``fence_virt.testing.guests.GuestEnd``), as QEMU's chardev would be; the
daemons run as processes, found through libvirt's test driver on a hand-started libvirtd."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from fence_virt.protocol import Operation, Response
from fence_virt.testing.guests import GuestEnd
from fence_virt_testinfra.channels import SerialSetup

pytestmark = [pytest.mark.c_suite, pytest.mark.netns, pytest.mark.timeout(300)]

#: what a guest's console might print on the fencing line by mistake
CONSOLE = b"Debian GNU/Linux 12 guest ttyS1\r\n\r\nguest login: "
#: our listener follows events: a started domain is served well within this (seconds)
PROMPT = 1.0


async def in_thread(call, *args):
    return await asyncio.to_thread(call, *args)


@pytest.mark.parametrize("daemon", ["ours", "c"])
def test_a_domain_started_later_is_served_at_once_and_released_when_it_stops(lab, daemons, daemon):
    """Both follow lifecycle events (through libvirtd, C's event thread works). When the
    domain stops, ours closes its socket at once; C closes the descriptor in its event thread
    while its main thread sleeps in select() on it, so the kernel keeps the connection open
    until something else wakes that select (here: nothing)."""
    daemons.start(daemon, SerialSetup(uri=lab.uri, path=lab.dir))
    wait_for_release = PROMPT if daemon == "ours" else 3.0

    async def scenario():
        loop = asyncio.get_running_loop()
        async with GuestEnd(lab.dir / "late.sock") as guest_end:
            began = loop.time()
            guest = await in_thread(lab.start_with, "late", [guest_end.path])
            await guest_end.connected(timeout=10)
            connected = loop.time() - began
            answer = await guest_end.call(Operation.STATUS, guest.name)
            await in_thread(lab.stop, guest.name)
            try:
                await guest_end.answer(timeout=wait_for_release)
            except EOFError:
                released = True
            except TimeoutError:
                released = False
        return connected, answer, released

    connected, answer, released = asyncio.run(scenario())
    assert answer is Response.SUCCESS
    assert connected < PROMPT, connected
    assert released is (daemon == "ours")


def test_after_a_libvirtd_restart_ours_serves_new_domains_and_c_does_not(
    private_lab, daemons, sock_dir
):
    """C's event thread ends with its libvirt connection (c-suite-spec §7.1): a domain
    started after libvirtd came back is never served until fence_virtd restarts. Ours
    reconnects (every 5 s), reads the domains again and follows their events. Both daemons
    run at once on one libvirtd, each on its own directory; one domain has a socket in each."""
    lab = private_lab
    mine, theirs = sock_dir / "ours", sock_dir / "c"
    mine.mkdir()
    theirs.mkdir()
    ours = daemons.ours(SerialSetup(uri=lab.uri, path=mine))
    daemons.c(SerialSetup(uri=lab.uri, path=theirs))

    lab.libvirtd.stop()
    lab.libvirtd.start()
    deadline = time.monotonic() + 30
    while "again (reconnected after" not in ours.log():
        assert time.monotonic() < deadline, ours.log()
        time.sleep(0.1)
    lab.reopen()

    async def scenario():
        loop = asyncio.get_running_loop()
        async with GuestEnd(mine / "new.sock") as ours_end, GuestEnd(theirs / "new.sock") as c_end:
            began = loop.time()
            guest = await in_thread(lab.start_with, "new", [ours_end.path, c_end.path])
            await ours_end.connected(timeout=10)
            took = loop.time() - began
            answer = await ours_end.call(Operation.STATUS, guest.name)
            with pytest.raises(TimeoutError):
                await c_end.connected(timeout=10)  # C: not within 10 s (and never, by its code)
        return took, answer

    took, answer = asyncio.run(scenario())
    assert answer is Response.SUCCESS
    assert took < PROMPT, took


def test_a_flooding_guest_does_not_hold_up_another(lab, daemons):
    """One guest writes junk as fast as it can and never reads; another is answered at once
    all the while (each socket has its own task in our daemon)."""

    async def scenario():
        async with (
            GuestEnd(lab.dir / "noisy.sock") as noisy,
            GuestEnd(lab.dir / "calm.sock") as calm,
        ):
            await in_thread(lab.start_with, "noisy", [noisy.path])
            await in_thread(lab.start_with, "calm", [calm.path])
            await in_thread(daemons.ours, SerialSetup(uri=lab.uri, path=lab.dir))
            await noisy.connected()
            await calm.connected()
            stop = asyncio.Event()

            async def flood() -> int:
                junk, sent = os.urandom(64 * 1024), 0
                while not stop.is_set():
                    await noisy.send(junk)
                    sent += len(junk)
                return sent

            flooding = asyncio.create_task(flood())
            await asyncio.sleep(0.5)
            loop = asyncio.get_running_loop()
            took = []
            for _ in range(10):
                began = loop.time()
                assert await calm.call(Operation.STATUS, "no-such-vm", timeout=5) is Response.FAIL
                took.append(loop.time() - began)
            stop.set()
            return took, await flooding

    took, sent = asyncio.run(scenario())
    assert sent > 10 * 1024 * 1024, sent  # it did flood
    assert max(took) < PROMPT, took


@pytest.mark.parametrize("daemon", ["ours", "c"])
def test_a_reboot_on_one_line_does_not_hold_up_another(lab, daemons, daemon):
    """C serves one request at a time: its reboot (with a 1 s wait) holds every guest. Ours
    answers the other guest meanwhile (and its reboot is verified, not slept)."""
    target = lab.vm("target")

    async def scenario():
        async with GuestEnd(lab.dir / "a.sock") as first, GuestEnd(lab.dir / "b.sock") as second:
            await in_thread(lab.start_with, "first", [first.path])
            other = await in_thread(lab.start_with, "second", [second.path])
            await in_thread(daemons.start, daemon, SerialSetup(uri=lab.uri, path=lab.dir))
            await first.connected()
            await second.connected()
            loop = asyncio.get_running_loop()
            await first.send(first.request(Operation.REBOOT, target.name))
            await asyncio.sleep(0.1)
            began = loop.time()
            answer = await second.call(Operation.STATUS, other.name)  # another VM
            took = loop.time() - began
            return answer, took, await first.answer()

    answer, took, rebooted = asyncio.run(scenario())
    assert (answer, rebooted) == (Response.SUCCESS, Response.SUCCESS)
    if daemon == "ours":
        assert took < 0.5, took
    else:
        assert took > 0.5, took


def test_bad_input_costs_one_line_each(lab, daemons):
    """Junk, a request with a wrong magic, and a request cut short: one drop line each in
    our daemon's log, naming the guest; the guest is served afterwards."""
    ours = daemons.ours(SerialSetup(uri=lab.uri, path=lab.dir))

    async def scenario():
        async with GuestEnd(lab.dir / "bad.sock") as guest_end:
            guest = await in_thread(lab.start_with, "bad", [guest_end.path])
            await guest_end.connected()
            request = guest_end.request(Operation.STATUS, guest.name)
            await guest_end.send(CONSOLE)
            await asyncio.sleep(0.3)
            await guest_end.send(b"ABBA" + request[4:])
            await asyncio.sleep(0.3)
            await guest_end.send(request[:30])
            await asyncio.sleep(1.5)  # the daemon drops the stub after 1 s of silence
            return guest, await guest_end.call(Operation.STATUS, guest.name)

    guest, answer = asyncio.run(scenario())
    assert answer is Response.SUCCESS
    drops = [line for line in ours.log().splitlines() if "dropped input" in line]
    assert len(drops) == 3, drops
    assert all(f"guest {guest.uuid} ({guest.name})" in line for line in drops)
    assert f"{len(CONSOLE)} bytes: no serial magic" in drops[0]
    assert "74 bytes: no serial magic" in drops[1]
    assert "30 bytes: incomplete request" in drops[2]
