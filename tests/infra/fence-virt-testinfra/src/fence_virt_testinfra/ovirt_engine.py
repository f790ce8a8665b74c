"""A fake oVirt engine: an HTTPS server with the SSO service and the REST v4 resources the
``ovirt`` backend calls, and VMs that take time to go down and come up.

**This is a test double, and why:** no oVirt engine can run on this machine (it is a Java
application server with PostgreSQL and VDSM hosts, not packaged for Debian, and tests have
no network beyond loopback). Everything the backend relies on is modelled from the engine's
documented behaviour (REST API guide; ecosystem research §2), never from the backend's code:

* ``POST /ovirt-engine/sso/oauth/token`` (form: ``grant_type=password``, ``scope``,
  ``username``, ``password``) answers JSON ``access_token`` or ``error`` /
  ``error_description``; ``POST /ovirt-engine/services/sso-logout`` revokes a token.
* Every ``/ovirt-engine/api`` request needs ``Authorization: Bearer TOKEN`` and
  ``Version: 4``; a revoked or expired token gets 401. ``Filter: true`` is the user-level
  API: a VM is visible only to the users holding a permission on it (admins see all);
  without the header a non-admin user gets 403.
* ``GET /api``, ``GET /api/vms[?search=name=X&case_sensitive=true]`` (searches ignore case
  unless ``case_sensitive=true``, as in v4; ``*`` is a wildcard), ``GET /api/vms/ID`` (404
  fault if unknown or invisible), ``POST /api/vms/ID/stop|start`` (XML ``<action/>``; 409
  fault when the VM's status does not allow it), ``GET /api/clusters[?search=name=X]``.
* State machine: stop takes an on VM to ``powering_down``, then ``down`` after
  ``down_after`` seconds; start takes a ``down`` (or paused, suspended) VM to
  ``wait_for_launch``, then ``up`` after ``up_after`` seconds (its ``boots`` counter rises).
  A ``stuck`` VM accepts both and never changes; a VM in ``unknown`` or ``not_responding``
  refuses them. ``delay`` slows every API request, a VM's ``slow`` every request naming it,
  ``sso_delay`` the token service.

Usage (the listening socket belongs to the network namespace of the thread that calls
:meth:`FakeEngine.start`)::

    engine = FakeEngine(pki, users={"fence@internal": "secret"})
    engine.add_vm(FakeVm("vm1", users={"fence@internal"}))
    engine.start()          # https://127.0.0.1:PORT, engine.url
    ...
    engine.stop()
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import socket
import ssl
import threading
import time
import uuid as uuidlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape, quoteattr

from fence_virt_testinfra.tls import Pki

__all__ = ["API", "FakeEngine", "FakeVm"]

API = "/ovirt-engine/api"
_TOKEN = "/ovirt-engine/sso/oauth/token"  # noqa: S105 - a URL path, not a secret
_LOGOUT = "/ovirt-engine/services/sso-logout"
_ON = {"up", "paused", "powering_up", "powering_down", "migrating", "reboot_in_progress"}
_ON |= {"wait_for_launch", "saving_state", "restoring_state", "suspended"}
_STARTABLE = {"down", "paused", "suspended"}


@dataclass
class FakeVm:
    """One VM of the fake engine; change its fields only under :meth:`FakeEngine.locked`."""

    name: str
    status: str = "up"
    cluster: str = "guests"
    #: the users holding a permission on it (what ``Filter: true`` shows them)
    users: set[str] = field(default_factory=set)
    #: seconds from stop to ``down``, and from start to ``up``
    down_after: float = 0.05
    up_after: float = 0.05
    #: accepts stop and start, never changes status
    stuck: bool = False
    #: seconds every request naming this VM waits before it is answered
    slow: float = 0.0
    id: str = field(default_factory=lambda: str(uuidlib.uuid4()))
    #: times the VM reached ``up`` after a start
    boots: int = 0
    #: stop and start requests accepted, in order
    actions: list[str] = field(default_factory=list)
    _pending: tuple[str, float] | None = None

    def settle(self, now: float) -> None:
        """Apply a pending transition whose time has come."""
        if self._pending is not None and now >= self._pending[1]:
            self.status = self._pending[0]
            self._pending = None
            if self.status == "up":
                self.boots += 1

    @property
    def running(self) -> bool:
        return self.status in _ON


@dataclass
class _Token:
    user: str
    expires: float | None


class _Refusal(Exception):
    def __init__(self, code: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.reason, self.detail = code, reason, detail


class FakeEngine:
    """The fake engine (see the module docstring); thread-safe, one lock for all state.

    :param pki: its certificate and key (:func:`fence_virt_testinfra.tls.throwaway_pki`).
    :param users: user name -> password the SSO service accepts.
    :param admins: users that see every VM even without ``Filter: true``.
    :param token_lifetime: seconds a token stays valid (``None``: until revoked).
    """

    def __init__(
        self,
        pki: Pki,
        users: dict[str, str],
        *,
        admins: frozenset[str] = frozenset({"admin@internal"}),
        token_lifetime: float | None = None,
        clusters: tuple[str, ...] = ("guests", "others"),
    ) -> None:
        self.pki = pki
        self.users = dict(users)
        self.admins = admins
        self.token_lifetime = token_lifetime
        self.clusters = {name: str(uuidlib.uuid4()) for name in clusters}
        #: seconds every API request waits; the token service waits ``sso_delay``
        self.delay = 0.0
        self.sso_delay = 0.0
        #: searches ignore ``case_sensitive=true`` (as an engine that does not know it would)
        self.case_blind = False
        self.vms: dict[str, FakeVm] = {}
        self._lock = threading.RLock()
        self._tokens: dict[str, _Token] = {}
        self.tokens_issued = 0
        self.logouts = 0
        #: (method, path, Filter header) of every API request, in arrival order
        self.requests: list[tuple[str, str, str | None]] = []
        #: (path, query parameters) of every list request (``GET /vms``, ``GET /clusters``)
        self.searches: list[tuple[str, dict[str, str]]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- set-up and inspection ------------------------------------------------------------

    def add_vm(self, vm: FakeVm) -> FakeVm:
        with self._lock:
            self.vms[vm.id] = vm
        return vm

    @property
    def locked(self) -> threading.RLock:
        return self._lock

    def vm(self, name: str) -> FakeVm:
        """The VM called exactly ``name``, its pending transition applied."""
        with self._lock:
            found = [vm for vm in self.vms.values() if vm.name == name]
            assert len(found) == 1, f"fake engine: {len(found)} VMs called {name!r}"
            found[0].settle(time.monotonic())
            return found[0]

    def expire_tokens(self) -> None:
        """Every token issued so far is refused from now on (401), as after its lifetime."""
        with self._lock:
            for token in self._tokens.values():
                token.expires = 0.0

    @property
    def url(self) -> str:
        """The API's URL, ``https://127.0.0.1:PORT/ovirt-engine/api``."""
        return f"https://127.0.0.1:{self.port}{API}"

    # -- server ---------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> FakeEngine:
        """Listen on ``host:port`` (0: a free port; the same port again after :meth:`stop`)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.pki.cert_file, self.pki.key_file)
        server = _Server((host, port), _handler_for(self), context)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and close the socket (requests in progress are abandoned)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            server.close_connections()
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> FakeEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- SSO ------------------------------------------------------------------------------

    def sso_token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        time.sleep(self.sso_delay)
        user, password = form.get("username", ""), form.get("password", "")
        if form.get("grant_type") != "password" or form.get("scope") != "ovirt-app-api":
            return 400, {"error_code": "invalid_request", "error": "unsupported grant or scope"}
        if self.users.get(user) != password or not password:
            return 401, {
                "error": "access_denied",
                "error_description": "Cannot authenticate user: invalid credentials",
            }
        token = secrets.token_urlsafe(24)
        with self._lock:
            expires = (
                None if self.token_lifetime is None else time.monotonic() + self.token_lifetime
            )
            self._tokens[token] = _Token(user, expires)
            self.tokens_issued += 1
        return 200, {"access_token": token, "scope": "ovirt-app-api", "token_type": "bearer"}

    def sso_logout(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            if self._tokens.pop(form.get("token", ""), None) is not None:
                self.logouts += 1
        return 200, {}

    # -- API ------------------------------------------------------------------------------

    def _user(self, headers: Any) -> str:
        auth = headers.get("Authorization", "")
        with self._lock:
            token = self._tokens.get(auth.removeprefix("Bearer "))
            if token is None or not auth.startswith("Bearer "):
                raise _Refusal(401, "Unauthorized", "no valid token")
            if token.expires is not None and time.monotonic() >= token.expires:
                raise _Refusal(401, "Unauthorized", "the token has expired")
        if headers.get("Version") != "4":
            raise _Refusal(400, "Bad Request", "only API version 4 is served")
        return token.user

    def api(self, method: str, target: str, headers: Any) -> tuple[int, str]:
        """Answer one API request: (HTTP status, XML body)."""
        user = self._user(headers)
        filtered = headers.get("Filter", "").lower() == "true"
        with self._lock:
            self.requests.append((method, urlsplit(target).path, headers.get("Filter")))
        if not filtered and user not in self.admins:
            raise _Refusal(403, "Forbidden", f"{user} may use the user-level API only (Filter)")
        time.sleep(self.delay)
        parts = urlsplit(target)
        path = parts.path.removeprefix(API).strip("/").split("/") if parts.path != API else []
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        return self._route(method, path, query, user, filtered)

    def _route(
        self, method: str, path: list[str], query: dict[str, str], user: str, filtered: bool
    ) -> tuple[int, str]:
        if method == "GET" and not path:
            return 200, "<api><product_info><name>fake oVirt engine</name></product_info></api>"
        if method == "GET" and path in (["clusters"], ["vms"]):
            with self._lock:
                self.searches.append((path[0], dict(query)))
            if self.case_blind:
                query = {**query, "case_sensitive": "false"}
            if path == ["clusters"]:
                return 200, self._clusters(query)
            return 200, self._vm_list(query, user)
        if len(path) >= 2 and path[0] == "vms":
            vm = self._visible(path[1], user)
            time.sleep(vm.slow)
            if method == "GET" and len(path) == 2:
                with self._lock:
                    vm.settle(time.monotonic())
                    return 200, self._vm_xml(vm)
            if method == "POST" and len(path) == 3 and path[2] in ("stop", "start"):
                self._act(vm, path[2])
                return 200, "<action><status>complete</status></action>"
        raise _Refusal(404, "Not Found", f"{method} {'/'.join(path)} is not served here")

    def _may_see(self, vm: FakeVm, user: str) -> bool:
        return user in self.admins or user in vm.users

    def _visible(self, vm_id: str, user: str) -> FakeVm:
        with self._lock:
            vm = self.vms.get(vm_id.lower())
            if vm is None or not self._may_see(vm, user):
                raise _Refusal(404, "Not Found", f"no VM {vm_id}")
            return vm

    def _act(self, vm: FakeVm, action: str) -> None:
        with self._lock:
            now = time.monotonic()
            vm.settle(now)
            if vm.status in ("unknown", "not_responding", "image_locked"):
                raise _Refusal(409, "Operation Failed", f"Cannot {action} VM. VM is {vm.status}.")
            if vm.stuck:
                vm.actions.append(action)
                return
            if action == "stop" and vm.status in _ON:
                vm.status, vm._pending = "powering_down", ("down", now + vm.down_after)
            elif action == "start" and vm.status in _STARTABLE:
                vm.status, vm._pending = "wait_for_launch", ("up", now + vm.up_after)
            else:
                raise _Refusal(409, "Operation Failed", f"Cannot {action} VM: it is {vm.status}.")
            vm.actions.append(action)

    def _vm_list(self, query: dict[str, str], user: str) -> str:
        match = _matcher(query)
        with self._lock:
            now = time.monotonic()
            rows = []
            for vm in self.vms.values():
                vm.settle(now)
                if self._may_see(vm, user) and match(vm.name):
                    rows.append(self._vm_xml(vm))
        return "<vms>" + "".join(rows) + "</vms>"

    def _clusters(self, query: dict[str, str]) -> str:
        match = _matcher(query)
        rows = [
            f"<cluster href={quoteattr(f'{API}/clusters/{cid}')} id={quoteattr(cid)}>"
            f"<name>{escape(name)}</name></cluster>"
            for name, cid in self.clusters.items()
            if match(name)
        ]
        return "<clusters>" + "".join(rows) + "</clusters>"

    def _vm_xml(self, vm: FakeVm) -> str:
        cluster = self.clusters[vm.cluster]
        return (
            f"<vm href={quoteattr(f'{API}/vms/{vm.id}')} id={quoteattr(vm.id)}>"
            f"<name>{escape(vm.name)}</name><status>{escape(vm.status)}</status>"
            f"<cluster href={quoteattr(f'{API}/clusters/{cluster}')} id={quoteattr(cluster)}/>"
            "</vm>"
        )

    @contextlib.contextmanager
    def counting(self) -> Iterator[None]:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            yield
        finally:
            with self._lock:
                self.in_flight -= 1


def _matcher(query: dict[str, str]) -> Any:
    """``search=name=PATTERN`` ('*' a wildcard; case folded unless ``case_sensitive=true``)."""
    search = query.get("search")
    if search is None:
        return lambda name: True
    key, _, pattern = search.partition("=")
    if key.strip() != "name":
        raise _Refusal(400, "Bad Request", f"the fake engine searches by name only: {search}")
    flags = 0 if query.get("case_sensitive", "false").lower() == "true" else re.IGNORECASE
    regex = re.compile(".*".join(re.escape(piece) for piece in pattern.strip().split("*")), flags)
    return lambda name: regex.fullmatch(name) is not None


class _Server(ThreadingHTTPServer):
    """A threaded HTTP server that does the TLS handshake in each connection's thread."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], handler: Any, context: ssl.SSLContext) -> None:
        self.context = context
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, handler)

    def close_connections(self) -> None:
        """Hang up every open connection (kept-alive ones too): the engine is gone."""
        with self._open_lock:
            connections, self._open = self._open, set()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def finish_request(self, request: Any, client_address: Any) -> None:
        assert isinstance(request, socket.socket)
        try:
            wrapped = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # a client that does not trust us (the "wrong CA" tests) hangs up here
        with self._open_lock:
            self._open.add(wrapped)
        try:
            super().finish_request(wrapped, client_address)
        finally:
            with self._open_lock:
                self._open.discard(wrapped)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that went away mid-answer (timeouts, stop()) is not an engine error


def _handler_for(engine: FakeEngine) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _sso(self) -> None:
            form = {k: v[-1] for k, v in parse_qs(self._body().decode()).items()}
            path = urlsplit(self.path).path
            if path == _TOKEN:
                status, answer = engine.sso_token(form)
            else:
                status, answer = engine.sso_logout(form)
            self._send(status, json.dumps(answer).encode(), "application/json")

        def _api(self) -> None:
            self._body()
            with engine.counting():
                try:
                    status, xml = engine.api(self.command, self.path, self.headers)
                except _Refusal as refusal:
                    status = refusal.code
                    xml = (
                        f"<fault><reason>{escape(refusal.reason)}</reason>"
                        f"<detail>{escape(refusal.detail)}</detail></fault>"
                    )
            self._send(status, xml.encode(), "application/xml;charset=UTF-8")

        def _dispatch(self) -> None:
            path = urlsplit(self.path).path
            if path in (_TOKEN, _LOGOUT) and self.command == "POST":
                self._sso()
            elif path == API or path.startswith(API + "/"):
                self._api()
            else:
                self._send(404, b"not found", "text/plain")

        do_GET = do_POST = do_HEAD = _dispatch

    return Handler
