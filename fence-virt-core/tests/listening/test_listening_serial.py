"""Serial framing: complete serial_req_t out of a noisy byte stream, fed in any chunks
(c-suite-spec §2.7), and the host's answer to each through the Dispatcher (§2.6, §7.2)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fence_virt import Target
from fence_virt.listening import NO_MAGIC, SerialRequestReader, Skipped, answer, answer_serial
from fence_virt.protocol import (
    RF_UUID,
    SERIAL_MAGIC,
    FenceRequest,
    HashType,
    HostListDecoder,
    HostState,
    Operation,
    Response,
    SerialRequest,
    SerialResponse,
    SerialResponseScanner,
)
from fence_virt.testing.factories import serial_request

GUEST = "6695eb01-f6a4-8304-79aa-97f2502e193f"


def req(operation: int = Operation.REBOOT, domain: str = "vm1", seqno: int = 4242) -> bytes:
    return serial_request(operation, domain, seqno=seqno)


def requests(events: list[SerialRequest | Skipped]) -> list[SerialRequest]:
    return [event for event in events if isinstance(event, SerialRequest)]


def skipped(events: list[SerialRequest | Skipped]) -> list[Skipped]:
    return [event for event in events if isinstance(event, Skipped)]


def feed_bytewise(reader: SerialRequestReader, data: bytes) -> list[SerialRequest | Skipped]:
    events: list[SerialRequest | Skipped] = []
    for i in range(len(data)):
        events += reader.feed(data[i : i + 1])
    return events


# ---------------------------------------------------------------------------------------------
# framing


def test_one_request_whole() -> None:
    reader = SerialRequestReader()
    assert reader.feed(req()) == [SerialRequest(request=2, domain="vm1", seqno=4242)]
    assert reader.buffered == 0


def test_byte_at_a_time_gives_the_request_at_its_last_byte() -> None:
    reader = SerialRequestReader()
    data = req(Operation.STATUS, "vm2", 7) + req(Operation.OFF, "vm1", 8)
    for i, byte in enumerate(data):
        events = reader.feed(bytes([byte]))
        if i in (73, 147):
            assert requests(events) == [SerialRequest.decode(data[i - 73 : i + 1])]
        else:
            assert events == [], f"event at byte {i}"
    assert reader.buffered == 0


def test_garbage_before_the_first_request_is_skipped_in_one_piece() -> None:
    noise = b"\r\nDebian GNU/Linux 12 guest ttyS1\r\n\r\nguest login: "
    reader = SerialRequestReader()
    assert reader.feed(noise + req()) == [
        Skipped(len(noise), NO_MAGIC),
        SerialRequest.decode(req()),
    ]


def test_garbage_between_requests_and_partial_magics_in_it() -> None:
    """``a``, ``ab``, ``abb`` in the noise are not the magic; requests on both sides survive."""
    noise = b"a.ab.abb.abbx.bba"
    reader = SerialRequestReader()
    events = reader.feed(req(seqno=1) + noise + req(seqno=2))
    assert [r.seqno for r in requests(events)] == [1, 2]
    assert skipped(events) == [Skipped(len(noise), NO_MAGIC)]


def test_garbage_fed_byte_by_byte_is_all_accounted_for() -> None:
    noise = b"xxabbyyab"
    reader = SerialRequestReader()
    events = feed_bytewise(reader, noise + req() + noise)
    assert requests(events) == [SerialRequest.decode(req())]
    assert sum(s.size for s in skipped(events)) + reader.buffered == 2 * len(noise)
    assert reader.buffered == 2, "the trailing 'ab' may start a magic"
    assert {s.reason for s in skipped(events)} == {NO_MAGIC}


def test_noise_ending_in_a_partial_magic_overlapping_the_real_one() -> None:
    """``abb`` + ``abba...`` reads ``abba`` at the noise: that frame has flags ``b`` and is
    skipped by 3 bytes only, so the real request right behind it is found."""
    reader = SerialRequestReader()
    for data in (req(Operation.HOSTLIST, ""), req()):
        events = reader.feed(b"abb" + data)
        assert requests(events) == [SerialRequest.decode(data)]
        assert [s.size for s in skipped(events)] == [3]
        assert skipped(events)[0].reason == "not a serial request: unknown flags 0x62"


def test_a_request_with_the_magic_inside_its_domain_is_read_whole() -> None:
    reader = SerialRequestReader()
    data = req(domain="abba-abba") + req(domain="vm2")
    assert [r.domain for r in requests(reader.feed(data))] == ["abba-abba", "vm2"]


def test_wrong_magic_is_noise() -> None:
    """The C host carries out a request whatever its magic; here the magic frames requests."""
    reader = SerialRequestReader()
    bad = b"abbb" + req()[4:]
    events = reader.feed(bad + req(seqno=9))
    assert events == [Skipped(len(bad), NO_MAGIC), SerialRequest.decode(req(seqno=9))]


def test_truncated_input_waits_and_discard_drops_it() -> None:
    reader = SerialRequestReader()
    assert reader.feed(req()[:40]) == []
    assert reader.buffered == 40
    assert reader.discard("no byte for 1 s") == Skipped(40, "no byte for 1 s")
    assert reader.discard() is None
    assert reader.feed(req(seqno=5)) == [SerialRequest.decode(req(seqno=5))]


@pytest.mark.parametrize("cut", [4, 5, 6, 8, 30, 69])
def test_a_request_cut_short_does_not_swallow_the_next_one(cut: int) -> None:
    """A client killed mid-write, then a fresh request: the next magic lands in the cut
    frame's flags or domain field, and that frame is skipped up to it."""
    reader = SerialRequestReader()
    events = reader.feed(req(Operation.REBOOT, "vm1", 1)[:cut] + req(Operation.OFF, "vm2", 2))
    assert requests(events) == [SerialRequest(request=1, domain="vm2", seqno=2)]
    assert sum(s.size for s in skipped(events)) == cut


