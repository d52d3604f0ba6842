"""The one delivery tracker: which of a room's broadcasts a client got, in what order, with what gaps.

Pure logic, no I/O: the client feeds it every broadcast and acts on what it answers (a resume).
The load test's clients and the end-to-end tests' phones (tests/e2e/test_faults.py) use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Observation:
    """What the client should do about one broadcast."""

    new: bool = False  # the first receipt of one of our scans: count it and time it
    resume_from: int | None = None  # ask the server to replay every event after this seq


@dataclass
class Tally:
    """A client's (or a sum of clients') delivery counts for the report."""

    expected: int = 0
    received: int = 0
    lost: int = 0  # missing, though a scan published after it arrived
    late: int = 0  # missing, and nothing published after it arrived: still in flight, unverified
    duplicated: int = 0
    out_of_order: int = 0
    gaps: int = 0
    missing_seqs: int = 0
    resumes: int = 0

    def add(self, other: Tally) -> Tally:
        for field in fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))
        return self

    def as_dict(self) -> dict[str, int]:
        return {field.name: getattr(self, field.name) for field in fields(self)}


class DeliveryTracker:
    """Check that broadcasts arrive once each, in seq order, without gaps.

    Events are accepted strictly in seq order. On a gap the tracker asks for one resume and
    ignores later events until the replay fills the gap (the replay brings them again); a
    replay that does not come within `resume_timeout` is asked for once more on the next event.
    Without `resume`, a gap is counted and skipped.

    `order` is the publisher's order of one of our scans; the highest order received (the
    horizon) tells a scan that was skipped (lost) from one that has not arrived yet (late).
    """

    def __init__(self, *, resume: bool = True, resume_timeout: float = 2.0, start: int | None = None):
        self.resume = resume
        self.resume_timeout = resume_timeout
        self.received: set[str] = set()
        # The seq the client already holds (a page that joins with ?since=start); None: the first seen.
        self.last_seq: int | None = start
        self.duplicated = 0
        self.out_of_order = 0
        self.gaps = 0
        self.missing_seqs = 0
        self.resumes = 0
        self._resume_target: int | None = None
        self._resume_deadline = 0.0
        self.horizon = -1

    @property
    def resuming(self) -> bool:
        return self._resume_target is not None

    def observe(
        self, seq: int | None, scan_id: str | None = None, *, order: int | None = None, now: float = 0.0
    ) -> Observation:
        """Note one broadcast; `scan_id` only for our own scans, `order` its publish order."""
        if seq is None:
            return self._without_seq(scan_id, order)
        if self.last_seq is None or seq == self.last_seq + 1:
            self.last_seq = seq
            if self._resume_target is not None and seq >= self._resume_target:
                self._resume_target = None
            return Observation(new=self._receive(scan_id, order))
        if seq <= self.last_seq:
            return self._late(scan_id, order)
        missing = seq - self.last_seq - 1
        if not self.resume:
            self.gaps += 1
            self.missing_seqs += missing
            self.last_seq = seq
            return Observation(new=self._receive(scan_id, order))
        if self._resume_target is not None and now < self._resume_deadline:
            return Observation()  # the replay we asked for brings this event too
        if self._resume_target is None:
            self.gaps += 1
            self.missing_seqs += missing
        self._resume_target = seq
        self._resume_deadline = now + self.resume_timeout
        self.resumes += 1
        return Observation(resume_from=self.last_seq)

    def observe_snapshot(self, seq: int, scans: Mapping[str, int]) -> set[str]:
        """The server answered a resume with the room's state (our scan ids and their orders)."""
        recovered = set(scans) - self.received
        for scan_id in recovered:
            self._receive(scan_id, scans[scan_id])
        self.last_seq = seq
        self._resume_target = None
        return recovered

    def tally(self, expected: Mapping[str, int]) -> Tally:
        """Count against the scans this client should have had (scan id -> publish order)."""
        missing = [order for scan_id, order in expected.items() if scan_id not in self.received]
        lost = sum(1 for order in missing if order < self.horizon)
        return Tally(
            expected=len(expected),
            received=len(expected) - len(missing),
            lost=lost,
            late=len(missing) - lost,
            duplicated=self.duplicated,
            out_of_order=self.out_of_order,
            gaps=self.gaps,
            missing_seqs=self.missing_seqs,
            resumes=self.resumes,
        )

    def _receive(self, scan_id: str | None, order: int | None) -> bool:
        if scan_id is None:
            return False
        if scan_id in self.received:
            self.duplicated += 1
            return False
        self.received.add(scan_id)
        if order is not None:
            self.horizon = max(self.horizon, order)
        return True

    def _late(self, scan_id: str | None, order: int | None) -> Observation:
        """An event at or below the last seq: a repeat, or one that arrived after a later one."""
        if scan_id is None:
            return Observation()
        if scan_id in self.received:
            self.duplicated += 1
            return Observation()
        self.out_of_order += 1
        return Observation(new=self._receive(scan_id, order))

    def _without_seq(self, scan_id: str | None, order: int | None) -> Observation:
        """A server that numbers nothing: judge order by the publisher's order instead."""
        if scan_id is None:
            return Observation()
        if scan_id in self.received:
            self.duplicated += 1
            return Observation()
        if order is not None and order < self.horizon:
            self.out_of_order += 1
        return Observation(new=self._receive(scan_id, order))
