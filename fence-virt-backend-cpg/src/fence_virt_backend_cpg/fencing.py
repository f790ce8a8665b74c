"""Is a host that left the group known to be fenced? The dead-host rule's one question.

A VM whose host left the CPG group may still run there (a network split, a hung corosync):
reporting it fenced would let the guest cluster start its resources twice. So this host
answers "fenced" only when both hold:

1. **its own corosync partition is quorate** (``quorum_getquorate``): a partition without
   quorum may be the one that is cut off, and its view of who is dead means nothing;
2. **the configured ``fenced_check`` command exits 0** for that host: run as
   ``COMMAND NODEID LEFT_AT`` by core's :class:`fence_virt.hostfencing.FencedCheck` (LEFT_AT:
   when it left the group), shared with every distributed backend; the README has an example.

Without a ``fenced_check`` every VM of a departed host stays FAIL until the host rejoins
(C's cpg backend answers success at once, c-suite-spec §6.2). A positive check is kept until
the host joins again; quorum is asked every time.
"""

from __future__ import annotations

from pathlib import Path

from fence_virt.hostfencing import FencedCheck
from fence_virt_backend_cpg.libcpg import CpgError, quorate

__all__ = ["HostFencing"]


class HostFencing:
    """Answers :meth:`fenced` for departed hosts; remembers positive answers."""

    def __init__(self, check: Path | None, timeout: float) -> None:
        self._check = FencedCheck(check, timeout)

    def forget(self, host: int) -> None:
        """``host`` joined again: a later departure needs a new fencing."""
        self._check.forget(host)

    async def fenced(self, host: int, left_at: float | None, rid: str) -> tuple[bool, str]:
        """``(True, why)`` only if ``host`` is known to be fenced; else ``(False, why)``.

        Runs on the event loop (the quorum question is a short IPC to the local corosync,
        made on the loop thread because that thread is in corosync's network namespace).
        """
        try:
            has_quorum = quorate()
        except CpgError as exc:
            return False, f"cannot ask corosync for quorum: {exc}"
        if not has_quorum:
            # asked first, also for a host found fenced before: this partition may be the
            # one cut off since
            return False, "this partition has no quorum"
        fenced, why = await self._check.fenced(host, left_at, rid)
        return fenced, f"quorate, and {why}" if fenced else why
