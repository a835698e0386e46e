"""Open scorecards served from each replica's memory (the scorecard board):
the same answers as the database, a replica's own writes seen at once,
other replicas' within the poll interval, and periods dropped when a close
or a new version changes what counts."""

from engage.incentives.v1 import awards_pb2, schemes_pb2, scorecards_pb2
from google.protobuf.field_mask_pb2 import FieldMask

from tests.integration.incentives.conftest import (
    IncentivesClient,
    collaboration_scheme,
    create_and_publish,
    event,
    start_incentives,
    ts,
)
from tests.support.waiting import eventually

PERIOD = "2025-01"


async def _card(inc: IncentivesClient, person: str, period: str = PERIOD) -> scorecards_pb2.Scorecard:
    return await inc.scorecards.GetScorecard(
        scorecards_pb2.GetScorecardRequest(name=f"schemes/collab/periods/{period}/scorecards/{person}"),
        metadata=inc.admin,
        timeout=5,
    )


async def _all(inc: IncentivesClient, period: str = PERIOD, as_person: str = "") -> list[scorecards_pb2.Scorecard]:
    """Every scorecard of the period the caller reads (HR, or `as_person`),
    two to a page, without the time each was computed."""
    cards, token = [], ""
    while True:
        page = await inc.scorecards.ListScorecards(
            scorecards_pb2.ListScorecardsRequest(
                parent=f"schemes/collab/periods/{period}", page_size=2, page_token=token
            ),
            metadata=inc.as_person(as_person) if as_person else inc.admin,
            timeout=5,
        )
        cards.extend(page.scorecards)
        if not (token := page.next_page_token):
            break
    for card in cards:
        card.ClearField("compute_time")
    return cards


async def _held(inc: IncentivesClient, period: str = PERIOD) -> None:
    """Asks for the period and waits until the replica's board holds it."""
    board = inc.app.board
    assert board is not None

    async def holds() -> bool:
        await _card(inc, "A1", period)  # the first read of a period has the board load it
        return board.holds("collab", period)

    await eventually(holds, bool, 10, f"the board holding {period}")


async def test_a_replica_reads_its_own_writes_from_memory_at_once(world):
    inc = world.inc
    await create_and_publish(inc, collaboration_scheme())
    await _held(inc)
    for i in range(4):
        await inc.record(event(f"c{i}", "case-solved-cross-department", ["A1"], ts(2025, 1, 6 + i)))
        card = await _card(inc, "A1")
        assert [c.behaviour_event for c in card.lines[0].contributions] == [
            f"behaviourEvents/c{j}" for j in range(i + 1)
        ]
    assert inc.app.board is not None and inc.app.board.holds("collab", PERIOD)


