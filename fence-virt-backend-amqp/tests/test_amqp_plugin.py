"""The plugin's hooks: configuration errors at file:line, the password file, the check."""

from __future__ import annotations

from pathlib import Path

import pytest

from fence_virt.config import ConfigSection, parse_text
from fence_virt.errors import ConfigError
from fence_virt_backend_amqp.backend import AmqpBackend
from fence_virt_backend_amqp.config import AmqpSettings
from fence_virt_backend_amqp.link import broker_url
from fence_virt_backend_amqp.plugin import AmqpBackendPlugin


def section(text: str) -> ConfigSection:
    config = parse_text(text, source="amqp.conf")
    return ConfigSection("backends/amqp", config.node("backends/amqp"), config.source)


def block(body: str) -> str:
    return f'backends {{\namqp {{\nuri = "test:///default";\n{body}}}\n}}\n'


def test_create_reads_the_block():
    backend = AmqpBackendPlugin().fence_virt_backend_create(
        section=section(block('host_id = "4";\nexchange = "guests-a";\n'))
    )
    assert isinstance(backend, AmqpBackend)
    assert backend.describe() == (
        "amqp exchange guests-a as host 4, local VMs from libvirt test:///default"
    )


@pytest.mark.parametrize(
    ("body", "line", "problem"),
    [
        ("", 2, "needs host_id"),
        ('host_id = "0";\n', 4, "host_id"),
        ('host_id = "1";\nrequest_timeout = "0";\n', 5, "request_timeout"),
        ('host_id = "1";\nurl = "http://mq/";\n', 5, "scheme must be amqp or amqps"),
        ('host_id = "1";\npassword_file = "/nonexistent/pw";\n', 5, "password_file"),
    ],
)
def test_bad_blocks_are_reported_at_file_and_line(body, line, problem):
    with pytest.raises(ConfigError, match=problem) as raised:
        AmqpBackendPlugin().fence_virt_backend_create(section=section(block(body)))
    assert str(raised.value).startswith(f"amqp.conf:{line}:")


def test_the_password_comes_from_the_first_line_of_the_file(tmp_path: Path):
    secret = tmp_path / "pw"
    secret.write_text("s3cret\nignored\n")
    settings = AmqpSettings(
        uri=("test:///default",), host_id=1, url="amqps://fence@mq:5671/a", password_file=secret
    )
    url = broker_url(settings)
    assert (url.user, url.password, url.host, url.port, url.path) == (
        "fence",
        "s3cret",
        "mq",
        5671,
        "/a",
    )


def test_the_check_names_exchange_broker_and_host():
    availability = AmqpBackendPlugin().fence_virt_backend_check(
        section=section(block('host_id = "2";\n'))
    )
    assert availability.usable
    assert "exchange fence-virt on amqp://127.0.0.1:5672/ as host 2" in availability.reason
