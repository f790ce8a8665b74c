"""The serial and vmchannel listeners, shared by their two plugins (c-suite-spec §1.5, §7).

Both listeners are one implementation that differs only in which devices of the domain XML
it serves (C: one ``serial`` plugin with ``mode = "serial"`` or ``"vmchannel"``); the
``fence-virt-listener-serial`` and ``fence-virt-listener-vmchannel`` plugins are thin hooks
over this module, since a plugin may not import another plugin. The parts:

* :class:`GuestSocketWatch` (this library) keeps the sockets of running domains current
  from libvirt lifecycle events;
* :class:`fence_virt.listening.GuestSocketServer` (core's listener toolkit) serves each
  socket in a task of its own, with the domain's UUID as the requester identity;
* :class:`GuestChannelListener` joins the two as a :class:`fence_virt.Listener`;
* :class:`GuestChannelPlugin` holds the two hooks; each plugin subclasses it with its own
  docstring (the ``--list-plugins`` description) and default mode.

The block keeps C's keys (``listeners { serial { uri = ...; path = ...; mode = ...; } }``):

============  ===========================  ==================================================
key           default                      meaning
============  ===========================  ==================================================
``uri``       libvirt's default URI        where the domains run (C: ``virConnectOpen(NULL)``)
``path``      any directory                the directory the sockets lie directly in
``mode``      the plugin's                 ``serial`` (``<serial>`` devices) or ``vmchannel``
                                           (``<channel>``); C's numbers too: 0 is serial,
                                           any other number vmchannel
``key_file``  --                           accepted and unused: serial requests carry no
                                           signature (C's daemon insists the file exists)
============  ===========================  ==================================================

Differences from C: an unknown ``mode`` word is an error (C: ``atoi``, so serial); ``path``
must exist when the listener is created; the listener follows libvirtd restarts.
"""

from __future__ import annotations

import enum
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from fence_virt import Availability, Dispatcher, WizardQuestion, hookimpl
from fence_virt.config import ConfigSection
from fence_virt.errors import BackendError, ConfigError, LocalError, UserError
from fence_virt.listening import LISTENER_LOGGER_PREFIX, GuestSocketServer
from fence_virt_libvirt.events import DEFAULT_RETRY_INTERVAL
from fence_virt_libvirt.guests import DeviceKind, GuestSocket, in_directory
from fence_virt_libvirt.guestwatch import GuestSocketWatch
from fence_virt_libvirt.hypervisor import probe, quiet_libvirt

__all__ = [
    "ChannelMode",
    "GuestChannelListener",
    "GuestChannelPlugin",
    "GuestChannelSection",
    "GuestChannelSettings",
    "channel_availability",
    "channel_questions",
    "create_channel_listener",
    "load_channel_settings",
]

_NUMBER = re.compile(r"[+-]?[0-9]+")

log = logging.getLogger("fence_virt_libvirt")


class ChannelMode(enum.Enum):
    """C's ``mode``: which devices of a domain carry requests."""

    SERIAL = "serial"
    VMCHANNEL = "vmchannel"

    @classmethod
    def parse(cls, text: str) -> ChannelMode:
        """``serial`` / ``vmchannel`` (any case), or C's number: 0 or less is serial."""
        word = text.strip().lower()
        if _NUMBER.fullmatch(word):
            return cls.VMCHANNEL if int(word) > 0 else cls.SERIAL
        try:
            return cls(word)
        except ValueError:
            raise ValueError("expected serial or vmchannel") from None

    @property
    def kind(self) -> DeviceKind:
        """The domain XML element this mode serves."""
        return DeviceKind.SERIAL if self is ChannelMode.SERIAL else DeviceKind.CHANNEL


@dataclass(frozen=True)
class GuestChannelSection:
    """The block as written (C's keys); :func:`load_channel_settings` checks it."""

    uri: str | None = None
    path: str | None = None
    mode: ChannelMode | None = None
    #: C's daemon refuses to start unless this file exists; here it is accepted and unused
    key_file: Path | None = None


@dataclass(frozen=True)
class GuestChannelSettings:
    """A checked block, ready to run."""

    #: the listener instance's name (its block's name), for logs
    name: str
    #: ``""`` is libvirt's default URI
    uri: str
    #: ``None``: sockets anywhere (C without ``path``)
    directory: str | None
    mode: ChannelMode

    def describe(self) -> str:
        where = f"in {self.directory}" if self.directory is not None else "anywhere"
        uri = self.uri or "the default libvirt URI"
        return f"{self.mode.value} sockets {where} of domains on {uri}"


def _directory_problem(directory: str) -> str | None:
    """Why ``directory`` cannot hold guest sockets under C's rule, or None."""
    if not directory.strip("/"):
        return f"path {directory!r} names no directory below /"
    if not in_directory(directory, f"{directory.rstrip('/')}/x"):
        return f"path {directory!r}: C's directory rule matches no socket in it"
    absolute = "/" + directory.lstrip("/")  # C ignores leading slashes
    if not os.path.isdir(absolute):
        return f"directory {absolute} does not exist"
    return None


