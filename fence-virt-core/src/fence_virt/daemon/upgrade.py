"""``fence_virtd --upgrade-from cluster.conf``: the fence_virt.conf a fence_xvm-era setup needs.

Requirement 5 of C's design note (fence_virt.txt, shipped in the Debian package's doc
folder): a method to convert an existing fence_xvm/fence_xvmd configuration. What this
converts, and the text each rule rests on:

* ``<fencedevice agent="fence_xvm" .../>`` in a guest cluster's cluster.conf: a device's
  attributes are the agent's stdin arguments (FenceAgentAPI.md), whose names and defaults
  are fence_xvm's (c-suite-spec §4.2): ``multicast_address``, ``ip_family``, ``ipport``,
  ``key_file``, ``hash``, ``auth``. The hosts must serve each distinct group and port with a
  multicast listener instance (fence_virt.txt: multicast works "in the same manner as
  fence_xvm/fence_xvmd"): ``address``/``family``/``port``/``key_file``, ``hash`` as the
  listener's minimum (c-suite-spec §5.4; the agent's own hash is then accepted) and
  ``auth``. The agent's other arguments (``use_uuid``, ``retrans``, ``timeout``, ``delay``,
  ``debug``, the target, the action) act in the guest only: a host accepts names and UUIDs
  alike (the request's ``RF_UUID`` flag is ignored by the host, c-suite-spec §2.2).
* ``<fence_xvmd/>`` in a host cluster's cluster.conf: that host ran fence_xvmd, which
  tracked VMs over CPG with libvirt (fence_virt.txt: "Cluster CPG (+ libvirt). This [is]
  the way fence_xvmd operates today") by VM name (fence_virt.conf(5), ``name_mode``): the
  ``cpg`` backend with ``name_mode = "name"`` on ``qemu:///system`` (the C wizard's URI,
  c-suite-spec §5.5), and the multicast listener with fence_xvm's defaults.

Not converted, because no text available here documents them: the attributes of the
``<fence_xvmd>`` element and fence_xvmd's own command-line flags. Each attribute found is
named in a ``# not converted`` comment and makes the conversion fail (exit 1) rather than
guess: a wrong port or key silently stops fencing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path
from xml.etree import ElementTree

from fence_virt.config import ConfigNode, ConfigTree, ConfigValue
from fence_virt.errors import UserError
from fence_virt.protocol import (
    DEFAULT_IPV4_GROUP,
    DEFAULT_IPV6_GROUP,
    DEFAULT_KEY_FILE,
    DEFAULT_PORT,
)

__all__ = ["Conversion", "convert_cluster_conf"]

#: a device's attributes that act in the guest only: fence_xvm's (c-suite-spec §4.2), and
#: cluster.conf's own ``agent`` and ``name`` of the device
GUEST_ONLY = frozenset(
    {
        "agent",
        "name",
        "use_uuid",
        "retrans",
        "timeout",
        "delay",
        "debug",
        "plug",
        "port",
        "domain",
        "action",
        "option",
        "nodename",
    }
)
#: fence_xvm's arguments that the hosts' listener must match
LISTENER_ARGUMENTS = ("multicast_address", "ip_family", "ipport", "key_file", "hash", "auth")
#: the URI fence_xvmd's libvirt use is converted to (the C wizard's default)
XVMD_URI = "qemu:///system"


@dataclass(frozen=True)
class _Listener:
    """The multicast listener one fence_xvm device needs."""

    address: str
    family: str
    port: str
    key_file: str
    hash: str | None
    auth: str | None

    def values(self) -> tuple[ConfigValue, ...]:
        pairs = [
            ("address", self.address),
            ("family", self.family),
            ("port", self.port),
            ("key_file", self.key_file),
            ("hash", self.hash),
            ("auth", self.auth),
        ]
        return tuple(ConfigValue(key, value) for key, value in pairs if value is not None)


@dataclass
class Conversion:
    """The result: the configuration, and what could not be converted (one line each)."""

    tree: ConfigTree
    source: str
    not_converted: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def render(self) -> str:
        """The file: comment lines saying where it came from and what was left out, then
        the configuration in the C dump format."""
        head = [f"# converted from {self.source} by fence_virtd --upgrade-from"]
        head += [f"# note: {note}" for note in self.notes]
        head += [f"# not converted: {line}" for line in self.not_converted]
        return "\n".join(head) + "\n\n" + self.tree.dump()


def _listener(device: ElementTree.Element, where: str) -> _Listener:
    """The listener a ``fence_xvm`` device needs. :raises UserError: a value fence_xvm
    itself would refuse (c-suite-spec §4.2)."""
    get = device.attrib.get
    family = (get("ip_family") or "auto").lower()
    if family not in ("auto", "ipv4", "ipv6"):
        raise UserError(f"{where}: ip_family={family!r} is not ipv4, ipv6 or auto")
    address = get("multicast_address")
    if address is None:
        address = DEFAULT_IPV6_GROUP if family == "ipv6" else DEFAULT_IPV4_GROUP
    try:
        version = ip_address(address).version
    except ValueError:
        raise UserError(f"{where}: multicast_address={address!r} is not an address") from None
    port = get("ipport") or str(DEFAULT_PORT)
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise UserError(f"{where}: ipport={port!r} is not a port number (1-65535)")
    return _Listener(
        address=address,
        family="ipv4" if version == 4 else "ipv6",
        port=str(int(port)),
        key_file=get("key_file") or DEFAULT_KEY_FILE,
        hash=get("hash"),
        auth=get("auth"),
    )


def _devices(root: ElementTree.Element) -> list[ElementTree.Element]:
    return [
        device
        for device in root.iter("fencedevice")
        if device.attrib.get("agent", "").rsplit("/", 1)[-1] == "fence_xvm"
    ]


def convert_cluster_conf(path: str) -> Conversion:
    """Read a cluster.conf and build the equivalent fence_virt.conf (module docstring).

    :raises UserError: the file cannot be read or is not XML, it holds neither a
        ``<fence_xvmd>`` element nor a fence_xvm device, or a device's value is one
        fence_xvm would refuse.
    """
    try:
        root = ElementTree.parse(path).getroot()  # noqa: S314 -- the administrator's own file
    except OSError as exc:
        raise UserError(f"{path}: {exc.strerror}") from exc
    except ElementTree.ParseError as exc:
        raise UserError(f"{path}: not a cluster.conf (XML): {exc}") from exc
    xvmd = list(root.iter("fence_xvmd"))
    devices = _devices(root)
    if not xvmd and not devices:
        raise UserError(
            f'{path}: no <fence_xvmd> element and no fencedevice with agent="fence_xvm": '
            "nothing to convert"
        )
    conversion = Conversion(ConfigTree(), Path(path).name)
    listeners = _listeners(devices, conversion)
    if not listeners:
        listeners = {
            "multicast": _Listener(
                DEFAULT_IPV4_GROUP, "ipv4", str(DEFAULT_PORT), DEFAULT_KEY_FILE, None, None
            )
        }
    for element in xvmd:
        for attribute in element.attrib:
            conversion.not_converted.append(
                f"<fence_xvmd {attribute}=...>: no documented meaning; set its equivalent "
                "by hand (fence_virt.conf(5))"
            )
    conversion.tree = _tree(listeners, cpg=bool(xvmd), conversion=conversion)
    return conversion


def _listeners(devices: list[ElementTree.Element], conversion: Conversion) -> dict[str, _Listener]:
    """One instance per distinct group and port, named ``multicast`` for the first (as C)
    and by the device's name for the others."""
    by_socket: dict[tuple[str, str], tuple[str, _Listener]] = {}
    for index, device in enumerate(devices, 1):
        name = device.attrib.get("name") or f"fence_xvm-{index}"
        wanted = _listener(device, f'fencedevice "{name}"')
        for key in device.attrib:
            if key not in GUEST_ONLY and key not in LISTENER_ARGUMENTS:
                conversion.not_converted.append(
                    f'fencedevice "{name}" {key}=...: not an argument of fence_xvm'
                )
        socket = (wanted.address, wanted.port)
        if socket not in by_socket:
            instance = "multicast" if not by_socket else _instance_name(name, index)
            by_socket[socket] = (instance, wanted)
        elif by_socket[socket][1] != wanted:
            conversion.not_converted.append(
                f'fencedevice "{name}": same group and port as instance '
                f"{by_socket[socket][0]} but another key_file, hash or auth"
            )
    return {instance: listener for instance, listener in by_socket.values()}