def test_a_request_cut_in_its_seqno_is_the_idle_discard_s_job() -> None:
    """Cut in its last 4 bytes, a frame still looks whole once the next bytes arrive; the
    runner discards a partial request after a quiet second, as C's 1 s read does."""
    reader = SerialRequestReader()
    assert reader.feed(req(seqno=1)[:72]) == []
    assert reader.discard() == Skipped(72, "incomplete request")
    assert reader.feed(req(Operation.OFF, "vm2", 2)) == [
        SerialRequest(request=1, domain="vm2", seqno=2)
    ]


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"abba\x02\x00" + b"v" * 64 + bytes(4), "domain field has no NUL terminator"),
        (b"abba\x02\x00" + b"\xff\xfe\x00".ljust(64, b"\0") + bytes(4), "not valid UTF-8"),
        (b"abba\x02\x80" + b"vm1".ljust(64, b"\0") + bytes(4), "unknown flags 0x80"),
        (b"abba\x02\x00" + b"vm1\0x".ljust(64, b"\0") + bytes(4), "after the domain's NUL"),
    ],
    ids=["no-nul", "not-utf8", "flags", "padding"],
)
def test_frames_no_client_sends_are_skipped_with_the_reason(frame: bytes, reason: str) -> None:
    reader = SerialRequestReader()
    events = reader.feed(frame + req())
    assert requests(events) == [SerialRequest.decode(req())]
    assert len(skipped(events)) == 1
    assert skipped(events)[0].size == len(frame)
    assert reason in skipped(events)[0].reason


def test_the_uuid_flag_is_a_flag_a_client_may_send() -> None:
    data = SerialRequest(request=1, domain=GUEST, flags=RF_UUID).encode()
    assert SerialRequestReader().feed(data) == [SerialRequest.decode(data)]


def test_unknown_operation_codes_are_requests() -> None:
    """The C host answers them FAIL: framing is no place to refuse them."""
    assert requests(SerialRequestReader().feed(req(200))) == [SerialRequest.decode(req(200))]


# a stream as a guest might write it: requests, with noise that holds no magic around them
domains = st.text(alphabet="abv-m12", max_size=20)
serial_requests = st.builds(
    SerialRequest,
    request=st.integers(0, 255),
    domain=domains,
    seqno=st.integers(0, 2**32 - 1),
    flags=st.sampled_from([0, RF_UUID]),
)
noise = st.binary(max_size=100).filter(lambda b: SERIAL_MAGIC not in b)


@given(
    st.lists(st.tuples(noise, serial_requests), max_size=6),
    noise,
    st.lists(st.integers(1, 80), min_size=1),
)
def test_any_chunking_gives_the_requests_in_order_and_accounts_for_every_byte(
    parts: list[tuple[bytes, SerialRequest]], tail: bytes, chunk_sizes: list[int]
) -> None:
    stream = b"".join(gap + request.encode() for gap, request in parts) + tail
    reader = SerialRequestReader()
    events: list[SerialRequest | Skipped] = []
    position, turn = 0, 0
    while position < len(stream):
        size = chunk_sizes[turn % len(chunk_sizes)]
        events += reader.feed(stream[position : position + size])
        position += size
        turn += 1
    assert requests(events) == [request for _, request in parts]
    dropped = sum(s.size for s in skipped(events))
    assert dropped + reader.buffered + 74 * len(parts) == len(stream)
    assert reader.buffered < len(SERIAL_MAGIC) or SERIAL_MAGIC in stream[-reader.buffered :]


