"""What a host's ``fence_xvmd`` ran with: its command line and its ``<fence_xvmd .../>``
attributes, with fence_xvmd's own precedence, as ``fence_virtd --upgrade-from`` converts them.

Where the facts come from (read, not copied; the cluster.git history of ``fence/`` lives in
the ClusterLabs/fence-agents repository):

* ``fence/agents/xvm/`` ``fence_xvmd.c``, ``options.c``, ``options-ccs.c``, ``xvm.h``,
  ``mcast.h``, ``simple_auth.c`` and ``fence/man/fence_xvmd.8`` at fence-agents
  0c15e1cf5c7a51624f5d47409ecc57b4c64cb9b9 (2009-10-13), the last change before fence_xvmd
  was removed ("obsoleted by fence-virt", 5ede119b): the getopt string
  ``dfi:a:p:I:C:U:c:k:u?hLXV``, each flag's cluster.conf name (queried as
  ``/cluster/fence_xvmd/@NAME``) and default, the order (getopt first, cluster.conf after,
  each value overwriting the flag's), the hash being a minimum (``verify_request``).
* fence-agents history: a006cbd3 (2008-06-26) added ``-U``/``uri`` and made
  ``qemu:///system`` the default (``xen:///`` was hard-coded before); 5fd95228 (2008-09-08)
  added ``-I``, whose cluster.conf name was ``multicast_address`` until 0c15e1cf renamed it
  ``interface``; 283b30c5 (2009-03-27) made ``-L`` imply ``-X``; accb40ba (2009-03-30) added
  the ``FENCE_XVMD_DEBUG`` environment variable (not convertible from a file: give ``-d``).
* ``cman/init.d/cman.in`` at fence-agents 965511f1 (2009-01-07): the cman init script ran
  ``fence_xvmd $FENCE_XVMD_OPTS`` (``/etc/sysconfig/cman``), also without ``<fence_xvmd/>``
  when the options hold ``-X``.

=========== ==================== ============================== =================================
flag        ``<fence_xvmd>``     fence_xvmd's default           fence_virt.conf
=========== ==================== ============================== =================================
-a ADDR     multicast_address    225.0.0.12 / ff05::3:1         multicast ``address``
-i FAMILY   ip_family            ipv4 (auto: by the address)    ``family`` (always written)
-p PORT     port                 1229, valid 1-65499            ``port``
-I IFACE    interface            any interface                  ``interface``
-k FILE     key_file             /etc/cluster/fence_xvm.key     ``key_file``
-c HASH     hash                 sha256 (a minimum)             ``hash`` (a minimum too)
-C AUTH     auth                 sha256                         ``auth``
-U URI      uri                  qemu:///system                 the backend's ``uri``
-u          use_uuid (sets only) by name                        cpg ``name_mode = "uuid"``
-L          --                   CMAN + checkpoint (clustered)  ``libvirt`` instead of ``cpg``
-X          --                   cluster.conf read              its attributes ignored
-d (each +1) debug=N (sets N)    0                              ``fence_virtd { debug }``
-f          --                   background                     not converted (``fence_virtd -F``)
-h -? -V    --                   --                             refused: no daemon ran
--          log_facility,        syslog                         not converted (syslog/journald)
            log_level
--          family               (fence_xvmd(8) only)           refused: the code read ip_family
--          anything else        ignored by fence_xvmd          not converted
=========== ==================== ============================== =================================

"Refused" items make the conversion exit 1 (they could move where fencing goes, or the
setup never ran); "not converted" ones are a comment only. A value fence_xvmd itself
refused (it did not start) is refused too, naming the flag or attribute.
"""

from __future__ import annotations

import getopt
import shlex
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import PurePath

from fence_virt.config import ConfigValue
from fence_virt.errors import UserError
from fence_virt.protocol import DEFAULT_IPV4_GROUP, DEFAULT_IPV6_GROUP, DEFAULT_KEY_FILE

