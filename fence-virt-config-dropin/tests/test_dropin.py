"""The dropin configuration source: merging rules, where errors point, and a real
``fence_virtd --config-source dropin`` serving requests (the kit's memory listener and
backend, registered by fence-virt-testplugins; a UNIX socket, no network)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fence_virt.config import parse_text
from fence_virt.daemon.app import Daemon
from fence_virt.daemon.config_sources import find_config_source
from fence_virt.daemon.settings import load_daemon_config
from fence_virt.errors import ConfigError, UserError
from fence_virt.testing.memory import ask
from fence_virt_config_dropin import DropInSource
from fence_virt_testinfra.processes import Daemon as Process

FENCE_VIRTD = str(Path(sys.executable).parent / "fence_virtd")

MAIN = 'fence_virtd {\n\tlistener = "cluster-a";\n\tlistener = "cluster-b";\n}\n'
BACKEND = 'backends {\n\tmemory {\n\t\tvm = "vm1";\n\t\tvm = "vm2";\n\t}\n}\n'


def listener(name: str, sock: Path, requester: str) -> str:
    return (
        f'listeners {{\n\t{name} {{\n\t\tplugin = "memory";\n\t\tsocket = "{sock}";\n'
        f'\t\trequester = "{requester}";\n\t}}\n}}\n'
    )


def layout(tmp_path: Path, files: dict[str, str], main: str | None = MAIN) -> Path:
    """Write the main file (unless ``None``) and drop-ins; returns the main file's path."""
    conf = tmp_path / "fence_virt.conf"
    if main is not None:
        conf.write_text(main)
    (tmp_path / "fence_virt.conf.d").mkdir()
    for name, text in files.items():
        (tmp_path / "fence_virt.conf.d" / name).write_text(text)
    return conf


def test_found_through_its_entry_point() -> None:
    assert isinstance(find_config_source("dropin"), DropInSource)


def test_same_tree_as_one_file_and_each_block_keeps_its_file(tmp_path: Path) -> None:
    a, b = tmp_path / "a.sock", tmp_path / "b.sock"
    conf = layout(
        tmp_path,
        {
            "20-b.conf": listener("cluster-b", b, "198.51.100.2"),
            "10-a.conf": listener("cluster-a", a, "198.51.100.1") + BACKEND,
            "README": "not a .conf file: ignored",
        },
    )
    merged = DropInSource().load(str(conf))
    both = listener("cluster-a", a, "198.51.100.1").replace("\t}\n}\n", "\t}\n") + listener(
        "cluster-b", b, "198.51.100.2"
    ).replace("listeners {\n", "")
    whole = parse_text(MAIN + both + BACKEND)
    # every plugin gets the same typed view: the merged tree equals the one-file tree
    # (equality ignores where things were written)
    assert merged == whole
    listeners = merged.child("listeners")
    assert listeners is not None
    assert [(c.name, c.source) for c in listeners.children] == [
        ("cluster-a", str(tmp_path / "fence_virt.conf.d" / "10-a.conf")),
        ("cluster-b", str(tmp_path / "fence_virt.conf.d" / "20-b.conf")),
    ]
    assert merged.source == str(conf)


def test_a_bad_value_in_a_drop_in_is_reported_at_its_file_and_line(tmp_path: Path) -> None:
    bad = BACKEND.replace('vm = "vm2";', 'vm = "vm2";\n\t\tunusable = "x";\n\t\tstuck = "nosuch";')
    conf = layout(tmp_path, {"10-a.conf": listener("cluster-a", tmp_path / "a", "r") + bad})
    (tmp_path / "fence_virt.conf.d" / "20-b.conf").write_text(
        listener("cluster-b", tmp_path / "b", "r")
    )
    config = load_daemon_config(str(conf), explicit=True, source=DropInSource())
    with pytest.raises(ConfigError) as caught:
        Daemon.from_config(config)
    dropin = tmp_path / "fence_virt.conf.d" / "10-a.conf"
    # line 13 of 10-a.conf: 7 lines of the listener block, then the backend block
    assert str(caught.value).startswith(f"{dropin}:13: backends/memory: stuck VM nosuch")


