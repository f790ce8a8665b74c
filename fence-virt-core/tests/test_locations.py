"""The pure location model (fence_virt.locations): ownership, migration, departed hosts."""

from __future__ import annotations

from fence_virt.locations import SHUTOFF, Locations, Placement

RUNNING = 1
U1 = "11111111-1111-1111-1111-111111111111"
U2 = "22222222-2222-2222-2222-222222222222"


def model(local: int = 1, members: tuple[int, ...] = (1, 2, 3)) -> Locations:
    locations = Locations(local)
    locations.membership(members, now=0.0)
    return locations


def test_an_unreported_vm_is_unknown():
    located = model().locate("vm1", by_uuid=False)
    assert located.placement is Placement.UNKNOWN
    assert located.owner is None
    assert str(located) == "unknown to every member"


def test_local_and_remote_by_name_and_uuid():
    m = model()
    m.report(1, "vm1", U1, RUNNING, now=1)
    m.report(3, "vm2", U2.upper(), RUNNING, now=1)
    assert m.locate("vm1", by_uuid=False).placement is Placement.LOCAL
    assert m.locate(U1.upper(), by_uuid=True).placement is Placement.LOCAL
    remote = m.locate("vm2", by_uuid=False)
    assert (remote.placement, remote.owner) == (Placement.REMOTE, 3)
    assert m.locate(U2, by_uuid=True).owner == 3
    # name mode never matches a UUID against a name, nor the reverse
    assert m.locate(U2, by_uuid=False).placement is Placement.UNKNOWN
    assert m.locate("vm2", by_uuid=True).placement is Placement.UNKNOWN


def test_migration_moves_ownership_to_the_new_active_host():
    m = model()
    m.report(2, "vm1", U1, RUNNING, now=1)
    assert m.report(3, "vm1", U1, RUNNING, now=2) == 2
    assert m.locate("vm1", by_uuid=False).owner == 3
    # a late periodic report from the old host does not take it back: its copy is stale
    # only if it was older; a newer active report from host 2 would (it runs there again)
    stale = next(r for r in m.reports(2) if r.uuid == U1)
    assert stale.stale
    assert m.locate(U1, by_uuid=True).owner == 3


def test_an_active_copy_beats_a_newer_shut_off_copy():
    m = model()
    m.report(2, "vm1", U1, RUNNING, now=1)
    assert m.report(3, "vm1", U1, SHUTOFF, now=5) is None
    assert m.locate("vm1", by_uuid=False).owner == 2


def test_shut_off_copies_go_to_the_lowest_member():
    m = model()
    m.report(3, "vm1", U1, SHUTOFF, now=1)
    m.report(2, "vm1", U1, SHUTOFF, now=2)
    assert m.locate("vm1", by_uuid=False).owner == 2


def test_a_departed_owner_makes_the_vm_departed_with_the_time_it_left():
    m = model()
    m.report(3, "vm3", U1, RUNNING, now=1)
    joined, left = m.membership((1, 2), now=7)
    assert (joined, left) == (set(), {3})
    located = m.locate("vm3", by_uuid=False)
    assert (located.placement, located.owner, located.left_at) == (Placement.DEPARTED, 3, 7)
    view = m.host(3)
    assert view is not None
    assert not view.member
    assert m.highest_member() == 2


def test_a_member_copy_wins_over_a_departed_one_and_rejoining_restores():
    m = model()
    m.report(3, "vm1", U1, RUNNING, now=1)
    m.report(2, "vm1", U1, SHUTOFF, now=1)
    m.membership((1, 2), now=2)
    assert m.locate("vm1", by_uuid=False).owner == 2
    joined, _ = m.membership((1, 2, 3), now=3)
    assert joined == {3}
    assert m.locate("vm1", by_uuid=False).owner == 3


def test_replace_host_drops_what_the_full_list_no_longer_has():
    m = model()
    m.replace_host(1, [("vm1", U1, RUNNING), ("vm2", U2, RUNNING)], now=1)
    gone = m.replace_host(1, [("vm2", U2, SHUTOFF)], now=2)
    assert [r.name for r in gone] == ["vm1"]
    assert m.locate("vm1", by_uuid=False).placement is Placement.UNKNOWN
    assert m.locate("vm2", by_uuid=False).report.state == SHUTOFF  # type: ignore[union-attr]


def test_hosts_lists_members_and_departed():
    m = model(members=(1, 2))
    m.membership((2,), now=4)
    assert [(h.host, h.member, h.left_at) for h in m.hosts()] == [(1, False, 4), (2, True, None)]
    assert m.members() == {2}


def test_a_stale_copy_never_wins_once_the_new_owner_shut_the_vm_off():
    m = model()
    m.report(2, "vm1", U1, RUNNING, now=1)
    m.report(3, "vm1", U1, RUNNING, now=2)
    m.report(3, "vm1", U1, SHUTOFF, now=3)  # fenced on its new host
    located = m.locate("vm1", by_uuid=False)
    assert (located.owner, located.report.state) == (3, SHUTOFF)  # type: ignore[union-attr]