@given(st.binary(max_size=400), st.integers(1, 100))
def test_arbitrary_bytes_never_break_the_reader(data: bytes, chunk: int) -> None:
    reader = SerialRequestReader()
    events: list[SerialRequest | Skipped] = []
    for i in range(0, len(data), chunk):
        events += reader.feed(data[i : i + chunk])
    assert reader.buffered < 74
    total = sum(74 if isinstance(e, SerialRequest) else e.size for e in events)
    assert total + reader.buffered == len(data)
    assert all(e.size > 0 for e in skipped(events))


# ---------------------------------------------------------------------------------------------
# the host's answer, through the Dispatcher


def serial_answer(request: SerialRequest, dispatcher) -> bytes:
    return asyncio.run(answer_serial(request, GUEST, dispatcher))


@pytest.mark.parametrize(
    "operation",
    [
        Operation.NULL,
        Operation.OFF,
        Operation.REBOOT,
        Operation.ON,
        Operation.STATUS,
        Operation.DEVSTATUS,
    ],
)
@pytest.mark.parametrize("response", list(Response)[:4])
def test_each_operation_is_one_serial_response_with_the_dispatcher_s_code(
    operation: Operation, response: Response, dispatcher
) -> None:
    dispatcher.response = response
    request = SerialRequest(request=operation, domain="vm1", seqno=77)
    data = serial_answer(request, dispatcher)
    assert data == SERIAL_MAGIC + bytes([response])
    scanner = SerialResponseScanner()
    assert scanner.feed(data) == SerialResponse(response)
    assert dispatcher.calls == [
        (operation, Target(domain="vm1", by_uuid=False, requester=GUEST, seqno=77))
    ]


def test_host_list_is_the_serial_stream(dispatcher, vms: tuple[HostState, ...]) -> None:
    """§2.6 serial variant: magic+0xFD, 130-byte records, terminator, magic+result."""
    data = serial_answer(SerialRequest(request=Operation.HOSTLIST), dispatcher)
    assert data[:5] == b"abba\xfd"
    assert data[5:-5] == b"".join(vm.encode() for vm in vms) + bytes(130)
    assert data[-5:] == b"abba\x00"
    decoder = HostListDecoder(serial=True)
    assert decoder.feed(data) == list(vms)
    assert (decoder.done, decoder.result) == (True, 0)
    assert dispatcher.calls == [("hostlist", GUEST)]


def test_a_failed_host_list_is_one_failure_response(dispatcher) -> None:
    dispatcher.fail_list = True
    assert serial_answer(SerialRequest(request=Operation.HOSTLIST), dispatcher) == b"abba\x01"


@pytest.mark.parametrize("code", [7, 8, 9, 200])
def test_unknown_operation_fails_without_calling_the_backend(
    code: int, dispatcher, caplog: pytest.LogCaptureFixture
) -> None:
    log = logging.getLogger("fence_virt.listener.serial")
    with caplog.at_level(logging.WARNING, logger=log.name):
        data = asyncio.run(answer_serial(SerialRequest(request=code), GUEST, dispatcher, log=log))
    assert data == b"abba\x01"
    assert dispatcher.calls == []
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        (log.name, f"request {code} from {GUEST}: no such operation")
    ]


def test_the_uuid_flag_reaches_the_backend(dispatcher) -> None:
    serial_answer(SerialRequest(request=Operation.OFF, domain=GUEST, flags=RF_UUID), dispatcher)
    assert dispatcher.calls == [
        (Operation.OFF, Target(domain=GUEST, by_uuid=True, requester=GUEST, seqno=0))
    ]


@pytest.mark.parametrize("code", [*range(9), 200])
def test_serial_and_fence_req_answers_agree(code: int, dispatcher) -> None:
    """One rule for every transport; only the framing of the answer differs."""
    dispatcher.response = Response.OFF
    fence = FenceRequest.build(code, "vm1", hashtype=HashType.SHA256, seqno=3)
    plain = asyncio.run(answer(fence, GUEST, dispatcher))
    asked_for_plain = list(dispatcher.calls)
    dispatcher.calls.clear()
    serial = serial_answer(SerialRequest(request=code, domain="vm1", seqno=3), dispatcher)
    assert dispatcher.calls == asked_for_plain
    if code == Operation.HOSTLIST:
        assert (plain[:1], serial[:5]) == (b"\xfd", b"abba\xfd")
        assert plain[1:-1] == serial[5:-5]
        assert (plain[-1:], serial[-5:]) == (b"\x00", b"abba\x00")
    else:
        assert serial == SERIAL_MAGIC + plain
