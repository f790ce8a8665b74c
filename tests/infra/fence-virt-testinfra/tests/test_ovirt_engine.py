"""The fake oVirt engine itself, spoken to with the standard library (not the backend): TLS
from its throwaway CA only, SSO, the Version and Filter rules, searches (case-insensitive
unless asked), the VM state machine, token expiry, faults."""

from __future__ import annotations

import http.client
import json
import ssl
import time
from urllib.parse import urlencode

import pytest

from fence_virt_testinfra.ovirt_engine import API, FakeEngine, FakeVm
from fence_virt_testinfra.tls import throwaway_pki

USER, PASSWORD = "u@internal", "pw"


@pytest.fixture
def engine(tmp_path):
    fake = FakeEngine(throwaway_pki(tmp_path, tag="e"), {USER: PASSWORD})
    fake.add_vm(FakeVm("Web", users={USER}, down_after=0.2, up_after=0.2))
    fake.add_vm(FakeVm("web", status="down", users={USER}))
    fake.add_vm(FakeVm("other"))
    fake.start()
    yield fake
    fake.stop()


def connect(engine: FakeEngine, ca_file=None) -> http.client.HTTPSConnection:
    context = ssl.create_default_context(cafile=str(ca_file or engine.pki.ca_file))
    return http.client.HTTPSConnection("127.0.0.1", engine.port, context=context, timeout=10)


def token(engine: FakeEngine, password: str = PASSWORD) -> tuple[int, dict]:
    conn = connect(engine)
    form = {"grant_type": "password", "scope": "ovirt-app-api", "username": USER}
    conn.request(
        "POST",
        "/ovirt-engine/sso/oauth/token",
        urlencode({**form, "password": password}),
        {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
    )
    answer = conn.getresponse()
    return answer.status, json.loads(answer.read())


def api(engine, bearer, method, path, *, version="4", filtered=True) -> tuple[int, str]:
    conn = connect(engine)
    headers = {"Authorization": f"Bearer {bearer}", "Version": version}
    if filtered:
        headers["Filter"] = "true"
    conn.request(method, API + path, "<action/>" if method == "POST" else None, headers)
    answer = conn.getresponse()
    return answer.status, answer.read().decode()


def test_tls_is_trusted_only_with_its_own_ca(engine, tmp_path):
    other = throwaway_pki(tmp_path / "o", tag="o")
    with pytest.raises(ssl.SSLCertVerificationError):
        connect(engine, other.ca_file).request("GET", API)
    conn = connect(engine)
    conn.request("GET", API)
    assert conn.getresponse().status == 401


def test_sso_and_the_api_rules(engine):
    assert token(engine, "wrong")[0] == 401
    status, answer = token(engine)
    assert status == 200
    bearer = answer["access_token"]
    assert api(engine, bearer, "GET", "", version="3")[0] == 400
    assert api(engine, bearer, "GET", "", filtered=False)[0] == 403  # not an admin
    status, body = api(engine, bearer, "GET", "/vms")
    assert status == 200
    assert "<name>Web</name>" in body
    assert "<name>web</name>" in body
    assert "other" not in body  # no permission: invisible with Filter: true
    _, insensitive = api(engine, bearer, "GET", "/vms?search=name%3DWEB")
    assert insensitive.count("<vm ") == 2
    _, exact = api(engine, bearer, "GET", "/vms?search=name%3DWEB&case_sensitive=true")
    assert exact == "<vms></vms>"
    _, wildcard = api(engine, bearer, "GET", "/vms?search=name%3Dw*&case_sensitive=true")
    assert wildcard.count("<vm ") == 1
    assert api(engine, bearer, "GET", f"/vms/{engine.vm('other').id}")[0] == 404


def test_vms_take_time_to_go_down_and_up(engine):
    bearer = token(engine)[1]["access_token"]
    vm = engine.vm("Web")
    assert api(engine, bearer, "POST", f"/vms/{vm.id}/stop")[0] == 200
    assert engine.vm("Web").status == "powering_down"
    assert api(engine, bearer, "POST", f"/vms/{vm.id}/start")[0] == 409
    time.sleep(0.3)
    assert "<status>down</status>" in api(engine, bearer, "GET", f"/vms/{vm.id}")[1]
    assert api(engine, bearer, "POST", f"/vms/{vm.id}/start")[0] == 200
    assert engine.vm("Web").status == "wait_for_launch"
    time.sleep(0.3)
    assert (engine.vm("Web").status, engine.vm("Web").boots) == ("up", 1)
    assert vm.actions == ["stop", "start"]


def test_expired_tokens_get_401(engine):
    bearer = token(engine)[1]["access_token"]
    assert api(engine, bearer, "GET", "")[0] == 200
    engine.expire_tokens()
    status, body = api(engine, bearer, "GET", "")
    assert status == 401
    assert "<fault>" in body
