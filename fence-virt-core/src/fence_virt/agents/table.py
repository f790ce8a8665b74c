"""Every option of the C agents, in the C table's order (c-suite-spec §4.2, §4.9).

Usage text, ``-h``, stdin names and ``-o metadata`` are all generated from this one table and
an agent's getopt string, the way the C agent does it; so the texts below are the agents'
observable interface and must stay exactly as the C agent prints them.
"""

from __future__ import annotations

from fence_virt.agents import options as o
from fence_virt.protocol.constants import (
    DEFAULT_IPV4_GROUP,
    DEFAULT_IPV6_GROUP,
    DEFAULT_KEY_FILE,
    DEFAULT_PORT,
)

TYPE_CHECKING = False  # not typing's: +9-11 ms per agent start, see fence_virt.agents
if TYPE_CHECKING:
    from collections.abc import Callable


class ArgSpec:
    """One row: getopt letter, usage text, stdin name, metadata attributes and handler."""

    __slots__ = (
        "always",
        "compat",
        "content",
        "default",
        "deprecated",
        "description",
        "handler",
        "letter",
        "name",
        "obsoletes",
        "usage",
    )

    def __init__(
        self,
        letter: str,
        usage: str | None,
        name: str | None,
        handler: Callable[[o.AgentArgs, str | None], None] | None,
        description: str,
        *,
        content: str = "string",
        default: str | None = None,
        obsoletes: str | None = None,
        deprecated: bool = False,
        always: bool = False,
        compat: bool = False,
    ) -> None:
        self.letter = letter
        self.usage = usage
        self.name = name
        self.handler = handler
        self.description = description
        self.content = content
        self.default = default
        self.obsoletes = obsoletes
        self.deprecated = deprecated
        #: accepted on stdin whatever the agent's getopt string (agent, self, nodename, ...)
        self.always = always
        #: the ``domain`` compatibility name, listed last in the metadata
        self.compat = compat

    @property
    def required(self) -> bool:
        """Metadata ``required``: no default and not a flag (multicast_address excepted)."""
        if self.content == "boolean" or self.default is not None:
            return False
        return self.name not in ("multicast_address", "domain")


_TARGET = "Virtual Machine (domain name) to fence"
_ACTIONS = "null, off, on, [reboot], status, list, list-status, monitor, validate-all, metadata"
_IGNORED = "Not user serviceable"

