"""The listener toolkit: what every fence_virtd listener shares, whatever its transport.

A listener plugin owns its sockets and its runner (accepting, tasks, shutdown). Everything
between "bytes arrived" and "bytes to send back" is here, so the multicast, tcp, vsock,
serial and vmchannel listeners behave alike and none copies another:

* **keys** -- :func:`load_key` reads the shared key file (mode tightened to 0600, as C);
  :func:`load_listener_key` adds the warnings for ``hash``/``auth`` = none; :func:`key_problem`
  is the side-effect-free check for ``fence_virt_listener_check``; :func:`key_findings` the
  lines ``fence_virtd --check`` prints for a key (fingerprint, comparison with a guest's).
* **stream session** (fence_req transports: multicast connect-back, tcp, vsock) --
  :func:`receive_request` reads and verifies the 176-byte request where the client sends it
  first (tcp, vsock); :func:`serve` runs the challenge/response (:func:`authenticate`), asks
  the backend through the :class:`~fence_virt.types.Dispatcher` and writes the answer. It
  works on any :class:`Channel`; :class:`SocketChannel` is one over a stream socket with a
  deadline per read and write.
* **stream server** (tcp, vsock) -- :class:`StreamServer` accepts connections on a listening
  socket the plugin opened and serves each one concurrently (at most ``max_connections``),
  with :class:`StreamSessions`: the request within its deadline, verified, duplicates and
  replays dropped, the handshake, the answer -- all set by a :class:`StreamPolicy`.
  :class:`StreamListener` is a whole :class:`~fence_virt.Listener` around it: a plugin gives
  its settings (:class:`StreamListenerSettings`), a socket opener and a requester naming rule.
* **serial framing** (serial, vmchannel) -- :class:`SerialRequestReader` turns a guest's
  byte stream into requests, resynchronising on the magic; :func:`answer_serial` answers one.
  :func:`answer` is the fence_req counterpart :func:`serve` uses.
* **request history** -- :class:`RequestHistory` keyed by :func:`request_key` runs a
  retransmitted request once (C's 10-second history, also while the request runs);
  :class:`ReplayGuard` refuses every copy of a signed request received within its window
  (:class:`ReplaySettings`), and :class:`ReplayStore` keeps that memory in a state file
  across restarts (:func:`default_replay_state`).
* **protocol v2** (:mod:`fence_virt.listening.v2`, ``docs/protocol-v2.md``) --
  :func:`~fence_virt.listening.v2.check_request` verifies 176 bytes as the listener's
  ``protocol`` mode demands (C mode, v2, or both; a v2-only listener refuses a C request
  with one clear reason); :func:`~fence_virt.listening.v2.serve_v2` is :func:`serve` for a
  v2 request (the v2 handshake, the answer sealed with the host's MAC).
  :class:`StreamSessions` does both by :attr:`StreamPolicy.protocol`.
* **unservable requests** -- an authentic fence_req whose domain does not decode
  (:class:`~fence_virt.protocol.UnservableRequest`) is answered ``FAIL`` by :func:`answer`
  and :func:`serve`, without asking the backend, as C answers it.
* **drop log** -- :class:`DropLog` logs each dropped input once, rate-limited;
  :class:`SourceLog` logs a refusal a source repeats at will (replays) once per source.
* **guest sockets** (serial, vmchannel) -- :class:`GuestSocketServer` connects to each
  guest's UNIX socket it is given and serves it in a task of its own: framing, answers,
  duplicates, drop log, reconnects (:mod:`fence_virt.listening.guests`).

The requester identity is always passed in by the listener, which alone knows it: the IP in
the multicast request, the peer IP (tcp), the peer CID (vsock), the guest's UUID (serial).
Every failure a peer can cause is a :class:`~fence_virt.errors.RemoteError`: log it (through
the drop log when it can be repeated at will), keep serving.

A tcp or vsock listener is its settings, its socket and a :class:`StreamServer` (a sketch:
``settings``, ``open_socket`` and ``log`` are the plugin's own; ``key`` was read at create
time with :func:`load_listener_key`)::

    async def start(self, dispatcher: Dispatcher) -> None:
        policy = StreamPolicy(key, settings.hash, settings.auth)  # C: 1 s, then 10 s a step
        self.server = StreamServer(
            open_socket(settings),                   # bound and listening
            policy,
            requester=lambda peer: peer[0],          # tcp: the peer's numeric IP
            log=log,
            max_connections=settings.max_connections,
        )
        await self.server.start(dispatcher)

    async def stop(self) -> None:
        await self.server.stop()

A serial listener, per guest stream: see :mod:`fence_virt.listening.serial`; the whole
runner for guest sockets is :class:`GuestSocketServer`.

This package imports only :mod:`fence_virt.errors`, :mod:`fence_virt.protocol`,
:mod:`fence_virt.types`, :mod:`fence_virt.files` and :mod:`fence_virt.tracing` (request ids:
the stream session and the serial runner begin one per request): never the daemon, the
configuration or the plugin machinery.
"""

