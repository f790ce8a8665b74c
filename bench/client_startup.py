"""Client end to end: ``fence_xvm -o status`` (or ``fence_virt -T``) against the C
fence_virtd, C agent vs ours.

Run as root from the repository root::

    .venv/bin/python bench/client_startup.py [--agent fence_xvm|fence_virt] [--runs 100]
        [--tree NAME=DIR ...] [--interleave]

In one run: a private network namespace (only ``lo``), the C fence_virtd with the multicast
listener (``--agent fence_xvm``, the default) or the tcp listener on 127.0.0.1 (``--agent
fence_virt``: both agents run ``-T 127.0.0.1``) and the libvirt test driver, then hyperfine
(``-N``, inside the namespace so that ``ip netns exec`` is not timed) on the C agent, ours,
and the bare venv interpreter. Prints the medians, ours - bare, and the target: ours <= C +
bare interpreter.

Our agent runs as an installed one would: byte-compiled first and without
PYTHONDONTWRITEBYTECODE / PYTHONUNBUFFERED from the caller's environment. Two diagnostic rows
show where our time goes: importing the wire codec, and ``-o metadata`` (no network).

To compare code changes (A/B), ``--tree NAME=DIR`` adds rows (``-o status``, ``-o metadata``)
for our agent loaded from ``DIR``, a directory holding a ``fence_virt`` package (say ``git
archive`` of another commit unpacked there); a two-line launcher puts ``DIR`` first on
``sys.path``, so compare tree rows with each other, not with the installed row. (Our
``fence_virt -o metadata`` row passes ``-A 127.0.0.1``: an explicit target, as every
fence_virt run here has; metadata never uses it.) hyperfine
runs one command after the other, and on a shared machine the load drifts in between: a
difference of a few ms between two rows can be that drift. ``--interleave`` instead runs
every command once per round, in a new random order each round, ``--runs`` rounds, from a
small runner inside the namespace that also reads each agent's own CPU time (user + sys,
from ``wait4``): that column leaves out the daemon's answer and most of the load of other
processes.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import fence_virt
from fence_virt_testinfra import c_suite, c_tcp
from fence_virt_testinfra.netns import netns
from fence_virt_testinfra.ours import FENCE_XVM

PYTHON = sys.executable
BARE_ROW = "bare interpreter (python -c pass)"
#: wall and CPU times (ms) of every run by command name; CPU may be empty
Timings = tuple[dict[str, list[float]], dict[str, list[float]]]


@dataclass(frozen=True)
class Agent:
    """One agent pair to time: names, programs, the options that pick its transport."""

    name: str
    #: the module of fence_virt.agents holding its main()
    module: str
    c_program: str
    ours: str
    #: before ``-o status``; ``-o metadata`` gets ``metadata_target``
    target: str
    metadata_target: str

    @property
    def c_row(self) -> str:
        return f"C {self.name} {self.target} -o status".replace("  ", " ")

    @property
    def our_row(self) -> str:
        return f"our {self.name} {self.target} -o status".replace("  ", " ")


AGENTS = {
    "fence_xvm": Agent("fence_xvm", "xvm", c_suite.C_FENCE_XVM, FENCE_XVM, "", ""),
    "fence_virt": Agent(
        "fence_virt",
        "virt",
        c_tcp.C_FENCE_VIRT,
        str(Path(FENCE_XVM).parent / "fence_virt"),
        "-T 127.0.0.1",
        "-A 127.0.0.1",
    ),
}


def commands(agent: Agent, key: Path, trees: dict[str, Path]) -> dict[str, str]:
    status = f"{agent.target} -k {key} -o status -H vm1".strip()
    metadata = f"{agent.metadata_target} -o metadata".strip()
    cmds = {
        agent.c_row: f"{agent.c_program} {status}",
        agent.our_row: f"{agent.ours} {status}",
        BARE_ROW: f"{PYTHON} -c pass",
        "diag: python -c 'import fence_virt.protocol'": f"{PYTHON} -c 'import fence_virt.protocol'",
        f"diag: our {agent.name} -o metadata": f"{agent.ours} {metadata}",
    }
    for name, launcher in trees.items():
        cmds[f"{agent.our_row} [{name}]"] = f"{launcher} {status}"
        cmds[f"diag: our {agent.name} -o metadata [{name}]"] = f"{launcher} {metadata}"
    return cmds


def launcher(agent: Agent, tree: Path, path: Path) -> Path:
    """An executable that runs the agent from ``tree``, byte-compiled first."""
    if not (tree / "fence_virt" / "agents" / f"{agent.module}.py").is_file():
        raise SystemExit(f"{tree} holds no fence_virt package with agents/{agent.module}.py")
    compileall.compile_dir(str(tree / "fence_virt"), quiet=1)
    path.write_text(
        f"#!{PYTHON}\n"
        "import sys\n"
        f"sys.argv[0] = {agent.name!r}\n"
        f"sys.path.insert(0, {str(tree)!r})\n"
        f"from fence_virt.agents.{agent.module} import main\n"
        "sys.exit(main())\n"
    )
    path.chmod(0o755)
    return path


def clean_env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "POSIXLY_CORRECT"):
        env.pop(name, None)
    return env


def hyperfine(ns_argv: list[str], cmds: dict[str, str], runs: int, out: Path) -> Timings:
    """Wall times (ms) of every run, by command name; hyperfine reports no CPU time per run."""
    argv = [*ns_argv, "hyperfine", "-N", "--warmup", "10", "--runs", str(runs)]
    argv += ["--export-json", str(out), "--style", "basic"]
    for name, cmd in cmds.items():
        argv += ["--command-name", name, cmd]
    subprocess.run(argv, check=True, env=clean_env())
    results = json.loads(out.read_text())["results"]
    return {r["command"]: [t * 1000 for t in r["times"]] for r in results}, {}


# runs inside the namespace: argv[1] the commands (JSON), argv[2] the rounds; prints JSON
_INTERLEAVED = """
import json, os, random, shlex, sys, time
cmds = {name: shlex.split(cmd) for name, cmd in json.loads(sys.argv[1]).items()}
null = os.open(os.devnull, os.O_WRONLY)
def once(name):
    start = time.perf_counter()
    pid = os.posix_spawn(cmds[name][0], cmds[name], os.environ,
                         file_actions=[(os.POSIX_SPAWN_DUP2, null, 1)])
    _, status, usage = os.wait4(pid, 0)
    if status != 0:
        sys.exit(f"{name} exited with wait status {status}")
    return (time.perf_counter() - start) * 1000, (usage.ru_utime + usage.ru_stime) * 1000
