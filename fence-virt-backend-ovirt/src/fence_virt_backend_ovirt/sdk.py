"""The :class:`~fence_virt_backend_ovirt.engine.Engine` over the official SDK (``ovirtsdk4``).

The only module that imports the SDK. What it adds to it:

* **A timeout on everything.** Each SDK connection gets ``timeout`` (its default, 0, waits
  forever); the SSO token requests, which the SDK sends without one, go through
  :class:`~fence_virt_backend_ovirt.sso.TokenStore`.
* **A bounded pool.** One SDK connection carries one request at a time (it holds a lock
  from sending until the answer), so requests for different VMs would queue behind each
  other on a single one. :class:`_Pool` keeps up to ``connections`` of them; a request
  borrows one for one HTTP exchange only, never while a power-off is being polled, so no
  request waits for another VM's poll. A connection that met a transport error is closed
  and replaced, never reused.
* **One shared token** for every connection (:mod:`fence_virt_backend_ovirt.sso`), renewed
  once when the engine answers 401.
* **Case-sensitive lookup.** ``search=name=X`` with ``case_sensitive=true`` (v4 searches
  ignore case by default), and only a VM whose name is exactly ``X`` is taken; two exact
  matches are an error. Names the engine cannot hold (anything but letters, digits, ``_``,
  ``-``, ``.``) are refused before the search, so ``*`` can never act as a wildcard.
* ``Filter: true`` on every request when ``filter`` is set: the user-level API.

Only REST v4 exists in this SDK (it always sends ``Version: 4``): engines from oVirt 4.0 /
RHV 4.0 on. RHEV-M 3.x (API v3 only) is not supported.
"""

from __future__ import annotations

import logging
import math
import queue
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import ovirtsdk4

from fence_virt_backend_ovirt.config import OvirtSettings
from fence_virt_backend_ovirt.engine import (
    EngineError,
    EngineRefused,
    EngineUnreachable,
    Vm,
    VmAmbiguous,
)
from fence_virt_backend_ovirt.sso import Tls, TokenStore

__all__ = ["SdkEngine", "possible_vm_name"]

log = logging.getLogger("fence_virt_backend_ovirt")

T = TypeVar("T")

#: what the engine accepts in a VM name (its validation: letters, digits, '_', '-', '.')
_VM_NAME = re.compile(r"[\w.-]+")
#: the libcurl error texts that mean the certificate was not trusted
_CERTIFICATE_WORDS = ("certificate", "SSL peer", "issuer")


def possible_vm_name(name: str) -> bool:
    """Could the engine hold a VM called ``name``? (Also: nothing in it means anything to
    the search language.)"""
    return _VM_NAME.fullmatch(name) is not None


