"""The cpg backend object: requests travel through the CPG group to the host that holds the VM.

Every operation this host is asked for is multicast as a REQUEST (agreed order, delivered to
every member, this host too); each member decides from its own libvirt and the shared
:class:`fence_virt.locations.Locations` whether it must act, and the one that acts multicasts
the REPLY addressed to the requester (c-suite-spec §6.2). Differences from C, all on the
side of safety, with the same messages:

* a request waits at most ``request_timeout`` seconds for its REPLY (C waits forever);
* a VM held only by a host that left the group is reported fenced only once that host is
  known to be fenced (quorum + the configured ``fenced_check``), otherwise FAIL (C: success);
* a VM no member ever reported is FAIL for every operation (C: success for off/reboot);
* a VM defined on several hosts is acted on by the host that runs it, or, when none runs
  it, by the lowest node id holding it (C: every holder answers, the first reply wins);
* in ``uuid`` name mode a request naming a VM by name is FAIL; in ``name`` mode a UUID is
  also accepted (C: "not found", then success for off/reboot).

Each request has an id ``N:S`` (requesting node id, its wire seqno) that every member logs
with its decision, so one request can be followed across the hosts' logs.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time

from fence_virt import Target
from fence_virt.errors import BackendError, LocalError, ProtocolError
from fence_virt.locations import SHUTOFF, Located, Locations, Placement
from fence_virt.protocol import Operation, Response
from fence_virt_backend_cpg.config import CpgSettings, NameMode
from fence_virt_backend_cpg.fencing import HostFencing
from fence_virt_backend_cpg.group import CpgGroup
from fence_virt_backend_cpg.libcpg import CpgAddress, Reason
from fence_virt_backend_cpg.wire import (
    BROADCAST,
    FenceMessage,
    MessageType,
    StoreVm,
    decode,
    encode,
)
from fence_virt_libvirt import HostClusterBackend, LocalVms, locate

__all__ = ["CpgBackend"]

log = logging.getLogger("fence_virt_backend_cpg")

#: C never publishes this one (Xen's control domain, cpg-virt.c)
_NEVER_PUBLISHED = "Domain-0"
#: STORE_VM name and UUID fields hold 64 bytes and a NUL
_STORE_TEXT_MAX = 64
#: seconds a message may wait for corosync's flow control before the send fails
_SEND_TIMEOUT = 5.0
_FENCING_OPS = {
    Operation.OFF: "off",
    Operation.ON: "on",
    Operation.REBOOT: "reboot",
    Operation.STATUS: "status",
}


class CpgBackend(HostClusterBackend[int]):
    """:class:`fence_virt.Backend` over a CPG group (``async def``: runs on the loop).

    Requests wait in ``_waiting`` by their CPG seqno."""

    def __init__(self, settings: CpgSettings) -> None:
        local = LocalVms(
            "cpg backend",
            settings.uri,
            reboot_timeout=settings.reboot_timeout,
            refresh_interval=settings.refresh_interval,
            publish=self._publish,
        )
        super().__init__(local, log)
        self._settings = settings
        self._group: CpgGroup | None = None
        self._locations: Locations | None = None
        self._fencing = HostFencing(settings.fenced_check, settings.fenced_check_timeout)
        self._seqnos = itertools.count(1)

    def describe(self) -> str:
        uris = ", ".join(self._settings.uri)
        return f"cpg group {self._settings.group}, local VMs from libvirt {uris}"

    @property
    def locations(self) -> Locations:
        """The shared location model (for tests and diagnostics)."""
        if self._locations is None:
            raise LocalError("cpg backend used before start()")
        return self._locations

    # start and stop --------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect libvirt, join the group (confirmed by corosync), publish the local VMs.

        :raises BackendError: no hypervisor reachable, or corosync not running / refusing.
        """
        await self._local.open()
        group = CpgGroup(
            self._settings.group,
            on_message=self._on_message,
            on_membership=self._on_membership,
            on_reconnected=self._local.changed,
            join_timeout=self._settings.join_timeout,
        )
        self._group = group
        try:
            await group.start()
        except BaseException:
            self._group = None
            await self._local.close()
            raise
        await self._publish()
        await self._local.watch()

    async def _disconnect(self) -> None:
        group, self._group = self._group, None
        if group is not None:
            await group.stop()

    def _transport_problem(self) -> str | None:
        group = self._group
        if group is None or not group.connected:
            return f"not joined to the CPG group {self._settings.group}"
        return None

    # operations (this host is the requester) -------------------------------------------------

    async def _request(self, operation: Operation, target: Target) -> Response:
        group = self._group
        if group is None or group.nodeid is None:
            raise LocalError("cpg backend used before start()")
        seqno = next(self._seqnos) & 0xFFFFFFFF
        rid = f"{group.nodeid}:{seqno}"
        message = FenceMessage(
            MessageType.REQUEST,
            seqno,
            BROADCAST,
            target.domain,
            operation,
            client_seqno=target.seqno & 0xFFFFFFFF,
        )
        answer: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting[seqno] = answer
        try:
            log.info(
                "request %s: %s %s for %s (client seqno %d) sent to %s",
                rid,
                operation.name.lower(),
                target.domain,
                target.requester,
                target.seqno,
                self._settings.group,
            )
            await group.send(encode(message), _SEND_TIMEOUT)
            try:
                async with asyncio.timeout(self._settings.request_timeout):
                    code = await answer
            except TimeoutError:
                raise BackendError(
                    f"request {rid}: {operation.name.lower()} {target.domain}: no member "
                    f"answered within {self._settings.request_timeout:g} s"
                ) from None
        except ProtocolError as exc:
            raise BackendError(f"request {rid}: {exc}") from exc
        finally:
            self._waiting.pop(seqno, None)
        try:
            response = Response(code)
        except ValueError:
            raise BackendError(f"request {rid}: reply code {code} is not a response") from None
        log.info("request %s: answered %s", rid, response.name)
        return response

    # messages from the group (on the loop thread) -------------------------------------------

    def _on_message(self, nodeid: int, _pid: int, data: bytes) -> None:
        try:
            message = decode(data)
        except ProtocolError as exc:
            log.warning("dropped a message from node %d: %s", nodeid, exc)
            return
        if isinstance(message, StoreVm):
            self._stored(nodeid, message)
        elif message.kind is MessageType.REPLY:
            self._replied(nodeid, message)
        else:
            self._spawn(self._handle_request(nodeid, message))

    def _stored(self, nodeid: int, message: StoreVm) -> None:
        if self._locations is None:
            return
        if message.owner != nodeid:
            log.debug("STORE_VM from node %d names owner %d", nodeid, message.owner)
        if nodeid != self._locations.local:
            log.debug(
                "node %d holds VM %s (%s), state %d",
                nodeid,
                message.name,
                message.uuid,
                message.state,
            )
        moved_from = self._locations.report(
            nodeid, message.name, message.uuid, message.state, time.time()
        )
        if moved_from is not None:
            log.info(
                "VM %s (%s) moved from node %d to node %d",
                message.name,
                message.uuid,
                moved_from,
                nodeid,
            )

    def _replied(self, nodeid: int, message: FenceMessage) -> None:
        group = self._group
        if group is None or message.target != group.nodeid:
            return
        waiter = self._waiting.get(message.seqno)
        rid = f"{group.nodeid}:{message.seqno}"
        if waiter is None or waiter.done():
            log.debug(
                "request %s: late or extra reply %d from node %d", rid, message.response, nodeid
            )
            return
        log.info("request %s: node %d replied %d", rid, nodeid, message.response)
        waiter.set_result(message.response)

    def _on_membership(
        self, members: list[CpgAddress], left: list[CpgAddress], joined: list[CpgAddress]
    ) -> None:
        group = self._group
        if group is None or group.nodeid is None:
            return
        if self._locations is None:
            self._locations = Locations(group.nodeid)
        joined_hosts, left_hosts = self._locations.membership(
            (m.nodeid for m in members), time.time()
        )
        log.info(
            "membership of %s: nodes %s; joined %s; left %s",
            self._settings.group,
            sorted({m.nodeid for m in members}),
            _addresses(joined),
            _addresses(left),
        )
        for host in joined_hosts:
            self._fencing.forget(host)
        for host in left_hosts:
            held = [r.name for r in self._locations.reports(host)]
            log.warning(
                "node %d left %s holding %s: its VMs are reported fenced only once node %d "
                "is known to be fenced",
                host,
                self._settings.group,
                ", ".join(held) or "no VMs",
                host,
            )
        if joined:
            # newcomers learn every member's VMs from re-publication, as with C
            self._local.changed()

    # handling a request (any requester, this host included) ---------------------------------

    async def _handle_request(self, sender: int, message: FenceMessage) -> None:
        rid = f"{sender}:{message.seqno}"
        try:
            operation = Operation(message.request)
        except ValueError:
            operation = None
        if operation not in _FENCING_OPS:
            log.warning("request %s: operation %d is not carried over CPG", rid, message.request)
            await self._reply_if_responsible(rid, sender, message, Response.FAIL)
            return
        assert operation is not None
        target = Target(
            domain=message.vm_name,
            by_uuid=False,
            requester=f"cpg node {sender}",
            seqno=message.client_seqno,
        )
        what = f"{_FENCING_OPS[operation]} {message.vm_name}"
        if self._settings.name_mode is NameMode.UUID and target.uuid is None:
            log.warning("request %s: %s: name_mode is uuid and this is no UUID", rid, what)
            await self._reply_if_responsible(rid, sender, message, Response.FAIL)
            return
        try:
            copies = await asyncio.to_thread(locate, self._running().hypervisors, target.domain)
        except BackendError as exc:
            # this host may hold a running copy it cannot see (an unreachable URI) or the name
            # means two VMs here: its answer is a failure, never silence another may fill
            log.error("request %s: %s: %s", rid, what, exc)
            await self._reply(rid, sender, message, Response.FAIL)
            return
        # the running copy if any (libvirt library: every copy of the VM on every URI)
        found = None if copies is None else copies.first
        if found is not None and self._acts_on_local(
            rid, what, found.name, found.uuid, found.state
        ):
            departed = (
                self.locations.active_on_departed(found.uuid) if found.state == SHUTOFF else None
            )
            if departed is not None:
                # off here, but last seen running on a host that left: it may still run there
                response = await self._departed(rid, what, operation, departed)
                await self._reply(rid, sender, message, response)
                return
            response = await self._local.carry_out(operation, target, rid)
            if operation is not Operation.STATUS:
                # the new state, before the answer: the group knows it once the guest does
                await self._publish_one(found.name, found.uuid)
            await self._reply(rid, sender, message, response)
            return
        if found is None:
            await self._not_here(rid, what, sender, message, operation, target)

    def _acts_on_local(self, rid: str, what: str, name: str, uuid: str, state: int) -> bool:
        locations = self.locations
        locations.report(locations.local, name, uuid, state, time.time())
        located = locations.locate(uuid, by_uuid=True)
        if located.owner == locations.local:
            log.info("request %s: %s: here (state %d); carrying it out", rid, what, state)
            return True
        log.info(
            "request %s: %s: defined here (state %d) but %s; node %s acts",
            rid,
            what,
            state,
            located,
            located.owner,
        )
        return False

    async def _not_here(
        self,
        rid: str,
        what: str,
        sender: int,
        message: FenceMessage,
        operation: Operation,
        target: Target,
    ) -> None:
        key = target.uuid or target.domain
        located = self.locations.locate(key, by_uuid=target.uuid is not None)
        if located.placement is Placement.REMOTE:
            log.info("request %s: %s: %s; that node answers", rid, what, located)
            return
        if not self._responsible():
            log.info("request %s: %s: %s; the highest node answers", rid, what, located)
            return
        if located.placement is Placement.DEPARTED:
            response = await self._departed(rid, what, operation, located)
        else:
            log.warning("request %s: %s: no member has reported this VM: FAIL", rid, what)
            response = Response.FAIL
        await self._reply(rid, sender, message, response)

    async def _departed(
        self, rid: str, what: str, operation: Operation, located: Located
    ) -> Response:
        assert located.owner is not None
        if operation is Operation.ON:
            log.warning("request %s: %s: its host node %d has left: FAIL", rid, what, located.owner)
            return Response.FAIL
        fenced, why = await self._fencing.fenced(located.owner, located.left_at, rid)
        if not fenced:
            log.warning(
                "request %s: %s: on node %d, which left but is not known to be fenced (%s): FAIL",
                rid,
                what,
                located.owner,
                why,
            )
            return Response.FAIL
        log.info(
            "request %s: %s: on node %d, which is fenced (%s): the VM is off",
            rid,
            what,
            located.owner,
            why,
        )
        return Response.OFF if operation is Operation.STATUS else Response.SUCCESS

    def _responsible(self) -> bool:
        locations = self.locations
        return locations.highest_member() == locations.local

    async def _reply_if_responsible(
        self, rid: str, sender: int, message: FenceMessage, response: Response
    ) -> None:
        if self._responsible():
            await self._reply(rid, sender, message, response)

    async def _reply(
        self, rid: str, sender: int, message: FenceMessage, response: Response
    ) -> None:
        group = self._group
        if group is None:
            return
        reply = FenceMessage(
            MessageType.REPLY,
            message.seqno,
            sender,
            message.vm_name,
            message.request,
            client_seqno=message.client_seqno,
            response=int(response),
        )
        log.info("request %s: replying %s to node %d", rid, response.name, sender)
        try:
            await group.send(encode(reply), _SEND_TIMEOUT)
        except BackendError as exc:
            log.error("request %s: could not send the reply: %s", rid, exc)

    # publishing local VMs ---------------------------------------------------------------------

    async def _publish(self) -> None:
        """Re-read the local VMs, replace them in the model and multicast one STORE_VM each."""
        group = self._group
        if group is None or group.nodeid is None or not group.connected:
            return
        try:
            vms = await asyncio.to_thread(self._running().hostlist)
        except BackendError as exc:
            log.warning("cannot list the local VMs to publish them: %s", exc)
            return
        published = [vm for vm in vms if self._publishable(vm.domain, vm.uuid)]
        if self._locations is not None:
            rows = [(vm.domain, vm.uuid, vm.state) for vm in published]
            for gone in self._locations.replace_host(group.nodeid, rows, time.time()):
                log.info("VM %s (%s) is no longer on this host", gone.name, gone.uuid)
        for vm in published:
            await self._send_store(vm.domain, vm.uuid, vm.state)

    async def _publish_one(self, name: str, uuid: str) -> None:
        try:
            copies = await asyncio.to_thread(locate, self._running().hypervisors, uuid)
        except BackendError as exc:
            log.warning("cannot read VM %s (%s) to publish it: %s", name, uuid, exc)
            return
        state = SHUTOFF if copies is None else copies.first.state
        if self._publishable(name, uuid):
            await self._send_store(name, uuid, state)

    def _publishable(self, name: str, uuid: str) -> bool:
        if name == _NEVER_PUBLISHED:
            return False
        if max(len(name.encode()), len(uuid.encode())) > _STORE_TEXT_MAX:
            log.warning("VM %s: name longer than %d bytes; not published", name, _STORE_TEXT_MAX)
            return False
        return True

    async def _send_store(self, name: str, uuid: str, state: int) -> None:
        group = self._group
        if group is None or group.nodeid is None:
            return
        try:
            await group.send(encode(StoreVm(name, uuid, group.nodeid, state)), _SEND_TIMEOUT)
        except BackendError as exc:
            log.warning("could not publish VM %s: %s", name, exc)


def _addresses(addresses: list[CpgAddress]) -> str:
    parts = []
    for a in addresses:
        try:
            reason = Reason(a.reason).name.lower()
        except ValueError:
            reason = str(a.reason)
        parts.append(f"{a.nodeid}/{a.pid} ({reason})")
    return ", ".join(parts) or "none"
