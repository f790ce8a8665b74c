"""systemd integration: the notify protocol (``Type=notify``) and the unit file core ships.

The protocol (sd_notify(3)) is one datagram of ``KEY=VALUE`` lines to the AF_UNIX socket
named by ``$NOTIFY_SOCKET`` (a leading ``@`` means Linux's abstract namespace). It is these
few lines rather than a library: of the libraries on PyPI, ``systemd-python`` needs
libsystemd headers and a compiler for what is one ``sendto``, and the pure-Python
``sdnotify`` has had no release since 2017 and drops send errors silently.

What fence_virtd sends:

* ``READY=1`` (with ``MAINPID`` and a ``STATUS`` line) once the backend runs and every
  listener is bound -- the same moment the C-compatible background start reports success;
* ``STOPPING=1`` when SIGTERM/SIGINT begins the shutdown;
* ``WATCHDOG=1`` every half ``$WATCHDOG_USEC`` from a task on the event loop, so a loop that
  stops turning (a blocking call where none may be) gets the daemon restarted. As sd_notify
  says, ``$WATCHDOG_PID``, when set, must be our pid.

A failure to notify is logged and never stops the daemon: systemd then times the start out
itself, which is visible and says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
from collections.abc import AsyncIterator, Mapping
from importlib import resources
from pathlib import Path

__all__ = [
    "HIDDEN_BY_UNIT",
    "UNIT_NAME",
    "Notifier",
    "default_executable",
    "render_unit",
    "unit_problem",
]

log = logging.getLogger("fence_virt.daemon")

#: the unit file shipped in this package, and the name to install it under
UNIT_NAME = "fence_virtd.service"
_EXEC_PLACEHOLDER = "@FENCE_VIRTD@"
#: microseconds per second ($WATCHDOG_USEC is in microseconds)
_USEC = 1_000_000


class Notifier:
    """Sends sd_notify messages to one socket; see the module docstring."""

    def __init__(self, address: str, watchdog_seconds: float | None = None) -> None:
        #: the socket address as :func:`socket.socket.sendto` takes it
        self.address = "\0" + address[1:] if address.startswith("@") else address
        #: how often to ping (half the watchdog timeout), or ``None`` without a watchdog
        self.watchdog_seconds = watchdog_seconds

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> Notifier | None:
        """The notifier ``$NOTIFY_SOCKET`` asks for, or ``None`` when not run by systemd.

        :param env: the environment (default :data:`os.environ`).
        """
        env = os.environ if env is None else env
        address = env.get("NOTIFY_SOCKET", "")
        if not address:
            return None
        if not (address.startswith(("/", "@"))):
            log.warning("NOTIFY_SOCKET=%s is not a UNIX socket path: not notifying", address)
            return None
        return cls(address, _watchdog_seconds(env))

    def send(self, *fields: str) -> bool:
        """Send ``fields`` (``"READY=1"``, ...) as one message; False (logged) if it failed."""
        message = "\n".join(fields).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(message, self.address)
        except OSError as exc:
            log.warning("cannot notify systemd (%s): %s", fields[0], exc.strerror or exc)
            return False
        return True

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=shutting down")

    def waiting(self, status: str, seconds: float) -> None:
        """Still starting (``-w``: the backend is retried): say why in ``STATUS`` and ask
        for ``seconds`` more before the start timeout (``EXTEND_TIMEOUT_USEC``, systemd 236
        and later), so systemd neither kills a daemon that is waiting as told nor calls it
        ready."""
        self.send(f"STATUS={status}", f"EXTEND_TIMEOUT_USEC={int(seconds * _USEC)}")

    async def watchdog(self) -> None:
        """Ping every :attr:`watchdog_seconds` until cancelled; returns at once without one."""
        if self.watchdog_seconds is None:
            return
        while True:
            self.send("WATCHDOG=1")
            await asyncio.sleep(self.watchdog_seconds)

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[None]:
        """Run :meth:`watchdog` as a task for the duration of the block."""
        task = asyncio.get_running_loop().create_task(self.watchdog())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _watchdog_seconds(env: Mapping[str, str]) -> float | None:
    """Half of ``$WATCHDOG_USEC`` in seconds, if the watchdog is meant for this process."""
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec:
        return None
    if pid and pid != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        log.warning("WATCHDOG_USEC=%s is not a number: no watchdog pings", usec)
        return None
    return value / _USEC / 2 if value > 0 else None


def render_unit(executable: str | None = None) -> str:
    """The unit file shipped with core, ``ExecStart`` pointing at ``executable``.

    :param executable: the ``fence_virtd`` to run; default: the one beside this interpreter
        (where pip installed it), as an absolute path.
    """
    text = resources.files("fence_virt.daemon").joinpath(UNIT_NAME).read_text()
    if executable is None:
        executable = default_executable()
    return text.replace(_EXEC_PLACEHOLDER, executable)


def default_executable() -> str:
    """The ``fence_virtd`` beside this interpreter (where pip installed it), absolute."""
    return str(Path(sys.executable).parent / "fence_virtd")


#: directories the unit hides (``ProtectHome=yes``): an ``ExecStart`` below them cannot start
HIDDEN_BY_UNIT = ("/root", "/home", "/run/user")


def unit_problem(executable: str) -> str | None:
    """Why the unit rendered for ``executable`` cannot start (one line), or ``None``.

    ``ProtectHome=yes`` hides :data:`HIDDEN_BY_UNIT`; a ``fence_virtd`` installed below one
    of them (a venv in root's home) fails with systemd's status 203/EXEC.
    """
    for hidden in HIDDEN_BY_UNIT:
        if executable == hidden or executable.startswith(hidden + "/"):
            return (
                f"{executable} is below {hidden}, which the unit hides (ProtectHome=yes): "
                "install fence_virtd elsewhere (/opt/fence-virt, /usr/local) or the start "
                "fails with status 203/EXEC"
            )
    return None
