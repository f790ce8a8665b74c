"""The plugin object core finds under the entry point ``fence_virt.listeners: multicast``."""

from __future__ import annotations

import logging

from fence_virt import Availability, hookimpl
from fence_virt.config import ConfigSection
from fence_virt.errors import ConfigError
from fence_virt.listening import key_problem, load_key
from fence_virt.protocol import HashType
from fence_virt_listener_multicast.listener import MulticastListener
from fence_virt_listener_multicast.settings import resolve_settings

__all__ = ["MulticastListenerPlugin"]

log = logging.getLogger("fence_virt.listener.multicast")


class MulticastListenerPlugin:
    """Multicast listener for the fence_xvm agent (UDP group request, TCP connect-back)."""

    @hookimpl
    def fence_virt_listener_check(self, section: ConfigSection) -> Availability:
        try:
            settings = resolve_settings(section)
        except ConfigError as exc:
            return Availability.no(str(exc))
        problem = key_problem(settings.key_file)
        if problem is not None:
            return Availability.no(problem)
        return Availability.yes(f"{settings.describe()}, key file {settings.key_file}")

    @hookimpl
    def fence_virt_listener_create(self, section: ConfigSection) -> MulticastListener:
        settings = resolve_settings(section)
        uses_key = settings.hash is not HashType.NONE or settings.auth is not HashType.NONE
        key = load_key(settings.key_file, required=uses_key)
        if settings.hash is HashType.NONE:
            log.warning("%s: hash = none accepts unsigned requests from anyone", section.path)
        if settings.auth is HashType.NONE:
            log.warning("%s: auth = none skips the challenge/response exchange", section.path)
        return MulticastListener(settings, key)
