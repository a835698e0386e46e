"""Open periods' scorecards held in memory, what GetScorecard and ListScorecards
answer callers who may read every scorecard (HR, programme leads, the person
themselves) without a query.

A period is loaded when first asked for, in the background (until then, and
for closed periods, managers' reads and anything the board cannot hold, reads
are computed from the database as before), then kept current by following
`scorecard_changes` (`app/changes.py`) with the same queries a read from the
database runs: the credits of newly accepted events are added (credits never
change, so a batch costs what it adds, not each person's whole month); the
people whose eligibility changed are counted again; a change for `everyone`
(a scheme published, a period closed, the unit tree) drops the held periods,
which load again on the next read. A person's scorecard is built when first
read after a change, or ahead of that once no change has come for a second
(a slice each poll, so the replica stays responsive).

Freshness: a change committed through this replica is seen by the next read
(the commit marks the board stale and the read catches up first); changes
through other replicas within `poll_seconds` (100 ms) plus the time to
recompute the people they name. A board that has not caught up for
`stale_seconds` (the database is unreachable) is not used. After a restart
the board starts empty and loads from the database, so it is never behind.
Sequence numbers may commit out of order on PostgreSQL, so numbers skipped
below the highest seen are looked at again until they appear or
`gap_seconds` pass, as the roles service's decision view does.

Memory: at most `max_periods` periods (least recently read dropped first),
each of at most `max_credits` counted credits (a larger one is read from the
database).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.incentives.app.counting import contributions, counting_in
from services.incentives.app.directory import SchemeState, load_directory, load_scheme
from services.incentives.app.scorecards import ScorecardView, open_card
from services.incentives.domain.periods import Period
from services.incentives.domain.scoring import Contribution
from services.incentives.store.tables import CreditRow, ScorecardChangeRow
from services.platform.db import Database, utcnow
from services.platform.following import Follower
from services.platform.log import get_logger

log = get_logger(__name__)

Key = tuple[str, str]  # (scheme id, period id)
CHUNK = 5000  # people recomputed per query (drivers cap a query's parameters)
PRUNE_EVERY_SECONDS = 60.0
# When no change has come for this long, views are built ahead of reads (~0.07 ms each) by a
# task of their own, WARM_CHUNK at a time between turns of reads and catch-ups: a read waits a
# millisecond or two at most (300 a poll held reads up to 30 ms) and the board is soon warm.
# While changes come in a stream (gaps under STREAM_GAP_SECONDS), quiet means twice the last
# gap as well: each batch would drop views built between batches (an overloaded consumer's
# batches come seconds apart, and building them cost as much as applying them).
QUIET_SECONDS = 1.0
STREAM_GAP_SECONDS = 10.0
WARM_CHUNK = 20


@dataclass
class _Period:
    """A held period: each person's counted contributions by event id, and
    who has a scorecard; a person's view is built when first read after a
    change, so a change costs only what it adds."""

    scheme: SchemeState
    period: Period
    conditions: list[Any]
    event_conditions: list[Any]  # the same, for a query naming events (`counting_in`'s by_event)
    counted: dict[str, dict[str, Contribution]]
    members: set[str]  # people with a scorecard: counted events, or taking part
    size: int = 0  # counted credits held
    unbuilt: set[str] = field(default_factory=set)  # people whose view a change dropped (or never built)
    views: dict[str, ScorecardView] = field(default_factory=dict)
    order: list[str] | None = None  # members sorted, for pages; None when it must be sorted again

    def add(self, found: dict[str, list[Contribution]]) -> None:
        for person, listed in found.items():
            known = self.counted.setdefault(person, {})
            before = len(known)
            known.update((c.event_id, c) for c in listed)
            self.size += len(known) - before
            self.views.pop(person, None)
            self.unbuilt.add(person)
            if person not in self.members:
                self.members.add(person)
                self.order = None

    def replace(self, person: str, listed: list[Contribution], member: bool) -> None:
        self.size -= len(self.counted.get(person, {}))
        self.counted[person] = {c.event_id: c for c in listed}
        self.size += len(self.counted[person])
        self.views.pop(person, None)
        self.unbuilt.add(person)
        if member != (person in self.members):
            self.members.symmetric_difference_update({person})
            self.order = None

    def view(self, person: str) -> ScorecardView:
        found = self.views.get(person)
        if found is None:
            found = open_card(self.scheme, self.period, person, self.counted.get(person, {}).values())
            if person in self.members:
                self.views[person] = found
            self.unbuilt.discard(person)
        return found

    def warm(self, limit: int, prepare: Callable[[ScorecardView], object]) -> None:
        """Builds up to `limit` views a change left to build, ahead of their reads."""
        while self.unbuilt and limit > 0:
            person = self.unbuilt.pop()
            if person in self.members:
                prepare(self.view(person))
                limit -= 1

    def sorted_members(self) -> list[str]:
        if self.order is None:
            self.order = sorted(self.members)
        return self.order


class ScorecardBoard:
    def __init__(
        self,
        db: Database,
        *,
        poll_seconds: float = 0.1,
        gap_seconds: float = 10.0,
        stale_seconds: float = 5.0,
        retention_seconds: float = 3600.0,
        max_periods: int = 4,
        max_credits: int = 200_000,
    ):
        self.db = db
        self.poll_seconds = poll_seconds
        self.gap_seconds = gap_seconds
        self.stale_seconds = stale_seconds
        self.retention_seconds = retention_seconds
        self.max_periods = max_periods
        self.max_credits = max_credits
        self._held: OrderedDict[Key, _Period] = OrderedDict()
        self._loading: dict[Key, asyncio.Task[None]] = {}
        self._refused: dict[Key, float] = {}  # not held (closed, too large, failed) until this monotonic time
        self._seq: int | None = None  # the last change applied; None until the first catch-up
        self._gaps: dict[int, float] = {}  # skipped sequence number -> first seen missing
        self._synced = 0.0  # monotonic time of the last catch-up that succeeded
        self._changed = 0.0  # monotonic time of the last change applied
        self._gap = 0.0  # seconds between changes applied in a stream (recent gaps weigh most)
        self._pruned = 0.0
        # Commits seen by this process, and how many of them the board has applied.
        self._commits = 0
        self._applied = -1
        self._lock = asyncio.Lock()
        self._follower = Follower("scorecard_board", self._step, poll_seconds)
        # What the API does with a view before answering (its message, kept on the view), done ahead too.
        self.prepare: Callable[[ScorecardView], object] = lambda _view: None
        self._warming: asyncio.Task[None] | None = None
        db.after_commit.append(self.mark_stale)

    def mark_stale(self) -> None:
        """Called after every commit of this process that may move a scorecard."""
        self._commits += 1

    def start(self) -> None:
        self._follower.start()

    async def stop(self) -> None:
        await self._follower.stop()
        if self._warming is not None:
            self._warming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._warming
        tasks = list(self._loading.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _step(self) -> None:
        await self.catch_up()
        idle = self._warming is None or self._warming.done()
        if idle and self._quiet() and any(h.unbuilt for h in self._held.values()):
            self._warming = asyncio.create_task(self._warm(), name="scorecard-board-warm")
        if time.monotonic() - self._pruned > PRUNE_EVERY_SECONDS:
            await self._prune()

    def _quiet(self) -> bool:
        return time.monotonic() - self._changed > max(QUIET_SECONDS, 2 * self._gap)

    async def _warm(self) -> None:
        """Builds the views changes left to build, a chunk at a time, until none is
        left or changes come again (a catch-up between chunks may drop or add some)."""
        while self._quiet():
            held = next((h for h in self._held.values() if h.unbuilt), None)
            if held is None:
                return
            held.warm(WARM_CHUNK, self.prepare)
            await asyncio.sleep(0)  # reads and catch-ups waiting go first

    # ---- reading -------------------------------------------------------------------

    def holds(self, scheme_id: str, period_id: str) -> bool:
        return (scheme_id, period_id) in self._held

    async def card(self, scheme_id: str, period_id: str, person_id: str) -> ScorecardView | None:
        """The person's open scorecard, or None when the board does not hold the period."""
        held = await self._period((scheme_id, period_id))
        if held is None:
            return None
        # No counted event and not taking part: a scorecard of zero, as the database path gives.
        return held.view(person_id)

    async def page(
        self, scheme_id: str, period_id: str, size: int, after: str | None, readable: set[str] | None = None
    ) -> list[ScorecardView] | None:
        """A page of the period's scorecards (of the `readable` people; None:
        everyone's), or None when the board does not hold the period."""
        held = await self._period((scheme_id, period_id))
        if held is None:
            return None
        people = held.sorted_members()
        start = 0 if after is None else bisect.bisect_right(people, after)
        if readable is not None:
            return [held.view(p) for p in itertools.islice((p for p in people[start:] if p in readable), size)]
        return [held.view(p) for p in people[start : start + size]]

    async def _period(self, key: Key) -> _Period | None:
        if key not in self._held:
            self._want(key)
            return None
        if self._applied < self._commits:
            try:
                await self.catch_up(self._commits)
            except Exception:  # the database is unreachable: the caller's own path says so
                return None
        if time.monotonic() - self._synced > self.stale_seconds:
            return None
        held = self._held.get(key)  # a catch-up may have dropped it
        if held is not None:
            self._held.move_to_end(key)
        return held

    # ---- following -----------------------------------------------------------------

    async def catch_up(self, wanted: int | None = None) -> None:
        """Applies the changes committed since the last catch-up; `wanted` skips
        the work if a catch-up that began after that many commits has finished."""
        async with self._lock:
            if wanted is not None and self._applied >= wanted:
                return
            covers = self._commits  # every commit counted here is visible to the reads below
            if self._synced and time.monotonic() - self._synced > self.retention_seconds / 2:
                # Unreachable for so long that changes may have been pruned unseen: start again.
                self._held.clear()
                self._seq = None
            async with self.db.read() as s:
                if self._seq is None:
                    last = select(sa.func.coalesce(sa.func.max(ScorecardChangeRow.seq), 0))
                    self._seq = int((await s.exec(last)).one() or 0)
                else:
                    await self._apply_changes(s, self._seq)
            self._applied = max(self._applied, covers)
            self._synced = time.monotonic()

    async def _apply_changes(self, s: AsyncSession, cursor: int) -> None:
        now = time.monotonic()
        gaps = {seq: seen for seq, seen in self._gaps.items() if now - seen < self.gap_seconds}
        c = ScorecardChangeRow
        query = select(c.seq, c.people, c.events, c.everyone).where(
            or_(col(c.seq) > cursor, col(c.seq).in_(list(gaps)))
        )
        rows = (await s.exec(query.order_by(col(c.seq)))).all()
        last, everyone = cursor, False
        people: set[str] = set()
        events: set[str] = set()
        for row_seq, named, accepted, for_everyone in rows:
            seq = int(row_seq or 0)
            if seq > last:
                for missing in range(last + 1, seq):
                    gaps.setdefault(missing, now)
                last = seq
            gaps.pop(seq, None)
            everyone = everyone or bool(for_everyone)
            people.update(named)
            events.update(accepted)
        if rows:
            gap = now - self._changed  # halving: a slow spell is forgotten after a few quick gaps
            self._gap, self._changed = (max(gap, self._gap / 2) if gap < STREAM_GAP_SECONDS else 0.0), now
        if everyone:
            self._held.clear()
            self._refused.clear()
        else:
            for key, held in list(self._held.items()):
                await self._add_events(s, held, sorted(events))
                await self._recount(s, held, sorted(people))
                if held.size > self.max_credits:  # grown too large: read from the database from now on
                    del self._held[key]
                    self._refused[key] = time.monotonic() + 60.0
        # Only now: a catch-up that fails (database gone, call cancelled) is retried in full.
        self._seq, self._gaps = last, gaps

    async def _add_events(self, s: AsyncSession, held: _Period, events: list[str]) -> None:
        """Credits never change: an accepted event's credits only add to what counts."""
        _, content = held.scheme.version_for(held.period)
        for start in range(0, len(events), CHUNK):
            part = events[start : start + CHUNK]
            held.add(await contributions(s, content, held.period, held.event_conditions, None, part))

    async def _recount(self, s: AsyncSession, held: _Period, people: list[str]) -> None:
        """What counts for these people changed (roles held, taking part): count them again."""
        _, content = held.scheme.version_for(held.period)
        for start in range(0, len(people), CHUNK):
            part = people[start : start + CHUNK]
            directory = await load_directory(s, part)
            found = await contributions(s, content, held.period, held.conditions, part)
            for person in part:
                listed = found.get(person, [])
                held.replace(person, listed, bool(listed) or directory.took_part_in(content, person, held.period))

    async def _prune(self) -> None:
        """Forgets changes every replica has long applied (any replica may do it)."""
        self._pruned = time.monotonic()
        cutoff = utcnow() - timedelta(seconds=self.retention_seconds)
        async with self.db.write() as uow:
            await uow.session.execute(sa.delete(ScorecardChangeRow).where(col(ScorecardChangeRow.change_time) < cutoff))

    # ---- loading -------------------------------------------------------------------

    def _want(self, key: Key) -> None:
        now = time.monotonic()
        if key in self._loading or self._refused.get(key, 0.0) > now:
            return
        if len(self._refused) > 1000:  # keys come from callers: keep only those still refused
            self._refused = {k: until for k, until in self._refused.items() if until > now}
        task = asyncio.create_task(self._load(key), name=f"scorecard-board-load-{key[0]}-{key[1]}")
        self._loading[key] = task
        task.add_done_callback(lambda _: self._loading.pop(key, None))

    async def _load(self, key: Key) -> None:
        started = time.monotonic()
        try:
            async with self._lock:  # no catch-up meanwhile: the load reflects every change up to the cursor
                if self._seq is None:
                    return  # not following yet: the next read asks again
                async with self.db.read() as s:
                    held = await self._compute(s, key)
                if held is None:
                    self._refused[key] = time.monotonic() + 60.0
                    return
                self._held[key] = held
                while len(self._held) > self.max_periods:
                    self._held.popitem(last=False)
        except Exception as exc:  # an unknown scheme or period, no version in force, the database down
            self._refused[key] = time.monotonic() + 5.0
            log.info("scorecard_board.not_loaded", scheme=key[0], period=key[1], reason=str(exc) or type(exc).__name__)
            return
        log.info(
            "scorecard_board.loaded",
            scheme=key[0],
            period=key[1],
            scorecards=len(held.members),
            seconds=round(time.monotonic() - started, 3),
        )

    async def _compute(self, s: AsyncSession, key: Key) -> _Period | None:
        scheme_id, period_id = key
        scheme = await load_scheme(s, scheme_id)
        if period_id in scheme.closed:
            return None  # frozen in the database
        period = scheme.period(period_id)
        _, content = scheme.version_for(period)
        directory = await load_directory(s)
        conditions = counting_in(content, period, directory.units, scheme.close_times())
        by_event = counting_in(content, period, directory.units, scheme.close_times(), by_event=True)
        counted = (await s.exec(select(sa.func.count()).select_from(CreditRow).where(*conditions))).one()
        if int(counted) > self.max_credits:
            return None
        found = await contributions(s, content, period, conditions, None)
        members = set(found) | {p for p in directory.people if directory.took_part_in(content, p, period)}
        counted_by_event = {p: {c.event_id: c for c in listed} for p, listed in found.items()}
        size = sum(len(c) for c in counted_by_event.values())
        return _Period(scheme, period, conditions, by_event, counted_by_event, members, size, unbuilt=set(members))
