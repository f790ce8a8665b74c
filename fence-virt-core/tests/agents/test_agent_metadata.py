"""``-o metadata``: the C agent's XML byte for byte, and valid for the fence-agent schema."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from fence_virt.agents import runner, text, virt
from fence_virt.agents.xvm import OPTSTRING, PROGRAM
from fence_virt_testinfra.tools import unavailable

DATA = Path(__file__).resolve().parent.parent / "data" / "agents"
FENCE_VIRT_OPTSTRING = "dD:P:A:p:M:n:H:o:t:?hVT:S::C:c:k:w:"


def test_metadata_equals_the_stored_c_output() -> None:
    assert text.metadata(PROGRAM, OPTSTRING) == (DATA / "fence_xvm-metadata.xml").read_text()


def test_shared_table_reproduces_c_fence_virt_metadata() -> None:
    stored = (DATA / "fence_virt-metadata.xml").read_text()
    assert (virt.PROGRAM, virt.OPTSTRING) == ("fence_virt", FENCE_VIRT_OPTSTRING)
    assert text.metadata(virt.PROGRAM, virt.OPTSTRING) == stored


def test_fence_virt_metadata_from_stdin_like_pacemaker(
    monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    """Pacemaker asks with no target at all; in-process, since fence_virt without -T would
    use the vmchannel address if it got as far as sending (it does not: no transport runs)."""
    monkeypatch.setattr(runner, "_read_stdin", lambda: b"action=metadata\nnodename=node1\n")
    monkeypatch.setattr(virt, "fence", _never_sends)
    assert runner.run(virt.AGENT, ["fence_virt"]) == 0
    out, err = capsysbinary.readouterr()
    assert (out, err) == ((DATA / "fence_virt-metadata.xml").read_bytes(), b"")


def _never_sends(*_args: object) -> int:
    raise AssertionError("-o metadata reached the transport")


@pytest.mark.netns
@pytest.mark.c_suite
def test_metadata_equals_the_live_c_agent(ours: str, c_fence_xvm: str, run) -> None:
    mine = run([ours, "-o", "metadata"])
    theirs = run([c_fence_xvm, "-o", "metadata"])
    assert (mine.returncode, mine.stderr) == (theirs.returncode, theirs.stderr) == (0, b"")
    assert mine.stdout == theirs.stdout


@pytest.mark.netns
def test_metadata_from_stdin_like_pacemaker(ours: str, run) -> None:
    result = run([ours], stdin=b"action=metadata\nnodename=node1\n")
    assert result.returncode == 0
    assert result.stdout == (DATA / "fence_xvm-metadata.xml").read_bytes()


@pytest.mark.parametrize(
    ("program", "optstring"), [(PROGRAM, OPTSTRING), ("fence_virt", FENCE_VIRT_OPTSTRING)]
)
def test_metadata_validates_against_metadata_rng(program: str, optstring: str) -> None:
    schema = etree.RelaxNG(etree.parse(str(DATA / "metadata.rng")))
    document = etree.fromstring(text.metadata(program, optstring).encode())
    assert schema.validate(document), schema.error_log


def test_schema_rejects_broken_metadata() -> None:
    """The validation above can fail: a parameter without content is refused."""
    schema = etree.RelaxNG(etree.parse(str(DATA / "metadata.rng")))
    broken = text.metadata(PROGRAM, OPTSTRING).replace('\t\t<content type="string" />\n', "", 1)
    assert not schema.validate(etree.fromstring(broken.encode()))


def test_fence_virt_metadata_lists_its_parameters_in_c_order() -> None:
    document = etree.fromstring(text.metadata(virt.PROGRAM, virt.OPTSTRING).encode())
    names = [p.get("name") for p in document.iter("parameter")]
    assert names == [
        "debug", "serial_device", "serial_params", "channel_address", "ipport", "plug", "port",
        "action", "timeout", "ipaddr", "vsock", "auth", "hash", "key_file", "delay", "domain",
    ]  # fmt: skip
    vsock = document.find("parameters/parameter[@name='vsock']/content")
    assert vsock is not None
    assert (vsock.get("type"), vsock.get("default")) == ("integer", "2")


def test_metadata_lists_the_parameters_pacemaker_needs() -> None:
    document = etree.fromstring(text.metadata(PROGRAM, OPTSTRING).encode())
    names = [p.get("name") for p in document.iter("parameter")]
    assert names == [
        "debug", "ip_family", "multicast_address", "ipport", "retrans", "auth", "hash",
        "key_file", "plug", "port", "use_uuid", "action", "timeout", "delay", "domain",
    ]  # fmt: skip
    plug = document.find("parameters/parameter[@name='plug']")
    assert plug is not None
    assert (plug.get("required"), plug.get("obsoletes")) == ("1", "port")


@pytest.mark.parametrize(
    ("program", "optstring"), [(PROGRAM, OPTSTRING), (virt.PROGRAM, virt.OPTSTRING)]
)
def test_metadata_validates_with_xmllint(tmp_path: Path, program: str, optstring: str) -> None:
    """The issue's check, with the tool packagers use."""
    import shutil
    import subprocess

    if shutil.which("xmllint") is None:
        unavailable("xmllint (libxml2-utils) is not installed")
    document = tmp_path / f"{program}.xml"
    document.write_text(text.metadata(program, optstring))
    result = subprocess.run(
        ["xmllint", "--noout", "--relaxng", str(DATA / "metadata.rng"), str(document)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "validates" in result.stderr
