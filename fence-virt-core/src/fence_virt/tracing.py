"""Request ids: one request followed through the log, from listener to backend to reply.

Every request core handles gets a short random id, kept in a :mod:`contextvars` variable, so
every log line written while serving it -- by the listener, core's dispatcher, the backend
in its worker thread -- carries it without being passed around. The daemon's log handler
prints it (``req=3fa9c2d1`` in foreground mode, a ``REQUEST_ID=`` field for journald), so
``grep 3fa9c2d1`` or ``journalctl REQUEST_ID=3fa9c2d1`` shows one request's lines.

A listener begins a request as soon as it has one worth following: :func:`begin_request`
inside the task serving it, or :func:`request_context` for a task not yet created. Core's
dispatcher begins one itself if the listener did not. Context variables follow asyncio
tasks (copied when a task is created) but not worker threads; core's backend runner copies
the context into the thread.

The fields of a request's summary line, as :data:`logging.LogRecord` attributes (the
``extra`` of the dispatcher's line) and journald fields: :data:`FIELDS`.
"""

from __future__ import annotations

import contextvars
import secrets

__all__ = [
    "FIELDS",
    "begin_request",
    "current_request_id",
    "request_context",
]

#: hex digits of a request id: 32 bits, unique enough among the requests of one log
_ID_BYTES = 4

#: record attribute -> journald field, for the summary line of every request (the request id
#: is on every line, see :func:`current_request_id`)
FIELDS = {
    "fv_operation": "OPERATION",
    "fv_target": "TARGET",
    "fv_requester": "REQUESTER",
    "fv_listener": "LISTENER",
    "fv_result": "RESULT",
    "fv_duration_ms": "DURATION_MS",
}

_REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "fence_virt_request_id", default=None
)


def current_request_id() -> str | None:
    """The id of the request being served in this context, or ``None`` outside one."""
    return _REQUEST_ID.get()


def begin_request() -> str:
    """Give the current context (a task serving one request) a new request id; returns it."""
    request_id = secrets.token_hex(_ID_BYTES)
    _REQUEST_ID.set(request_id)
    return request_id


def request_context() -> contextvars.Context:
    """A copy of the current context with a new request id, to create a request's task in
    (``loop.create_task(coro, context=...)``) or to log its first line in (``ctx.run``)."""
    context = contextvars.copy_context()
    context.run(begin_request)
    return context
