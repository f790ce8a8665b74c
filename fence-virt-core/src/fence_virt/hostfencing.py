"""Is a host that departed known to be fenced? The transport-free half of the dead-host rule.

Distributed backends (corosync CPG, a message bus) keep reports of a host that left
(:class:`fence_virt.locations.Placement.DEPARTED`). Its VMs may still run there (a network
split, a hung daemon): reporting them fenced would let the guest cluster start their services
twice. A backend first checks what its transport can tell (CPG: this partition is quorate;
message bus: this host still reaches the broker), then asks :class:`FencedCheck`:

* the administrator's ``fenced_check`` command is run as ``COMMAND HOST LEFT_AT`` (the host
  id, and when the host was last known alive, in whole seconds since the epoch); it must exit
  0 only if the host cluster fenced that host *after* LEFT_AT, e.g. from Pacemaker's fencing
  history (``stonith_admin --history NODE``). It gets ``timeout`` seconds; a timeout, a
  failure to start it, or any other exit status is "not known to be fenced";
* without a command, no departed host is ever known to be fenced (C's cpg backend answers
  success at once, c-suite-spec §6.2);
* a positive answer is remembered until :meth:`FencedCheck.forget` (the host came back).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path

__all__ = ["FencedCheck"]

log = logging.getLogger("fence_virt.hostfencing")

#: bytes of the check's output kept for the log
_OUTPUT_KEPT = 400


class FencedCheck:
    """Runs the ``fenced_check`` command (``None``: never fenced); remembers positive answers."""

    def __init__(self, check: Path | None, timeout: float) -> None:
        """:param timeout: seconds the command may run."""
        self._check = check
        self._timeout = timeout
        self._fenced: set[int] = set()

    @property
    def command(self) -> Path | None:
        return self._check

    def forget(self, host: int) -> None:
        """``host`` is back: a later departure needs a new fencing."""
        self._fenced.discard(host)

    async def fenced(self, host: int, left_at: float | None, rid: str) -> tuple[bool, str]:
        """``(True, why)`` only if the check confirms ``host`` fenced since ``left_at``
        (seconds since the epoch; ``None``: now); else ``(False, why)``. ``rid`` names the
        request in the log. Never raises for a failing command."""
        if host in self._fenced:
            return True, "fenced_check succeeded earlier"
        if self._check is None:
            return False, "no fenced_check is configured"
        left = int(left_at if left_at is not None else time.time())
        ok, output = await self._run(host, left, rid)
        if ok:
            self._fenced.add(host)
            return True, f"{self._check} {host} {left} succeeded"
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
