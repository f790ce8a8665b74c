"""The engine's SSO service: one shared bearer token, fetched and revoked with a timeout.

The SDK requests its token without any timeout (``Connection._get_sso_response`` sets
none), so a stalled SSO service would hang every fence request; these requests are made
here instead, with libcurl (the SDK's own HTTP library, so TLS is checked the same way).

Token rule: every pooled connection uses the one token :class:`TokenStore` holds. A
connection whose request is answered 401 (token expired or revoked) asks for a new one,
naming the token that failed; only the first such caller fetches, the others get the token
it fetched. The SDK then repeats the request once (re-authentication happens once per
request).

Endpoints (REST API guide, "Authentication"): ``POST /ovirt-engine/sso/oauth/token``
(form ``grant_type=password&scope=ovirt-app-api&username&password``, JSON answer with
``access_token``, or ``error`` with ``error_description`` / ``error_code``), and
``POST /ovirt-engine/services/sso-logout`` (form ``scope&token``).
"""

from __future__ import annotations

import io
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pycurl

from fence_virt_backend_ovirt.engine import EngineRefused, EngineUnreachable

__all__ = ["Tls", "TokenStore", "curl_problem", "probe"]

log = logging.getLogger("fence_virt_backend_ovirt")

_TOKEN_PATH = "/ovirt-engine/sso/oauth/token"  # noqa: S105 - a URL path, not a secret
_LOGOUT_PATH = "/ovirt-engine/services/sso-logout"
#: where the engine publishes its CA certificate (for the hint in TLS errors)
CA_PATH = "/ovirt-engine/services/pki-resource?resource=ca-certificate&format=X509-PEM-CA"
#: libcurl error codes that mean "the certificate was not trusted" (CURLE_PEER_FAILED_
#: VERIFICATION is 60 since libcurl 7.62, 51 before; CURLE_SSL_CACERT_BADFILE is 77)
_CERTIFICATE_ERRORS = frozenset({51, 60, 77})
#: CURLE_OPERATION_TIMEDOUT (pycurl spells it E_OPERATION_TIMEOUTED)
_TIMED_OUT = 28
_MAX_BODY = 1 << 20


@dataclass(frozen=True)
class Tls:
    """How TLS is checked: against ``ca_file`` (else the system store), or not at all."""

    ca_file: Path | None = None
    insecure: bool = False

    def apply(self, curl: pycurl.Curl) -> None:
        """Set the libcurl options for this policy on ``curl``."""
        curl.setopt(pycurl.SSL_VERIFYPEER, 0 if self.insecure else 1)
        curl.setopt(pycurl.SSL_VERIFYHOST, 0 if self.insecure else 2)
        if self.ca_file is not None:
            curl.setopt(pycurl.CAINFO, str(self.ca_file))


def curl_problem(engine: str, code: int, message: str, tls: Tls, timeout: float) -> str:
    """One line saying why a request to ``engine`` got no answer, with what to do."""
    if code in _CERTIFICATE_ERRORS:
        source = f"ca_file {tls.ca_file}" if tls.ca_file is not None else "the system CA store"
        return (
            f"cannot reach engine {engine}: its TLS certificate is not trusted by {source} "
            f"({message}); set ca_file to the engine's CA, from {engine}{CA_PATH}"
        )
    if code == _TIMED_OUT:
        return f"cannot reach engine {engine}: no answer within {timeout:g} s ({message})"
    return f"cannot reach engine {engine}: {message} (libcurl error {code})"


