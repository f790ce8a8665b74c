"""The ``ovirt`` backend plugin: builds an :class:`OvirtBackend` (a :class:`Fencer` over the
SDK adapter) from the ``backends { ovirt { ... } }`` block."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from fence_virt import Availability, ConfigSection, Target, WizardQuestion, hookimpl
from fence_virt.errors import LocalError
from fence_virt.protocol import HostState, Response
from fence_virt_backend_ovirt.config import OvirtSettings, load_settings, settings_problem
from fence_virt_backend_ovirt.fencer import Fencer
from fence_virt_backend_ovirt.sdk import SdkEngine
from fence_virt_backend_ovirt.sso import Tls, probe

__all__ = ["OvirtBackend", "OvirtBackendPlugin"]

log = logging.getLogger("fence_virt_backend_ovirt")


class OvirtBackend:
    """:class:`fence_virt.Backend` over an oVirt engine (blocking: worker threads)."""

    def __init__(self, settings: OvirtSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._engine: SdkEngine | None = None
        self._fencer: Fencer | None = None

    def describe(self) -> str:
        cluster = f", cluster {self._settings.cluster}" if self._settings.cluster else ""
        return f"ovirt {self._settings.url} as {self._settings.username}{cluster}"

    def start(self) -> None:
        settings = self._settings
        if settings.insecure:
            log.warning(
                "INSECURE: insecure = yes: the engine's TLS certificate is NOT checked; anyone "
                "on the path to %s can take the password and answer fence requests",
                settings.engine,
            )
        engine = SdkEngine(settings)
        fencer = Fencer(engine, power_timeout=settings.power_timeout, cluster=settings.cluster)
        try:
            fencer.start()
        except BaseException:
            engine.close()
            raise
        with self._lock:
            old, self._engine, self._fencer = self._engine, engine, fencer
        if old is not None:
            old.close()

    def stop(self) -> None:
        with self._lock:
            engine, self._engine, self._fencer = self._engine, None, None
        if engine is not None:
            engine.close()

    @property
    def engine(self) -> SdkEngine | None:
        """The running adapter (``None`` outside start/stop): for tests and benchmarks."""
        return self._engine

    def _running(self) -> Fencer:
        fencer = self._fencer
        if fencer is None:
            raise LocalError("ovirt backend used before start()")
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

    def hostlist(self, requester: str) -> Sequence[HostState]:
        del requester  # the engine's permissions (filter = yes) decide what the account sees
        return self._running().hostlist()


class OvirtBackendPlugin:
    """Fence VMs through an oVirt / RHV engine's REST API: stop, start and query VMs."""

    #: ``fence_virtd -c``: the required keys, the CA and the cluster (README: the rest)
    wizard_questions = (
        WizardQuestion("url", "Engine API URL (https://HOST/ovirt-engine/api)"),
        WizardQuestion("username", "Engine user (USER@DOMAIN)"),
        WizardQuestion(
            "password_file",
            "Password file",
            "/etc/cluster/ovirt.pass",
            absolute_path=True,
            intro="The user's password, alone in a file of mode 0600.",
        ),
        WizardQuestion("ca_file", "Engine CA file", "none", removable=True, absolute_path=True),
        WizardQuestion("cluster", "Only the VMs of cluster", "none", removable=True),
    )

    @hookimpl
    def fence_virt_backend_check(self, section: ConfigSection) -> Availability:
        if not section.present:
            return Availability.no(
                f'no {section.path} block (it needs url = "https://..."; username, password_file)'
            )
        settings, password_problem = settings_problem(section)
        if password_problem is not None:
            return Availability.no(password_problem)
        tls = Tls(ca_file=settings.ca_file, insecure=settings.insecure)
        problem = probe(settings.url, settings.engine, tls, settings.timeout)
        if problem is not None:
            return Availability.no(problem)
        return Availability.yes(
            f"engine {settings.engine} answers over verified TLS"
            if not settings.insecure
            else f"engine {settings.engine} answers (TLS NOT verified: insecure)"
        )

    @hookimpl
    def fence_virt_backend_create(self, section: ConfigSection) -> OvirtBackend:
        return OvirtBackend(load_settings(section))
