"""``fence_virt``: fence virtual machines through fence_virtd's tcp or vsock listener.

The console script of this name takes the options of the C agent's getopt string
``dD:P:A:p:M:n:H:o:t:?hVT:S::C:c:k:w:`` (c-suite-spec §4.1, §4.2) and picks its transport
as C does once the options are checked: ``-T``/``ipaddr`` selects TCP, a CID of 2 or more
(``-S``, ``-S3``, ``vsock=3``) selects vsock and wins over TCP. Otherwise C would use the
serial device (``-D``) or the vmchannel address (``-A``, default 10.0.2.179); those modes
are not implemented yet, so such a run stops with one line saying so (exit 1), before any
delay or traffic, also for ``validate-all``. Their options are still parsed and checked
exactly as in C, and listed in ``-h`` and ``-o metadata``.
"""

from __future__ import annotations

import sys

from fence_virt.agents import keys, runner
from fence_virt.agents.console import say
from fence_virt.agents.options import MODE_SERIAL, MODE_TCP, MODE_VSOCK

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
    """An address that TCP mode will use must be an IP literal (C: inet_pton, no DNS).

    C tried to connect anyway and printed a stale errno ("No such file or directory"); we
    refuse it with the other argument errors.
    """
    if args.ipaddr is None or args.cid >= _MIN_CID:
        return
    from fence_virt.agents.addresses import ip_family  # noqa: PLC0415 - loads socket (~5 ms)

    if ip_family(args.ipaddr) is None:
        args.error(f"Invalid IP address: '{args.ipaddr}' (an IPv4 or IPv6 address, not a name)")


def unavailable(args: AgentArgs) -> str:
    """The one line for a run that would need the serial device or vmchannel transport."""
    if args.serial_device is not None:
        mode = f"serial device mode (-D {args.serial_device})"
    else:
        mode = f"vmchannel mode (-A {args.channel_address}, the default without -T, -S or -D)"
    return (
        f"{PROGRAM}: {mode} is not available yet; use -T ADDRESS for fence_virtd's tcp "
        "listener or -S CID for its vsock listener"
    )


def prepare(args: AgentArgs) -> bytes | None:
    """Choose the transport, then read the key; None (after one line) when we cannot fence."""
    select_mode(args)
    if args.mode == MODE_SERIAL:
        say(unavailable(args))
        return None
    return keys.load_key(args)


def fence(args: AgentArgs, key: bytes) -> int:
    """One request over TCP or vsock; sockets and the codec load only now."""
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