__all__ = [
    "Findings",
    "McastListener",
    "XvmdSetup",
    "apply_attributes",
    "group_family",
    "parse_xvmd_args",
    "unwritable",
]

#: fence_xvmd's getopt string (fence_xvmd.c)
OPTSTRING = "dfi:a:p:I:C:U:c:k:u?hLXV"
#: flag letter -> the <fence_xvmd> attribute fence_xvmd read for it (options.c's table)
ATTRIBUTE_OF = {
    "i": "ip_family",
    "a": "multicast_address",
    "p": "port",
    "I": "interface",
    "C": "auth",
    "c": "hash",
    "k": "key_file",
    "U": "uri",
}
#: options.c: assign_port refuses 0 and anything from 65500 on
HIGHEST_PORT = 65499
DIGESTS = ("none", "sha1", "sha256", "sha512")
#: where fence_xvmd's libvirt connection went without -U / uri (xvm.h since a006cbd3)
XVMD_URI = "qemu:///system"


@dataclass
class Findings:
    """Lines for the administrator: ``refused`` make the conversion fail (exit 1),
    ``not_converted`` and ``notes`` are comments in the output."""

    refused: list[str] = field(default_factory=list)
    not_converted: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class McastListener:
    """The keys of one multicast listener instance; ``None`` leaves C's default."""

    address: str
    family: str
    port: str
    key_file: str
    hash: str | None = None
    auth: str | None = None
    interface: str | None = None

    def values(self) -> tuple[ConfigValue, ...]:
        pairs = [
            ("address", self.address),
            ("family", self.family),
            ("port", self.port),
            ("interface", self.interface),
            ("key_file", self.key_file),
            ("hash", self.hash),
            ("auth", self.auth),
        ]
        return tuple(ConfigValue(key, value) for key, value in pairs if value is not None)


@dataclass
class XvmdSetup:
    """fence_xvmd's settings after its precedence: attribute name -> (value, where it was
    given: ``fence_xvmd -p`` or ``<fence_xvmd port=...>``)."""

    values: dict[str, tuple[str, str]] = field(default_factory=dict)
    debug: int = 0
    use_uuid: bool = False
    #: -L: no CMAN, this host's VMs only
    local_only: bool = False
    #: neither -X nor -L: the <fence_xvmd> attributes were read
    reads_cluster_conf: bool = True

    def value(self, attribute: str) -> str | None:
        given = self.values.get(attribute)
        return None if given is None else given[0]


def parse_xvmd_args(text: str, findings: Findings) -> XvmdSetup:
    """fence_xvmd's command line (``FENCE_XVMD_OPTS``, with or without the program name).

    :raises UserError: ``text`` is not shell words (an unclosed quote).
    """
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise UserError(f"--xvmd-args: {exc}") from None
    if words and PurePath(words[0]).name == "fence_xvmd":
        words = words[1:]
    setup = XvmdSetup()
    try:
        options, rest = getopt.gnu_getopt(words, OPTSTRING)
    except getopt.GetoptError as exc:
        flag = f" -{exc.opt}" if len(exc.opt) == 1 else ""
        findings.refused.append(
            f"fence_xvmd{flag}: {exc.msg}: with it fence_xvmd printed its help and did not start"
        )
        return setup
    for flag, value in options:
        _apply_flag(setup, flag[1], value, findings)
    for word in rest:
        findings.not_converted.append(f"fence_xvmd argument {word!r}: not an option (ignored)")
    return setup


def _apply_flag(setup: XvmdSetup, letter: str, value: str, findings: Findings) -> None:
    if letter in ATTRIBUTE_OF:
        setup.values[ATTRIBUTE_OF[letter]] = (value, f"fence_xvmd -{letter}")
    elif letter == "d":
        setup.debug += 1
    elif letter == "u":
        setup.use_uuid = True
    elif letter == "L":
        setup.local_only = True
        setup.reads_cluster_conf = False
    elif letter == "X":
        setup.reads_cluster_conf = False
    elif letter == "f":
        findings.not_converted.append(
            "fence_xvmd -f (foreground): not a file setting; run fence_virtd -F for that"
        )
    else:  # -h, -?, -V
        findings.refused.append(
            f"fence_xvmd -{letter}: fence_xvmd printed its help or version and exited; give "
            "the options the daemon ran with"
        )


