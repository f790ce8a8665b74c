"""The extension core finds under the entry point ``fence_virt.extensions: prometheus``.

Config (the block enables it)::

    extensions {
        prometheus {
            address = "127.0.0.1";   # where the HTTP endpoint listens (default: loopback only)
            port = "9230";           # default 9230
        }
    }

The endpoint (``http://ADDRESS:PORT/metrics``, Prometheus text exposition written by
``prometheus-client``) is opened when the daemon has started (``fence_virt_daemon_started``)
and closed when it stops; ``fence_virtd --check`` binds the port and closes it at once, to
say whether the daemon could. A port that cannot be bound when the daemon starts is one error
line naming this plugin; fencing goes on.
"""

from __future__ import annotations

import logging
import socket
import threading
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Annotated, Any

from prometheus_client import start_http_server

from fence_virt import (
    CheckContext,
    ConfigSection,
    DroppedRequest,
    Finding,
    FinishedRequest,
    hookimpl,
)
from fence_virt.config import PORT
from fence_virt.errors import UserError
from fence_virt_metrics_prometheus.metrics import FenceMetrics

__all__ = ["DEFAULT_PORT", "PrometheusExtension", "PrometheusSettings"]

log = logging.getLogger("fence_virt.metrics.prometheus")

#: next to fence_virt's 1229, clear of the ports Prometheus exporters commonly use
DEFAULT_PORT = 9230


@dataclass(frozen=True)
class PrometheusSettings:
    """The ``extensions { prometheus { ... } }`` block."""

    #: IP address to listen on; loopback unless the administrator opens it
    address: str = "127.0.0.1"
    #: TCP port of the metrics endpoint (``/metrics``)
    port: Annotated[int, PORT] = DEFAULT_PORT


def load_settings(section: ConfigSection) -> PrometheusSettings:
    """Read and check the block; ConfigError (file:line) for a bad value."""
    settings = section.load(PrometheusSettings)
    try:
        ip_address(settings.address)
    except ValueError:
        raise section.error("address", f"{settings.address!r} is not an IP address") from None
    return settings


class PrometheusExtension:
    """Prometheus metrics: requests, latency, authentication failures, drops, backend state."""

    def __init__(self) -> None:
        self.metrics = FenceMetrics()
        self.settings: PrometheusSettings | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @hookimpl
    def fence_virt_extension_configure(self, section: ConfigSection) -> PrometheusExtension:
        self.settings = load_settings(section)
        return self  # its diagnose() is what fence_virtd --check adds

    def diagnose(self, context: CheckContext) -> list[Finding]:
        """For ``fence_virtd --check``: can the endpoint's address and port be bound (bound
        and closed again at once, with ``SO_REUSEADDR`` as the HTTP server binds)."""
        settings = self.settings or PrometheusSettings()
        family = socket.AF_INET6 if ":" in settings.address else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind((settings.address, settings.port))
        except OSError as exc:
            return [
                Finding.problem(
                    f"cannot listen on {_where(settings)} for metrics: {exc.strerror}",
                    "stop what holds the port (a running fence_virtd?) or set port = in "
                    "extensions/prometheus",
                )
            ]
        return [Finding.ok(f"metrics endpoint http://{_where(settings)}/metrics can listen")]

    @hookimpl
    def fence_virt_daemon_started(self) -> None:
        settings = self.settings or PrometheusSettings()
        try:
            self._server, self._thread = start_http_server(
                settings.port, settings.address, registry=self.metrics.registry
            )
        except OSError as exc:
            raise UserError(
                f"cannot serve metrics on {settings.address}:{settings.port}: {exc.strerror}"
            ) from exc
        log.info("metrics on http://%s/metrics", _where(settings))

    @hookimpl
    def fence_virt_daemon_stopped(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    @hookimpl
    def fence_virt_request_finished(self, request: FinishedRequest) -> None:
        self.metrics.finished(request)

    @hookimpl
    def fence_virt_request_dropped(self, drop: DroppedRequest) -> None:
        self.metrics.dropped_input(drop)

    @hookimpl
    def fence_virt_backend_state(self, backend: str, up: bool) -> None:
        self.metrics.backend_state(backend, up)


def _where(settings: PrometheusSettings) -> str:
    host = f"[{settings.address}]" if ":" in settings.address else settings.address
    return f"{host}:{settings.port}"
