"""``fence_xvm``: fence virtual machines through fence_virtd's multicast listener.

The console script of this name (and, in C, the ``fence_xvm`` link to ``fence_virt``) takes
the options of the C agent's getopt string ``di:a:p:r:C:c:k:M:n:H:uo:t:?hVw:``.
"""

from __future__ import annotations

import sys

from fence_virt.agents import keys, runner
from fence_virt.agents.options import FAMILY_AUTO, FAMILY_IPV4, FAMILY_IPV6, MODE_MULTICAST
from fence_virt.protocol.constants import DEFAULT_IPV4_GROUP, DEFAULT_IPV6_GROUP

TYPE_CHECKING = False  # not typing's: +9-11 ms per agent start, see fence_virt.agents
if TYPE_CHECKING:
    from fence_virt.agents.options import AgentArgs

PROGRAM = "fence_xvm"
OPTSTRING = "di:a:p:r:C:c:k:M:n:H:uo:t:?hVw:"


#: what a group of each family looks like, for the message about a unicast address
_GROUPS = {FAMILY_IPV4: "224.0.0.0/4", FAMILY_IPV6: "ff00::/8"}


def check_args(args: AgentArgs) -> None:
    """The group must be a multicast address literal of the chosen family (no DNS).

    A unicast address (``-a 127.0.0.1``) is an argument error, also for ``validate-all``:
    C fails to join it ("Failed to add multicast membership"), sends nothing and times out,
    so no working configuration has one; we say so before anything is sent.
    """
    if args.family == FAMILY_AUTO or args.mcast_address is None:
        return
    default = DEFAULT_IPV6_GROUP if args.family == FAMILY_IPV6 else DEFAULT_IPV4_GROUP
    if args.mcast_address == default:
        # a valid literal: -o metadata with the defaults need not load socket (~5 ms)
        return
    import socket  # noqa: PLC0415

    family = socket.AF_INET6 if args.family == FAMILY_IPV6 else socket.AF_INET
    try:
        packed = socket.inet_pton(family, args.mcast_address)
    except OSError:
        args.error(f"Invalid multicast address: '{args.mcast_address}'")
        return
    if not _is_group(packed):
        args.error(
            f"Invalid multicast address: '{args.mcast_address}' is not a multicast group "
            f"({_GROUPS[args.family]})"
        )


def _is_group(packed: bytes) -> bool:
    """224.0.0.0/4 (RFC 5771) or ff00::/8 (RFC 4291 §2.7), from the packed address."""
    if len(packed) == 4:
        return 224 <= packed[0] <= 239
    return packed[0] == 0xFF


def fence(args: AgentArgs, key: bytes) -> int:
    """One request over multicast; sockets and the codec load only now."""
    from fence_virt.agents import multicast  # noqa: PLC0415

    return multicast.fence(args, key)


AGENT = runner.Agent(
    PROGRAM,
    OPTSTRING,
    MODE_MULTICAST,
    check=check_args,
    prepare=keys.load_key,
    send=fence,
)


def main() -> int:
    """Entry point of the ``fence_xvm`` console script."""
    return runner.main(AGENT)


if __name__ == "__main__":
    sys.exit(main())