def apply_attributes(setup: XvmdSetup, attributes: dict[str, str], findings: Findings) -> None:
    """The ``<fence_xvmd>`` element's attributes over the flags, as fence_xvmd applied them:
    each replaces its flag's value, ``use_uuid`` can only switch UUIDs on, and with ``-X``
    or ``-L`` none is read."""
    for name, value in attributes.items():
        where = f"<fence_xvmd {name}=...>"
        if not setup.reads_cluster_conf:
            findings.not_converted.append(f"{where}: fence_xvmd -X/-L did not read cluster.conf")
        elif name in ATTRIBUTE_OF.values():
            overridden = setup.values.get(name)
            if overridden is not None and overridden[0] != value:
                findings.notes.append(
                    f"{where} overrides {overridden[1]} {overridden[0]} (cluster.conf came "
                    "last in fence_xvmd)"
                )
            setup.values[name] = (value, where)
        elif name == "debug":
            setup.debug = _c_debug(value)
        elif name == "use_uuid":
            setup.use_uuid = setup.use_uuid or _c_atoi(value) != 0
        elif name in ("log_facility", "log_level"):
            findings.not_converted.append(
                f"{where}: fence_virtd logs to syslog/journald; -d or debug sets the detail"
            )
        elif name == "family":
            findings.refused.append(
                f"{where}: fence_xvmd(8) names it but fence_xvmd read ip_family, so it was "
                "ignored; rename it ip_family if that is what the hosts did, or remove it"
            )
        else:
            findings.not_converted.append(f"{where}: not an attribute fence_xvmd read (ignored)")


def _c_atoi(text: str) -> int:
    """C ``atoi``: an optional sign and the leading digits, 0 without any."""
    stripped = text.strip()
    sign = -1 if stripped.startswith("-") else 1
    digits = stripped.lstrip("+-")
    count = len(digits) - len(digits.lstrip("0123456789"))
    return sign * int(digits[:count]) if count else 0


def _c_debug(text: str) -> int:
    """options.c ``assign_debug`` with a value: ``atoi``, a negative level becomes 1."""
    level = _c_atoi(text)
    return 1 if level < 0 else level


def xvmd_listener(setup: XvmdSetup, findings: Findings) -> McastListener | None:
    """The multicast listener equivalent to fence_xvmd's socket; ``None`` (with a refused
    line per bad value) when fence_xvmd would not have started."""
    refused = len(findings.refused)
    _drop_unwritable(setup, findings)
    family = _choice(setup, "ip_family", ("ipv4", "ipv6", "auto"), findings)
    hash_ = _choice(setup, "hash", DIGESTS, findings)
    auth = _choice(setup, "auth", DIGESTS, findings)
    port = setup.value("port") or "1229"
    if not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= HIGHEST_PORT:
        where = setup.values["port"][1]
        findings.refused.append(
            f"{where}: {port!r} is not a port fence_xvmd took (1-{HIGHEST_PORT})"
        )
    address = _address(setup, family, findings)
    if address is None or len(findings.refused) > refused:
        return None
    if setup.value("interface") is not None and _from_file(setup, "interface", "multicast_address"):
        findings.notes.append(
            "fence_xvmd releases of September 2008 to October 2009 (fence-agents 5fd95228 "
            "to 0c15e1cf) took multicast_address= as the interface and ignored interface=: "
            "if yours is one, it listened on every interface, where this file listens on "
            f"{setup.value('interface')} only"
        )
    return McastListener(
        address=address[0],
        family=address[1],
        port=str(int(port)),
        key_file=setup.value("key_file") or DEFAULT_KEY_FILE,
        hash=hash_,
        auth=auth,
        interface=setup.value("interface"),
    )


