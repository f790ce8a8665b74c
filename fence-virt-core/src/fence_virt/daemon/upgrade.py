"""``fence_virtd --upgrade-from cluster.conf [--xvmd-args ...]``: the fence_virt.conf a
fence_xvm-era setup needs.

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
  ``multicast_ttl``, ``debug``, the target, the action) act in the guest only: a host
  accepts names and UUIDs alike (the request's ``RF_UUID`` flag is ignored by the host,
  c-suite-spec §2.2). Before fence-virt 0.3.1 (ClusterLabs/fence-virt 0358a4e, 2010-02-03)
  and in cluster.git's fence_xvm, ``port`` was the IP port (``ipport`` since) and
  ``domain`` the VM (``port`` since): a number in ``port`` is refused as ambiguous.
* ``<fence_xvmd .../>`` in a host cluster's cluster.conf, and fence_xvmd's command line
  (``--xvmd-args``): that host ran fence_xvmd, which tracked VMs over CMAN/openais with
  libvirt (fence_virt.txt: "Cluster CPG (+ libvirt). This [is] the way fence_xvmd operates
  today"): the ``cpg`` backend (``libvirt`` for ``-L``) and one multicast listener with
  fence_xvmd's settings, per the table in :mod:`fence_virt.daemon.upgrade_xvmd`, which also
  names the sources read.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

from fence_virt.config import ConfigNode, ConfigTree, ConfigValue
from fence_virt.daemon.upgrade_xvmd import (
    XVMD_URI,
    Findings,
    McastListener,
    XvmdSetup,
    apply_attributes,
    group_family,
    parse_xvmd_args,
    unwritable,
    xvmd_listener,
)
from fence_virt.errors import UserError
from fence_virt.protocol import (
    DEFAULT_IPV4_GROUP,
    DEFAULT_IPV6_GROUP,
    DEFAULT_KEY_FILE,
    DEFAULT_PORT,
)

__all__ = ["Conversion", "convert"]

#: a device's attributes that act in the guest only: fence_xvm's (c-suite-spec §4.2, and
#: cluster.git's multicast_ttl and self), and cluster.conf's own ``agent`` and ``name``
GUEST_ONLY = frozenset(
    {
        "agent",
        "name",
        "self",
        "use_uuid",
        "retrans",
        "timeout",
        "delay",
        "debug",
        "multicast_ttl",
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
_DEFAULT_LISTENER = McastListener(DEFAULT_IPV4_GROUP, "ipv4", str(DEFAULT_PORT), DEFAULT_KEY_FILE)


@dataclass
class Conversion(Findings):
    """The result: the configuration, where it came from, and the findings (one line each;
    ``refused`` ones make ``fence_virtd`` exit 1)."""

    tree: ConfigTree = field(default_factory=ConfigTree)
    source: str = ""

    def render(self) -> str:
        """The file: comment lines saying where it came from and what was left out, then
        the configuration in the C dump format."""
        head = [f"# converted from {line}" for line in self.one_line([self.source])]
        head += [f"# note: {note}" for note in self.one_line(self.notes)]
        head += [
            f"# not converted: {line}" for line in self.one_line(self.refused + self.not_converted)
        ]
        return "\n".join(head) + "\n\n" + self.tree.dump()

    @staticmethod
    def one_line(lines: list[str]) -> list[str]:
        """``lines`` with each unprintable character (a newline in a device's name, taken
        from the file) written as its escape: a comment must not end early and put the
        rest of a name into the configuration, nor a refusal take two lines."""
        return ["".join(c if c.isprintable() else repr(c)[1:-1] for c in line) for line in lines]


def _listener(device: ElementTree.Element, where: str) -> McastListener:
    """The listener a ``fence_xvm`` device needs. :raises UserError: a value fence_xvm
    itself would refuse (c-suite-spec §4.2)."""
    get = device.attrib.get
    for key in LISTENER_ARGUMENTS:
        why = None if get(key) is None else unwritable(get(key, ""))
        if why is not None:
            raise UserError(f"{where} {key}=...: {why}")
    family = (get("ip_family") or "auto").lower()
    if family not in ("auto", "ipv4", "ipv6"):
        raise UserError(f"{where}: ip_family={family!r} is not ipv4, ipv6 or auto")
    address = get("multicast_address")
    if address is None:
        address = DEFAULT_IPV6_GROUP if family == "ipv6" else DEFAULT_IPV4_GROUP
    try:
        found = group_family(address, family if "multicast_address" in device.attrib else "auto")
    except ValueError as exc:
        raise UserError(f"{where}: multicast_address={exc}") from None
    port = get("ipport") or str(DEFAULT_PORT)
    if not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
        raise UserError(f"{where}: ipport={port!r} is not a port number (1-65535)")
    return McastListener(
        address=address,
        family=found,
        port=str(int(port)),
        key_file=get("key_file") or DEFAULT_KEY_FILE,
        hash=get("hash"),
        auth=get("auth"),
    )


def _is_fence_xvm(device: ElementTree.Element) -> bool:
    return device.attrib.get("agent", "").rsplit("/", 1)[-1] == "fence_xvm"


def _placed(
    root: ElementTree.Element, path: str, tag: str, conversion: Conversion
) -> list[ElementTree.Element]:
    """The ``tag`` elements at ``/cluster/{path}``, where fence_xvmd (options-ccs.c:
    ``/cluster/fence_xvmd/@NAME``) and fenced (``/cluster/fencedevices/fencedevice``)
    looked; one elsewhere was read by neither and is a comment only."""
    read = root.findall(path)
    for element in root.iter(tag):
        if tag == "fencedevice" and not _is_fence_xvm(element):
            continue
        if not any(element is found for found in read):
            name = f' "{element.attrib["name"]}"' if "name" in element.attrib else ""
            conversion.not_converted.append(
                f"a <{tag}{name}> not directly under <cluster>"
                + ("<fencedevices>" if tag == "fencedevice" else "")
                + ": not read by the cluster tools"
            )
    return [element for element in read if tag != "fencedevice" or _is_fence_xvm(element)]


class _Doctype(Exception):
    """The file declares a DOCTYPE (raised from expat's handler, ending the parse)."""


class _Builder(ElementTree.TreeBuilder):
    """A tree builder that stops the parse at ``<!DOCTYPE``: the parser calls
    :meth:`doctype` where the declaration starts, before any of its entities, default
    attributes or external DTD is read or expanded."""

    def doctype(self, name: str, pubid: str, system: str) -> None:
        raise _Doctype


def _parse(data: bytes) -> ElementTree.Element:
    parser = ElementTree.XMLParser(target=_Builder())  # noqa: S314 -- no DOCTYPE gets through
    parser.feed(data)
    root: ElementTree.Element = parser.close()
    return root


def _read(path: str) -> ElementTree.Element:
    try:
        root = _parse(Path(path).read_bytes())
    except OSError as exc:
        raise UserError(f"{path}: {exc.strerror}") from exc
    except _Doctype:
        raise UserError(
            f"{path}: has a DOCTYPE, which cluster.conf never had: remove it (its entities "
            "or default attributes are not converted)"
        ) from None
    except ElementTree.ParseError as exc:
        raise UserError(f"{path}: not a cluster.conf (XML): {exc}") from exc
    if root.tag != "cluster":
        raise UserError(f"{path}: not a cluster.conf: its root element is <{root.tag}>")
    return root


def _source(path: str | None, xvmd_args: str | None) -> str:
    parts = [] if path is None else [Path(path).name]
    if xvmd_args is not None:
        words = shlex.split(xvmd_args)
        parts.append(f"fence_xvmd {shlex.join(words)}".strip())
    mode = "--upgrade-from" if path is not None else "--xvmd-args"
    return f"{' and '.join(parts)} by fence_virtd {mode}"


def convert(path: str | None, xvmd_args: str | None = None) -> Conversion:
    """Read a cluster.conf and/or fence_xvmd's command line and build the equivalent
    fence_virt.conf (module docstring).

    :param path: the cluster.conf, or ``None`` when fence_xvmd ran on flags alone.
    :param xvmd_args: fence_xvmd's options as one shell string, or ``None``.
    :raises UserError: the file cannot be read or is not XML, there is nothing to convert
        (no ``<fence_xvmd>`` element, no fence_xvm device, no options), a device's value is
        one fence_xvm would refuse, or ``xvmd_args`` is not shell words.
    """
    root = None if path is None else _read(path)
    conversion = Conversion()
    setup = None if xvmd_args is None else parse_xvmd_args(xvmd_args, conversion)
    conversion.source = _source(path, xvmd_args)
    elements = [] if root is None else _placed(root, "fence_xvmd", "fence_xvmd", conversion)
    devices = (
        [] if root is None else _placed(root, "fencedevices/fencedevice", "fencedevice", conversion)
    )
    if setup is None and not elements and not devices:
        raise UserError(
            f'{path}: no <fence_xvmd> element and no fencedevice with agent="fence_xvm": '
            "nothing to convert (give --xvmd-args if fence_xvmd ran without cluster.conf)"
        )
    if elements:
        setup = setup or XvmdSetup()
        apply_attributes(setup, dict(elements[0].attrib), conversion)
        conversion.not_converted += [
            "a further <fence_xvmd> element: fence_xvmd read the first" for _ in elements[1:]
        ]
    listeners: dict[str, McastListener] = {}
    xvmd = None if setup is None else xvmd_listener(setup, conversion)
    if xvmd is not None:
        listeners["multicast"] = xvmd
    listeners = _listeners(devices, conversion, listeners)
    conversion.tree = _tree(listeners or {"multicast": _DEFAULT_LISTENER}, setup, conversion)
    return conversion


def _listeners(
    devices: list[ElementTree.Element],
    conversion: Conversion,
    seeded: dict[str, McastListener],
) -> dict[str, McastListener]:
    """``seeded`` (fence_xvmd's own listener) plus one instance per further distinct group
    and port, named ``multicast`` for the first (as C) and by the device's name for the
    others."""
    by_socket = {(lis.address, lis.port): (name, lis) for name, lis in seeded.items()}
    for index, device in enumerate(devices, 1):
        name = device.attrib.get("name") or f"fence_xvm-{index}"
        wanted = _listener(device, f'fencedevice "{name}"')
        _check_device_keys(device, name, conversion)
        socket = (wanted.address, wanted.port)
        if socket not in by_socket:
            taken = {instance.casefold() for instance, _ in by_socket.values()}
            instance = "multicast" if not by_socket else _instance_name(name, index, taken)
            by_socket[socket] = (instance, wanted)
        elif not _compatible(by_socket[socket][1], wanted):
            conversion.refused.append(
                f'fencedevice "{name}": same group and port as instance '
                f"{by_socket[socket][0]} but another key_file, hash or auth"
            )
    return {instance: listener for instance, listener in by_socket.values()}


def _compatible(serving: McastListener, wanted: McastListener) -> bool:
    """The instance already there serves the device: same key, hash and auth (unset is
    sha256 on both sides, c-suite-spec §4.2 and §5.4)."""

    def secrets(listener: McastListener) -> tuple[str, str, str]:
        return listener.key_file, listener.hash or "sha256", listener.auth or "sha256"

    return secrets(serving) == secrets(wanted)


def _check_device_keys(device: ElementTree.Element, name: str, conversion: Conversion) -> None:
    for key, value in device.attrib.items():
        if key == "port" and value.isdigit() and "ipport" not in device.attrib:
            conversion.refused.append(
                f'fencedevice "{name}" port={value}: the IP port for the cluster packages\' '
                "fence_xvm, a VM name for the C fence-virt suite's since its 0.3.1; "
                "write ipport= if it is the port"
            )
        elif key not in GUEST_ONLY and key not in LISTENER_ARGUMENTS:
            conversion.refused.append(
                f'fencedevice "{name}" {key}=...: not an argument of fence_xvm'
            )


def _instance_name(device: str, index: int, taken: set[str]) -> str:
    """The device's name as a block name, unique among ``taken`` (casefolded): two devices
    of one name, or one named ``multicast``, must not share (and so lose) an instance."""
    cleaned = "".join(c if (c.isascii() and c.isalnum()) or c in "_.-" else "-" for c in device)
    cleaned = cleaned.strip("-")
    base = cleaned if cleaned and cleaned[0].isalnum() else f"fence_xvm-{index}"
    name, suffix = base, 1
    while name.casefold() in taken:
        suffix += 1
        name = f"{base}-{suffix}"
    return name


def _backend(setup: XvmdSetup | None, conversion: Conversion) -> ConfigNode:
    """fence_xvmd's VM tracking: cpg (clustered) or libvirt (``-L``), on its URI."""
    if setup is None:
        conversion.notes.append(
            "the guest cluster's file does not say how the hosts run: libvirt on "
            f"{XVMD_URI} assumed (cpg if the hosts form a corosync cluster)"
        )
        return ConfigNode("libvirt", values=(ConfigValue("uri", XVMD_URI),))
    uri = setup.value("uri")
    if uri is None:
        uri = XVMD_URI
        conversion.notes.append(
            f"fence_xvmd without -U/uri used {XVMD_URI} since June 2008 and xen:/// before "
            "(fence-agents a006cbd3): on Xen hosts set uri"
        )
    if setup.local_only:
        conversion.notes.append(
            "fence_xvmd -L answered success for a VM this host does not run; the libvirt "
            "backend answers failure (one host) or nothing (unknown_vm, several hosts)"
        )
        return ConfigNode("libvirt", values=(ConfigValue("uri", uri),))
    mode = "uuid" if setup.use_uuid else "name"
    if mode == "name":
        conversion.notes.append(
            'fence_xvmd tracked VMs by name over CPG; name_mode = "uuid" is safer once every '
            "guest cluster names VMs by UUID"
        )
    return ConfigNode("cpg", values=(ConfigValue("uri", uri), ConfigValue("name_mode", mode)))


def _tree(
    listeners: dict[str, McastListener], setup: XvmdSetup | None, conversion: Conversion
) -> ConfigTree:
    daemon = [ConfigValue("listener", name) for name in listeners]
    blocks = []
    for name, listener in listeners.items():
        plugin = () if name == "multicast" else (ConfigValue("plugin", "multicast"),)
        blocks.append(ConfigNode(name, values=plugin + listener.values()))
    if len(listeners) > 1:
        conversion.notes.append(
            "several listener instances: fence-virt serves them all, the C daemon only the last"
        )
    backend = _backend(setup, conversion)
    daemon.append(ConfigValue("backend", backend.name))
    if setup is not None and setup.debug > 0:
        daemon.append(ConfigValue("debug", str(setup.debug)))
    return ConfigTree(
        children=(
            ConfigNode("fence_virtd", values=tuple(daemon)),
            ConfigNode("listeners", children=tuple(blocks)),
            ConfigNode("backends", children=(backend,)),
        )
    )
