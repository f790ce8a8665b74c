"""Which UNIX sockets of a running domain carry fencing requests (c-suite-spec §7.1).

A guest reaches ``fence_virtd`` without a network through a serial port or a channel whose
host side is a UNIX socket that QEMU listens on (libvirt ``mode='bind'``)::

    <serial type='unix'>                                  <!-- serial mode: the guest's ttyS1 -->
      <source mode='bind' path='/var/run/fence/vm1.sock'/>
      <target port='1'/>
    </serial>
    <channel type='unix'>                                 <!-- vmchannel mode -->
      <source mode='bind' path='/var/run/fence/vm1-chan.sock'/>
      <target type='guestfwd' address='10.0.2.179' port='1229'/>
    </channel>

The rule is C's (``server/virt-serial.c``), read from the domain's live XML: under the root
``<domain>``, every ``<devices>`` child, every ``<serial>`` (serial mode) or ``<channel>``
(vmchannel mode) element whose ``type`` is exactly ``unix``, every ``<source>`` child with both
a ``mode`` and a ``path`` attribute and ``mode="bind"``; with a directory configured, the
path's parent directory must be that directory (:func:`in_directory`). Unlike C, a path listed
twice in one domain is one socket (a second connection to QEMU's socket would never be
accepted).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from xml.etree import ElementTree

from fence_virt.errors import BackendError

__all__ = ["DeviceKind", "GuestSocket", "in_directory", "socket_paths"]


class DeviceKind(enum.Enum):
    """The domain XML element whose sockets are served."""

    #: ``<serial type='unix'>``: the guest's serial port (C's ``mode = "serial"``)
    SERIAL = "serial"
    #: ``<channel type='unix'>``: a virtio-serial port or guestfwd (C's ``mode = "vmchannel"``)
    CHANNEL = "channel"


@dataclass(frozen=True, order=True, slots=True)
class GuestSocket:
    """One socket of one running domain, e.g. ``GuestSocket("6695eb01-...", "vm1",
    "/var/run/fence/vm1.sock")``."""

    #: the domain's UUID (lower-case, hyphenated): the requester identity of its requests
    uuid: str
    #: the domain's name, for logs
    name: str
    #: the socket's path, exactly as the domain XML gives it
    path: str


def in_directory(directory: str, path: str) -> bool:
    """C's ``is_in_directory``: ``path`` lies directly in ``directory``, compared as text.

    Leading slashes of both and trailing slashes of ``directory`` are ignored; the text of
    ``path`` before its last slash (a run of slashes there counts as one) must equal the
    directory exactly, case included. No other normalisation: ``//``, ``.`` and ``..`` inside
    either make them differ, subdirectories do not match, and (a quirk kept for the same
    answers as C) neither does anything for ``directory`` ``/`` or a one-character directory
    such as ``/a``.
    """
    wanted = directory.rstrip("/").lstrip("/")
    text = path.lstrip("/")
    if not wanted or not text or len(text) <= len(wanted):
        return False
    end = text.rfind("/")
    if end < 0:
        return False
    while end > 0 and text[end] == "/":
        end -= 1
    if end == 0:
        return False
    return text[: end + 1] == wanted


def socket_paths(xml: str, kind: DeviceKind, directory: str | None) -> list[str]:
    """The bind-mode UNIX socket paths of ``kind`` devices in a domain's XML, in document
    order, each once (see the module docstring for the rule).

    :param directory: the configured directory, or ``None`` for every path (as C without
        ``path``).
    :raises fence_virt.errors.BackendError: the XML does not parse.
    """
    try:
        # the XML comes from libvirtd, written by libvirt from the domain definition
        root = ElementTree.fromstring(xml)  # noqa: S314
    except ElementTree.ParseError as exc:
        raise BackendError(f"domain XML does not parse: {exc}") from exc
    if root.tag != "domain":
        raise BackendError(f"domain XML has the root element <{root.tag}>, not <domain>")
    paths: list[str] = []
    for devices in root.iterfind("devices"):
        for device in devices.iterfind(kind.value):
            if device.get("type") != "unix":
                continue
            for source in device.iterfind("source"):
                path = _bound_path(source, directory)
                if path is not None and path not in paths:
                    paths.append(path)
    return paths


def _bound_path(source: ElementTree.Element, directory: str | None) -> str | None:
    mode, path = source.get("mode"), source.get("path")
    if mode != "bind" or path is None:
        return None
    if directory is not None and not in_directory(directory, path):
        return None
    return path
