"""Benchmark: off, on and reboot of a real QEMU guest -- ``virsh`` alone, the C fence_virtd,
and ours -- in one run.

Run as root from the repository root::

    .venv/bin/python bench/qemu.py            # add --rounds N, --json FILE

A private libvirtd (the test fixture's, in its own mount namespace) runs a tiny QEMU guest
(64 MiB, no disk; KVM when usable). In one network namespace holding only ``lo``: the C
fence_virtd (multicast port 1229), ours with its defaults (port 1230: off answered at the QEMU
process's exit, reboot answered once running) and ours with ``reboot_answer = "off"`` (port
1231), all on the same ``qemu+unix`` URI. Each is driven by the C ``fence_xvm``; ``virsh
destroy`` / ``start`` / ``destroy; start`` stand for libvirt alone. A round measures off, on
and reboot for each, in turn, with the guest settled (libvirt reads it shut off or running)
before every measured request; the median of the rounds is reported.

For off, the moment the guest's QEMU process exits is taken from a pidfd polled by a thread
of this script, and "after exit" is how much later the client returned.

Targets (issue 20): off <= 0.1x C, and off answered within 50 ms of the QEMU process's exit.
Network safety: all traffic stays in the namespace made here (fence_virt_testinfra.netns).
"""

from __future__ import annotations

import argparse
import json
import os
import select
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from fence_virt_testinfra.c_suite import C_FENCE_XVM, MulticastSetup, c_fence_virtd
from fence_virt_testinfra.c_suite import write_key as make_key
from fence_virt_testinfra.libvirtd import Libvirtd, running_libvirtd
from fence_virt_testinfra.netns import NetNS, netns
from fence_virt_testinfra.ours import running_fence_virtd
from fence_virt_testinfra.qemu import QemuGuest, tiny_guest

#: ours / C for off, and seconds from the QEMU process's exit to the client's return
OFF_RATIO_TARGET = 0.1
AFTER_EXIT_TARGET = 0.050
#: the tools compared; "ours (reboot at off)" is measured for reboot only
TOOLS = ("virsh", "C", "ours", "ours (reboot at off)")
PORTS = {"C": 1229, "ours": 1230, "ours (reboot at off)": 1231}


@dataclass
class Lab:
    ns: NetNS
    key: Path
    guest: QemuGuest