def test_a_block_in_two_files_names_both(tmp_path: Path) -> None:
    conf = layout(
        tmp_path,
        {
            "10-a.conf": listener("cluster-a", tmp_path / "a", "r"),
            "20-a.conf": "\n" + listener("CLUSTER-A", tmp_path / "a2", "r"),
        },
    )
    with pytest.raises(ConfigError) as caught:
        DropInSource().load(str(conf))
    first = tmp_path / "fence_virt.conf.d" / "10-a.conf"
    second = tmp_path / "fence_virt.conf.d" / "20-a.conf"
    assert str(caught.value) == (f"{second}:3: listeners/CLUSTER-A is also defined at {first}:2")


def test_fence_virtd_block_belongs_to_one_file(tmp_path: Path) -> None:
    conf = layout(tmp_path, {"10.conf": '# cluster b\nfence_virtd { backend = "memory"; }\n'})
    with pytest.raises(ConfigError) as caught:
        DropInSource().load(str(conf))
    assert str(caught.value) == (
        f"{tmp_path}/fence_virt.conf.d/10.conf:2: block fence_virtd is also in {conf}: "
        "keep it in one file"
    )


def test_entries_directly_in_a_container_are_refused(tmp_path: Path) -> None:
    conf = layout(tmp_path, {"10.conf": 'listeners {\n\tport = "1230";\n}\n'})
    with pytest.raises(ConfigError, match=r"10\.conf:2: listeners: entry port directly inside"):
        DropInSource().load(str(conf))


def test_groups_add_up(tmp_path: Path) -> None:
    conf = layout(
        tmp_path,
        {"10.conf": 'groups { group { ip = "198.51.100.9"; uuid = "vm9"; } }\n'},
        main=MAIN + 'groups { group { ip = "198.51.100.1"; uuid = "vm1"; } }\n',
    )
    groups = DropInSource().load(str(conf)).child("groups")
    assert groups is not None
    assert [g.all_values("uuid") for g in groups.children] == [("vm1",), ("vm9",)]


def test_only_drop_ins_and_nothing_at_all(tmp_path: Path) -> None:
    conf = layout(tmp_path, {"10.conf": MAIN}, main=None)
    assert DropInSource().exists(str(conf))
    assert DropInSource().load(str(conf)).child("fence_virtd") is not None
    nothing = tmp_path / "nothing.conf"
    assert not DropInSource().exists(str(nothing))
    with pytest.raises(UserError, match="does not exist"):
        load_daemon_config(str(nothing), explicit=True, source=DropInSource())


def test_a_drop_in_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    conf = layout(tmp_path, {})
    (tmp_path / "fence_virt.conf.d" / "x.conf").mkdir()
    with pytest.raises(UserError, match=r"x\.conf"):
        DropInSource().load(str(conf))


def test_fence_virtd_serves_from_a_dropin_configuration(tmp_path: Path) -> None:
    """The second source runs a real daemon: each cluster's listener in its own drop-in."""
    a, b = tmp_path / "a.sock", tmp_path / "b.sock"
    conf = layout(
        tmp_path,
        {
            "10-a.conf": listener("cluster-a", a, "198.51.100.1") + BACKEND,
            "20-b.conf": listener("cluster-b", b, "198.51.100.2"),
        },
    )
    argv = [FENCE_VIRTD, "-F", "--config-source", "dropin", "-f", str(conf)]
    daemon = Process([*argv, "-p", str(tmp_path / "pid")], tmp_path / "log")
    try:
        daemon.wait_for_log("fence_virtd started", 30)
        assert ask(a, "off vm1", "status vm1") == ["0", "2"]
        assert ask(b, "status vm1", "on vm1", "status vm1") == ["2", "0", "0"]
    finally:
        assert daemon.stop() == 0, daemon.log()
    assert (tmp_path / "fence_virt.conf.d" / "20-b.conf").stat().st_mode & 0o777 == 0o600
    listed = subprocess.run(
        [FENCE_VIRTD, "--config-source", "dropin", "-f", str(conf), "--list-plugins"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert "cluster-a" not in listed.stdout
    assert "memory" in listed.stdout
    assert "dropin" not in listed.stdout, "a config source is not a plugin row"
