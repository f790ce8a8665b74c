"""Flood: our fence_virtd (multicast + libvirt test driver) under 10,000 garbage datagrams/s
while valid requests arrive; they must be served within 2x their quiet latency.

Run as root from the repository root::

    .venv/bin/python bench/flood.py                     # 10,000/s for 10 s
    .venv/bin/python bench/flood.py --rate 2000 --seconds 2 --no-timing   # the test's version

Everything runs in a fresh network namespace holding ``lo`` and a black-holed /24
(``fence_virt_testinfra.c_tcp.blackhole``: connects to its .50 time out). Steps:

1. quiet: ``--samples`` (30) status requests from a client process in the namespace that speaks
   the protocol as fence_xvm does (signed datagram, connect-back, challenge/response, result
   byte), 0.1 s apart; the time from the datagram to the result byte is the request's
   latency, and the median the quiet latency (a whole ``fence_xvm`` run is mostly its
   interpreter's start, which measures the CPU left by the flood's sender, not the daemon);
2. flood: a sender in the namespace multicasts ``rate`` x ``seconds`` datagrams (bounded in
   count and in time: it stops at ``seconds`` + 1 even if behind), made before the flood and
   paced in 10-ms batches: random bytes of random lengths, random 176-byte requests,
   requests signed with a wrong key, and, one in 100, *authentic* requests (right key)
   asking for a connect-back to the black-holed address -- a guest whose address does not
   answer, each held for ``connect_timeout``;
3. during the flood, the same ``--samples`` requests, then one ``fence_xvm``; each must
   succeed, and (unless ``--no-timing``) the median must stay within 2x the quiet median;
4. the daemon's RSS (``/proc/PID/status`` VmRSS), open file descriptors and CPU time used
   are printed before and after the flood, and after the connect-backs timed out.

Exit status 1 when a request failed or (with timing) the latency target was missed.
"""

# parts run inside the namespace as child processes and import only what they need
# ruff: noqa: PLC0415
from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GROUP, PORT = "225.0.0.12", 1229
LATENCY_FACTOR = 2.0


def garbage(key: bytes, total: int, silent: str) -> list[bytes]:
    """The flood, made before it is sent (so the sender spends its time sending)."""
    from fence_virt.protocol import Operation
    from fence_virt.testing.factories import fence_datagram

    pool = []
    for n in range(min(total, 3000)):
        kind = n % 3
        if kind == 0:
            data = fence_datagram(Operation.OFF, "test", key=b"guess", seqno=n)
        elif kind == 1:
            data = secrets.token_bytes(176)
        else:
            data = secrets.token_bytes(n * 7 % 400)
        pool.append(data)
    flood = [pool[n % len(pool)] for n in range(total)]
    # one in 100: authentic (the right key), connect-back to an address that never answers
    for n in range(0, total, 100):
        flood[n] = fence_datagram(Operation.OFF, "far", key=key, seqno=n, address=silent)
    return flood


