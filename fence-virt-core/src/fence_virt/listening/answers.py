"""Carry out a decoded request through the Dispatcher and encode the host's answer.

One rule for every transport (the C listeners' ``do_fence_request``): null, off, reboot, on,
status and devstatus go to :meth:`fence_virt.types.Dispatcher.fence`; list goes to
:meth:`~fence_virt.types.Dispatcher.hostlist`; any other code (7 metadata and 8 validate-all
are client-local) answers ``FAIL`` without asking the backend. So does an authentic request
whose domain does not decode (:class:`~fence_virt.protocol.UnservableRequest`: a Latin-1
name, no NUL), with one warning: C looks such a name up and fails at once, and a client
left without an answer waits its whole timeout. A failed list answers ``FAIL`` alone. Only
the encoding differs:

* :func:`answer` (multicast, tcp, vsock; c-suite-spec §2.5, §2.6): one result byte, or
  0xFD, the records, the terminator and a result byte;
* :func:`answer_serial` (serial, vmchannel; §2.6, §2.7): one 5-byte ``serial_resp_t``, or
  the same stream with the 0xFD and the result byte each sent as a ``serial_resp_t``.

The requester is whatever identity the listener vouches for (connect-back IP, peer IP,
vsock CID, the guest's UUID); static maps and logs use it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fence_virt.errors import FenceVirtError
from fence_virt.protocol import (
    RF_UUID,
    FenceRequest,
    HostState,
    Operation,
    Response,
    SerialRequest,
    SerialResponse,
    UnservableRequest,
    encode_hostlist,
    encode_serial_hostlist,
)
from fence_virt.types import Dispatcher, Target

__all__ = ["FENCE_OPERATIONS", "answer", "answer_serial"]

_default_log = logging.getLogger("fence_virt.listening")

#: operations a host carries out through Dispatcher.fence; 6 (list) has its own call
FENCE_OPERATIONS = frozenset(
    {
        Operation.NULL,
        Operation.OFF,
        Operation.REBOOT,
        Operation.ON,
        Operation.STATUS,
        Operation.DEVSTATUS,
    }
)


#: operations whose domain field plays no part (C ignores it): served even when it does not
#: decode
_UNTARGETED = frozenset({Operation.DEVSTATUS, Operation.HOSTLIST})


async def answer(
    request: FenceRequest | UnservableRequest,
    requester: str,
    dispatcher: Dispatcher,
    *,
    log: logging.Logger | None = None,
) -> bytes:
    """The bytes answering a verified fence_req; never raises for a backend failure.

    :param request: the verified request, or the :class:`~fence_virt.protocol.
        UnservableRequest` :func:`~fence_virt.protocol.verify_request` raised for an authentic
        one it could not decode: that one answers ``FAIL`` and the dispatcher is not asked,
        unless it is a list or monitor request, whose domain plays no part (served as usual).
    :param requester: the identity static maps check (IP text, vsock CID in decimal).
    :param log: where the three warnings (unservable request, unknown operation, failed
        list) go; the listener's own logger, so lines name the listener.
    :returns: one result byte, or the host-list stream (0xFD ... terminator, 0).
    """
    if isinstance(request, UnservableRequest):
        if request.request.request not in _UNTARGETED:
            return bytes([_refuse_unservable(request, requester, log or _default_log)])
        request = request.request  # the domain plays no part: served as C serves it
    target = Target(
        domain=request.domain,
        by_uuid=request.by_uuid,
        requester=requester,
        seqno=request.seqno,
    )
    outcome = await _carry_out(request.request, target, dispatcher, log or _default_log)
    if isinstance(outcome, int):
        return bytes([outcome])
    return encode_hostlist(outcome, Response.SUCCESS)


async def answer_serial(
    request: SerialRequest,
    requester: str,
    dispatcher: Dispatcher,
    *,
    log: logging.Logger | None = None,
) -> bytes:
    """The bytes answering a serial_req; never raises for a backend failure.

    The magic and flags are not checked (the C host checks neither; a
    :class:`~fence_virt.listening.SerialRequestReader` only yields requests that carry the
    magic); the RF_UUID flag bit, which C clients never set, is honoured as in a fence_req.

    :param requester: the identity static maps check: the UUID of the guest whose socket the
        request came in on (c-suite-spec §7.3).
    :param log: as for :func:`answer`.
    :returns: one 5-byte serial_resp_t, or the serial host-list stream.
    """
    target = Target(
        domain=request.domain,
        by_uuid=bool(request.flags & RF_UUID),
        requester=requester,
        seqno=request.seqno,
    )
    outcome = await _carry_out(request.request, target, dispatcher, log or _default_log)
    if isinstance(outcome, int):
        return SerialResponse(outcome).encode()
    return encode_serial_hostlist(outcome, Response.SUCCESS)


def _refuse_unservable(problem: UnservableRequest, requester: str, log: logging.Logger) -> Response:
    """Log the one line for an authentic request that cannot be carried out; ``FAIL``."""
    request = problem.request
    log.warning(
        "request %d seqno %d domain %s from %s: cannot be carried out (%s): answered %d",
        request.request,
        request.seqno,
        problem.shown_domain or "-",
        requester,
        problem,
        Response.FAIL,
    )
    return Response.FAIL


async def _carry_out(
    code: int, target: Target, dispatcher: Dispatcher, log: logging.Logger
) -> Response | Sequence[HostState]:
    """A response code, or the VMs to list (for HOSTLIST)."""
    if code == Operation.HOSTLIST:
        try:
            return await dispatcher.hostlist(target.requester)
        except FenceVirtError as exc:
            log.error("list for %s failed: %s", target.requester, exc)
            return Response.FAIL
    if code not in FENCE_OPERATIONS:
        log.warning("request %d from %s: no such operation", code, target.requester)
        return Response.FAIL
    return await dispatcher.fence(Operation(code), target)
