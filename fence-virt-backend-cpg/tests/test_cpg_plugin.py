"""The plugin's hooks: what --list-plugins says, and configuration errors at file:line."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from fence_virt.config import ConfigSection, parse_text
from fence_virt.errors import ConfigError
from fence_virt_backend_cpg.backend import CpgBackend
from fence_virt_backend_cpg.config import NameMode
from fence_virt_backend_cpg.plugin import CpgBackendPlugin
from fence_virt_testinfra.ours import FENCE_VIRTD


def section(text: str) -> ConfigSection:
    config = parse_text(text, source="cpg.conf")
    return ConfigSection("backends/cpg", config.node("backends/cpg"), config.source)


def create(text: str) -> CpgBackend:
    config = parse_text(text, source="cpg.conf")
    return CpgBackendPlugin().fence_virt_backend_create(section=section(text), config=config)


def test_create_reads_the_block():
    backend = create('backends {\ncpg {\nuri = "test:///default";\nname_mode = "uuid";\n}\n}\n')
    assert isinstance(backend, CpgBackend)
    assert backend.describe() == "cpg group fence-agents, local VMs from libvirt test:///default"
    assert backend._settings.name_mode is NameMode.UUID


@pytest.mark.parametrize(
    ("body", "line", "problem"),
    [
        ('name_mode = "label";\n', 4, "name_mode"),
        ('request_timeout = "0";\n', 4, "request_timeout"),
        ("", 2, "missing required key 'uri'"),
    ],
)
def test_bad_blocks_are_reported_at_file_and_line(body, line, problem):
    uri = 'uri = "test:///default";\n' if body else ""
    text = f"backends {{\ncpg {{\n{uri}{body}}}\n}}\n"
    with pytest.raises(ConfigError, match=problem) as raised:
        create(text)
    assert str(raised.value).startswith(f"cpg.conf:{line}:")


@pytest.mark.parametrize(
    ("daemon_block", "cpg_block", "mode"),
    [
        ("", "", NameMode.NAME),
        ('name_mode = "uuid";', "", NameMode.UUID),
        ('name_mode = "UUID";', "", NameMode.UUID),
        ('name_mode = "uuid";', 'name_mode = "name";', NameMode.NAME),
        ('name_mode = "name";', 'name_mode = "uuid";', NameMode.UUID),
    ],
)
def test_name_mode_also_in_the_fence_virtd_block_as_in_c(daemon_block, cpg_block, mode):
    """C's cpg backend reads fence_virtd/@name_mode (its place before 0.1.4), then lets
    backends/cpg/@name_mode override it (cpg-virt.c)."""
    backend = create(
        f'fence_virtd {{\nbackend = "cpg";\n{daemon_block}\n}}\n'
        f'backends {{\ncpg {{\nuri = "test:///default";\n{cpg_block}\n}}\n}}\n'
    )
    assert backend._settings.name_mode is mode


def test_a_bad_name_mode_in_the_fence_virtd_block_is_reported_at_its_line():
    text = (
        'fence_virtd {\nbackend = "cpg";\nname_mode = "label";\n}\n'
        'backends {\ncpg {\nuri = "test:///default";\n}\n}\n'
    )
    with pytest.raises(ConfigError, match="name_mode 'label': expected name or uuid") as raised:
        create(text)
    assert str(raised.value).startswith("cpg.conf:3:")


def test_list_plugins_shows_the_cpg_backend(tmp_path: Path):
    config = tmp_path / "fence_virt.conf"
    config.write_text(
        'fence_virtd { listener = "multicast"; backend = "cpg"; }\n'
        'backends { cpg { uri = "test:///default"; } }\n'
    )
    config.chmod(0o600)
    done = subprocess.run(
        [FENCE_VIRTD, "--list-plugins", "--json", "-f", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    rows = {(r["kind"], r["name"]): r for r in json.loads(done.stdout)}
    row = rows[("backend", "cpg")]
    assert row["distribution"] == "fence-virt-backend-cpg"
    assert row["usable"], row
    assert row["reason"] == "CPG group fence-agents; local VMs from test:///default"