def send_flood(key_file: Path, rate: int, seconds: float, silent: str) -> dict[str, int]:
    """Runs inside the namespace: ``rate`` x ``seconds`` datagrams, paced; returns counts."""
    total = int(rate * seconds)
    flood = garbage(key_file.read_bytes(), total, silent)
    batch = max(1, rate // 100)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
    sent = refused = 0
    started = time.monotonic()
    deadline = started + seconds + 1
    while sent < total and time.monotonic() < deadline:
        for data in flood[sent : sent + batch]:
            try:
                sock.sendto(data, (GROUP, PORT))
            except OSError:
                refused += 1  # the local socket buffer was full: counted, not retried
            sent += 1
        pause = started + sent / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    elapsed = time.monotonic() - started
    return {
        "sent": sent,
        "authentic_to_black_hole": len(range(0, sent, 100)),
        "send_errors": refused,
        "seconds": round(elapsed, 2),
        "rate": round(sent / elapsed),
    }


def client(key_file: Path, count: int, pause: float) -> list[float]:
    """Runs inside the namespace: ``count`` status requests as fence_xvm makes them (signed
    datagram, connect-back, challenge/response, result byte); seconds from send to result."""
    from fence_virt.protocol import AuthExchange, HashType, Operation
    from fence_virt.testing.factories import fence_datagram

    key = key_file.read_bytes()
    seconds = []
    for n in range(count):
        with socket.socket() as server, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
            server.bind(("127.0.0.1", 0))
            server.listen(1)
            server.settimeout(20)
            port = server.getsockname()[1]
            seqno = int.from_bytes(secrets.token_bytes(3), "big")
            data = fence_datagram(Operation.STATUS, "test", key=key, seqno=seqno, port=port)
            out.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
            started = time.monotonic()
            out.sendto(data, (GROUP, PORT))
            conn, _ = server.accept()
            with conn:
                conn.settimeout(20)
                exchange = AuthExchange.for_client(HashType.SHA256, key)
                while not exchange.done:
                    if outgoing := exchange.data_to_send():
                        conn.sendall(outgoing)
                    else:
                        exchange.receive_data(conn.recv(exchange.bytes_needed))
                result = conn.recv(1)
            seconds.append(time.monotonic() - started)
            if result != b"\0":
                raise RuntimeError(f"request {n}: answered {result!r}")
        time.sleep(pause)
    return seconds


def memory(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    return {
        "rss_kib": rss,
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "cpu_s": round(ticks / os.sysconf("SC_CLK_TCK"), 2),
    }


def timed_requests(ns, key_file: Path, count: int) -> subprocess.Popen[str]:
    """Start :func:`client` in ``ns``; its stdout is a JSON list of seconds."""
    argv = [sys.executable, __file__, "--client", str(key_file), "--samples", str(count)]
    return subprocess.Popen(ns.argv(*argv), stdout=subprocess.PIPE, text=True)


def latencies(process: subprocess.Popen[str], timeout: float) -> list[float]:
    out, _ = process.communicate(timeout=timeout)
    if process.returncode != 0:
        raise RuntimeError("the timing client failed")
    return list(json.loads(out))


def timed_status(ns, key_file: Path) -> float:
    from fence_virt_testinfra.ours import FENCE_XVM

    started = time.monotonic()
    done = ns.run(
        FENCE_XVM, "-k", str(key_file), "-t", "20", "-o", "status", "-H", "test", check=False
    )
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"status failed ({done.returncode}): {done.stdout}{done.stderr}")
    return elapsed


def run(rate: int, seconds: float, samples: int, timing: bool) -> int:
    from fence_virt_testinfra.c_suite import MulticastSetup, write_key
    from fence_virt_testinfra.c_tcp import blackhole
    from fence_virt_testinfra.netns import netns
    from fence_virt_testinfra.ours import our_fence_virtd

    with tempfile.TemporaryDirectory(prefix="flood-") as tmp, netns("fl") as ns:
        work = Path(tmp)
        key_file = write_key(work / "fence_xvm.key")
        silent = blackhole(ns)
        setup = MulticastSetup(key_file=key_file, uri="test:///default")
        with our_fence_virtd(ns, work / "daemon", setup) as daemon:
            timed_status(ns, key_file)  # warm-up: the backend's first connection
            quiet = latencies(timed_requests(ns, key_file, samples), 120)
            before = memory(daemon.pid)
            sender = subprocess.Popen(
                ns.argv(
                    sys.executable, __file__, "--send", str(key_file),
                    "--rate", str(rate), "--seconds", str(seconds), "--silent", silent,
                ),
                stdout=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            try:
                time.sleep(min(2.0, seconds / 4))  # the sender made its datagrams
                loaded = latencies(timed_requests(ns, key_file, samples), seconds + 60)
                agent = timed_status(ns, key_file)  # the real fence_xvm, served too
                out, _ = sender.communicate(timeout=seconds + 30)
            finally:
                if sender.poll() is None:
                    sender.kill()
                    sender.wait()
            during = memory(daemon.pid)
            time.sleep(6)  # connect_timeout (5 s): every black-holed connect-back gave up
            after = memory(daemon.pid)
            served_after = timed_status(ns, key_file)
            log = daemon.log()
    flood = json.loads(out)
    quiet_median = statistics.median(quiet)
    loaded_median = statistics.median(loaded) if loaded else float("inf")
    result = {
        "flood": flood,
        "quiet_latency_ms": {"median": round(quiet_median * 1000, 1), "samples": len(quiet)},
        "flooded_latency_ms": {
            "median": round(loaded_median * 1000, 1),
            "max": round(max(loaded, default=float("inf")) * 1000, 1),
            "samples": len(loaded),
        },
        "ratio": round(loaded_median / quiet_median, 2),
        "memory_before": before,
        "memory_at_end_of_flood": during,
        "memory_6s_later": after,
        "fence_xvm_during_flood_ms": round(agent * 1000, 1),
        "fence_xvm_after_flood_ms": round(served_after * 1000, 1),
        "drop_lines_logged": log.count("dropped datagram from"),
        "tracebacks": log.count("Traceback"),
    }
    print(json.dumps(result, indent=2))
    failures = []
    if not loaded:
        failures.append("no request was served during the flood")
    if timing and loaded_median > LATENCY_FACTOR * quiet_median:
        failures.append(f"flooded median {loaded_median:.3f} s > {LATENCY_FACTOR}x quiet")
    if result["tracebacks"]:
        failures.append("the daemon logged a traceback")
    for failure in failures:
        print("FAIL:", failure)
    if not failures:
        print(
            f"OK: {flood['sent']} datagrams at {flood['rate']}/s; status served in "
            f"{result['flooded_latency_ms']['median']} ms (quiet "
            f"{result['quiet_latency_ms']['median']} ms, x{result['ratio']}); RSS "
            f"{before['rss_kib']} -> {during['rss_kib']} -> {after['rss_kib']} KiB"
        )
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=10_000, help="datagrams per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the flood")
    parser.add_argument("--samples", type=int, default=30, help="requests timed, quiet and flooded")
    parser.add_argument("--no-timing", action="store_true", help="only check requests are served")
    parser.add_argument("--send", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--silent", help=argparse.SUPPRESS)
    parser.add_argument("--client", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.client:
        print(json.dumps(client(options.client, options.samples, 0.1)))
        return 0
    if options.send:
        counts = send_flood(options.send, options.rate, options.seconds, options.silent)
        print(json.dumps(counts))
        return 0
    return run(options.rate, options.seconds, options.samples, not options.no_timing)


if __name__ == "__main__":
    sys.exit(main())
