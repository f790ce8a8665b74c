"""The metrics: what the observer hooks report, counted with ``prometheus-client``.

========================================== ========= ==========================================
name                                       type      labels
========================================== ========= ==========================================
``fence_virt_requests_total``              counter   operation, result, listener
``fence_virt_request_duration_seconds``    histogram operation, listener
``fence_virt_authentication_failures_total`` counter listener
``fence_virt_dropped_requests_total``      counter   listener, kind
``fence_virt_backend_errors_total``        counter   operation
``fence_virt_backend_up``                  gauge     backend
========================================== ========= ==========================================

``result`` is the answer's name in lower case (``success``, ``fail``, ``off``, ``perm``). A
*backend error* is a request the backend failed with an exception or a wrong value (its
``FinishedRequest.reason`` is set and it was not refused); an unknown VM answered ``fail`` is
not one. ``kind`` is :class:`fence_virt.DropKind`'s value; authentication failures are counted
both on their own and as drops of kind ``authentication``. ``fence_virt_backend_up`` is 1
while the backend runs: set by its start and stop, and by every ``devstatus`` (the agents'
monitor action) answered success (1) or fail (0).

Every update is a counter or gauge change in memory (thread-safe in ``prometheus-client``),
so the hooks return at once on the daemon's event loop; the HTTP server thread reads them.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from fence_virt import DropKind, DroppedRequest, FinishedRequest
from fence_virt.protocol import Operation, Response

__all__ = ["DURATION_BUCKETS", "FenceMetrics"]

#: seconds: a status takes milliseconds, a reboot of a real VM up to a minute
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class FenceMetrics:
    """The metrics of one daemon, in a registry of their own (no process-wide state)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = CollectorRegistry() if registry is None else registry
        self.requests = Counter(
            "fence_virt_requests",
            "Requests answered, by operation, result and listener instance.",
            ["operation", "result", "listener"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "fence_virt_request_duration_seconds",
            "Seconds from receiving a request to its answer.",
            ["operation", "listener"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.authentication_failures = Counter(
            "fence_virt_authentication_failures",
            "Requests wrongly signed or failing the challenge/response (a key mismatch?).",
            ["listener"],
            registry=self.registry,
        )
        self.dropped = Counter(
            "fence_virt_dropped_requests",
            "Inputs refused before they became requests, by kind.",
            ["listener", "kind"],
            registry=self.registry,
        )
        self.backend_errors = Counter(
            "fence_virt_backend_errors",
            "Requests the backend failed with an error.",
            ["operation"],
            registry=self.registry,
        )
        self.backend_up = Gauge(
            "fence_virt_backend_up",
            "1 while the backend runs and answers devstatus, else 0.",
            ["backend"],
            registry=self.registry,
        )
        self._backend: str | None = None

    def finished(self, request: FinishedRequest) -> None:
        operation = request.operation.name.lower()
        result = request.response.name.lower()
        self.requests.labels(operation, result, request.listener).inc()
        self.duration.labels(operation, request.listener).observe(request.duration)
        if request.response is Response.FAIL and request.reason is not None:
            self.backend_errors.labels(operation).inc()
        if request.operation is Operation.DEVSTATUS and self._backend is not None:
            self.backend_up.labels(self._backend).set(request.response is Response.SUCCESS)

    def dropped_input(self, drop: DroppedRequest) -> None:
        self.dropped.labels(drop.listener, drop.kind.value).inc()
        if drop.kind is DropKind.AUTHENTICATION:
            self.authentication_failures.labels(drop.listener).inc()

    def backend_state(self, backend: str, up: bool) -> None:
        self._backend = backend
        self.backend_up.labels(backend).set(up)