async def test_other_replicas_follow_and_answer_as_the_database_does(world):
    inc = world.inc
    await create_and_publish(inc, collaboration_scheme())
    url = inc.app.db.url
    other = await start_incentives(url, inc.nats, inc.mint)
    plain = await start_incentives(url, inc.nats, inc.mint, scorecard_board_periods=0)  # reads the database
    try:
        await _held(other)
        await inc.record(
            event("c1", "case-solved-cross-department", ["A1", "S1"], ts(2025, 1, 6)),
            event("c2", "case-solved-cross-department", {"A2": 0.75, "TL-S": 0.25}, ts(2025, 1, 9)),
            event("s1", "customer-satisfaction-score", ["A1"], ts(2025, 1, 7), value=5),
            event("s2", "customer-satisfaction-score", ["S2"], ts(2025, 1, 8), value=3),
            event("nobody", "case-solved-cross-department", ["NOBODY"], ts(2025, 1, 8)),  # parked
            event("feb", "case-solved-cross-department", ["A1"], ts(2025, 2, 3)),  # another period
        )
        expected = await _all(plain)
        assert {c.person for c in expected if c.lines[0].contributions} == {
            "people/A1", "people/S1", "people/A2", "people/TL-S"
        }  # fmt: skip
        await eventually(lambda: _all(other), lambda got: got == expected, 5, "the other replica's board caught up")
        team = await _all(plain, as_person="TL-N")  # a team lead: their team's and their own
        assert "people/A1" in {c.person for c in team} and "people/S1" not in {c.person for c in team}
        assert await _all(other, as_person="TL-N") == team
        assert other.app.board is not None and other.app.board.holds("collab", PERIOD)
        # Someone with no counted event: a scorecard of zero, as from the database.
        zero, from_db = await _card(other, "CEO"), await _card(plain, "CEO")
        zero.ClearField("compute_time")
        from_db.ClearField("compute_time")
        assert zero == from_db and zero.attainment == 0

        # A new version from March changes what March counts: the boards drop their periods and load again.
        await inc.record(event("mar", "case-solved-cross-department", ["A1"], ts(2025, 3, 6)))
        await _held(other, "2025-03")
        assert (await _card(other, "A1", "2025-03")).lines[0].attainment == 0.5  # target 2
        draft = await inc.schemes.GetScheme(schemes_pb2.GetSchemeRequest(name="schemes/collab"), metadata=inc.admin)
        draft.measures[0].target = 1
        draft = await inc.schemes.UpdateScheme(
            schemes_pb2.UpdateSchemeRequest(scheme=draft, update_mask=FieldMask(paths=["measures"])),
            metadata=inc.admin,
        )
        await inc.schemes.PublishScheme(
            schemes_pb2.PublishSchemeRequest(name="schemes/collab", effective_from="2025-03-01", etag=draft.etag),
            metadata=inc.admin,
        )
        march = await eventually(
            lambda: _card(other, "A1", "2025-03"), lambda c: c.scheme_version == 2, 5, "version 2 on the other replica"
        )
        assert march.lines[0].attainment == 1.0

        # A close freezes January; an event accepted after it counts, late, in February, on every replica.
        await _held(other, "2025-02")
        open_january = await _card(other, "A1")
        await inc.awards.ClosePeriod(
            awards_pb2.ClosePeriodRequest(name="schemes/collab/periods/2025-01"), metadata=inc.admin, timeout=10
        )
        await inc.record(event("late", "case-solved-cross-department", ["A1"], ts(2025, 1, 20)))
        feb = await eventually(
            lambda: _card(other, "A1", "2025-02"),
            lambda c: len(c.lines[0].contributions) == 2,
            5,
            "the late event in February on the other replica",
        )
        assert [(c.behaviour_event, c.late_from_period) for c in feb.lines[0].contributions] == [
            ("behaviourEvents/late", "2025-01"),
            ("behaviourEvents/feb", ""),
        ]
        final_january = await _card(other, "A1")
        assert final_january.state == scorecards_pb2.Scorecard.STATE_FINAL
        assert list(final_january.lines) == list(open_january.lines)  # held in memory, then frozen: the same
    finally:
        for replica in (other, plain):
            await replica.channel.close(None)
            await replica.app.stop()


async def test_a_period_grown_past_the_bound_is_read_from_the_database(world):
    inc = world.inc
    await create_and_publish(inc, collaboration_scheme())
    small = await start_incentives(inc.app.db.url, inc.nats, inc.mint, scorecard_board_max_credits=2)
    try:
        await _held(small)
        await inc.record(
            *(event(f"c{i}", "case-solved-cross-department", ["A1"], ts(2025, 1, 6 + i)) for i in range(3))
        )
        await eventually(
            lambda: _card(small, "A1"), lambda c: len(c.lines[0].contributions) == 3, 5, "the three events counted"
        )
        assert small.app.board is not None and not small.app.board.holds("collab", PERIOD)
        await _card(small, "A2")  # asks again: still too large to hold
        assert not small.app.board.holds("collab", PERIOD)
    finally:
        await small.channel.close(None)
        await small.app.stop()
