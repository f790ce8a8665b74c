"""The flow every agent shares (C ``main()``): parse, help, checks, then one request.

Compatibility target: the C agent of fence-agents 4.12.1 (Debian 12), run and compared byte
for byte. Like it, we print results *and* error messages on stdout (c-suite-spec §4.8 lists
stderr: that is later upstream code); only getopt and stdin parse warnings go to stderr.

Deliberate differences, all of them fail-safe or diagnostics:

* A key file that cannot be read while auth or hash is not ``none`` is an error (exit 1,
  nothing sent); C silently fell back to an unauthenticated request that a default host
  drops, i.e. a 30 s timeout. ``validate-all`` reports the same error.
* "Timed out waiting for response" is followed by one hint line (TCP port, key file).
* ``timeout * 10 < retrans`` makes one attempt of ``timeout`` seconds; C looped ~forever.
* No local address of the family: an immediate error instead of a timeout.
* A host list cut short (EOF or timeout before the terminator) exits 1; C exited 0.
* Numbers beyond a C int are rejected; C truncated them (``-t 4294967326`` became 30).
* A multicast address that is not a literal of its family is rejected up front (C sent to
  0.0.0.0), and so is a unicast one (C failed to join it, sent nothing and timed out); a
  domain that is not UTF-8 is rejected (the codec sends UTF-8).
* IPv6 requests leave through the interface of their source address (C let the routing
  table pick one); all of fe80::/10 is skipped (C compared text prefixes); the netlink dump
  is read to its end (C read one 10 KiB buffer); point-to-point links use IFA_LOCAL.
* Challenge mismatches print no hex dumps (C printed the expected digest).
* ``-V`` prints this package's version on its second line; the ``-d`` dump and the key-read
  trace have no address.
* fence_virt: ``-T`` and ``-A`` must be IP literals (an argument error; C tried nothing and
  printed a stale errno); connect errors and a silent host name the real reason (C: "Bad
  file descriptor" for a refused connection, "Operation now in progress" for a timeout);
  the vsock connect is bounded by 3 s like the TCP one; ``validate-all`` checks ``-P``.
* fence_virt ``-D``/``-A`` (:mod:`fence_virt.agents.line`, :mod:`fence_virt.agents.device`):
  no ``ioctl1`` line where a line has no modem control; device errors repeat the real
  reason after ``open_port:``; an answer cut off after its magic is no success; the device
  is opened ``O_NOCTTY | O_NONBLOCK`` too.
"""

from __future__ import annotations

import sys
import time

from fence_virt.agents import console, options, table, text
from fence_virt.agents import stdin as stdin_parser
from fence_virt.agents.argv import getopt
from fence_virt.agents.console import LOG_ERR, LOG_NOTICE, say
from fence_virt.agents.options import F_ERR, F_HELP, F_VERSION, AgentArgs
from fence_virt.protocol.enums import Operation, Response

TYPE_CHECKING = False  # not typing's: +9-11 ms per agent start, see fence_virt.agents
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

#: XVM_VERSION, the first line of ``-V`` (scripts may parse it)
XVM_VERSION = "1.9.0"
#: C reads the result into a ``char``: -1 stands for "no result" (a local failure)
NO_RESULT = -1
_USEC_PER_SEC = 1_000_000


def new_seqno() -> int:
    """The request's seqno as C takes it: the microseconds of the clock (``tv_usec``)."""
    return time.time_ns() // 1000 % _USEC_PER_SEC


class Agent:
    """What distinguishes one agent: names, getopt string and its transport."""

    def __init__(
        self,
        name: str,
        optstring: str,
        mode: int,
        *,
        check: Callable[[AgentArgs], None],
        prepare: Callable[[AgentArgs], bytes | None],
        send: Callable[[AgentArgs, bytes], int],
    ) -> None:
        self.name = name
        self.optstring = optstring
        self.mode = mode
        #: extra argument checks after finalising (calls ``args.error``)
        self.check = check
        #: the key (or b"") before any delay or traffic; None after printing why not
        self.prepare = prepare
        #: one request: the host's signed-char result, -1 for a local failure
        self.send = send


