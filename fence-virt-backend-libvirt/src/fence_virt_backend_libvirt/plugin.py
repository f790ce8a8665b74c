"""The ``libvirt`` backend plugin: builds a :class:`LibvirtBackend` over :class:`Fencer`."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence

from fence_virt import Availability, CheckContext, ConfigSection, Finding, Target, hookimpl
from fence_virt.errors import BackendError, LocalError
from fence_virt.protocol import HostState, Response
from fence_virt_backend_libvirt.config import WHERE, LibvirtSettings, UnknownVm, load_settings
from fence_virt_libvirt import (
    Fencer,
    Hypervisor,
    bind_running_loop,
    connect_hypervisors,
    list_domains,
    locate,
    probe,
    quiet_libvirt,
)

__all__ = ["LibvirtBackend", "LibvirtBackendPlugin"]

log = logging.getLogger("fence_virt_backend_libvirt")


def _is_test_driver(uri: str) -> bool:
    return uri.split(":", 1)[0].split("+", 1)[0] == "test"


class LibvirtBackend:
    """:class:`fence_virt.Backend` over one or more libvirt URIs (blocking: worker threads)."""

    def __init__(self, settings: LibvirtSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._fencer: Fencer | None = None

    def describe(self) -> str:
        return f"libvirt {', '.join(self._settings.uris)}"

    async def start(self) -> None:
        """Connect to every URI (at least one must open); libvirt's event loop runs on the
        daemon's asyncio loop first, so every connection gets keepalives (a hung libvirtd
        cannot block a call forever)."""
        bind_running_loop()
        await asyncio.to_thread(self._connect)

    def _connect(self) -> None:
        hypervisors = connect_hypervisors(self._settings.uris)
        for uri in self._settings.uris:
            if _is_test_driver(uri):
                log.warning("%s is libvirt's test driver: it fences nothing real", uri)
        with self._lock:
            old, self._fencer = self._fencer, self._new_fencer(hypervisors)
        if old is not None:
            old.close()

    def _new_fencer(self, hypervisors: Sequence[Hypervisor]) -> Fencer:
        settings = self._settings
        pid_dirs = settings.qemu_pid_dirs()
        for uri, path in pid_dirs.items():
            log.info("%s: off answered once a guest's QEMU process has exited (%s)", uri, path)
        return Fencer(
            hypervisors,
            settings.reboot_timeout,
            qemu_pid_dirs=pid_dirs,
            reboot_answer=settings.reboot_answer,
        )

    def stop(self) -> None:
        with self._lock:
            fencer, self._fencer = self._fencer, None
        if fencer is not None:
            fencer.close()

    def _running(self) -> Fencer:
        fencer = self._fencer
        if fencer is None:
            raise LocalError("libvirt backend used before start()")
        return fencer

    def off(self, target: Target) -> Response:
        return self._running().off(target)

    def on(self, target: Target) -> Response:
        return self._running().on(target)

    def reboot(self, target: Target) -> Response:
        return self._running().reboot(target)

    def status(self, target: Target) -> Response:
        return self._running().status(target)

    def devstatus(self) -> Response:
        return self._running().devstatus()

    def keeps_silent(self, target: Target) -> bool:
        """:class:`fence_virt.Silenceable`: with ``unknown_vm = "silent"``, True when no URI
        has the VM. :class:`~fence_virt.errors.BackendError` when a URI cannot answer (core
        then answers the request)."""
        if self._settings.unknown_vm is not UnknownVm.SILENT:
            return False
        fencer = self._running()
        return locate(fencer.hypervisors, target.domain, by_uuid=target.by_uuid) is None

    def hostlist(self, requester: str) -> Sequence[HostState]:
        del requester
        return self._running().hostlist()

    def diagnose(self, context: CheckContext) -> list[Finding]:
        """``fence_virtd --check`` (:class:`fence_virt.Diagnosable`): each URI's VMs.

        A URI that connects but has no VMs is the most common misconfiguration
        (``qemu:///session`` for ``qemu:///system``, a typo in a remote host): a problem.
        """
        del context
        return [_uri_finding(uri) for uri in self._settings.uris]


class LibvirtBackendPlugin:
    """Fence VMs through libvirt: destroy, start and query domains on one or more URIs."""

    @hookimpl
    def fence_virt_backend_check(self, section: ConfigSection) -> Availability:
        if not section.present:
            return Availability.no(f'no {section.path} block (it needs uri = "...";)')
        settings = load_settings(section.node, source=section.source)
        quiet_libvirt()
        failures = [why for uri in settings.uris if (why := probe(uri)) is not None]
        if failures:
            return Availability.no("; ".join(failures))
        return Availability.yes(f"connects to {', '.join(settings.uris)}")

    @hookimpl
    def fence_virt_backend_create(self, section: ConfigSection) -> LibvirtBackend:
        return LibvirtBackend(load_settings(section.node, source=section.source))


def _uri_finding(uri: str) -> Finding:
    """One line for one URI: how many VMs it has, or why it has none."""
    hypervisor = Hypervisor(uri)
    try:
        states = list_domains(hypervisor)
    except BackendError as exc:
        return Finding.problem(
            f"{uri}: {exc}", f"check the uri in {WHERE} and that its libvirtd runs"
        )
    finally:
        hypervisor.close()
    if states:
        return Finding.ok(f"{uri} has {len(states)} VM(s)")
    hint = (
        " (VMs defined as root are on qemu:///system, not qemu:///session)"
        if "session" in uri
        else ""
    )
    return Finding.problem(
        f"{uri} connects but has no VMs: every fencing request would fail",
        f"set uri in {WHERE} to the hypervisor the guests run on; `virsh -c URI list --all` "
        f"shows a URI's VMs{hint}",
    )
