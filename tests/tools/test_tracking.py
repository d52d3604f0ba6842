"""The one delivery tracker (tools/tracking.py): once each, in seq order, gaps resumed or counted."""

from __future__ import annotations

from tools.tracking import DeliveryTracker, Tally

# Scan "a" is published first, "b" second, and so on.


def order(scan_id: str) -> int:
    return ord(scan_id) - ord("a")


def see(tracker: DeliveryTracker, seq, scan_id=None, now=0.0):
    return tracker.observe(seq, scan_id, order=order(scan_id) if scan_id else None, now=now)


def scans(ids: str) -> dict[str, int]:
    return {scan_id: order(scan_id) for scan_id in ids}


def test_in_order_deliveries_are_all_new_and_nothing_is_wrong():
    tracker = DeliveryTracker()
    assert [see(tracker, seq, scan).new for seq, scan in [(1, "a"), (2, "b"), (3, "c")]] == [True] * 3
    assert tracker.tally(scans("abc")) == Tally(expected=3, received=3)


def test_tracking_starts_at_the_first_seq_seen():
    tracker = DeliveryTracker()
    assert see(tracker, 41, "a").new
    assert see(tracker, 42, "b").new
    assert tracker.gaps == 0


def test_tracking_from_a_known_seq_counts_a_first_jump_as_a_gap():
    tracker = DeliveryTracker(resume=False, start=0)  # a client that joined with ?since=0
    assert see(tracker, 1, "a").new
    assert see(tracker, 3, "c").new
    assert (tracker.gaps, tracker.missing_seqs, tracker.last_seq) == (1, 1, 3)


def test_a_repeated_scan_is_counted_as_duplicated_not_received_twice():
    tracker = DeliveryTracker()
    see(tracker, 1, "a")
    assert not see(tracker, 1, "a").new
    assert tracker.tally(scans("a")) == Tally(expected=1, received=1, duplicated=1)


def test_a_scan_that_arrives_after_a_later_one_is_received_but_out_of_order():
    tracker = DeliveryTracker(resume=False)
    see(tracker, 1, "a")
    see(tracker, 3, "c")  # 2 was skipped: a gap
    assert see(tracker, 2, "b").new  # and then it arrived after 3
    tally = tracker.tally(scans("abc"))
    assert (tally.received, tally.lost, tally.out_of_order, tally.gaps, tally.missing_seqs) == (3, 0, 1, 1, 1)


def test_a_scan_skipped_by_a_later_one_is_lost():
    tracker = DeliveryTracker(resume=False)
    see(tracker, 1, "a")
    see(tracker, 4, "d")
    tally = tracker.tally(scans("abcd"))
    assert (tally.expected, tally.received, tally.lost, tally.late) == (4, 2, 2, 0)
    assert (tally.gaps, tally.missing_seqs) == (1, 2)


def test_a_scan_missing_after_the_last_one_received_is_late_not_lost():
    tracker = DeliveryTracker()
    see(tracker, 1, "a")
    see(tracker, 2, "b")
    assert tracker.tally(scans("abcd")) == Tally(expected=4, received=2, late=2)
    assert DeliveryTracker().tally(scans("ab")) == Tally(expected=2, late=2)


def test_received_scans_that_were_not_expected_do_not_hide_losses():
    tracker = DeliveryTracker()
    see(tracker, 1, "a")
    see(tracker, 2, "c")
    see(tracker, 3, "z")  # not one of the scans this client should have had
    tally = tracker.tally(scans("abc"))
    assert (tally.received, tally.lost) == (2, 1)


def test_a_gap_asks_to_resume_from_the_last_seq_and_waits_for_the_replay():
    tracker = DeliveryTracker(resume=True, resume_timeout=2)
    see(tracker, 1, "a", now=0)
    observation = see(tracker, 4, "d", now=0.1)
    assert observation.resume_from == 1
    assert not observation.new
    # Live events past the gap wait for the replay too; no second resume is asked for.
    assert see(tracker, 5, "e", now=0.2).resume_from is None
    # The replay: 2..5 in order, nothing counted twice.
    replay = [(2, "b"), (3, "c"), (4, "d"), (5, "e")]
    assert [see(tracker, seq, scan, now=0.3).new for seq, scan in replay] == [True] * 4
    assert not tracker.resuming
    tally = tracker.tally(scans("abcde"))
    assert (tally.received, tally.lost, tally.duplicated, tally.out_of_order) == (5, 0, 0, 0)
    assert (tally.gaps, tally.missing_seqs, tally.resumes) == (1, 2, 1)


def test_a_replay_that_does_not_come_is_asked_for_again():
    tracker = DeliveryTracker(resume=True, resume_timeout=1)
    see(tracker, 1, "a", now=0)
    assert see(tracker, 3, "c", now=0).resume_from == 1
    assert see(tracker, 4, "d", now=0.5).resume_from is None
    assert see(tracker, 5, "e", now=1.5).resume_from == 1
    assert (tracker.gaps, tracker.resumes) == (1, 2)
    # Nothing after "a" was taken while waiting: the rest is late, not lost.
    assert tracker.tally(scans("abcde")) == Tally(
        expected=5, received=1, late=4, gaps=1, missing_seqs=1, resumes=2
    )


def test_a_snapshot_answers_a_resume_with_the_room_state():
    tracker = DeliveryTracker()
    see(tracker, 1, "a", now=0)
    see(tracker, 9, "i", now=0)
    assert tracker.observe_snapshot(9, scans("abi")) == {"b", "i"}
    assert see(tracker, 10, "j").new
    assert tracker.tally(scans("abij")).lost == 0


def test_events_without_seq_are_ordered_by_the_publishers_order():
    tracker = DeliveryTracker()
    for scan_id in "acbb":
        see(tracker, None, scan_id)
    assert (tracker.out_of_order, tracker.duplicated) == (1, 1)


def test_other_events_only_move_the_seq():
    tracker = DeliveryTracker(resume=False)
    see(tracker, 1, "a")
    assert not see(tracker, 2).new  # someone else's scan_removed
    see(tracker, 3, "c")
    assert tracker.gaps == 0


def test_tallies_add_up():
    total = Tally(expected=1, received=1).add(Tally(expected=2, lost=2, gaps=1))
    assert total == Tally(expected=3, received=1, lost=2, gaps=1)