from __future__ import annotations

from fence_virt.listening.answers import FENCE_OPERATIONS, answer, answer_serial
from fence_virt.listening.channel import SocketChannel
from fence_virt.listening.droplog import DropLog, SourceLog
from fence_virt.listening.guests import GuestSocketServer
from fence_virt.listening.history import HISTORY_WINDOW, HistoryKey, RequestHistory, request_key
from fence_virt.listening.keys import (
    key_findings,
    key_fingerprint,
    key_problem,
    load_key,
    load_listener_key,
)
from fence_virt.listening.replay import (
    FINGERPRINT_SIZE,
    REPLAY_CAPACITY,
    REPLAY_WINDOW,
    ReplayGuard,
    ReplaySettings,
)
from fence_virt.listening.replaystate import (
    DEFAULT_STATE_DIRECTORY,
    ReplayStore,
    StateFileError,
    default_replay_state,
)
from fence_virt.listening.serial import NO_MAGIC, SerialRequestReader, Skipped
from fence_virt.listening.server import MAX_CONNECTIONS, Requester, StreamServer
from fence_virt.listening.session import (
    Channel,
    Credentials,
    authenticate,
    receive_request,
    serve,
)
from fence_virt.listening.stream import (
    IO_TIMEOUT,
    REQUEST_TIMEOUT,
    StreamPolicy,
    StreamSessions,
    TimedChannel,
)
from fence_virt.listening.stream_listener import (
    LISTENER_LOGGER_PREFIX,
    StreamListener,
    StreamListenerSettings,
    stream_policy,
)

__all__ = [
    "DEFAULT_STATE_DIRECTORY",
    "FENCE_OPERATIONS",
    "FINGERPRINT_SIZE",
    "HISTORY_WINDOW",
    "IO_TIMEOUT",
    "LISTENER_LOGGER_PREFIX",
    "MAX_CONNECTIONS",
    "NO_MAGIC",
    "REPLAY_CAPACITY",
    "REPLAY_WINDOW",
    "REQUEST_TIMEOUT",
    "Channel",
    "Credentials",
    "DropLog",
    "GuestSocketServer",
    "HistoryKey",
    "ReplayGuard",
    "ReplaySettings",
    "ReplayStore",
    "RequestHistory",
    "Requester",
    "SerialRequestReader",
    "Skipped",
    "SocketChannel",
    "SourceLog",
    "StateFileError",
    "StreamListener",
    "StreamListenerSettings",
    "StreamPolicy",
    "StreamServer",
    "StreamSessions",
    "TimedChannel",
    "answer",
    "answer_serial",
    "authenticate",
    "default_replay_state",
    "key_findings",
    "key_fingerprint",
    "key_problem",
    "load_key",
    "load_listener_key",
    "receive_request",
    "request_key",
    "serve",
    "stream_policy",
]
