"""The ``libvirt`` backend plugin: fence_virtd's hooks mapped onto :class:`Fencer`."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from fence_virt import Availability, Target, hookimpl
from fence_virt.config import ConfigNode, ConfigTree
from fence_virt.errors import BackendError, LocalError
from fence_virt.protocol import HostState, Response
from fence_virt_backend_libvirt.config import WHERE, load_settings
from fence_virt_libvirt import Fencer, Hypervisor, HypervisorUnreachable, probe, quiet_libvirt

__all__ = ["LibvirtBackendPlugin"]

log = logging.getLogger("fence_virt_backend_libvirt")


def _is_test_driver(uri: str) -> bool:
    return uri.split(":", 1)[0].split("+", 1)[0] == "test"


class LibvirtBackendPlugin:
    """Fence VMs through libvirt: destroy, start and query domains on one or more URIs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fencer: Fencer | None = None

    # life cycle -----------------------------------------------------------------------------

    @hookimpl
    def fence_virt_backend_check(self, section: ConfigNode | None) -> Availability:
        if section is None:
            return Availability.no(f'no {WHERE} block (it needs uri = "...";)')
        settings = load_settings(section)
        quiet_libvirt()
        failures = [why for uri in settings.uris if (why := probe(uri)) is not None]
        if failures:
            return Availability.no("; ".join(failures))
        return Availability.yes(f"connects to {', '.join(settings.uris)}")

    @hookimpl
    def fence_virt_backend_start(self, section: ConfigNode | None, config: ConfigTree) -> bool:
        settings = load_settings(section, source=config.source)
        quiet_libvirt()
        hypervisors = [Hypervisor(uri) for uri in settings.uris]
        failures = _connect_all(hypervisors)
        if len(failures) == len(hypervisors):
            raise BackendError(f"could not connect to any hypervisor: {'; '.join(failures)}")
        for failure in failures:
            log.warning("%s (will retry on each request)", failure)
        for uri in settings.uris:
            if _is_test_driver(uri):
                log.warning("%s is libvirt's test driver: it fences nothing real", uri)
        with self._lock:
            old, self._fencer = self._fencer, Fencer(hypervisors, settings.reboot_timeout)
        if old is not None:
            old.close()
        return True

    @hookimpl
    def fence_virt_backend_stop(self) -> bool:
        with self._lock:
            fencer, self._fencer = self._fencer, None
        if fencer is not None:
            fencer.close()
        return True

    def _running(self) -> Fencer:
        fencer = self._fencer
        if fencer is None:
            raise LocalError("libvirt backend used before fence_virt_backend_start")
        return fencer

    # operations -----------------------------------------------------------------------------

    @hookimpl
    def fence_virt_backend_null(self) -> Response:
        log.info("null operation: answering failure (as C)")
        return Response.FAIL

    @hookimpl
    def fence_virt_backend_off(self, target: Target) -> Response:
        return self._running().off(target)

    @hookimpl
    def fence_virt_backend_on(self, target: Target) -> Response:
        return self._running().on(target)

    @hookimpl
    def fence_virt_backend_reboot(self, target: Target) -> Response:
        return self._running().reboot(target)

    @hookimpl
    def fence_virt_backend_status(self, target: Target) -> Response:
        return self._running().status(target)

    @hookimpl
    def fence_virt_backend_devstatus(self) -> Response:
        return self._running().devstatus()

    @hookimpl
    def fence_virt_backend_hostlist(self) -> Sequence[HostState]:
        return self._running().hostlist()


def _connect_all(hypervisors: Sequence[Hypervisor]) -> list[str]:
    failures = []
    for hv in hypervisors:
        try:
            hv.connect()
        except HypervisorUnreachable as exc:
            failures.append(str(exc))
    return failures
