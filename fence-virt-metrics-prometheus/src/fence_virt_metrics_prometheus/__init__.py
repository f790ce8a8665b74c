"""Prometheus metrics for fence_virtd: an extension over core's observer hooks.

:class:`PrometheusExtension` (entry point ``fence_virt.extensions: prometheus``) counts what
``fence_virt_request_finished``, ``fence_virt_request_dropped`` and
``fence_virt_backend_state`` report in :class:`FenceMetrics` and serves them over HTTP while
the daemon runs. The metric names: :mod:`fence_virt_metrics_prometheus.metrics`.
"""

from __future__ import annotations

from fence_virt_metrics_prometheus.metrics import DURATION_BUCKETS, FenceMetrics
from fence_virt_metrics_prometheus.plugin import (
    DEFAULT_PORT,
    PrometheusExtension,
    PrometheusSettings,
)

__all__ = [
    "DEFAULT_PORT",
    "DURATION_BUCKETS",
    "FenceMetrics",
    "PrometheusExtension",
    "PrometheusSettings",
]
