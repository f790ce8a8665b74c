"""The ``amqp`` backend plugin: an :class:`AmqpBackend` from ``backends { amqp { ... } }``."""

from __future__ import annotations

from fence_virt import Availability, ConfigSection, WizardQuestion, hookimpl
from fence_virt.errors import ConfigError
from fence_virt_backend_amqp.backend import AmqpBackend
from fence_virt_backend_amqp.config import DEFAULT_EXCHANGE, AmqpSettings
from fence_virt_backend_amqp.link import broker_url

__all__ = ["AmqpBackendPlugin"]


class AmqpBackendPlugin:
    """Fence VMs wherever they run among hosts that share an AMQP broker (RabbitMQ)."""

    #: ``fence_virtd -c``: the keys every host needs; the timings keep their defaults (README)
    wizard_questions = (
        WizardQuestion("uri", "Libvirt URI", "qemu:///system", repeatable=True),
        WizardQuestion(
            "host_id",
            "This host's number",
            number=(1, 2**31 - 1),
            number_name="host number",
            intro="Each host sharing the broker needs its own number (1, 2, 3, ...).",
        ),
        WizardQuestion(
            "url", "Broker URL (amqp[s]://USER@HOST:PORT/VHOST)", "amqp://127.0.0.1:5672/"
        ),
        WizardQuestion(
            "password_file",
            "Broker password file",
            "none",
            removable=True,
            absolute_path=True,
            intro="The broker user's password, alone on the first line of a file of mode 0600.",
        ),
        WizardQuestion(
            "tls_ca", "CA file of the broker (amqps)", "none", removable=True, absolute_path=True
        ),
        WizardQuestion(
            "exchange",
            "Exchange",
            DEFAULT_EXCHANGE,
            intro="One exchange per guest cluster: every host serving it uses the same name.",
        ),
        WizardQuestion(
            "fenced_check",
            "Command that confirms a departed host was fenced",
            "none",
            removable=True,
            absolute_path=True,
            intro="Without it, a VM whose host stopped announcing is never reported fenced.\n"
            "It runs as COMMAND HOST_ID LAST_HEARD (seconds since the epoch) and must exit 0\n"
            "only if that host was fenced since then (fence-virt-backend-amqp's README).",
        ),
    )

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