for name in cmds:
    for _ in range(3):
        once(name)
wall, cpu = {name: [] for name in cmds}, {name: [] for name in cmds}
for _ in range(int(sys.argv[2])):
    for name in random.sample(list(cmds), len(cmds)):
        w, c = once(name)
        wall[name].append(w)
        cpu[name].append(c)
json.dump([wall, cpu], sys.stdout)
"""


def interleaved(ns_argv: list[str], cmds: dict[str, str], runs: int) -> Timings:
    """Wall and CPU times (ms) of every run, by command name; rounds in random order."""
    argv = [*ns_argv, PYTHON, "-c", _INTERLEAVED, json.dumps(cmds), str(runs)]
    result = subprocess.run(argv, check=True, env=clean_env(), capture_output=True, text=True)
    wall, cpu = json.loads(result.stdout)
    return wall, cpu


def check(ns_argv: list[str], cmd: str) -> None:
    """Both agents must really answer "Status: ON" before their time means anything."""
    result = subprocess.run(
        [*ns_argv, *cmd.split()], capture_output=True, text=True, env=clean_env(), check=False
    )
    if (result.returncode, result.stdout) != (0, "Status: ON\n"):
        raise SystemExit(f"{cmd!r} failed ({result.returncode}): {result.stdout}{result.stderr}")


def report(agent: Agent, wall: dict[str, list[float]], cpu: dict[str, list[float]]) -> None:
    medians = {name: statistics.median(times) for name, times in wall.items()}
    c = medians[agent.c_row]
    ours = medians[agent.our_row]
    bare = medians[BARE_ROW]
    print("\nmedians (ms): wall" + (", agent CPU (user + sys)" if cpu else ""))
    for name, value in medians.items():
        mine = f" {statistics.median(cpu[name]):8.2f}" if cpu else ""
        print(f"  {name:<46} {value:8.2f}{mine}")
    print(f"\n  ours - bare interpreter                        {ours - bare:8.2f}")
    print(f"  C                                              {c:8.2f}")
    target = c + bare
    verdict = "met" if ours <= target else f"NOT met (over by {ours - target:.2f} ms)"
    print(f"  target ours <= C + bare = {target:.2f} ms: {verdict}")


def parse_tree(text: str) -> tuple[str, Path]:
    name, equals, directory = text.partition("=")
    if not (name and equals and directory):
        raise argparse.ArgumentTypeError(f"expected NAME=DIR, got {text!r}")
    return name, Path(directory).resolve()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--agent",
        choices=sorted(AGENTS),
        default="fence_xvm",
        help="fence_xvm (multicast listener) or fence_virt -T (tcp listener)",
    )
    parser.add_argument("--runs", type=int, default=100, help="runs of each command")
    parser.add_argument(
        "--interleave", action="store_true", help="one run of each per round, CPU time too"
    )
    parser.add_argument(
        "--tree",
        type=parse_tree,
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="also time our agent from DIR/fence_virt (repeatable)",
    )
    options = parser.parse_args()
    agent = AGENTS[options.agent]
    if not c_tcp.have_c_fence_virt():
        raise SystemExit("the C fence-virt suite (fence-virt, fence-virtd) is not installed")
    compileall.compile_dir(str(Path(fence_virt.__file__).parent), quiet=1)
    with tempfile.TemporaryDirectory(prefix="fvt-bench-") as tmp, netns("bench") as ns:
        work = Path(tmp)
        trees = {
            name: launcher(agent, tree, work / f"{agent.name}-{index}")
            for index, (name, tree) in enumerate(options.tree)
        }
        key = c_suite.write_key(work / "fence_xvm.key")
        uri = c_suite.write_test_node(work / "node.xml")
        if agent.name == "fence_virt":
            daemon = c_tcp.c_fence_virtd_tcp(
                ns, work / "daemon", c_tcp.TcpSetup(key_file=key, uri=uri)
            )
        else:
            daemon = c_suite.c_fence_virtd(
                ns, work / "daemon", c_suite.MulticastSetup(key_file=key, uri=uri)
            )
        with daemon:
            cmds = commands(agent, key, trees)
            for name, cmd in cmds.items():
                if "-o status" in name:
                    check(ns.argv(), cmd)
            if options.interleave:
                report(agent, *interleaved(ns.argv(), cmds, options.runs))
            else:
                report(agent, *hyperfine(ns.argv(), cmds, options.runs, work / "hyperfine.json"))


if __name__ == "__main__":
    main()
