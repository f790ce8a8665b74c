"""The ``backends { ovirt { ... } }`` block.

Keys::

    url = "https://engine.example/ovirt-engine/api";  # required, https only
    username = "fence@internal";                       # required
    password_file = "/etc/cluster/ovirt.pass";         # or password = "..." (warned)
    ca_file = "/etc/pki/ovirt-engine/ca.pem";          # the engine's CA (else the system store)
    insecure = "no";                                   # yes: no certificate check (warned)
    timeout = "10";                                    # seconds, one HTTP request
    power_timeout = "120";                             # seconds, off/on waiting for down/up
    filter = "yes";                                    # the user-level API (Filter: true)
    cluster = "guests";                                # only this cluster's VMs
    connections = "8";                                 # at most this many requests at once

Everything is checked here, when the daemon builds the backend: a bad value is a
:class:`~fence_virt.errors.ConfigError` at its ``file:line``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from fence_virt import ConfigSection
from fence_virt.config import POSITIVE, in_range
from fence_virt.files import read_secret_file, secret_file_problem

__all__ = [
    "API_PATH",
    "DEFAULT_POWER_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "OvirtSettings",
    "load_settings",
    "settings_problem",
]

log = logging.getLogger("fence_virt_backend_ovirt")

#: where the engine serves REST v4 when the URL names no path
API_PATH = "/ovirt-engine/api"
#: seconds one HTTP request may take (the SDK's own default, 0, waits forever)
DEFAULT_TIMEOUT = 10.0
#: seconds off/on wait for the engine to report ``down`` / ``up``: VDSM escalates a stop
#: to SIGKILL after its own grace period, and a start includes scheduling on a host
DEFAULT_POWER_TIMEOUT = 120.0
#: a password file larger than this is not a password
_MAX_PASSWORD_BYTES = 4096


@dataclass(frozen=True)
class _Section:
    #: the engine's API, ``https://HOST[:PORT]/ovirt-engine/api`` (https only); required
    url: str
    #: the engine account, ``USER@DOMAIN`` (e.g. ``fence@internal``); required
    username: str
    #: a file holding the password (mode set to 0600); this or ``password``
    password_file: Path | None = None
    #: the password written inline (allowed, with a warning at every start)
    password: str | None = None
    #: PEM file of the engine's CA; unset: the system CA store
    ca_file: Path | None = None
    #: turn off certificate and host-name checks (a loud warning at every start)
    insecure: bool = False
    #: seconds one HTTP request may take, token requests included
    timeout: Annotated[float, POSITIVE] = DEFAULT_TIMEOUT
    #: seconds off and on wait for the engine to report ``down`` / ``up``
    power_timeout: Annotated[float, POSITIVE] = DEFAULT_POWER_TIMEOUT
    #: the engine's user-level API: the account acts only on VMs it holds permissions on
    filter: bool = True
    #: one cluster's VMs only (case-sensitive name); unset: every cluster
    cluster: str | None = None
    #: requests to the engine at once
    connections: Annotated[int, in_range(1, 64)] = 8


@dataclass(frozen=True)
class OvirtSettings:
    """The validated block. ``password`` is filled in from ``password_file`` by
    :func:`load_settings`; :func:`settings_problem` leaves it empty."""

    #: the API's URL, ``https://HOST[:PORT]/ovirt-engine/api``
    url: str
    username: str
    password: str = ""
    ca_file: Path | None = None
    insecure: bool = False
    #: seconds, one HTTP request (SSO token requests included)
    timeout: float = DEFAULT_TIMEOUT
    #: seconds off/on wait for the state they promise
    power_timeout: float = DEFAULT_POWER_TIMEOUT
    #: send ``Filter: true``: the engine shows and lets this user touch only the VMs it holds
    #: permissions on
    filter: bool = True
    cluster: str | None = None
    #: the bound of the connection pool: requests in flight at once
    connections: int = 8

    @property
    def engine(self) -> str:
        """``https://HOST[:PORT]``: the engine, for messages and the SSO URLs."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"


def load_settings(section: ConfigSection) -> OvirtSettings:
    """Read and check the block, read the password (file mode tightened to 0600).

    :raises ConfigError: a bad, missing or contradictory value, at its ``file:line``.
    :raises fence_virt.errors.UserError: the password file cannot be read.
    """
    raw = section.load(_Section)
    settings = _checked(section, raw)
    if raw.password is not None:
        log.warning(
            "%s: the password is written in the configuration file; "
            "put it in a file of its own (password_file, mode 0600)",
            section.path,
        )
        return _with_password(settings, raw.password)
    assert raw.password_file is not None  # _checked: exactly one of the two
    data = read_secret_file(
        raw.password_file, what="oVirt password file", max_bytes=_MAX_PASSWORD_BYTES
    )
    password = data.decode(errors="strict").rstrip("\r\n")
    if not password:
        raise section.error("password_file", f"{raw.password_file} is empty")
    return _with_password(settings, password)


def settings_problem(section: ConfigSection) -> tuple[OvirtSettings, str | None]:
    """The block checked without side effects (for ``--list-plugins``): the settings without
    the password, and why the password file cannot be used (or ``None``).

    :raises ConfigError: as :func:`load_settings`.
    """
    raw = section.load(_Section)
    settings = _checked(section, raw)
    if raw.password_file is None:
        return settings, None
    return settings, secret_file_problem(raw.password_file, what="oVirt password file")


def _with_password(settings: OvirtSettings, password: str) -> OvirtSettings:
    return OvirtSettings(**{**settings.__dict__, "password": password})


def _checked(section: ConfigSection, raw: _Section) -> OvirtSettings:
    url = _api_url(section, raw.url)
    if (raw.password is None) == (raw.password_file is None):
        raise section.error("password", "give exactly one of password_file and password")
    if not raw.username.strip():
        raise section.error("username", "username is empty")
    if raw.insecure and raw.ca_file is not None:
        raise section.error("insecure", "insecure = yes ignores ca_file: remove one of them")
    if raw.ca_file is not None and not raw.ca_file.is_file():
        raise section.error("ca_file", f"{raw.ca_file} is not a readable file")
    if raw.cluster is not None and not raw.cluster.strip():
        raise section.error("cluster", "cluster is empty")
    return OvirtSettings(
        url=url,
        username=raw.username,
        ca_file=raw.ca_file,
        insecure=raw.insecure,
        timeout=raw.timeout,
        power_timeout=raw.power_timeout,
        filter=raw.filter,
        cluster=raw.cluster,
        connections=raw.connections,
    )


def _api_url(section: ConfigSection, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != "https":
        # the password and the bearer token would cross the network in clear text
        raise section.error("url", f"{url!r} is not an https:// URL")
    if not parts.hostname:
        raise section.error("url", f"{url!r} names no host")
    if parts.query or parts.fragment:
        raise section.error("url", f"{url!r}: the engine's URL takes no query or fragment")
    path = parts.path.rstrip("/") or API_PATH
    return f"https://{parts.netloc}{path}"
