"""``fence_xvm``: fence virtual machines through fence_virtd's multicast listener.

The console script of this name (and, in C, the ``fence_xvm`` link to ``fence_virt``) takes
the options of the C agent's getopt string ``di:a:p:r:C:c:k:M:n:H:uo:t:?hVw:``.
"""

from __future__ import annotations

import sys

from fence_virt.agents import keys, multicast, runner
from fence_virt.agents.options import MODE_MULTICAST

PROGRAM = "fence_xvm"
OPTSTRING = "di:a:p:r:C:c:k:M:n:H:uo:t:?hVw:"

AGENT = runner.Agent(
    PROGRAM,
    OPTSTRING,
    MODE_MULTICAST,
    check=multicast.check_args,
    prepare=keys.load_key,
    send=multicast.fence,
)


def main() -> int:
    """Entry point of the ``fence_xvm`` console script."""
    return runner.main(AGENT)


if __name__ == "__main__":
    sys.exit(main())
