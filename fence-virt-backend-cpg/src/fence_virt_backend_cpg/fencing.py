"""Is a host that left the group known to be fenced? The dead-host rule's one question.

A VM whose host left the CPG group may still run there (a network split, a hung corosync):
reporting it fenced would let the guest cluster start its resources twice. So this host
answers "fenced" only when both hold:

1. **its own corosync partition is quorate** (``quorum_getquorate``): a partition without
   quorum may be the one that is cut off, and its view of who is dead means nothing;
2. **the configured ``fenced_check`` command exits 0** for that host: run as
   ``COMMAND NODEID LEFT_AT`` (LEFT_AT: when it left the group, seconds since the epoch, an
   integer), it must succeed only if the host cluster has fenced that node *after* it left,
   e.g. from Pacemaker's fencing history (``stonith_admin --history NODE``); the README has
   an example. It gets ``fenced_check_timeout`` seconds; a timeout or any other exit status
   is "not known to be fenced".

Without a ``fenced_check`` every VM of a departed host stays FAIL until the host rejoins
(C's cpg backend answers success at once, c-suite-spec §6.2). A positive check is kept until
the host joins again; quorum is asked every time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path

from fence_virt_backend_cpg.libcpg import CpgError, quorate

__all__ = ["HostFencing"]

log = logging.getLogger("fence_virt_backend_cpg")

#: bytes of the check's output kept for the log
_OUTPUT_KEPT = 400


class HostFencing:
    """Answers :meth:`fenced` for departed hosts; remembers positive answers."""

    def __init__(self, check: Path | None, timeout: float) -> None:
        self._check = check
        self._timeout = timeout
        self._fenced: set[int] = set()

    def forget(self, host: int) -> None:
        """``host`` joined again: a later departure needs a new fencing."""
        self._fenced.discard(host)

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
        if host in self._fenced:
            return True, "quorate, and fenced_check succeeded earlier"
        if self._check is None:
            return False, "no fenced_check is configured"
        left = int(left_at if left_at is not None else time.time())
        ok, output = await self._run(host, left, rid)
        if ok:
            self._fenced.add(host)
            return True, f"quorate, and {self._check} {host} {left} succeeded"
        return False, f"{self._check} {host} {left}: {output}"

    async def _run(self, host: int, left: int, rid: str) -> tuple[bool, str]:
        argv = [str(self._check), str(host), str(left)]
        log.info("request %s: asking %s whether node %d is fenced", rid, " ".join(argv), host)
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
        except OSError as exc:
            return False, f"cannot run it: {exc}"
        try:
            async with asyncio.timeout(self._timeout):
                out, _ = await process.communicate()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            return False, f"no answer within {self._timeout:g} s"
        text = out.decode(errors="replace").strip()[-_OUTPUT_KEPT:]
        if process.returncode == 0:
            return True, text
        return False, f"exit status {process.returncode}: {text}"