def unwritable(value: str) -> str | None:
    """Why ``value`` cannot be converted as it stands (a phrase), or ``None``.

    Empty: fence_xvmd refused it (``-p ''``: atoi 0; ``-k ''``: stat fails) or fell back to
    a default the conversion does not guess (``-U ''``: libvirt's probing; ``-I ''``: every
    interface). A ``"``: fence_virt.conf's values are quoted and cannot hold one.
    """
    if not value:
        return (
            "empty: the C tools refused it or fell back to a default; give the value the hosts used"
        )
    if '"' in value:
        return f"{value!r} cannot be written in fence_virt.conf (it holds a '\"')"
    return None


def _drop_unwritable(setup: XvmdSetup, findings: Findings) -> None:
    """Refuse (and forget) each value :func:`unwritable` names."""
    for attribute, (value, where) in list(setup.values.items()):
        why = unwritable(value)
        if why is not None:
            findings.refused.append(f"{where}: {why}")
            del setup.values[attribute]


def _from_file(setup: XvmdSetup, *attributes: str) -> bool:
    """Whether one of ``attributes`` came from the <fence_xvmd> element."""
    return any(setup.values.get(name, ("", ""))[1].startswith("<") for name in attributes)


def _choice(
    setup: XvmdSetup, attribute: str, allowed: tuple[str, ...], findings: Findings
) -> str | None:
    given = setup.values.get(attribute)
    if given is None:
        return None
    if given[0].lower() not in allowed:
        findings.refused.append(
            f"{given[1]}: {given[0]!r} is not one of {', '.join(allowed)} (fence_xvmd did "
            "not start with it)"
        )
        return None
    return given[0].lower()


def group_family(address: str, family: str) -> str:
    """The family (``ipv4``/``ipv6``) in which the C tools join ``address``.

    ``family`` is ``ipv4``, ``ipv6`` or ``auto``; ``auto`` is decided as options.c
    ``args_finalize`` does: a ``.`` anywhere makes it IPv4 (checked last), else a ``:``
    IPv6. The address must then read in that family (``inet_pton``: no ``%scope``) and be
    a multicast group (``IP_ADD_MEMBERSHIP`` refuses any other, mcast.c).

    :raises ValueError: why the C tools could not use it (a phrase, for a refusal line).
    """
    if family == "auto":
        family = "ipv4" if "." in address else "ipv6" if ":" in address else ""
    try:
        if "%" in address:
            raise ValueError(address)
        parsed = ip_address(address)
    except ValueError:
        raise ValueError(f"{address!r} is not an IP address") from None
    if family != f"ipv{parsed.version}":
        raise ValueError(f"{address} is not {family}")
    if not parsed.is_multicast:
        raise ValueError(f"{address} is not a multicast group")
    return family


def _address(setup: XvmdSetup, family: str | None, findings: Findings) -> tuple[str, str] | None:
    """(group, family), as fence_xvmd listened: options.c ``args_init`` starts from
    ``PF_INET``, so without ``-i``/``ip_family`` an IPv6 group could not be joined."""
    given = setup.values.get("multicast_address")
    if given is None:
        if family == "auto":
            return DEFAULT_IPV4_GROUP, "ipv4"
        return (DEFAULT_IPV6_GROUP, "ipv6") if family == "ipv6" else (DEFAULT_IPV4_GROUP, "ipv4")
    chosen = family or "ipv4"
    try:
        found = group_family(given[0], chosen)
    except ValueError as exc:
        where = "fence_xvmd's default; -i ipv6 or -i auto was needed"
        if family is not None:
            source = setup.values["ip_family"][1]
            where = f"{source} auto: a '.' makes it ipv4" if family == "auto" else source
        reason = str(exc)
        if reason.endswith(("ipv4", "ipv6")):
            reason += f" ({where})"
        findings.refused.append(f"{given[1]}: {reason}: fence_xvmd could not listen on it")
        return None
    return given[0], found
