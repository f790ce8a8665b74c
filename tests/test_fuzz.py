"""bench/fuzz.py, briefly: every target survives a few thousand coverage-guided inputs with no
crash and no backend call from invalid input; the harness's oracle sees authentic requests
reach the (recording) backend, so its zero for invalid input means something."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from types import ModuleType

import pytest

from fence_virt_testinfra.plugins import repo_root

FUZZ = repo_root() / "bench" / "fuzz.py"


def load_fuzz() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_fuzz", FUZZ)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_fuzz"] = module
    spec.loader.exec_module(module)
    return module


def test_short_fuzz_run_of_every_target() -> None:
    done = subprocess.run(
        [sys.executable, str(FUZZ), "--runs", "3000"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    figures = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [f["target"] for f in figures] == [
        "multicast",
        "stream",
        "serial",
        "agent-stream",
        "agent-serial",
    ]
    for f in figures:
        assert f["inputs"] == 3000
        assert f["crashes"] == 0
        assert f["backend_calls_from_invalid"] == 0
        assert f["inputs_per_s"] > 0


@pytest.mark.parametrize("target", ["multicast", "stream"])
def test_oracle_counts_backend_calls_of_authentic_requests(target: str) -> None:
    """The seed a key-holding client would send reaches the backend once; the same request
    with a wrong client proof (class 1) does not, nor its replay."""
    fuzz = load_fuzz()
    valid = fuzz.seeds(target)[0]
    assert valid[0] == 2
    unproven = fuzz.FACTORIES[target]()
    assert unproven(bytes([1]) + valid[1:]) == 1
    assert unproven.dispatcher.calls == []
    one = fuzz.FACTORIES[target]()
    assert one(valid) == 2
    assert len(one.dispatcher.fenced) == 1
    operation, fenced = one.dispatcher.fenced[0]
    assert (operation.name, fenced.domain) == ("OFF", "vm1")
    assert one(valid) == 2
    assert one.dispatcher.calls == []  # the same signed bytes again: a replay


def test_serial_oracle_refuses_a_call_without_a_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """The serial check fails when the backend sees a request that is not in the input."""
    fuzz = load_fuzz()
    one = fuzz.FACTORIES["serial"]()
    seed = fuzz.seeds("serial")[0]
    assert one(seed) == 2
    from fence_virt import listening

    real = listening.SerialRequestReader.feed

    def forged(self: object, data: bytes) -> list[object]:
        events = real(self, data)  # type: ignore[arg-type]
        return [e.replace(seqno=e.seqno + 1) if hasattr(e, "replace") else e for e in events]

    monkeypatch.setattr(listening.SerialRequestReader, "feed", forged)
    with pytest.raises(fuzz.Crash):
        fuzz.FACTORIES["serial"]()(seed)