OPTIONS: tuple[ArgSpec, ...] = (
    ArgSpec("", None, "agent", None, _IGNORED, always=True),
    ArgSpec("", None, "self", None, _IGNORED, always=True),
    ArgSpec("", None, "nodename", None, _IGNORED, always=True),
    ArgSpec(
        "d",
        "-d",
        "debug",
        o.set_debug,
        "Specify (stdin) or increment (command line) debug level",
        content="boolean",
    ),
    ArgSpec(
        "i",
        "-i <family>",
        "ip_family",
        o.set_family,
        "IP Family ([auto], ipv4, ipv6)",
        default="auto",
    ),
    ArgSpec(
        "a",
        "-a <address>",
        "multicast_address",
        o.set_mcast_address,
        f"Multicast address (default={DEFAULT_IPV4_GROUP} / {DEFAULT_IPV6_GROUP})",
    ),
    ArgSpec(
        "T",
        "-T <address>",
        "ipaddr",
        o.set_ipaddr,
        "IP address to connect to in TCP mode (default=127.0.0.1 / ::1)",
        default="127.0.0.1",
    ),
    ArgSpec(
        "S",
        "-S <cid>",
        "vsock",
        o.set_cid,
        "vm socket CID to connect to in vsock mode",
        content="integer",
        default="2",
    ),
    ArgSpec(
        "A",
        "-A <address>",
        "channel_address",
        o.set_channel_address,
        f"VM Channel IP address (default={o.DEFAULT_CHANNEL_ADDRESS})",
        default=o.DEFAULT_CHANNEL_ADDRESS,
    ),
    ArgSpec(
        "p",
        "-p <port>",
        "ipport",
        o.set_port,
        f"TCP, Multicast, VMChannel, or VM socket port (default={DEFAULT_PORT})",
        default=str(DEFAULT_PORT),
    ),
    ArgSpec(
        "r",
        "-r <retrans>",
        "retrans",
        o.set_retrans,
        "Multicast retransmit time (in 1/10sec; default=20)",
        default="20",
    ),
    ArgSpec(
        "c",
        "-c <hash>",
        "hash",
        o.set_hash,
        "Packet hash strength (none, sha1, [sha256], sha512)",
        default="sha256",
    ),
    ArgSpec(
        "C",
        "-C <auth>",
        "auth",
        o.set_auth,
        "Authentication (none, sha1, [sha256], sha512)",
        default="sha256",
    ),
    ArgSpec(
        "k",
        "-k <file>",
        "key_file",
        o.set_key_file,
        f"Shared key file (default={DEFAULT_KEY_FILE})",
        default=DEFAULT_KEY_FILE,
    ),
    ArgSpec(
        "D",
        "-D <device>",
        "serial_device",
        o.set_serial_device,
        "Serial device (default=/dev/ttyS1)",
        default="/dev/ttyS1",
    ),
    ArgSpec(
        "P",
        "-P <param>",
        "serial_params",
        o.set_serial_params,
        f"Serial Parameters (default={o.DEFAULT_SERIAL_PARAMS})",
        default=o.DEFAULT_SERIAL_PARAMS,
    ),
    ArgSpec(
        "",
        None,
        "option",
        o.set_operation,
        f"Fencing option ({_ACTIONS})",
        default="reboot",
        always=True,
    ),
    ArgSpec(
        "o",
        "-o <operation>",
        "action",
        o.set_operation,
        f"Fencing action ({_ACTIONS})",
        default="reboot",
    ),
    ArgSpec("n", "-n <domain>", "plug", o.set_domain, _TARGET, obsoletes="port"),
    ArgSpec("H", "-H <domain>", "port", o.set_domain, _TARGET, deprecated=True),
    ArgSpec(
        "",
        None,
        "domain",
        o.set_domain,
        f"{_TARGET} (deprecated; use port)",
        always=True,
        compat=True,
    ),
    ArgSpec(
        "u",
        "-u",
        "use_uuid",
        o.set_use_uuid,
        "Treat [domain] as UUID instead of domain name. This is provided for compatibility "
        "with older fence_xvmd installations.",
        default="0",
    ),
    ArgSpec(
        "t",
        "-t <timeout>",
        "timeout",
        o.set_timeout,
        "Fencing timeout (in seconds; default=30)",
        default="30",
    ),
    ArgSpec("h", "-h", None, o.set_help, "Help", content="boolean", default="0"),
    ArgSpec("?", "-?", None, o.set_help, "Help (alternate)", content="boolean", default="0"),
    ArgSpec(
        "w",
        "-w <delay>",
        "delay",
        o.set_delay,
        "Fencing delay (in seconds; default=0)",
        default="0",
    ),
    ArgSpec(
        "V",
        "-V",
        None,
        o.set_version,
        "Display version and exit",
        content="boolean",
        default="0",
    ),
)

_BY_LETTER = {spec.letter: spec for spec in OPTIONS if spec.letter}
_BY_NAME = {spec.name.lower(): spec for spec in OPTIONS if spec.name}


def by_letter(letter: str) -> ArgSpec | None:
    """The row of a getopt letter; None for letters without one (``M``, ``:``)."""
    return _BY_LETTER.get(letter)


def by_name(name: str, optstring: str) -> ArgSpec | None:
    """The row a stdin name selects for an agent (case-insensitive), or None if unknown."""
    spec = _BY_NAME.get(name.lower())
    if spec is None or not (spec.always or (spec.letter and spec.letter in optstring)):
        return None
    return spec


def letters(optstring: str) -> list[ArgSpec]:
    """The rows of an agent's getopt letters, in getopt-string order."""
    return [spec for char in optstring if char != ":" and (spec := _BY_LETTER.get(char))]
