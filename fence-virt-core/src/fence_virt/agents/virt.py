"""``fence_virt``: fence virtual machines through fence_virtd's tcp, vsock, serial or
vmchannel listener.

The console script of this name takes the options of the C agent's getopt string
``dD:P:A:p:M:n:H:o:t:?hVT:S::C:c:k:w:`` (c-suite-spec §4.1, §4.2) and picks its transport
as C does once the options are checked: ``-T``/``ipaddr`` selects TCP, a CID of 2 or more
(``-S``, ``-S3``, ``vsock=3``) selects vsock and wins over TCP (:mod:`.stream`, signed
requests, the key file). Otherwise the serial transports run (:mod:`.line`, no key): the
serial device when ``-D``/``serial_device`` is given, else a vmchannel TCP connection to
``-A``/``channel_address`` (default 10.0.2.179, C's guestfwd address) and ``-p``.

Argument checks beyond C's: the address the chosen TCP transport connects to (``-T`` or
``-A``) must be an IP literal (C tried no connect and printed a stale errno), and
``validate-all`` with ``-D`` also checks ``-P`` the way the run would (C said valid, then
every run failed).
"""

from __future__ import annotations

import sys

from fence_virt.agents import runner
from fence_virt.agents.options import MODE_SERIAL, MODE_TCP, MODE_VSOCK
from fence_virt.protocol.enums import Operation

TYPE_CHECKING = False  # not typing's: +9-11 ms per agent start, see fence_virt.agents
if TYPE_CHECKING:
    from fence_virt.agents.options import AgentArgs

PROGRAM = "fence_virt"
OPTSTRING = "dD:P:A:p:M:n:H:o:t:?hVT:S::C:c:k:w:"
#: C's lowest usable CID (0 and 1 are the hypervisor's and loopback's; 2 is the host)
_MIN_CID = 2


def select_mode(args: AgentArgs) -> None:
    """C's switch after the checks: TCP when an address is given, then vsock when a CID is."""
    if args.ipaddr is not None:
        args.mode = MODE_TCP
    if args.cid >= _MIN_CID:
        args.mode = MODE_VSOCK


def check_args(args: AgentArgs) -> None:
    """The address a TCP transport will use must be an IP literal (C: inet_pton, no DNS).

    That is ``-T`` in TCP mode and ``-A`` in vmchannel mode (no ``-T``, ``-S`` or ``-D``;
    not for ``-o metadata``, which Pacemaker asks every agent for: it never connects, and the
    check loads :mod:`socket`).
    C tried to connect anyway and printed a stale errno (``No such file or directory``,
    ``Success``); we refuse it with the other argument errors.
    """
    if args.cid >= _MIN_CID:
        return
    if args.ipaddr is not None:
        address = args.ipaddr
    elif args.serial_device is None and args.op != Operation.METADATA:
        address = args.channel_address
    else:
        return
    from fence_virt.agents.addresses import ip_family  # noqa: PLC0415 - loads socket (~5 ms)

    if ip_family(address) is None:
        args.error(f"Invalid IP address: '{address}' (an IPv4 or IPv6 address, not a name)")


def prepare(args: AgentArgs) -> bytes | None:
    """Choose the transport, then what it needs before any delay: the key for TCP and vsock
    (None after one line when it cannot be read); nothing (b"") for the serial transports,
    whose ``-P`` value ``validate-all`` checks as a run would (None after C's lines)."""
    select_mode(args)
    if args.mode != MODE_SERIAL:
        from fence_virt.agents import keys  # noqa: PLC0415 - not on the serial path

        return keys.load_key(args)
    if args.op == Operation.VALIDATEALL and args.serial_device is not None:
        from fence_virt.agents.device import check_params  # noqa: PLC0415 - termios

        return b"" if check_params(args.serial_params) else None
    return b""


def fence(args: AgentArgs, key: bytes) -> int:
    """One request; sockets, termios and the codec load only now."""
    if args.mode == MODE_SERIAL:
        from fence_virt.agents import line  # noqa: PLC0415

        if args.serial_device is not None:
            return line.fence_device(args)
        return line.fence_channel(args)
    from fence_virt.agents import stream  # noqa: PLC0415

    if args.mode == MODE_VSOCK:
        return stream.fence_vsock(args, key)
    return stream.fence_tcp(args, key)


AGENT = runner.Agent(
    PROGRAM,
    OPTSTRING,
    MODE_SERIAL,
    check=check_args,
    prepare=prepare,
    send=fence,
)


def main() -> int:
    """Entry point of the ``fence_virt`` console script."""
    return runner.main(AGENT)


if __name__ == "__main__":
    sys.exit(main())
