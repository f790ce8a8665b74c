"""Client side of the memory listener's line protocol, for tests."""

from __future__ import annotations

import socket
from pathlib import Path

__all__ = ["ask"]


def ask(sock_path: Path, *lines: str, timeout: float = 30) -> list[str]:
    """Send request lines; one answer each (a ``list`` answer is its rows joined by newlines)."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(str(sock_path))
        f = s.makefile("rw")
        answers = []
        for line in lines:
            f.write(line + "\n")
            f.flush()
            if line.split()[:1] == ["list"]:
                rows = []
                while (row := f.readline()) and row.strip() != ".":
                    rows.append(row.strip())
                answers.append("\n".join(rows))
            else:
                answers.append(f.readline().strip())
        return answers
