"""A program on a real pseudo-terminal, driven as an administrator types (the wizard tests).

:class:`Terminal` starts ``argv`` on the slave side of ``os.openpty`` in a session of its
own; :meth:`Terminal.expect` waits for text on the master side, :meth:`Terminal.type` types
a line. :meth:`Terminal.close` kills the program's process group and closes the master.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time

__all__ = ["Terminal"]


class Terminal:
    """A program on the slave side of a pty; the test reads and types on the master side."""

    def __init__(self, *argv: str) -> None:
        self.master, slave = os.openpty()
        self.process = subprocess.Popen(
            list(argv), stdin=slave, stdout=slave, stderr=slave, start_new_session=True
        )
        os.close(slave)
        self.output = ""
        self._seen = 0

    def expect(self, text: str, timeout: float = 15) -> str:
        """Wait until ``text`` appears after what was expected before; the output up to it."""
        deadline = time.monotonic() + timeout
        while (found := self.output.find(text, self._seen)) < 0:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{text!r} not shown; the terminal shows:\n{self.output}")
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # EIO: the program ended and closed the slave side
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"{text!r} not shown before the end:\n{self.output}")
                self.output += chunk.decode(errors="replace")
        before = self.output[self._seen : found]
        self._seen = found + len(text)
        return before

    def type(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode())

    def answer(self, prompt: str, line: str) -> None:
        self.expect(prompt)
        self.type(line)

    def wait(self, timeout: float = 15) -> int:
        return self.process.wait(timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        os.close(self.master)
