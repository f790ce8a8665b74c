""":class:`HostClusterBackend`: the part cpg and amqp share, with a transport that is a list.

The transport here is the test's own (a flag for "up" and a list of what was sent): the
class under test must route every operation to it, answer the local list and monitor from
libvirt (the in-process ``test:///default``), and stop in its order -- local watches, the
transport, tasks, waiting requests, the fencer.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from fence_virt import Target
from fence_virt.errors import LocalError
from fence_virt.protocol import Operation, Response
from fence_virt_libvirt import HostClusterBackend, LocalVms

pytestmark = pytest.mark.timeout(60)

LOG = logging.getLogger("fence_virt_libvirt.test_hostcluster")


class ListTransport(HostClusterBackend[int]):
    """Sends are recorded; a request waits until the test answers it or the backend stops."""

    def __init__(self) -> None:
        async def publish() -> None:
            self.published += 1

        super().__init__(
            LocalVms(
                "list backend",
                ["test:///default"],
                reboot_timeout=5.0,
                refresh_interval=3600.0,
                publish=publish,
            ),
            LOG,
        )
        self.up = True
        self.published = 0
        self.sent: list[tuple[Operation, str]] = []
        self.events: list[str] = []

    async def start(self) -> None:
        await self._local.open()
        await self._local.watch()

    async def _request(self, operation: Operation, target: Target) -> Response:
        self.sent.append((operation, target.domain))
        answer: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting[len(self.sent)] = answer
        return Response(await answer)

    async def _disconnect(self) -> None:
        self.events.append(f"disconnect (waiting cancelled: {self._cancelled()})")

    def _transport_problem(self) -> str | None:
        return None if self.up else "the list is down"

    def _cancelled(self) -> bool:
        return all(w.cancelled() for w in self._waiting.values())


def target(domain: str) -> Target:
    return Target(domain=domain, by_uuid=False, requester="198.51.100.9", seqno=7)


def test_operations_go_to_the_transport_and_stop_fails_what_waits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        backend = ListTransport()
        await backend.start()
        listed = await backend.hostlist("anyone")
        assert [vm.domain for vm in listed] == ["test"]
        assert await backend.devstatus() is Response.SUCCESS
        backend.up = False
        assert await backend.devstatus() is Response.FAIL
        assert "monitor: the list is down" in caplog.text

        calls = [
            asyncio.create_task(getattr(backend, name)(target(f"vm-{name}")))
            for name in ("off", "on", "reboot", "status")
        ]
        await asyncio.sleep(0.1)
        assert backend.sent == [
            (Operation.OFF, "vm-off"),
            (Operation.ON, "vm-on"),
            (Operation.REBOOT, "vm-reboot"),
            (Operation.STATUS, "vm-status"),
        ]
        backend._waiting[4].set_result(Response.OFF)
        assert await calls[3] is Response.OFF

        forever = asyncio.Event()

        async def waits_forever() -> None:
            await forever.wait()

        async def fails() -> None:
            raise RuntimeError("bug in a handler")

        backend._spawn(waits_forever())
        backend._spawn(fails())
        await asyncio.sleep(0.1)
        assert "handling another host's request failed" in caplog.text
        assert len(backend._tasks) == 1
        spawned = next(iter(backend._tasks))

        await backend.stop()
        # the transport went first, while requests still waited; then they were failed
        assert backend.events == ["disconnect (waiting cancelled: False)"]
        for call in calls[:3]:
            with pytest.raises(asyncio.CancelledError):
                await call
        await asyncio.sleep(0)
        assert spawned.cancelled()
        with pytest.raises(LocalError, match="list backend used before start"):
            await backend.hostlist("anyone")

    asyncio.run(scenario())
