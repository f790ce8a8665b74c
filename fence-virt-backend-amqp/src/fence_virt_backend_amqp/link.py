"""This host's link to the broker: one connection, one channel with publisher confirms, the
cluster's topic exchange and this host's exclusive queue; reconnects after a loss.

At-most-once by construction: the queue is consumed without acknowledgements (a message is
the consumer's once delivered, never redelivered after a broker or connection failure), and
the queue is exclusive and auto-deleted (requests for a host that is gone are unroutable and
returned to their publisher at once, instead of waiting for a host that may come back and act
late). A publish waits for the broker's confirm, so "sent" means the broker routed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    AbstractIncomingMessage,
)
from aio_pika.exceptions import AMQPError, DeliveryError, PublishError
from yarl import URL

from fence_virt.errors import BackendError, ConfigError, UserError
from fence_virt.files import read_secret_file
from fence_virt_backend_amqp.config import AmqpSettings
from fence_virt_backend_amqp.wire import host_key

__all__ = ["BrokerLink", "broker_url"]

log = logging.getLogger("fence_virt_backend_amqp")

#: seconds between reconnection attempts after the broker went away
_RETRY_INTERVAL = 1.0
#: seconds a publish waits for the broker's confirm
_PUBLISH_TIMEOUT = 5.0
ANNOUNCE_KEY = "announce"
#: bytes of a password file read (RabbitMQ passwords are far shorter)
_PASSWORD_MAX = 4096


def broker_url(settings: AmqpSettings) -> URL:
    """The URL to connect to, with the password from ``password_file`` (its first line; the
    file must be a regular file, and its mode is tightened to 0600 as for key files).

    :raises ConfigError: missing, unreadable or empty password file, or a scheme other than
        amqp/amqps.
    """
    url = URL(settings.url)
    if url.scheme not in ("amqp", "amqps"):
        raise ConfigError(f"url {settings.url!r}: the scheme must be amqp or amqps")
    if settings.password_file is not None:
        try:
            data = read_secret_file(
                settings.password_file, what="password_file", max_bytes=_PASSWORD_MAX
            )
        except UserError as exc:
            raise ConfigError(str(exc)) from None
        lines = data.decode(errors="replace").splitlines()
        if not lines or not lines[0]:
            raise ConfigError(f"password_file {settings.password_file}: the first line is empty")
        url = url.with_password(lines[0])
    return url


def _tls_context(settings: AmqpSettings) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(
            cafile=str(settings.tls_ca) if settings.tls_ca else None
        )
        if settings.tls_cert is not None:
            key = str(settings.tls_key) if settings.tls_key else None
            context.load_cert_chain(str(settings.tls_cert), key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"TLS files for the broker: {exc}") from None
    return context


class BrokerLink:
    """Connection, exchange and queue of one host; callbacks run on the event loop."""

    def __init__(
        self,
        settings: AmqpSettings,
        on_message: Callable[[AbstractIncomingMessage], None],
        on_lost: Callable[[str], None],
        on_up: Callable[[], None],
    ) -> None:
        self._settings = settings
        self._url = broker_url(settings)
        self._tls = _tls_context(settings) if self._url.scheme == "amqps" else None
        self._on_message = on_message
        self._on_lost = on_lost
        self._on_up = on_up
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._stopping = False
        self._reconnecting: asyncio.Task[None] | None = None

    @property
    def where(self) -> str:
        """The broker, user and vhost, without the password (for logs)."""
        return str(self._url.with_password(None))

    @property
    def connected(self) -> bool:
        return self._exchange is not None

    async def start(self) -> None:
        """Connect, declare, consume.

        :raises BackendError: broker unreachable, credentials refused, vhost not allowed.
        """
        try:
            async with asyncio.timeout(self._settings.connect_timeout):
                await self._connect()
        except TimeoutError:
            raise BackendError(
                f"broker {self.where}: no connection within {self._settings.connect_timeout:g} s"
            ) from None
        except (AMQPError, OSError) as exc:
            raise BackendError(f"broker {self.where}: {_explain(exc)}") from None

    async def _connect(self) -> None:
        connection = await aio_pika.connect(
            self._url,
            ssl_context=self._tls,
            timeout=self._settings.connect_timeout,
            client_properties={"connection_name": f"fence_virtd host {self._settings.host_id}"},
        )
        try:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.declare_exchange(
                self._settings.exchange, aio_pika.ExchangeType.TOPIC
            )
            queue = await channel.declare_queue(
                f"{self._settings.exchange}.{host_key(self._settings.host_id)}",
                exclusive=True,
                auto_delete=True,
            )
            await queue.bind(exchange, host_key(self._settings.host_id))
            await queue.bind(exchange, ANNOUNCE_KEY)
            await queue.consume(self._deliver, no_ack=True)
        except BaseException:
            await connection.close()
            raise
        connection.close_callbacks.add(self._closed)
        self._connection, self._channel, self._exchange = connection, channel, exchange

    async def _deliver(self, message: AbstractIncomingMessage) -> None:
        self._on_message(message)

    def _closed(self, _connection: object, exc: BaseException | None = None) -> None:
        self._connection = self._channel = self._exchange = None
        if self._stopping:
            return
        why = _explain(exc) if exc is not None else "closed"
        log.error("lost the broker %s (%s); reconnecting", self.where, why)
        self._on_lost(why)
        if self._reconnecting is None or self._reconnecting.done():
            self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        while not self._stopping:
            await asyncio.sleep(_RETRY_INTERVAL)
            try:
                async with asyncio.timeout(self._settings.connect_timeout):
                    await self._connect()
            except (AMQPError, OSError, TimeoutError) as exc:
                log.debug("broker %s: still unreachable (%s)", self.where, _explain(exc))
                continue
            log.info("reconnected to the broker %s", self.where)
            self._on_up()
            return

    async def publish(
        self,
        body: bytes,
        routing_key: str,
        *,
        correlation_id: str | None = None,
        reply_to: str | None = None,
        ttl: float | None = None,
    ) -> None:
        """Publish and wait for the broker's confirm.

        :param ttl: seconds the broker keeps it undelivered before dropping it.
        :raises BackendError: not connected, unroutable (no such host queue), or refused.
        """
        exchange = self._exchange
        if exchange is None:
            raise BackendError(f"not connected to the broker {self.where}")
        message = aio_pika.Message(
            body,
            content_type="application/json",
            correlation_id=correlation_id,
            reply_to=reply_to,
            expiration=ttl,
            delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT,
        )
        try:
            await exchange.publish(message, routing_key, mandatory=True, timeout=_PUBLISH_TIMEOUT)
        except DeliveryError:
            raise BackendError(
                f"no queue takes {routing_key!r} (that host is not connected)"
            ) from None
        except (PublishError, AMQPError, OSError, TimeoutError, RuntimeError) as exc:
            raise BackendError(f"publishing to {routing_key!r} failed: {_explain(exc)}") from None

    async def stop(self) -> None:
        self._stopping = True
        task, self._reconnecting = self._reconnecting, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        connection, self._connection = self._connection, None
        self._channel = self._exchange = None
        if connection is not None:
            with contextlib.suppress(AMQPError, OSError, RuntimeError):
                await connection.close()


def _explain(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if "ACCESS_REFUSED" in text or "ProbableAuthentication" in type(exc).__name__:
        return f"the broker refused the credentials ({text})"
    if "NOT_ALLOWED" in text or ("Connection.OpenOk" in text and "Connection.Close" in text):
        # aiormq drops the reply text when the broker answers Connection.Open with a Close;
        # RabbitMQ does so (NOT_ALLOWED) for a vhost that is missing or not the user's
        return "the broker refused to open the vhost: it does not exist or the user may not use it"
    return text
