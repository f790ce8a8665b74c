"""Credentials, TLS and vhost isolation on a real RabbitMQ with a TLS listener: per-cluster
vhosts and users, wrong credentials or a wrong CA refused at start-up with a clear message.

Cluster "a" (vhost guests-a) has host 1 (vmA) and host 3 (vmC), both over amqps; cluster
"b" (vhost guests-b) has host 2 (vmB), over plain amqp, with the same exchange name.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fence_virt_testinfra.amqp_hosts import AmqpHost
from fence_virt_testinfra.c_suite import write_key
from fence_virt_testinfra.rabbitmq import (
    AMQP_PORT,
    AMQPS_PORT,
    RABBITMQ_TOOLS,
    Broker,
    BrokerTls,
    rabbitmq_broker,
)
from fence_virt_testinfra.tls import throwaway_pki
from fence_virt_testinfra.tools import skip_unless_installed, skip_unless_netns

pytestmark = pytest.mark.netns

USERS = {"a": ("fence-a", "secret-a"), "b": ("fence-b", "secret-b")}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory):
    return throwaway_pki(tmp_path_factory.mktemp("pki"), hosts=("127.0.0.1",), tag="mq")


@pytest.fixture(scope="module")
def broker(pki) -> Iterator[Broker]:
    """A broker with TLS on 5671 and two clusters' vhosts and users (overrides conftest's)."""
    skip_unless_netns()
    skip_unless_installed(*RABBITMQ_TOOLS)
    tls = BrokerTls(pki.ca_file, pki.cert_file, pki.key_file)
    with rabbitmq_broker(tls, tag="mqtls") as running:
        for cluster, (user, password) in USERS.items():
            running.add_user(user, password, f"guests-{cluster}")
        yield running


def password_file(tmp_path: Path, cluster: str) -> Path:
    path = tmp_path / f"password-{cluster}"
    path.write_text(USERS[cluster][1] + "\n")
    path.chmod(0o600)
    return path


def make_host(broker, tmp_path, host_id, cluster, *, tls_ca=None, password=None) -> AmqpHost:
    user = USERS[cluster][0]
    if tls_ca is not None:
        url = f"amqps://{user}@127.0.0.1:{AMQPS_PORT}/guests-{cluster}"
        extra = {"tls_ca": str(tls_ca)}
    else:
        url = f"amqp://{user}@127.0.0.1:{AMQP_PORT}/guests-{cluster}"
        extra = {}
    if password is None:
        extra["password_file"] = str(password_file(tmp_path, cluster))
    else:
        url = url.replace(f"{user}@", f"{user}:{password}@")
    key = (
        write_key(tmp_path / "fence_xvm.key")
        if not (tmp_path / "fence_xvm.key").exists()
        else tmp_path / "fence_xvm.key"
    )
    return AmqpHost(broker, host_id, tmp_path, key, "fence-virt", url=url, extra=extra)


@pytest.fixture
def started() -> Iterator[list[AmqpHost]]:
    hosts: list[AmqpHost] = []
    try:
        yield hosts
    finally:
        for host in hosts:
            host.stop()


def failed_start(host: AmqpHost, *vms: str) -> str:
    """Start ``host``'s daemon expecting it to exit at start-up; its log."""
    daemon = host.start(*vms, wait=False)
    assert daemon.process.wait(30) != 0
    return host.log()


def test_clusters_in_their_own_vhosts_over_tls_see_only_their_own_hosts(
    broker, pki, tmp_path, started
):
    one = make_host(broker, tmp_path, 1, "a", tls_ca=pki.ca_file)
    two = make_host(broker, tmp_path, 2, "b")
    three = make_host(broker, tmp_path, 3, "a", tls_ca=pki.ca_file)
    started += [one, two, three]
    one.start("vmA")
    two.start("vmB")
    three.start("vmC")
    one.wait_for_log("host 3 announces on fence-virt")
    assert "amqps://fence-a@127.0.0.1:5671/guests-a" in one.log()
    assert "secret-a" not in one.log()
    assert one.agent("ours", "-o", "off", "-H", "vmC")[0] == 0
    assert "off vmC: here (state 1); carrying it out" in three.log()
    # same exchange name, other vhost: host 2 and its VM are invisible to cluster a
    assert one.agent("ours", "-o", "status", "-H", "vmB")[0] == 1
    assert "status vmB: no host has announced this VM: FAIL" in one.log()
    assert "host 2 announces" not in one.log() + three.log()
    assert "announces" not in two.log()
    assert two.agent("ours", "-o", "status", "-H", "vmB")[0] == 0


def test_a_wrong_password_stops_the_daemon_at_start_up_with_a_clear_error(
    broker, tmp_path, started
):
    host = make_host(broker, tmp_path, 1, "a", password="not-the-password")  # noqa: S106 (a wrong one)
    started.append(host)
    log = failed_start(host, "vmA")
    assert "backend amqp failed to start" in log
    assert "the broker refused the credentials" in log
    # (the -d 4 start-up dump shows the configuration; the error itself hides the password)
    error = next(line for line in log.splitlines() if "failed to start" in line)
    assert "not-the-password" not in error


def test_a_vhost_the_user_may_not_use_is_refused_at_start_up(broker, tmp_path, started):
    host = make_host(broker, tmp_path, 1, "a")
    host.url = f"amqp://fence-a@127.0.0.1:{AMQP_PORT}/guests-b"
    started.append(host)
    log = failed_start(host, "vmA")
    assert "backend amqp failed to start" in log
    assert "refused to open the vhost: it does not exist or the user may not use it" in log


def test_a_broker_certificate_from_another_ca_is_refused_at_start_up(broker, tmp_path, started):
    other = throwaway_pki(tmp_path / "other", hosts=("127.0.0.1",), tag="other")
    host = make_host(broker, tmp_path, 1, "a", tls_ca=other.ca_file)
    started.append(host)
    log = failed_start(host, "vmA")
    assert "backend amqp failed to start" in log
    assert "CERTIFICATE_VERIFY_FAILED" in log