def _post(
    engine: str, path: str, form: dict[str, str], tls: Tls, timeout: float
) -> tuple[int, bytes]:
    """POST ``form`` to ``engine + path``: (HTTP status, body).

    :raises EngineUnreachable: no answer within ``timeout`` seconds, TLS failure.
    """
    curl = pycurl.Curl()
    body = io.BytesIO()
    try:
        curl.setopt(pycurl.URL, engine + path)
        curl.setopt(pycurl.POSTFIELDS, urlencode(form))
        curl.setopt(pycurl.HTTPHEADER, ["Accept: application/json"])
        curl.setopt(pycurl.TIMEOUT_MS, max(1, int(timeout * 1000)))
        curl.setopt(pycurl.NOSIGNAL, 1)
        curl.setopt(pycurl.WRITEFUNCTION, body.write)
        tls.apply(curl)
        curl.perform()
        return int(curl.getinfo(pycurl.RESPONSE_CODE)), body.getvalue()[:_MAX_BODY]
    except pycurl.error as exc:
        code, message = exc.args[0], exc.args[1] if len(exc.args) > 1 else str(exc)
        raise EngineUnreachable(curl_problem(engine, code, message, tls, timeout)) from None
    finally:
        curl.close()


def probe(url: str, engine: str, tls: Tls, timeout: float) -> str | None:
    """Why ``url`` cannot be reached over verified TLS, or ``None``; logs in to nothing
    (any HTTP answer, 401 included, proves the engine answers and its certificate checks)."""
    curl = pycurl.Curl()
    try:
        curl.setopt(pycurl.URL, url)
        curl.setopt(pycurl.NOBODY, 1)
        curl.setopt(pycurl.TIMEOUT_MS, max(1, int(timeout * 1000)))
        curl.setopt(pycurl.NOSIGNAL, 1)
        tls.apply(curl)
        curl.perform()
    except pycurl.error as exc:
        code, message = exc.args[0], exc.args[1] if len(exc.args) > 1 else str(exc)
        return curl_problem(engine, code, message, tls, timeout)
    finally:
        curl.close()
    return None


def _sso_answer(engine: str, status: int, body: bytes) -> dict[str, object]:
    try:
        answer = json.loads(body)
    except ValueError:
        raise EngineRefused(f"engine {engine}: SSO answered HTTP {status} without JSON") from None
    if isinstance(answer, list) and answer:
        answer = answer[0]
    if not isinstance(answer, dict):
        raise EngineRefused(
            f"engine {engine}: SSO answered HTTP {status} with {type(answer).__name__}"
        )
    return answer


class TokenStore:
    """The one SSO token every connection of a backend shares (see the module docstring)."""

    def __init__(self, engine: str, username: str, password: str, tls: Tls, timeout: float) -> None:
        self._engine = engine
        self._username = username
        self._password = password
        self._tls = tls
        self._timeout = timeout
        self._lock = threading.Lock()
        self._token: str | None = None
        #: tokens fetched so far (logs, tests, the benchmark)
        self.fetched = 0

    def token(self, stale: str | None = None) -> str:
        """The shared token; a new one if there is none yet or it is ``stale`` (was refused).

        :raises EngineRefused: the SSO service refused the credentials.
        :raises EngineUnreachable: no answer within the timeout.
        """
        with self._lock:
            if self._token is None or self._token == stale:
                if stale is not None:
                    log.info("engine %s refused the token: logging in again", self._engine)
                self._token = self._fetch()
                self.fetched += 1
            return self._token

    def _fetch(self) -> str:
        form = {
            "grant_type": "password",
            "scope": "ovirt-app-api",
            "username": self._username,
            "password": self._password,
        }
        status, body = _post(self._engine, _TOKEN_PATH, form, self._tls, self._timeout)
        answer = _sso_answer(self._engine, status, body)
        token = answer.get("access_token")
        if isinstance(token, str) and token and status == 200:
            return token
        why = answer.get("error_description") or answer.get("error") or f"HTTP {status}"
        code = answer.get("error_code") or answer.get("error") or status
        raise EngineRefused(
            f"engine {self._engine} refused to log in {self._username}: {why} ({code})"
        )

    def revoke(self) -> None:
        """Log out (revoke the token) if one was fetched; a failure is only logged."""
        with self._lock:
            token, self._token = self._token, None
        if token is None:
            return
        form = {"scope": "ovirt-app-api", "token": token}
        try:
            _post(self._engine, _LOGOUT_PATH, form, self._tls, self._timeout)
        except EngineUnreachable as exc:
            log.warning("could not log out of the engine: %s", exc)
