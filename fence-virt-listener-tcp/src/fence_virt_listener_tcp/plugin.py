"""The plugin object core finds under the entry point ``fence_virt.listeners: tcp``."""

from __future__ import annotations

import logging

from fence_virt import Availability, hookimpl
from fence_virt.config import ConfigSection
from fence_virt.errors import ConfigError
from fence_virt.listening import LISTENER_LOGGER_PREFIX, key_problem, load_listener_key
from fence_virt_listener_tcp.listener import TcpListener
from fence_virt_listener_tcp.settings import resolve_settings
from fence_virt_listener_tcp.sockets import address_problem

__all__ = ["TcpListenerPlugin"]


class TcpListenerPlugin:
    """TCP listener for fence_virt -T (the guest connects to the host's address and port)."""

    @hookimpl
    def fence_virt_listener_check(self, section: ConfigSection) -> Availability:
        try:
            settings = resolve_settings(section)
        except ConfigError as exc:
            return Availability.no(str(exc))
        problem = key_problem(settings.key_file) or address_problem(settings)
        if problem is not None:
            return Availability.no(problem)
        return Availability.yes(f"{settings.describe()}, key file {settings.key_file}")

    @hookimpl
    def fence_virt_listener_create(self, section: ConfigSection) -> TcpListener:
        settings = resolve_settings(section)
        key = load_listener_key(
            settings.key_file,
            hash=settings.hash,
            auth=settings.auth,
            log=logging.getLogger(LISTENER_LOGGER_PREFIX + section.name),
            where=section.path,
        )
        return TcpListener(settings, key)