def _instance_name(device: str, index: int) -> str:
    cleaned = "".join(c if c.isalnum() or c in "_.-" else "-" for c in device).strip("-")
    return cleaned if cleaned and cleaned[0].isalnum() else f"fence_xvm-{index}"


def _tree(listeners: dict[str, _Listener], *, cpg: bool, conversion: Conversion) -> ConfigTree:
    daemon = [ConfigValue("listener", name) for name in listeners]
    blocks = []
    for name, listener in listeners.items():
        plugin = () if name == "multicast" else (ConfigValue("plugin", "multicast"),)
        blocks.append(ConfigNode(name, values=plugin + listener.values()))
    if len(listeners) > 1:
        conversion.notes.append(
            "several listener instances: fence-virt serves them all, the C daemon only the last"
        )
    if cpg:
        backend = ConfigNode(
            "cpg", values=(ConfigValue("uri", XVMD_URI), ConfigValue("name_mode", "name"))
        )
        conversion.notes.append(
            'fence_xvmd tracked VMs by name over CPG; name_mode = "uuid" is safer once every '
            "guest cluster names VMs by UUID"
        )
    else:
        backend = ConfigNode("libvirt", values=(ConfigValue("uri", XVMD_URI),))
        conversion.notes.append(
            "the guest cluster's file does not say how the hosts run: libvirt on "
            f"{XVMD_URI} assumed (cpg if the hosts form a corosync cluster)"
        )
    daemon.append(ConfigValue("backend", backend.name))
    return ConfigTree(
        children=(
            ConfigNode("fence_virtd", values=tuple(daemon)),
            ConfigNode("listeners", children=tuple(blocks)),
            ConfigNode("backends", children=(backend,)),
        )
    )
