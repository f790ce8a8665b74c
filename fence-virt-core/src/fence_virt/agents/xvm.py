"""``fence_xvm``: fence virtual machines through fence_virtd's multicast listener.

The console script of this name (and, in C, the ``fence_xvm`` link to ``fence_virt``) takes
the options of the C agent's getopt string ``di:a:p:r:C:c:k:M:n:H:uo:t:?hVw:``.
"""

from __future__ import annotations

import sys

from fence_virt.agents import keys, runner
from fence_virt.agents.options import FAMILY_AUTO, FAMILY_IPV6, MODE_MULTICAST
from fence_virt.protocol.constants import DEFAULT_IPV4_GROUP, DEFAULT_IPV6_GROUP

TYPE_CHECKING = False  # not typing's: +9-11 ms per agent start, see fence_virt.agents
if TYPE_CHECKING:
    from fence_virt.agents.options import AgentArgs

PROGRAM = "fence_xvm"
OPTSTRING = "di:a:p:r:C:c:k:M:n:H:uo:t:?hVw:"


def check_args(args: AgentArgs) -> None:
    """The group must be an address literal of the chosen family (no DNS)."""
    if args.family == FAMILY_AUTO or args.mcast_address is None:
        return
    default = DEFAULT_IPV6_GROUP if args.family == FAMILY_IPV6 else DEFAULT_IPV4_GROUP
    if args.mcast_address == default:
        # a valid literal: -o metadata with the defaults need not load socket (~5 ms)
        return
    import socket  # noqa: PLC0415

    family = socket.AF_INET6 if args.family == FAMILY_IPV6 else socket.AF_INET
    try:
        socket.inet_pton(family, args.mcast_address)
    except OSError:
        args.error(f"Invalid multicast address: '{args.mcast_address}'")


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
