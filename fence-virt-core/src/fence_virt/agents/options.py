"""The parsed arguments of an agent and the per-option checks of the C agent (§4.2).

Each handler takes the raw text of one option (None when the option has no value: a bare
flag on the command line, or a stdin line without ``=``) and either stores it or prints the
C agent's complaint on stdout and sets :data:`F_ERR`. Parsing goes on after an error, as in
C, so one run reports every bad option.
"""

from __future__ import annotations

import errno
import os

from fence_virt.agents.console import say
from fence_virt.agents.numbers import atoi, c_int, strtol
from fence_virt.protocol.constants import (
    AF_INET6_WIRE,
    AF_INET_WIRE,
    DEFAULT_IPV4_GROUP,
    DEFAULT_IPV6_GROUP,
    DEFAULT_KEY_FILE,
    DEFAULT_PORT,
    DOMAIN_FIELD_SIZE,
)
from fence_virt.protocol.enums import HashType, Operation

# args->flags bits as the C agent's debug dump shows them (F_ERR 4, F_USE_UUID 16)
F_ERR = 0x04
F_HELP = 0x08
F_USE_UUID = 0x10
F_VERSION = 0x20

# args->net.family: 0 = auto, else the Linux address family, as fence_req_t.family carries it
FAMILY_AUTO = 0
FAMILY_IPV4 = AF_INET_WIRE
FAMILY_IPV6 = AF_INET6_WIRE

# client_mode_t of the C agent's options.h (the ``-d`` dump prints the number; 1 is unused)
MODE_MULTICAST = 0
MODE_SERIAL = 2
MODE_VMCHANNEL = 3
MODE_TCP = 4
MODE_VSOCK = 5

DEFAULT_SERIAL_PARAMS = "115200,8N1"
#: the ``hash`` value that selects protocol v2
PROTOCOL_V2 = "v2"
DEFAULT_CHANNEL_ADDRESS = "10.0.2.179"

_OPERATIONS = {
    "null": Operation.NULL,
    "on": Operation.ON,
    "off": Operation.OFF,
    "reboot": Operation.REBOOT,
    "status": Operation.STATUS,
    "monitor": Operation.DEVSTATUS,
    "list": Operation.HOSTLIST,
    "list-status": Operation.HOSTLIST,
    "metadata": Operation.METADATA,
    "validate-all": Operation.VALIDATEALL,
}
_FAMILIES = {"ipv4": FAMILY_IPV4, "ipv6": FAMILY_IPV6, "auto": FAMILY_AUTO}


class AgentArgs:
    """fence_virt_args_t: every setting of one agent run, starting from the C defaults."""

    def __init__(self, mode: int = MODE_MULTICAST) -> None:
        self.domain: str | None = None
        self.op = Operation.REBOOT
        self.mode = mode
        self.debug = 0
        self.timeout = 30
        self.delay = 0
        self.retrans = 20
        self.flags = 0
        self.mcast_address: str | None = None
        self.ipaddr: str | None = None
        self.cid = 0
        self.key_file = DEFAULT_KEY_FILE
        self.port = DEFAULT_PORT
        self.hash = HashType.SHA256
        self.auth = HashType.SHA256
        #: ``hash=v2`` / ``-c v2``: protocol v2 (docs/protocol-v2.md); never falls back to C
        self.protocol_v2 = False
        self.family = FAMILY_AUTO
        self.ifindex = 0
        self.serial_device: str | None = None
        self.serial_params = DEFAULT_SERIAL_PARAMS
        self.channel_address = DEFAULT_CHANNEL_ADDRESS

    @property
    def failed(self) -> bool:
        """Some option was invalid (F_ERR)."""
        return bool(self.flags & F_ERR)

    @property
    def use_uuid(self) -> bool:
        """The target names a VM by UUID (RF_UUID goes into the request)."""
        return bool(self.flags & F_USE_UUID)

    def error(self, message: str) -> None:
        """Report one bad option the C way (stdout) and remember the failure."""
        say(message)
        self.flags |= F_ERR


def set_debug(args: AgentArgs, value: str | None) -> None:
    """``-d`` adds one; ``debug=N`` sets N, and a negative N means 1."""
    if value is None:
        args.debug += 1
        return
    level = atoi(value)
    args.debug = 1 if level < 0 else level


def set_family(args: AgentArgs, value: str | None) -> None:
    if value is None:
        return
    family = _FAMILIES.get(value.lower())
    if family is None:
        args.error(f"Unsupported family: '{value}'")
    else:
        args.family = family


def set_mcast_address(args: AgentArgs, value: str | None) -> None:
    if value is not None:
        args.mcast_address = value


def set_ipaddr(args: AgentArgs, value: str | None) -> None:
    if value is not None:
        args.ipaddr = value


def set_channel_address(args: AgentArgs, value: str | None) -> None:
    if value is not None:
        args.channel_address = value


