"""The backends/ovirt block, and the availability check (TLS to the engine, no login)."""

from __future__ import annotations

import pytest

from fence_virt.errors import ConfigError, UserError
from fence_virt_backend_ovirt.config import (
    DEFAULT_POWER_TIMEOUT,
    DEFAULT_TIMEOUT,
    load_settings,
)
from fence_virt_testinfra.tls import throwaway_pki

PASSWORD = "s3cret"  # noqa: S105 - a test account's password
INLINE = "inline"


def body_of(**keys: object) -> str:
    lines = "".join(f'\t\t{k} = "{v}";\n' for k, v in keys.items() if v is not None)
    return f"backends {{\n\tovirt {{\n{lines}\t}}\n}}\n"


@pytest.fixture
def pass_file(tmp_path):
    path = tmp_path / "pass"
    path.write_text(PASSWORD + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def load(section, pass_file):
    def run(**keys: object):
        values = {"url": "https://engine.example", "username": "u@internal"}
        values["password_file"] = pass_file
        values.update(keys)
        return load_settings(section(body_of(**values))[0])

    return run


def test_defaults(load):
    settings = load()
    assert settings.url == "https://engine.example/ovirt-engine/api"
    assert settings.engine == "https://engine.example"
    assert settings.password == PASSWORD  # the file's trailing newline is not part of it
    assert settings.timeout == DEFAULT_TIMEOUT
    assert settings.power_timeout == DEFAULT_POWER_TIMEOUT
    assert settings.filter is True
    assert settings.insecure is False
    assert settings.ca_file is None
    assert settings.cluster is None
    assert settings.connections == 8


def test_every_key(load, tmp_path):
    pki = throwaway_pki(tmp_path, tag="c")
    settings = load(
        url="https://e.example:8443/ovirt-engine/api/",
        ca_file=pki.ca_file,
        timeout="2.5",
        power_timeout="30",
        filter="no",
        cluster="guests",
        connections="3",
    )
    assert settings.url == "https://e.example:8443/ovirt-engine/api"
    assert settings.ca_file == pki.ca_file
    assert (settings.timeout, settings.power_timeout) == (2.5, 30)
    assert (settings.filter, settings.cluster, settings.connections) == (False, "guests", 3)


def test_http_is_refused(load):
    with pytest.raises(
        ConfigError, match=r"^fv.conf:3: backends/ovirt: 'http://e' is not an https"
    ):
        load(url="http://e")


def test_password_file_mode_is_tightened(load, pass_file, caplog):
    pass_file.chmod(0o644)
    load()
    assert pass_file.stat().st_mode & 0o777 == 0o600
    assert "insecure permissions on oVirt password file" in caplog.text


def test_inline_password_is_allowed_with_a_warning(load, caplog):
    settings = load(password_file=None, password=INLINE)
    assert settings.password == INLINE
    assert "the password is written in the configuration file" in caplog.text


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"password_file": None}, "give exactly one of password_file and password"),
        ({"password": "x"}, "give exactly one of password_file and password"),
        ({"insecure": "yes", "ca_file": "/etc/hostname"}, "insecure = yes ignores ca_file"),
        ({"ca_file": "/nonexistent/ca.pem"}, "/nonexistent/ca.pem is not a readable file"),
        ({"timeout": "0"}, "timeout"),
        ({"power_timeout": "soon"}, "power_timeout"),
        ({"connections": "0"}, "connections"),
        ({"cluster": " "}, "cluster is empty"),
        ({"url": "https://"}, "names no host"),
        ({"url": "https://e/?x=1"}, "takes no query"),
    ],
)
def test_bad_values_are_config_errors_at_their_line(load, keys, message):
    with pytest.raises(ConfigError, match=r"^fv.conf:\d+: ") as raised:
        load(**keys)
    assert message in str(raised.value)


def test_missing_url_and_username(section, pass_file):
    with pytest.raises(ConfigError, match="missing required key 'url'"):
        load_settings(section(body_of(username="u", password_file=pass_file))[0])
    with pytest.raises(ConfigError, match="missing required key 'username'"):
        load_settings(section(body_of(url="https://e", password_file=pass_file))[0])


def test_missing_or_empty_password_file(load, tmp_path):
    with pytest.raises(UserError, match=r"oVirt password file .*nothing-here"):
        load(password_file=tmp_path / "nothing-here")
    empty = tmp_path / "empty"
    empty.write_text("\n")
    empty.chmod(0o600)
    with pytest.raises(ConfigError, match="is empty"):
        load(password_file=empty)


# -- the availability check -----------------------------------------------------------------


@pytest.fixture
def check(plugin_hooks, section):
    def run(text: str):
        node, tree = section(text)
        return plugin_hooks().fence_virt_backend_check(section=node, config=tree)

    return run


def test_check_says_yes_when_the_engine_answers_over_verified_tls(check, config, engine):
    availability = check(config())
    assert availability.usable, availability.reason
    assert (
        availability.reason == f"engine https://127.0.0.1:{engine.port} answers over verified TLS"
    )
    assert engine.tokens_issued == 0  # it logs in to nothing


def test_check_names_an_untrusted_certificate(check, config, tmp_path):
    other = throwaway_pki(tmp_path / "o", tag="o")
    availability = check(config(ca_file=other.ca_file))
    assert not availability.usable
    assert "TLS certificate is not trusted by ca_file" in availability.reason


def test_check_names_an_unreachable_engine(check, config, engine):
    engine.stop()
    availability = check(config())
    assert not availability.usable
    assert availability.reason.startswith(f"cannot reach engine https://127.0.0.1:{engine.port}")


def test_check_without_a_block(check):
    availability = check("")
    assert not availability.usable
    assert "no backends/ovirt block" in availability.reason


def test_check_changes_no_password_file(check, config, pass_file):
    pass_file.chmod(0o644)
    assert check(config(password_file=pass_file)).usable
    assert pass_file.stat().st_mode & 0o777 == 0o644
    assert "nothing-here" in check(config(password_file=pass_file.parent / "nothing-here")).reason
