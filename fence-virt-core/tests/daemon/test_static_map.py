"""Static permission maps (c-suite-spec §5.7) parsed from real config text."""

from __future__ import annotations

import pytest

from fence_virt.config import parse_text
from fence_virt.daemon.static_map import StaticMap, is_canonical_uuid
from fence_virt.errors import ConfigError
from fence_virt.types import Target, domain_uuid

GROUPS = """
groups {
    group {
        name = "cluster1";
        ip = "198.51.100.11";
        ip = "198.51.100.12";
        uuid = "vm1";
        uuid = "22222222-2222-2222-2222-222222222222";
    }
    group {
        uuid = "33333333-3333-3333-3333-333333333333";
        uuid = "vm3";
    }
}
"""


def test_no_groups_allows_everything() -> None:
    smap = StaticMap.from_config(parse_text('fence_virtd { listener = "multicast"; }\n'))
    assert smap.open
    assert smap.allows("198.51.100.99", "anything")


def test_ip_requester_may_act_on_its_group_targets_only() -> None:
    smap = StaticMap.from_config(parse_text(GROUPS))
    assert [g.name for g in smap.groups] == ["cluster1", "unnamed-2"]
    assert smap.allows("198.51.100.11", "VM1")
    assert smap.allows("198.51.100.12", "22222222-2222-2222-2222-222222222222")
    assert not smap.allows("198.51.100.11", "vm3")
    assert not smap.allows("198.51.100.99", "vm1")


def test_uuid_requester_is_matched_against_uuid_entries() -> None:
    smap = StaticMap.from_config(parse_text(GROUPS))
    guest = "33333333-3333-3333-3333-333333333333"
    assert smap.allows(guest, "vm3")
    assert not smap.allows(guest, "vm1")


def test_hostlist_filter_accepts_uuid_or_name() -> None:
    smap = StaticMap.from_config(parse_text(GROUPS))
    assert smap.allows("198.51.100.11", "11111111-1111-1111-1111-111111111111", "vm1")
    assert not smap.allows("198.51.100.11", "33333333-3333-3333-3333-333333333333", "vm3")


def test_canonical_uuid_detection() -> None:
    assert is_canonical_uuid("6695eb01-f6a4-8304-79aa-97f2502e193f")
    assert is_canonical_uuid("6695EB01-F6A4-8304-79AA-97F2502E193F")
    assert not is_canonical_uuid("6695eb01f6a4830479aa97f2502e193f")
    assert not is_canonical_uuid("vm1")


@pytest.mark.parametrize(
    ("domain", "by_uuid", "expected"),
    [
        ("6695eb01-f6a4-8304-79aa-97f2502e193f", False, "6695eb01-f6a4-8304-79aa-97f2502e193f"),
        ("6695EB01-F6A4-8304-79AA-97F2502E193F", False, "6695eb01-f6a4-8304-79aa-97f2502e193f"),
        ("6695eb01f6a4830479aa97f2502e193f", False, None),
        ("6695eb01f6a4830479aa97f2502e193f", True, "6695eb01-f6a4-8304-79aa-97f2502e193f"),
        ("{6695eb01-f6a4-8304-79aa-97f2502e193f}", True, "6695eb01-f6a4-8304-79aa-97f2502e193f"),
        ("6695eb01f-6a4-8304-79aa-97f2502e193f", False, None),
        ("vm1", True, None),
        ("vm1", False, None),
    ],
)
def test_one_uuid_rule_for_targets(domain: str, by_uuid: bool, expected: str | None) -> None:
    assert domain_uuid(domain, by_uuid=by_uuid) == expected
    assert Target(domain=domain, by_uuid=by_uuid, requester="r", seqno=1).uuid == expected


MAPPED = """
groups {
    group { ip = "::ffff:7f00:1"; uuid = "vm1"; }
    group { ip = "::FFFF:198.51.100.11"; uuid = "vm2"; }
    group { ip = "198.51.100.12"; uuid = "vm3"; }
    group { ip = "2001:DB8::1"; uuid = "vm4"; }
    group { ip = "7"; uuid = "vm5"; }
}
"""


@pytest.mark.parametrize(
    ("requester", "target"),
    [
        ("127.0.0.1", "vm1"),
        ("::ffff:127.0.0.1", "vm1"),
        ("::ffff:7f00:1", "vm1"),
        ("198.51.100.11", "vm2"),
        ("::ffff:198.51.100.11", "vm2"),
        ("::ffff:c633:640c", "vm3"),
        ("::ffff:198.51.100.12", "vm3"),
        ("2001:db8:0::1", "vm4"),
        ("7", "vm5"),
    ],
)
def test_ip_entries_match_an_ipv4_mapped_requester_in_either_form(requester, target) -> None:
    """Issue 21 D10: C compares text, so ``::ffff:127.0.0.1`` never matched ``127.0.0.1``;
    here an IPv4-mapped address is its IPv4 address, written either way."""
    smap = StaticMap.from_config(parse_text(MAPPED))
    assert smap.allows(requester, target)
    others = {"vm1", "vm2", "vm3", "vm4", "vm5"} - {target}
    assert not any(smap.allows(requester, other) for other in others)


@pytest.mark.parametrize("requester", ["127.0.0.2", "::ffff:127.0.0.2", "::1", "07", "vm1"])
def test_other_requesters_match_no_mapped_entry(requester) -> None:
    smap = StaticMap.from_config(parse_text(MAPPED))
    assert not any(smap.allows(requester, f"vm{n}") for n in range(1, 6))


# --- found by scripts/mutation (docs/mutation.md) ----------------------------------------------


@pytest.mark.parametrize("block", ["grupo", "host", "Groups", "aaa"])
def test_a_block_other_than_group_inside_groups_is_an_error(block: str) -> None:
    """A misspelt ``group`` would drop a restriction: refused whatever it sorts like."""
    text = f'groups {{\n    {block} {{ ip = "198.51.100.11"; uuid = "vm1"; }}\n}}\n'
    with pytest.raises(ConfigError, match=rf"unknown block '{block}' in groups"):
        StaticMap.from_config(parse_text(text))


def test_an_instance_map_needs_a_group_and_may_have_one() -> None:
    node = parse_text(GROUPS).child("groups")
    smap = StaticMap.from_node(node, instance="cluster-b")
    assert [g.name for g in smap.groups] == ["cluster1", "unnamed-2"]
    empty = parse_text("groups {\n}\n").child("groups")
    with pytest.raises(ConfigError, match="listeners/cluster-b: its groups block has no group"):
        StaticMap.from_node(empty, instance="cluster-b")
    assert StaticMap.from_node(empty).open  # the top-level map: open, as in C (warned)


def test_an_empty_top_level_map_is_warned_a_full_one_is_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    StaticMap.from_config(parse_text(GROUPS, source="fence_virt.conf"))
    assert caplog.text == ""
    StaticMap.from_config(parse_text("groups {\n}\n", source="fence_virt.conf"))
    assert "fence_virt.conf:1: the groups block has no group: every requester may" in caplog.text


def test_unknown_keys_in_a_group_are_warned_with_their_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    text = 'groups {\n  group {\n    ip = "198.51.100.11";\n    uiid = "vm1";\n  }\n}\n'
    StaticMap.from_config(parse_text(text, source="fence_virt.conf"))
    assert "fence_virt.conf:4: unknown key 'uiid' in a groups/group block" in caplog.text
