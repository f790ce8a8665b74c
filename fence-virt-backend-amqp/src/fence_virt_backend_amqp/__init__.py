"""The ``amqp`` backend of fence_virtd: hosts share VM locations and route fencing requests
over an AMQP 0-9-1 broker (RabbitMQ); see the distribution's README."""

from __future__ import annotations

from fence_virt_backend_amqp.backend import AmqpBackend
from fence_virt_backend_amqp.plugin import AmqpBackendPlugin

__all__ = ["AmqpBackend", "AmqpBackendPlugin"]
