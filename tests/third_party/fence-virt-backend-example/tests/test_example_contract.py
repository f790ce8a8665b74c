"""The fence_virt.testing backend contract suite on the example backend.

The harness writes a fresh state file per test and observes each VM by reading that JSON
file itself, never through the backend under test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fence_virt.errors import BackendError
from fence_virt.protocol import Response
from fence_virt.testing import BackendContract, BackendHarness, BadConfig, Observed
from fence_virt_backend_example import (
    ExampleBackend,
    ExampleBackendPlugin,
    ExampleSettings,
    write_state,
)

VMS = ("vm1", "vm2", "vm3", "vm4")


def config(state_file: Path, pause: str = "0") -> str:
    return f"""backends {{
    example {{
        state_file = "{state_file}";
        reboot_pause = "{pause}";
    }}
}}
"""


class TestExampleBackendContract(BackendContract):
    @pytest.fixture
    def backend_harness(self, tmp_path: Path) -> BackendHarness:
        state_file = tmp_path / "vms.json"
        write_state(state_file, dict.fromkeys(VMS, True))

        def observe(vm: str) -> Observed:
            record = json.loads(state_file.read_text())["vms"][vm]
            return Observed(running=record["running"], boot=record["boots"])

        return BackendHarness(
            plugin=ExampleBackendPlugin,
            name="example",
            config=config(state_file),
            running=VMS,
            observe=observe,
            bad_config=BadConfig(config(state_file, pause="soon"), line=4),
        )


def test_a_damaged_state_file_answers_fail_and_says_why(tmp_path: Path) -> None:
    state_file = tmp_path / "vms.json"
    state_file.write_text('{"vms": {"vm1": {"uuid": "x", "running": "yes", "boots": 0}}}')
    backend = ExampleBackend(ExampleSettings(state_file=state_file))
    assert backend.devstatus() is Response.FAIL
    with pytest.raises(BackendError, match=r"VM vm1: needs uuid \(text\), running \(bool\)"):
        backend.start()