def parse(agent: Agent, argv: Sequence[str], stdin: bytes | None) -> AgentArgs:
    """Options from argv, or from ``stdin`` when there are no arguments at all."""
    args = AgentArgs(agent.mode)
    if stdin is not None:
        for name, value in stdin_parser.read_pairs(stdin):
            spec = table.by_name(name, agent.optstring)
            if spec is None:
                stdin_parser.unknown(name)
            elif value is not None and "\0" in value:
                stdin_parser.refuse_nul(args, name, value)
            elif spec.handler is not None:
                spec.handler(args, value)
        return args
    for letter, value in getopt(argv, agent.optstring):
        spec = table.by_letter(letter)
        if spec is None or spec.handler is None:
            args.flags |= F_ERR
        else:
            spec.handler(args, value)
    return args


def run(agent: Agent, argv: Sequence[str]) -> int:
    """One agent run; returns the exit status."""
    stdin_mode = len(argv) == 1
    args = parse(agent, argv, _read_stdin() if stdin_mode else None)
    if args.flags & F_HELP:
        console.say_text(text.full_help(argv[0], agent.optstring))
        return 0
    if args.flags & F_VERSION:
        say(f"{agent.name} {XVM_VERSION}")
        say(f"fence-virt-core {_version()}")
        return 0
    _check(agent, args)
    if args.failed:
        if args.op != Operation.VALIDATEALL:
            console.say_text(text.usage(argv[0], agent.optstring, stdin_names=stdin_mode))
        return 1
    if args.op == Operation.VALIDATEALL:
        return 0 if agent.prepare(args) is not None else 1
    if args.op == Operation.METADATA:
        console.say_text(text.metadata(agent.name, agent.optstring))
        return 0
    return _fence(agent, args)


def _read_stdin() -> bytes:
    return b"" if sys.stdin is None else sys.stdin.buffer.read()


def _check(agent: Agent, args: AgentArgs) -> None:
    options.finalize(args)
    agent.check(args)
    if args.debug >= 3:
        say(f"Debugging threshold is now {args.debug}")
    if args.debug > 0:
        say(text.dump(args))
    untargeted = (Operation.DEVSTATUS, Operation.HOSTLIST, Operation.METADATA)
    if args.domain is None and args.op not in untargeted:
        say("No domain specified!")
        console.log(agent.name, LOG_ERR, "No domain specified")
        args.flags |= F_ERR


def _fence(agent: Agent, args: AgentArgs) -> int:
    key = agent.prepare(args)
    if key is None:
        return 1
    if args.delay > 0 and args.op in (
        Operation.NULL,
        Operation.OFF,
        Operation.ON,
        Operation.REBOOT,
    ):
        time.sleep(args.delay)
    result = agent.send(args, key)
    report(agent.name, args, result)
    return result & 0xFF


def report(name: str, args: AgentArgs, result: int) -> None:
    """The C agent's message for a result (stdout and syslog)."""
    target = f' for domain "{args.domain}"' if args.domain is not None else ""
    if result in (Response.SUCCESS, Response.OFF):
        state = "ON" if result == Response.SUCCESS else "OFF"
        if args.op == Operation.STATUS:
            say(f"Status: {state}")
        elif args.domain is not None:
            console.log(name, LOG_NOTICE, f'Domain "{args.domain}" is {state}')
    elif result == Response.FAIL:
        console.log(name, LOG_ERR, f"Fence operation failed{target}")
        say("Operation failed")
    elif result == Response.PERM:
        what = f"Fence operation{target}" if target else "fence operation"
        console.log(name, LOG_ERR, f"Permission denied for {what}")
        say("Permission denied")
    else:
        console.log(name, LOG_ERR, f"Unknown response ({result}){target}")
        say(f"Unknown response ({result})")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version("fence-virt-core")
    except PackageNotFoundError:
        return "unknown"


def main(agent: Agent) -> int:
    """Console-script entry: run, flush, never a traceback for a closed stdout."""
    try:
        return run(agent, sys.argv)
    except BrokenPipeError:
        # the reader of our stdout went away (``| head``); C would have died of SIGPIPE
        return 1
    finally:
        console.flush()
