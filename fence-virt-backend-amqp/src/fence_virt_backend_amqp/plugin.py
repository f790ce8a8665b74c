"""The ``amqp`` backend plugin: an :class:`AmqpBackend` from ``backends { amqp { ... } }``."""

from __future__ import annotations

from fence_virt import Availability, ConfigSection, hookimpl
from fence_virt.errors import ConfigError
from fence_virt_backend_amqp.backend import AmqpBackend
from fence_virt_backend_amqp.config import AmqpSettings
from fence_virt_backend_amqp.link import broker_url

__all__ = ["AmqpBackendPlugin"]


class AmqpBackendPlugin:
    """Fence VMs wherever they run among hosts that share an AMQP broker (RabbitMQ)."""

    @hookimpl
    def fence_virt_backend_check(self, section: ConfigSection) -> Availability:
        if not section.present:
            return Availability.no(f"no {section.path} block (it needs uri and host_id)")
        settings = section.load(AmqpSettings)
        return Availability.yes(
            f"exchange {settings.exchange} on {settings.url} as host {settings.host_id}; "
            f"local VMs from {', '.join(settings.uri)}"
        )

    @hookimpl
    def fence_virt_backend_create(self, section: ConfigSection) -> AmqpBackend:
        settings = section.load(AmqpSettings)
        if not settings.uri:
            raise section.error(None, 'needs at least one uri = "...";')
        if settings.host_id == 0:
            raise section.error(None, 'needs host_id = "N"; (1 or more, unique per host)')
        if not settings.exchange:
            raise section.error("exchange", "must not be empty")
        try:
            broker_url(settings)
        except ConfigError as exc:
            key = "password_file" if str(exc).startswith("password_file") else "url"
            raise section.error(key, str(exc)) from None
        return AmqpBackend(settings)
