"""``fence_virtd --list-plugins`` shows both channel listeners, installed through their entry
points, with the reason each can or cannot run on this configuration."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from fence_virt_testinfra.ours import FENCE_VIRTD


def listing(config: Path) -> dict[str, dict]:
    done = subprocess.run(
        [FENCE_VIRTD, "-f", str(config), "--list-plugins", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return {row["name"]: row for row in json.loads(done.stdout) if row["kind"] == "listener"}


def test_both_listeners_are_listed_with_their_reasons(tmp_path: Path) -> None:
    config = tmp_path / "fence_virt.conf"
    config.write_text(
        "listeners {\n"
        f'\tserial {{\n\t\turi = "test:///default";\n\t\tpath = "{tmp_path}";\n\t}}\n'
        f'\tvmchannel {{\n\t\turi = "test:///default";\n\t\tpath = "{tmp_path}/gone";\n\t}}\n'
        "}\n"
    )
    config.chmod(0o600)
    rows = listing(config)
    serial, vmchannel = rows["serial"], rows["vmchannel"]
    assert serial["distribution"] == "fence-virt-listener-serial"
    assert vmchannel["distribution"] == "fence-virt-listener-vmchannel"
    assert serial["usable"] is True
    assert serial["reason"] == f"serial sockets in {tmp_path} of domains on test:///default"
    assert vmchannel["usable"] is False
    assert f"directory {tmp_path}/gone does not exist" in vmchannel["reason"]