class _Connection(ovirtsdk4.Connection):  # type: ignore[misc] # the SDK has no type hints
    """An SDK connection that takes its token from the shared :class:`TokenStore`.

    ``_get_access_token`` is the SDK's one place for fetching a token: at the first request
    and after a 401 (then the SDK repeats the request once).
    """

    def __init__(self, tokens: TokenStore, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._fence_virt_tokens = tokens

    def _get_access_token(self) -> str:
        return self._fence_virt_tokens.token(stale=self._sso_token)


class _Pool:
    """At most ``size`` SDK connections; :meth:`connection` lends one for one exchange."""

    def __init__(self, factory: Callable[[], Any], size: int, wait: float) -> None:
        self._factory = factory
        self._size = size
        self._wait = wait
        self._slots = threading.BoundedSemaphore(size)
        self._idle: queue.LifoQueue[Any] = queue.LifoQueue()
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[Any]:
        """An SDK connection for the ``with`` body; closed instead of returned if the body
        raised anything but an answer from the engine.

        :raises EngineUnreachable: no connection came free within the wait.
        """
        if not self._slots.acquire(timeout=self._wait):
            raise EngineUnreachable(
                f"all {self._size} connections to the engine stayed busy for {self._wait:g} s"
            )
        try:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._factory()
            try:
                yield conn
            except BaseException as exc:
                self._give_back(conn, healthy=_answered(exc))
                raise
            else:
                self._give_back(conn, healthy=True)
        finally:
            self._slots.release()

    def _give_back(self, conn: Any, *, healthy: bool) -> None:
        if healthy and not self._closed:
            self._idle.put(conn)
        else:
            _close(conn)

    def close(self) -> None:
        """Close every idle connection, and each busy one when it is given back (the token
        is revoked by the caller)."""
        self._closed = True
        while True:
            try:
                _close(self._idle.get_nowait())
            except queue.Empty:
                return


def _answered(exc: BaseException) -> bool:
    """The engine answered (an HTTP error code): the connection itself is fine."""
    return isinstance(exc, ovirtsdk4.Error) and getattr(exc, "code", None) is not None


def _close(conn: Any) -> None:
    try:
        conn.close(logout=False)
    except Exception as exc:  # noqa: BLE001 - closing a broken connection: nothing to save
        log.debug("closing an engine connection: %s", exc)


class SdkEngine:
    """:class:`~fence_virt_backend_ovirt.engine.Engine` over ``ovirtsdk4``."""

    def __init__(self, settings: OvirtSettings) -> None:
        self._settings = settings
        self._tls = Tls(ca_file=settings.ca_file, insecure=settings.insecure)
        self.tokens = TokenStore(
            settings.engine, settings.username, settings.password, self._tls, settings.timeout
        )
        # a request holds a connection for at most its own timeout plus a token renewal
        self._pool = _Pool(self._connect, settings.connections, wait=3 * settings.timeout)

    def describe(self) -> str:
        return f"{self._settings.url} as {self._settings.username}"

    def _connect(self) -> Any:
        settings = self._settings
        return _Connection(
            self.tokens,
            url=settings.url,
            ca_file=str(settings.ca_file) if settings.ca_file is not None else None,
            insecure=settings.insecure,
            # libcurl's TIMEOUT is whole seconds: round up, never down to 0 (= forever)
            timeout=max(1, math.ceil(settings.timeout)),
            headers={"Filter": "true"} if settings.filter else None,
            connections=1,
        )

    def _call(self, what: str, body: Callable[[Any], T]) -> T:
        """``body(connection)`` with SDK errors turned into :class:`EngineError`."""
        try:
            with self._pool.connection() as conn:
                return body(conn)
        except EngineError:
            raise
        except ovirtsdk4.Error as exc:
            raise self._translate(what, exc) from None

    def _translate(self, what: str, exc: ovirtsdk4.Error) -> EngineError:
        engine = self._settings.engine
        code = getattr(exc, "code", None)
        if code is not None:
            return EngineRefused(f"engine {engine} refused to {what}: {exc}")
        text = str(exc)
        if any(word in text for word in _CERTIFICATE_WORDS):
            return EngineUnreachable(
                f"cannot reach engine {engine} to {what}: its TLS certificate is not trusted "
                f"({text}); set ca_file to the engine's CA"
            )
        return EngineUnreachable(f"cannot reach engine {engine} to {what}: {text}")

    def check(self) -> None:
        self._call("read the API root", lambda conn: conn.test(raise_exception=True))

    def cluster_id(self, name: str) -> str | None:
        if not possible_vm_name(name):  # cluster names follow the same rule
            return None

        def search(conn: Any) -> list[Any]:
            service = conn.system_service().clusters_service()
            return list(service.list(search=f"name={name}", case_sensitive=True))

        found = [c for c in self._call(f"find cluster {name}", search) if c.name == name]
        return str(found[0].id).lower() if len(found) == 1 else None

    def find(self, name: str) -> Vm | None:
        if not possible_vm_name(name):
            return None

        def search(conn: Any) -> list[Any]:
            service = conn.system_service().vms_service()
            return list(service.list(search=f"name={name}", case_sensitive=True))

        exact = [_vm(vm) for vm in self._call(f"find VM {name}", search) if vm.name == name]
        if len(exact) > 1:
            ids = ", ".join(vm.id for vm in exact)
            raise VmAmbiguous(f"several VMs are called {name!r} ({ids}): name one by UUID")
        return exact[0] if exact else None

    def get(self, vm_id: str) -> Vm | None:
        def read(conn: Any) -> Vm | None:
            try:
                return _vm(conn.system_service().vms_service().vm_service(vm_id).get())
            except ovirtsdk4.NotFoundError:
                return None

        return self._call(f"read VM {vm_id}", read)

    def stop(self, vm_id: str) -> None:
        self._call(
            f"stop VM {vm_id}",
            lambda conn: conn.system_service().vms_service().vm_service(vm_id).stop(),
        )

    def start(self, vm_id: str) -> None:
        self._call(
            f"start VM {vm_id}",
            lambda conn: conn.system_service().vms_service().vm_service(vm_id).start(),
        )

    def vms(self, cluster_id: str | None) -> list[Vm]:
        def every(conn: Any) -> list[Any]:
            return list(conn.system_service().vms_service().list())

        found = [_vm(vm) for vm in self._call("list VMs", every)]
        return [vm for vm in found if cluster_id is None or vm.cluster == cluster_id]

    def close(self) -> None:
        self._pool.close()
        self.tokens.revoke()


def _vm(vm: Any) -> Vm:
    """The SDK's ``types.Vm`` as a :class:`Vm`; a missing status is ``""`` (unknown)."""
    status = vm.status.value if vm.status is not None else ""
    cluster = str(vm.cluster.id).lower() if vm.cluster is not None and vm.cluster.id else None
    return Vm(id=str(vm.id).lower(), name=str(vm.name), status=str(status), cluster=cluster)