def set_port(args: AgentArgs, value: str | None) -> None:
    if value is None:
        return
    port = c_int(value)
    if port is None or not 0 < port < 65536:
        args.error(f"Invalid port: '{value}'")
    else:
        args.port = port


def set_cid(args: AgentArgs, value: str | None) -> None:
    """``-S`` alone means CID 2 (the host); else 2 <= CID < 0xFFFFFFFF (strtoul base 0)."""
    if value is None:
        args.cid = 2
        return
    # strtoul turns "-n" into a huge value, so any negative number is out of range too
    cid, complete = strtol(value)
    if not complete or not 2 <= cid < 0xFFFFFFFF:
        args.error(f"Invalid CID: '{value}'")
    else:
        args.cid = cid


def set_retrans(args: AgentArgs, value: str | None) -> None:
    if value is None:
        return
    retrans = c_int(value)
    if retrans is None or retrans <= 0:
        args.error(f"Invalid retransmit time: '{value}'")
    else:
        args.retrans = retrans


def set_hash(args: AgentArgs, value: str | None) -> None:
    """A C hash type, or ``v2`` (ours only: protocol v2, whatever ``auth`` says)."""
    if value is None:
        return
    if value.lower() == PROTOCOL_V2:
        args.protocol_v2 = True
        return
    try:
        args.hash = HashType.parse(value)
    except ValueError:
        args.error(f"Unsupported hash: {value}")
    else:
        args.protocol_v2 = False


def set_auth(args: AgentArgs, value: str | None) -> None:
    if value is None:
        return
    try:
        args.auth = HashType.parse(value)
    except ValueError:
        args.error(f"Unsupported auth type: {value}")


def set_key_file(args: AgentArgs, value: str | None) -> None:
    """An explicitly named key file must exist (stat), as in C; reading comes later."""
    if value is None:
        return
    args.key_file = value
    try:
        os.stat(value)
    except OSError as exc:
        args.error(f"Invalid key file: '{value}' ({exc.strerror})")


def set_operation(args: AgentArgs, value: str | None) -> None:
    if value is None:
        return
    op = _OPERATIONS.get(value.lower())
    if op is None:
        args.error(f"Unsupported operation: {value}")
    else:
        args.op = op


def set_serial_device(args: AgentArgs, value: str | None) -> None:
    if value is not None:
        args.serial_device = value


def set_serial_params(args: AgentArgs, value: str | None) -> None:
    if value is not None:
        args.serial_params = value


def set_domain(args: AgentArgs, value: str | None) -> None:
    """plug / port / domain / -n / -H: once only, 1 to 63 bytes (kept even when invalid).

    Blanks are part of the name (``port=db primary``: see :mod:`.stdin`)."""
    if args.domain is not None:
        args.error("Domain/UUID may not be specified more than once")
        return
    if value is None:
        return
    args.domain = value
    size = len(os.fsencode(value))
    if size == 0:
        args.error("Invalid domain name")
    if size >= DOMAIN_FIELD_SIZE:
        args.error(f"Invalid domain name: '{value}' ({os.strerror(errno.ENAMETOOLONG)})")
    elif not value.isascii() and not _is_utf8(value):
        # C would send the raw bytes; the wire codec (and libvirt's names) are UTF-8
        args.error(f"Invalid domain name: '{value}' (not UTF-8)")


def _is_utf8(text: str) -> bool:
    """argv/stdin bytes that were not UTF-8 arrive as surrogate escapes."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def set_use_uuid(args: AgentArgs, value: str | None) -> None:
    """``-u`` or a bare ``use_uuid`` sets the flag; ``use_uuid=N`` sets it when atoi(N) != 0."""
    if value is None or atoi(value) != 0:
        args.flags |= F_USE_UUID


def set_timeout(args: AgentArgs, value: str | None) -> None:
    if value is None:
        return
    timeout = c_int(value)
    if timeout is None or timeout <= 0:
        args.error(f"Invalid timeout: '{value}'")
    else:
        args.timeout = timeout


def set_delay(args: AgentArgs, value: str | None) -> None:
    if value is None:
        return
    delay = c_int(value)
    if delay is None or delay < 0:
        args.error(f"Invalid delay: '{value}'")
    else:
        args.delay = delay


def set_help(args: AgentArgs, value: str | None) -> None:
    args.flags |= F_HELP


def set_version(args: AgentArgs, value: str | None) -> None:
    args.flags |= F_VERSION


def finalize(args: AgentArgs) -> None:
    """args_finalize: default group for the family, or the family from the address text."""
    if args.mcast_address is None:
        args.mcast_address = (
            DEFAULT_IPV6_GROUP if args.family == FAMILY_IPV6 else DEFAULT_IPV4_GROUP
        )
    if args.family != FAMILY_AUTO:
        return
    # C tests ':' first and '.' last, so an address with both counts as IPv4
    if "." in args.mcast_address:
        args.family = FAMILY_IPV4
    elif ":" in args.mcast_address:
        args.family = FAMILY_IPV6
    else:
        args.error("Could not determine address family")