def load_channel_settings(
    section: ConfigSection, default_mode: ChannelMode
) -> GuestChannelSettings:
    """Read and check the block.

    :param default_mode: the plugin's mode when the block has no ``mode`` key.
    :raises fence_virt.errors.ConfigError: a bad value or a missing directory, at its
        ``file:line``.
    """
    raw = section.load(GuestChannelSection)
    if raw.path is not None and (problem := _directory_problem(raw.path)) is not None:
        raise section.error("path", problem)
    return GuestChannelSettings(
        name=section.name,
        uri=raw.uri or "",
        directory=raw.path,
        mode=raw.mode or default_mode,
    )


def channel_availability(section: ConfigSection, default_mode: ChannelMode) -> Availability:
    """``fence_virt_listener_check``: the block, the directory and the libvirt URI.

    Without a block the listener is not offered (it needs guests set up for it); a bad
    block, a missing directory or a URI that does not connect says why not.
    """
    if not section.present:
        return Availability.no(
            f"no {section.path} block (set path to the directory of the guests' sockets)"
        )
    try:
        settings = load_channel_settings(section, default_mode)
    except ConfigError as exc:
        return Availability.no(str(exc))
    quiet_libvirt()
    problem = probe(settings.uri)
    if problem is not None:
        return Availability.no(problem)
    return Availability.yes(settings.describe())


def create_channel_listener(
    section: ConfigSection, default_mode: ChannelMode
) -> GuestChannelListener:
    """``fence_virt_listener_create``: the listener for one instance's block.

    :raises fence_virt.errors.ConfigError: as :func:`load_channel_settings`.
    """
    settings = load_channel_settings(section, default_mode)
    if settings.directory is None:
        log.warning(
            "%s: no path: the %s sockets of every domain are used, wherever they are "
            "(set path to the directory of the guests' fencing sockets)",
            section.path,
            settings.mode.kind.value,
        )
    return GuestChannelListener(settings)


class GuestChannelListener:
    """:class:`fence_virt.Listener` serving the guests' serial or vmchannel sockets."""

    def __init__(
        self,
        settings: GuestChannelSettings,
        *,
        retry_interval: float = DEFAULT_RETRY_INTERVAL,
    ) -> None:
        """``retry_interval``: seconds between reconnects to libvirt (tests shorten it)."""
        self._settings = settings
        self._retry_interval = retry_interval
        self.log = logging.getLogger(LISTENER_LOGGER_PREFIX + settings.name)
        self._server: GuestSocketServer | None = None
        self._watch: GuestSocketWatch | None = None

    def describe(self) -> str:
        return self._settings.describe()

    @property
    def sockets(self) -> frozenset[GuestSocket]:
        """The guest sockets found so far (served, or being connected)."""
        return self._watch.sockets if self._watch is not None else frozenset()

    async def start(self, dispatcher: Dispatcher) -> None:
        """Read the running domains and serve their sockets; UserError if libvirt cannot
        be watched (the daemon reports it and stops)."""
        if self._server is not None:
            raise LocalError(f"listener {self._settings.name} started twice")
        quiet_libvirt()
        server = self._server = GuestSocketServer(dispatcher, log=self.log)
        settings = self._settings
        self._watch = GuestSocketWatch(
            settings.uri,
            settings.mode.kind,
            settings.directory,
            on_added=lambda s: server.add(s.uuid, s.path, name=s.name),
            on_removed=lambda s: server.remove(s.uuid, s.path),
            retry_interval=self._retry_interval,
        )
        try:
            await self._watch.start()
        except BackendError as exc:
            raise UserError(f"cannot follow the domains: {exc}") from exc
        self.log.info("serving %s", self.describe())

    async def stop(self) -> None:
        watch, self._watch = self._watch, None
        if watch is not None:
            await watch.stop()
        server, self._server = self._server, None
        if server is not None:
            await server.close()


class GuestChannelPlugin:
    """The hooks of the serial and vmchannel listener plugins; subclass it with a docstring
    and a :attr:`default_mode`."""

    #: the mode of a block without a ``mode`` key
    default_mode: ChannelMode = ChannelMode.SERIAL

    @hookimpl
    def fence_virt_listener_check(self, section: ConfigSection) -> Availability:
        return channel_availability(section, self.default_mode)

    @hookimpl
    def fence_virt_listener_create(self, section: ConfigSection) -> GuestChannelListener:
        return create_channel_listener(section, self.default_mode)


def channel_questions(mode: ChannelMode) -> tuple[WizardQuestion, ...]:
    """The ``fence_virtd -c`` questions of a guest-channel listener whose default mode is
    ``mode``: C's serial page (c-suite-spec §5.5) -- ``Libvirt URI``, ``Socket directory``,
    ``Mode (serial or vmchannel)``. Unlike C, the URI answer is stored (C discards it).
    """
    return (
        WizardQuestion("uri", "Libvirt URI", "qemu:///system"),
        WizardQuestion(
            "path",
            "Socket directory",
            "none",
            removable=True,
            absolute_path=True,
            intro="Sockets of domains' devices are served only inside this directory\n"
            "(as libvirt creates them, e.g. /var/lib/libvirt/qemu); 'none' serves\n"
            "every socket path a domain names.",
        ),
        WizardQuestion(
            "mode",
            "Mode (serial or vmchannel)",
            mode.value,
            choices=tuple(choice.value for choice in ChannelMode),
        ),
    )
