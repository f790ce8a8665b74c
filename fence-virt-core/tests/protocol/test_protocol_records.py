"""The codec's messages behave as the frozen dataclasses they replace, without importing them."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import subprocess
import sys

import pytest

import fence_virt.protocol
from fence_virt.errors import LocalError
from fence_virt.protocol import FenceRequest, HostState, SerialRequest, SerialResponse
from fence_virt.protocol._record import Record

REQUEST = FenceRequest(request=4, hashtype=2, domain="vm1", seqno=7)
STATE = HostState("vm1", "11111111-1111-1111-1111-111111111111", 1)
RECORDS = [
    REQUEST,
    STATE,
    SerialRequest(request=1, domain="vm2", seqno=3),
    SerialResponse(2),
]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_value_semantics(record: Record) -> None:
    twin = dataclasses.replace(record)
    assert twin == record
    assert twin is not record
    assert hash(twin) == hash(record)
    assert record != object()
    assert pickle.loads(pickle.dumps(record)) == record  # noqa: S301 - our own bytes
    assert copy.deepcopy(record) == record


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_frozen(record: object) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.domain = "other"  # type: ignore[attr-defined]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del record.seqno  # type: ignore[attr-defined]
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.extra = 1  # type: ignore[attr-defined]


def test_repr_lists_every_field_in_order() -> None:
    assert repr(HostState("a", "b", 5)) == "HostState(domain='a', uuid='b', state=5)"
    assert repr(SerialRequest(request=1)) == (
        "SerialRequest(request=1, domain='', seqno=0, flags=0, magic=b'abba')"
    )
    names = [f.name for f in dataclasses.fields(FenceRequest)]
    assert repr(REQUEST).startswith("FenceRequest(request=4, hashtype=2, addrlen=0,")
    assert names == [*FenceRequest.__slots__]
    assert names[-2:] == ["family", "hash"]


def test_dataclass_introspection_matches_the_constructors() -> None:
    assert dataclasses.is_dataclass(FenceRequest)
    fields = {f.name: f for f in dataclasses.fields(FenceRequest)}
    assert fields["port"].default == 0
    assert fields["request"].default is dataclasses.MISSING
    assert all(f.kw_only for f in fields.values())
    assert not any(f.kw_only for f in dataclasses.fields(HostState))
    assert dataclasses.asdict(SerialResponse(3)) == {"response": 3}


def test_replace_validates_like_the_constructor() -> None:
    request = REQUEST
    changed = request.replace(family=2, port=1229)
    assert (changed.family, changed.port, changed.domain) == (2, 1229, "vm1")
    assert dataclasses.replace(request, family=2, port=1229) == changed
    with pytest.raises(LocalError, match=r"port must be in 0\.\.65535"):
        request.replace(port=70000)
    with pytest.raises(TypeError):
        request.replace(bogus=1)
    with pytest.raises(TypeError):
        FenceRequest(4, 2)  # type: ignore[call-arg]


def test_positional_records_match_patterns() -> None:
    match STATE:
        case HostState(name, _, state):
            assert (name, state) == ("vm1", 1)
        case _:  # pragma: no cover - the match above must succeed
            pytest.fail("HostState did not match positionally")


def test_the_package_exports_every_name_lazily() -> None:
    exported = {name: getattr(fence_virt.protocol, name) for name in fence_virt.protocol.__all__}
    assert exported["FenceRequest"] is FenceRequest
    assert set(fence_virt.protocol.__all__) <= set(dir(fence_virt.protocol))
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        fence_virt.protocol.Nope  # type: ignore[attr-defined]  # noqa: B018
    script = (
        "import sys, fence_virt.protocol as p\n"
        "before = sorted(m for m in sys.modules if m.startswith('fence_virt.protocol.'))\n"
        "from fence_virt.protocol import *\n"
        "print(before, 'dataclasses' in sys.modules, 'typing' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout == "[] False False\n"
