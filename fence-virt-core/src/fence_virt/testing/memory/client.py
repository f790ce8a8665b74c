"""Client side of the memory listener's line protocol (blocking; run it in a thread from
async code: ``await asyncio.to_thread(ask, path, "off vm1")``)."""

from __future__ import annotations

import socket
from pathlib import Path

from fence_virt.protocol import Operation, Response
from fence_virt.testing.memory.listener import LIST_WORD, OPERATION_WORDS

__all__ = ["ask", "fence", "send_line"]

_WORDS = {operation: word for word, operation in OPERATION_WORDS.items()}


def ask(sock_path: Path, *lines: str, timeout: float = 30) -> list[str]:
    """Send request lines; one answer each (a ``list`` answer is its rows joined by newlines).

    :param timeout: seconds for connecting and for each answer.
    :raises OSError: no listener on ``sock_path``, or it did not answer in time.
    """
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(str(sock_path))
        f = s.makefile("rw")
        answers = []
        for line in lines:
            f.write(line + "\n")
            f.flush()
            if line.split()[:1] == [LIST_WORD]:
                rows = []
                while (row := f.readline()) and row.strip() != ".":
                    rows.append(row.strip())
                answers.append("\n".join(rows))
            else:
                answers.append(f.readline().strip())
        return answers


def fence(sock_path: Path, operation: Operation, domain: str = "", timeout: float = 30) -> Response:
    """Ask for one operation; the listener's answer as a :class:`Response`.

    :raises ValueError: the answer is not a response code.
    """
    line = f"{_WORDS[operation]} {domain}".strip()
    return Response(int(ask(sock_path, line, timeout=timeout)[0]))


def send_line(sock_path: Path, data: bytes, timeout: float = 30) -> bytes:
    """Send ``data`` as it is (a newline is added if missing); the one line answered."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(str(sock_path))
        s.sendall(data if data.endswith(b"\n") else data + b"\n")
        with s.makefile("rb") as stream:
            return stream.readline().rstrip(b"\n")
