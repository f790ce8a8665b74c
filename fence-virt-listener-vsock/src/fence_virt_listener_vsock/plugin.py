"""The plugin object core finds under the entry point ``fence_virt.listeners: vsock``."""

from __future__ import annotations

import logging

from fence_virt import Availability, WizardQuestion, hookimpl
from fence_virt.config import ConfigSection
from fence_virt.errors import ConfigError
from fence_virt.listening import LISTENER_LOGGER_PREFIX, key_problem, load_listener_key
from fence_virt.protocol import DEFAULT_KEY_FILE, DEFAULT_PORT
from fence_virt_listener_vsock.listener import VsockListener
from fence_virt_listener_vsock.settings import MAX_VSOCK_PORT, resolve_settings
from fence_virt_listener_vsock.sockets import vsock_problem

__all__ = ["VsockListenerPlugin"]


class VsockListenerPlugin:
    """vsock listener for fence_virt -S (guests connect to the host over AF_VSOCK)."""

    #: ``fence_virtd -c`` (C's wizard has no vsock page)
    wizard_questions = (
        WizardQuestion(
            "port",
            "vsock Port",
            str(DEFAULT_PORT),
            number=(1, MAX_VSOCK_PORT),
            number_name="vsock port",
            intro="Guests connect to this port on the host's context id (fence_virt -S 2 -p PORT).",
        ),
        WizardQuestion("key_file", "Key File", DEFAULT_KEY_FILE, absolute_path=True),
    )

    @hookimpl
    def fence_virt_listener_check(self, section: ConfigSection) -> Availability:
        try:
            settings = resolve_settings(section)
        except ConfigError as exc:
            return Availability.no(str(exc))
        problem = vsock_problem() or key_problem(settings.key_file)
        if problem is not None:
            return Availability.no(problem)
        return Availability.yes(f"{settings.describe()}, key file {settings.key_file}")

    @hookimpl
    def fence_virt_listener_create(self, section: ConfigSection) -> VsockListener:
        settings = resolve_settings(section)
        key = load_listener_key(
            settings.key_file,
            hash=settings.hash,
            auth=settings.auth,
            log=logging.getLogger(LISTENER_LOGGER_PREFIX + section.name),
            where=section.path,
        )
        return VsockListener(settings, key)