def request(lab: Lab, tool: str, operation: str) -> None:
    """One request through ``tool``; RuntimeError if it fails."""
    name = lab.guest.name
    if tool == "virsh":
        steps = {"off": ["destroy"], "on": ["start"], "reboot": ["destroy", "start"]}[operation]
        for step in steps:
            lab.ns.run("virsh", "-q", "-c", lab.guest.uri, step, name, timeout=120)
        return
    xvm = [C_FENCE_XVM, "-k", str(lab.key), "-p", str(PORTS[tool]), "-t", "60"]
    done = lab.ns.run(*xvm, "-o", operation, "-H", name, check=False, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{tool} {operation}: {done.stdout}{done.stderr}")


def settle(guest: QemuGuest, state: str, timeout: float = 60.0) -> None:
    """Wait until libvirt reads ``state`` and has no job left on the guest."""
    give_up = time.monotonic() + timeout
    while guest.state() != state:
        if time.monotonic() > give_up:
            raise RuntimeError(f"{guest.name} is {guest.state()}, not {state}")
        time.sleep(0.05)
    time.sleep(0.3)


@contextmanager
def exit_clock(pid: int):
    """Yields a one-item list that receives ``time.monotonic()`` of ``pid``'s exit."""
    pidfd = os.pidfd_open(pid)
    seen: list[float] = []

    def watch() -> None:
        if select.select([pidfd], [], [], 120)[0]:
            seen.append(time.monotonic())

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        thread.join(125)
        os.close(pidfd)


def timed(action: Callable[[], None]) -> tuple[float, float]:
    began = time.monotonic()
    action()
    return began, time.monotonic()


def one_round(lab: Lab, results: dict[str, dict[str, list[float]]]) -> None:
    guest = lab.guest
    for tool in TOOLS:
        record = results.setdefault(tool, {})
        if tool != "ours (reboot at off)":
            pid = guest.qemu_pid()
            assert pid is not None
            with exit_clock(pid) as death:
                began, ended = timed(lambda t=tool: request(lab, t, "off"))
            record.setdefault("off", []).append(ended - began)
            record.setdefault("off after exit", []).append(ended - death[0])
            settle(guest, "shut off")
            began, ended = timed(lambda t=tool: request(lab, t, "on"))
            record.setdefault("on", []).append(ended - began)
            settle(guest, "running")
        began, ended = timed(lambda t=tool: request(lab, t, "reboot"))
        record.setdefault("reboot", []).append(ended - began)
        settle(guest, "running")


def ours_config(path: Path, setup: MulticastSetup, libvirtd: Libvirtd, extra: str) -> Path:
    text = setup.config_text().replace(
        f'uri = "{setup.uri}";',
        f'uri = "{setup.uri}";\n\t\tqemu_pid_dir = "{libvirtd.qemu_pid_dir}";\n{extra}',
    )
    path.write_text(text)
    path.chmod(0o600)
    return path


def measure(work: Path, rounds: int) -> dict[str, dict[str, list[float]]]:
    key = make_key(work / "fence_xvm.key")
    results: dict[str, dict[str, list[float]]] = {}
    with ExitStack() as stack:
        libvirtd = stack.enter_context(running_libvirtd(work / "lv"))
        uri = libvirtd.qemu_uri
        guest = stack.enter_context(tiny_guest(uri, "fvt-bench", pid_dir=libvirtd.qemu_pid_dir))
        ns = stack.enter_context(netns("bq"))
        c_setup = MulticastSetup(key_file=key, uri=uri, port=PORTS["C"])
        stack.enter_context(c_fence_virtd(ns, work / "c", c_setup))
        for tool, extra in (("ours", ""), ("ours (reboot at off)", '\t\treboot_answer = "off";\n')):
            setup = MulticastSetup(key_file=key, uri=uri, port=PORTS[tool])
            config = ours_config(work / f"{PORTS[tool]}.conf", setup, libvirtd, extra)
            stack.enter_context(running_fence_virtd(ns, work / str(PORTS[tool]), config))
        lab = Lab(ns, key, guest)
        print(f"guest {guest.name} ({'KVM' if guest.kvm else 'TCG'}), {rounds} rounds", flush=True)
        for number in range(rounds):
            one_round(lab, results)
            print(f"  round {number + 1} done", flush=True)
    return results


def report(results: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, float]]:
    medians = {
        tool: {op: statistics.median(times) for op, times in ops.items()}
        for tool, ops in results.items()
    }
    print(f"\n{'median ms':22}" + "".join(f"{tool:>22}" for tool in TOOLS))
    for op in ("off", "off after exit", "on", "reboot"):
        cells = [medians[t].get(op) for t in TOOLS]
        print(f"{op:22}" + "".join(f"{'—' if c is None else f'{c * 1000:.0f}':>22}" for c in cells))
    c, ours = medians["C"], medians["ours"]
    ratio = ours["off"] / c["off"]
    after = ours["off after exit"]
    ok = ratio <= OFF_RATIO_TARGET and after <= AFTER_EXIT_TARGET
    print(
        f"\noff: ours / C = {ratio:.3f} (target <= {OFF_RATIO_TARGET}); answered "
        f"{after * 1000:.0f} ms after the QEMU process exited (target <= "
        f"{AFTER_EXIT_TARGET * 1000:.0f} ms): {'ok' if ok else 'MISSED'}"
    )
    for op in ("on", "reboot"):
        print(f"{op}: ours / C = {ours[op] / c[op]:.3f}")
    at_off = medians["ours (reboot at off)"]["reboot"]
    print(f"reboot answered at off: ours / C = {at_off / c['reboot']:.3f}")
    return medians


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds (median reported)")
    parser.add_argument("--json", type=Path, help="also write every time (seconds) here")
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("needs root (libvirtd, network namespaces)")
    with tempfile.TemporaryDirectory(prefix="fvt-bench-") as tmp:
        results = measure(Path(tmp), args.rounds)
    medians = report(results)
    if args.json:
        args.json.write_text(json.dumps({"times": results, "medians": medians}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
