"""The amqp backend object: hosts announce their VMs over the broker and send each request to
the host that holds the VM.

Ownership and dead hosts follow core's :class:`fence_virt.locations.Locations` and
:class:`fence_virt.hostfencing.FencedCheck`, the same rules as the cpg backend:

* the requesting host decides from its own libvirt and the announcements who acts: itself
  (the VM is here and no other host holds it active), the owner (the request goes to that
  host's queue, with a TTL of ``request_timeout``; the owner checks its own libvirt again and
  answers FAIL if the VM is not its to act on), or nobody (FAIL);
* a host is a member while its announcements keep arriving: one missing for
  ``presumed_dead_after`` seconds makes it *departed*, and its VMs are reported fenced only
  if this host still hears itself through the broker (its own announcement is fresh) and the
  ``fenced_check`` confirms the host fenced since it was last heard; otherwise FAIL;
* a VM no host announced is FAIL; turning a VM on whose host departed is FAIL.
* an owner drops a request older than ``request_timeout`` by its ``sent`` time (hosts'
  clocks must agree to well within ``request_timeout``, as NTP keeps them): the requester
  has answered FAIL by then.

At most once: requests are never redelivered or retried (see :mod:`.link`); when the broker
connection is lost every waiting request fails at once, and a request id an owner has seen
is never carried out again. Each request has an id ``HOST:SEQ`` that both hosts log.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import OrderedDict

from aio_pika.abc import AbstractIncomingMessage

from fence_virt import Target
from fence_virt.errors import BackendError, LocalError, ProtocolError
from fence_virt.hostfencing import FencedCheck
from fence_virt.locations import SHUTOFF, Located, Locations, Placement
from fence_virt.protocol import Operation, Response
from fence_virt_backend_amqp.config import AmqpSettings
from fence_virt_backend_amqp.link import ANNOUNCE_KEY, BrokerLink
from fence_virt_backend_amqp.wire import Announce, Reply, Request, decode, encode, host_key
from fence_virt_libvirt import HostClusterBackend, LocalVms, locate
from fence_virt_libvirt import (
    Located as Domain,
)

__all__ = ["AmqpBackend"]

log = logging.getLogger("fence_virt_backend_amqp")

_OPS = {
    Operation.OFF: "off",
    Operation.ON: "on",
    Operation.REBOOT: "reboot",
    Operation.STATUS: "status",
}
_BY_NAME = {name: op for op, name in _OPS.items()}
#: request ids an owner remembers, so that none is carried out twice
_SEEN_KEPT = 4096


class AmqpBackend(HostClusterBackend[str]):
    """:class:`fence_virt.Backend` over an AMQP broker (``async def``: runs on the loop).

    Requests wait in ``_waiting`` by their id ``HOST:SEQ``."""

    def __init__(self, settings: AmqpSettings) -> None:
        local = LocalVms(
            "amqp backend",
            settings.uri,
            reboot_timeout=settings.reboot_timeout,
            refresh_interval=settings.refresh_interval,
            publish=self._refresh,
        )
        super().__init__(local, log)
        self._settings = settings
        self._host = settings.host_id
        self._link: BrokerLink | None = None
        self._locations = Locations(settings.host_id)
        self._heard: dict[int, float] = {}
        self._fencing = FencedCheck(settings.fenced_check, settings.fenced_check_timeout)
        self._seqnos = itertools.count(1)
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._hello = True

    def describe(self) -> str:
        return (
            f"amqp exchange {self._settings.exchange} as host {self._host}, "
            f"local VMs from libvirt {', '.join(self._settings.uri)}"
        )

    @property
    def locations(self) -> Locations:
        """The shared location model (for tests and diagnostics)."""
        return self._locations

    # start and stop --------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect libvirt and the broker, announce the local VMs, watch libvirt events.

        :raises BackendError: no hypervisor reachable; broker unreachable, credentials
            refused or vhost not allowed (the message says which).
        """
        await self._local.open()
        link = BrokerLink(self._settings, self._on_message, self._on_lost, self._on_up)
        try:
            await link.start()
        except BaseException:
            await self._local.close()
            raise
        self._link = link
        log.info("connected to the broker %s, exchange %s", link.where, self._settings.exchange)
        await self._announce()
        await self._local.watch()

    async def _disconnect(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            await link.stop()

    def _transport_problem(self) -> str | None:
        if self._link is None or not self._link.connected:
            return "not connected to the broker"
        return None

    # operations (this host is the requester) -------------------------------------------------

    async def _request(self, operation: Operation, target: Target) -> Response:
        rid = f"{self._host}:{next(self._seqnos)}"
        what = f"{_OPS[operation]} {target.domain}"
        log.info(
            "request %s: %s for %s (client seqno %d)", rid, what, target.requester, target.seqno
        )
        self._update_membership()
        found = await self._local_copy(target.domain)
        if found is not None:
            located = self._report_local(found.name, found.uuid, found.state)
        else:
            key = target.uuid or target.domain
            located = self._locations.locate(key, by_uuid=target.uuid is not None)
        if located.placement is Placement.LOCAL:
            response = await self._act_here(rid, what, operation, target, found)
        elif located.placement is Placement.REMOTE:
            assert located.owner is not None
            log.info("request %s: %s: %s; sending it there", rid, what, located)
            response = await self._ask(rid, located.owner, operation, target)
        elif located.placement is Placement.DEPARTED:
            response = await self._departed(rid, what, operation, located)
        else:
            log.warning("request %s: %s: no host has announced this VM: FAIL", rid, what)
            response = Response.FAIL
        log.info("request %s: answered %s", rid, response.name)
        return response

    def _report_local(self, name: str, uuid: str, state: int) -> Located:
        self._locations.report(self._host, name, uuid, state, time.time())
        return self._locations.locate(uuid, by_uuid=True)

    async def _local_copy(self, domain: str) -> Domain | None:
        """The copy of ``domain`` on this host's hypervisors that decides (the running one if
        any: the libvirt library sees every copy on every URI); ``None`` if none has it.

        :raises BackendError: a URI cannot answer while every copy seen is shut off, or the
            name means different VMs (:class:`fence_virt_libvirt.AmbiguousName`).
        """
        copies = await asyncio.to_thread(locate, self._running().hypervisors, domain)
        return None if copies is None else copies.first

    async def _act_here(
        self, rid: str, what: str, operation: Operation, target: Target, found: Domain | None
    ) -> Response:
        assert found is not None
        state = found.state
        if state == SHUTOFF:
            departed = self._locations.active_on_departed(found.uuid)
            if departed is not None:
                # off here, but last announced running by a host that departed: it may run there
                return await self._departed(rid, what, operation, departed)
        log.info("request %s: %s: here (state %d); carrying it out", rid, what, state)
        response = await self._local.carry_out(operation, target, rid)
        if operation is not Operation.STATUS:
            self._local.changed()
        return response

    async def _ask(self, rid: str, owner: int, operation: Operation, target: Target) -> Response:
        link = self._link
        if link is None:
            raise LocalError("amqp backend used before start()")
        timeout = self._settings.request_timeout
        answer: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = answer
        body = encode(
            Request(self._host, _OPS[operation], target.domain, target.seqno, time.time())
        )
        try:
            await link.publish(
                body,
                host_key(owner),
                correlation_id=rid,
                reply_to=host_key(self._host),
                ttl=timeout,
            )
            async with asyncio.timeout(timeout):
                code = await answer
        except TimeoutError:
            raise BackendError(
                f"request {rid}: host {owner} did not answer within {timeout:g} s"
            ) from None
        except BackendError as exc:
            raise BackendError(f"request {rid}: to host {owner}: {exc}") from None
        finally:
            self._waiting.pop(rid, None)
        try:
            return Response(code)
        except ValueError:
            raise BackendError(f"request {rid}: reply code {code} is not a response") from None

    async def _departed(
        self, rid: str, what: str, operation: Operation, located: Located
    ) -> Response:
        host = located.owner
        assert host is not None
        if operation is Operation.ON:
            log.warning("request %s: %s: its host %d has departed: FAIL", rid, what, host)
            return Response.FAIL
        fenced, why = await self._host_fenced(host, rid)
        if not fenced:
            log.warning(
                "request %s: %s: on host %d, which departed but is not known to be fenced "
                "(%s): FAIL",
                rid,
                what,
                host,
                why,
            )
            return Response.FAIL
        log.info(
            "request %s: %s: on host %d, which is fenced (%s): the VM is off", rid, what, host, why
        )
        return Response.OFF if operation is Operation.STATUS else Response.SUCCESS

    async def _host_fenced(self, host: int, rid: str) -> tuple[bool, str]:
        # this host's own view counts only while it hears itself through the broker: a host
        # cut off from the broker sees every other host depart
        mine = self._heard.get(self._host)
        link = self._link
        now = time.time()
        if link is None or not link.connected or mine is None:
            return False, "this host is not connected to the broker"
        if now - mine > self._settings.presumed_dead_after:
            return False, f"this host's own announcements stopped {now - mine:.0f} s ago"
        return await self._fencing.fenced(host, self._heard.get(host), rid)

    # messages from the broker (on the loop) --------------------------------------------------

    def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            decoded = decode(message.body)
        except ProtocolError as exc:
            log.warning("dropped a message (routing key %s): %s", message.routing_key, exc)
            return
        if isinstance(decoded, Announce):
            self._announced(decoded)
        elif isinstance(decoded, Reply):
            self._replied(decoded, message.correlation_id)
        else:
            self._spawn(self._handle(decoded, message.correlation_id, message.reply_to))

    def _announced(self, message: Announce) -> None:
        now = time.time()
        back = message.host not in self._heard or not self._is_member(message.host, now)
        self._heard[message.host] = now
        if back:
            self._fencing.forget(message.host)
        self._update_membership(now)
        rows = [(name, uuid, state) for name, uuid, state in message.vms]
        if message.host != self._host:
            before = {r.uuid: r for r in self._locations.reports()}
            self._locations.replace_host(message.host, rows, now)
            for name, uuid, _state in rows:
                located = self._locations.locate(uuid, by_uuid=True)
                old = before.get(uuid)
                if located.owner == message.host and old is not None and old.host != message.host:
                    log.info(
                        "VM %s (%s) moved from host %d to host %d",
                        name,
                        uuid,
                        old.host,
                        message.host,
                    )
        if message.hello and message.host != self._host:
            self._local.changed()

    def _is_member(self, host: int, now: float) -> bool:
        heard = self._heard.get(host)
        return heard is not None and now - heard <= self._settings.presumed_dead_after

    def _update_membership(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        members = {h for h in self._heard if self._is_member(h, now)} | {self._host}
        joined, left = self._locations.membership(members, now)
        for host in sorted(joined - {self._host}):
            log.info("host %d announces on %s", host, self._settings.exchange)
        for host in sorted(left):
            held = ", ".join(r.name for r in self._locations.reports(host)) or "no VMs"
            log.warning(
                "host %d departed (no announcement for %g s) holding %s: its VMs are reported "
                "fenced only once host %d is known to be fenced",
                host,
                self._settings.presumed_dead_after,
                held,
                host,
            )

    def _replied(self, message: Reply, rid: str | None) -> None:
        waiter = self._waiting.get(rid or "")
        if waiter is None or waiter.done():
            log.info(
                "request %s: late or unknown reply %d from host %d; dropped",
                rid,
                message.response,
                message.host,
            )
            return
        log.info("request %s: host %d replied %d", rid, message.host, message.response)
        waiter.set_result(message.response)

    async def _handle(self, request: Request, rid: str | None, reply_to: str | None) -> None:
        if not rid or not reply_to:
            log.warning("dropped a request from host %d without id or reply address", request.host)
            return
        if rid in self._seen:
            log.warning("request %s: seen before; not carried out again", rid)
            return
        self._seen[rid] = None
        while len(self._seen) > _SEEN_KEPT:
            self._seen.popitem(last=False)
        age = time.time() - request.sent
        if age > self._settings.request_timeout:
            # the requester has given up and answered FAIL: acting now would surprise it
            log.warning("request %s: sent %.1f s ago, past request_timeout: dropped", rid, age)
            return
        response = await self._decide(request, rid)
        log.info("request %s: replying %s to host %d", rid, response.name, request.host)
        link = self._link
        if link is None:
            return
        try:
            await link.publish(
                encode(Reply(self._host, int(response))),
                reply_to,
                correlation_id=rid,
                ttl=self._settings.request_timeout,
            )
        except BackendError as exc:
            log.error("request %s: could not send the reply: %s", rid, exc)

    async def _decide(self, request: Request, rid: str) -> Response:
        operation = _BY_NAME.get(request.op)
        what = f"{request.op} {request.vm}"
        if operation is None:
            log.warning("request %s: unknown operation %r: FAIL", rid, request.op)
            return Response.FAIL
        target = Target(
            domain=request.vm,
            by_uuid=False,
            requester=f"amqp host {request.host}",
            seqno=request.client_seqno,
        )
        try:
            found = await self._local_copy(request.vm)
        except BackendError as exc:
            # a copy may run behind a URI that cannot answer, or the name means two VMs here
            log.error("request %s: %s: %s: FAIL", rid, what, exc)
            return Response.FAIL
        if found is None:
            log.warning("request %s: %s: not on this host: FAIL", rid, what)
            return Response.FAIL
        located = self._report_local(found.name, found.uuid, found.state)
        if located.placement is not Placement.LOCAL:
            log.warning(
                "request %s: %s: defined here (state %d) but %s: FAIL",
                rid,
                what,
                found.state,
                located,
            )
            return Response.FAIL
        return await self._act_here(rid, what, operation, target, found)

    def _on_lost(self, why: str) -> None:
        for rid, waiter in list(self._waiting.items()):
            if not waiter.done():
                log.error("request %s: the broker connection was lost (%s): failing it", rid, why)
                waiter.set_exception(BackendError(f"broker connection lost: {why}"))

    def _on_up(self) -> None:
        self._hello = True
        self._local.changed()

    # announcing local VMs ---------------------------------------------------------------------

    async def _announce(self) -> None:
        """Re-read the local VMs, record them and announce the complete list."""
        link = self._link
        if link is None or not link.connected:
            return
        try:
            vms = await asyncio.to_thread(self._running().hostlist)
        except BackendError as exc:
            log.warning("cannot list the local VMs to announce them: %s", exc)
            return
        rows = tuple((vm.domain, vm.uuid, vm.state) for vm in vms)
        for gone in self._locations.replace_host(self._host, rows, time.time()):
            log.info("VM %s (%s) is no longer on this host", gone.name, gone.uuid)
        hello, self._hello = self._hello, False
        try:
            await link.publish(
                encode(Announce(self._host, rows, hello)),
                ANNOUNCE_KEY,
                ttl=self._settings.presumed_dead_after,
            )
        except BackendError as exc:
            self._hello = self._hello or hello
            log.warning("could not announce the local VMs: %s", exc)

    async def _refresh(self) -> None:
        """The refresh loop's step (:class:`fence_virt_libvirt.LocalVms`): membership, then
        the announcement."""
        self._update_membership()
        await self._announce()
