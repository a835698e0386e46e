"""Schemes, scorecards that explain themselves, period close, awards and simulation."""

import grpc
import pytest
from engage.incentives.v1 import awards_pb2, events_pb2, schemes_pb2, scorecards_pb2
from engage.roles.v1 import assignments_pb2
from google.protobuf.field_mask_pb2 import FieldMask

from services.incentives.api.permissions import PERMISSIONS
from services.incentives.main import SERVICE_NAMES
from tests.integration.incentives.conftest import collaboration_scheme, create_and_publish, event, ts
from tests.support.events import published, wait_for_events
from tests.support.grpc_errors import call_error
from tests.support.waiting import eventually

Award = awards_pb2.Award


def test_every_rpc_declares_a_permission():
    from google.protobuf import descriptor_pool

    pool = descriptor_pool.Default()
    methods = {f"/{name}/{m.name}" for name in SERVICE_NAMES for m in pool.FindServiceByName(name).methods}
    assert methods == set(PERMISSIONS)


async def _scorecard(inc, period: str, person: str, metadata=None) -> scorecards_pb2.Scorecard:
    return await inc.scorecards.GetScorecard(
        scorecards_pb2.GetScorecardRequest(name=f"schemes/collab/periods/{period}/scorecards/{person}"),
        metadata=metadata or inc.admin,
        timeout=5,
    )


async def test_a_scorecard_explains_every_number_and_moves_with_each_event(world):
    inc = world.inc
    await create_and_publish(inc, collaboration_scheme())
    await inc.record(event("c1", "case-solved-cross-department", ["A1", "S1"], ts(2025, 1, 6)))
    card = await _scorecard(inc, "2025-01", "A1")
    cases, csat = card.lines
    assert card.state == scorecards_pb2.Scorecard.STATE_OPEN and card.scheme_version == 1
    assert cases.value == 0.5 and cases.attainment == 0.25  # half of a shared case, target 2
    assert [(c.behaviour_event, c.share) for c in cases.contributions] == [("behaviourEvents/c1", 0.5)]
    assert card.payout.money.units == 0  # 0.6 * 0.25 = 0.15 is below the 0.25 threshold

    # Out of order: a later case first, then an earlier one; both count, with the CSAT average.
    await inc.record(
        event("c3", "case-solved-cross-department", {"A1": 0.75, "TL-S": 0.25}, ts(2025, 1, 28)),
        event("c2", "case-solved-cross-department", ["A1"], ts(2025, 1, 3)),
        event("s1", "customer-satisfaction-score", ["A1"], ts(2025, 1, 7), value=5),
        event("s2", "customer-satisfaction-score", ["A1"], ts(2025, 1, 8), value=4),
        # 23:30 UTC on 31 January is February in Amsterdam: not in this period.
        event("feb", "case-solved-cross-department", ["A1"], ts(2025, 1, 31, 23, 30)),
    )
    card = await _scorecard(inc, "2025-01", "A1")
    cases, csat = card.lines
    assert [c.behaviour_event.split("/")[1] for c in cases.contributions] == ["c2", "c1", "c3"]
    assert cases.value == 2.25 and cases.attainment == 1.125 and cases.weighted_attainment == pytest.approx(0.675)
    assert csat.value == 4.5 and csat.attainment == 1.125
    assert card.attainment == pytest.approx(1.125)  # 0.675 + 0.45
    assert card.payout.money.currency_code == "EUR" and card.payout.money.units == 1250  # 1000 + 0.125 * 2 * 1000
    feb = await _scorecard(inc, "2025-02", "A1")
    assert [c.behaviour_event for c in feb.lines[0].contributions] == ["behaviourEvents/feb"]


async def test_eligibility_follows_who_held_the_role_when(world):
    inc, roles = world.inc, world.roles
    await create_and_publish(
        inc, collaboration_scheme(eligibility=schemes_pb2.Eligibility(roles=["roles/service-agent"]))
    )
    start = ts(2025, 1, 15)
    await roles.assignments.CreateAssignment(
        assignments_pb2.CreateAssignmentRequest(
            assignment=assignments_pb2.Assignment(
                person="people/S1", role="roles/service-agent", org_unit="orgUnits/SVC-1", valid_from=start
            )
        ),
        metadata=roles.admin,
        timeout=5,
    )
    await inc.wait_projected(9, assignments=1)
    await inc.record(
        event("before", "case-solved-cross-department", ["S1"], ts(2025, 1, 10)),
        event("after", "case-solved-cross-department", ["S1"], ts(2025, 1, 20)),
        event("other", "case-solved-cross-department", ["S2"], ts(2025, 1, 20)),
    )
    card = await _scorecard(inc, "2025-01", "S1")
    assert [c.behaviour_event for c in card.lines[0].contributions] == ["behaviourEvents/after"]
    listed = await inc.scorecards.ListScorecards(
        scorecards_pb2.ListScorecardsRequest(parent="schemes/collab/periods/2025-01"), metadata=inc.admin, timeout=5
    )
    assert [c.person for c in listed.scorecards] == ["people/S1"]  # S2 holds no eligible role


async def test_employees_see_their_own_scorecards_and_managers_their_teams(world):
    inc = world.inc
    await create_and_publish(inc, collaboration_scheme())
    await _scorecard(inc, "2025-01", "A1", inc.as_person("A1"))
    await _scorecard(inc, "2025-01", "A1", inc.as_person("TL-N"))
    await _scorecard(inc, "2025-01", "A1", inc.as_person("CEO"))
    err = await call_error(_scorecard(inc, "2025-01", "A1", inc.as_person("A2")), grpc.StatusCode.PERMISSION_DENIED)
    assert err.reason == "OUTSIDE_MANAGED_SCOPE"
    await call_error(_scorecard(inc, "2025-01", "A1", inc.as_person("TL-S")), grpc.StatusCode.PERMISSION_DENIED)


async def test_closing_a_period_proposes_awards_and_approval_publishes_them_for_payroll(world):
    inc = world.inc
    await create_and_publish(inc, collaboration_scheme())
    await inc.record(
        event("c1", "case-solved-cross-department", ["S1"], ts(2025, 1, 6)),
        event("c2", "case-solved-cross-department", ["S1"], ts(2025, 1, 7)),
        event("q1", "customer-satisfaction-score", ["S1"], ts(2025, 1, 7), value=4),
    )
    period = await inc.awards.ClosePeriod(
        awards_pb2.ClosePeriodRequest(name="schemes/collab/periods/2025-01"), metadata=inc.admin, timeout=10
    )
    assert (
        period.state == awards_pb2.Period.STATE_CLOSED and period.award_count == 9
    )  # no role required: everyone in the directory
    assert period.total_awarded.money.units == 1000 and not period.over_budget
    err = await call_error(
        inc.awards.ClosePeriod(
            awards_pb2.ClosePeriodRequest(name="schemes/collab/periods/2025-01"), metadata=inc.admin, timeout=10
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert err.reason == "PERIOD_CLOSED"
    err = await call_error(
        inc.awards.ClosePeriod(
            awards_pb2.ClosePeriodRequest(name="schemes/collab/periods/2099-01"), metadata=inc.admin, timeout=10
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert err.reason == "PERIOD_NOT_ENDED"
    await call_error(
        inc.awards.ClosePeriod(
            awards_pb2.ClosePeriodRequest(name="schemes/collab/periods/2025-13"), metadata=inc.admin, timeout=10
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )

    name = "schemes/collab/periods/2025-01/awards/S1"
    award = await inc.awards.GetAward(awards_pb2.GetAwardRequest(name=name), metadata=inc.admin, timeout=5)
    assert award.state == Award.STATE_PROPOSED and award.amount.money.units == 1000
    # Only the head of S1's unit (or above) decides, never S1 and never another team's lead.
    own = await call_error(
        inc.awards.ApproveAward(awards_pb2.ApproveAwardRequest(name=name), metadata=inc.as_person("S1"), timeout=5),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    other = await call_error(
        inc.awards.ApproveAward(awards_pb2.ApproveAwardRequest(name=name), metadata=inc.as_person("TL-N"), timeout=5),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert (own.reason, other.reason) == ("OWN_AWARD", "OUTSIDE_MANAGED_SCOPE")
    lead = inc.as_person("TL-S")
    no_reason = await call_error(
        inc.awards.AdjustAward(awards_pb2.AdjustAwardRequest(name=name, amount=award.amount), metadata=lead, timeout=5),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert no_reason.fields == ["reason"]
    adjusted = award.amount
    adjusted.money.units = 900
    award = await inc.awards.AdjustAward(
        awards_pb2.AdjustAwardRequest(name=name, amount=adjusted, reason="one case was reopened", etag=award.etag),
        metadata=lead,
        timeout=5,
    )
    assert award.amount.money.units == 900 and award.proposed_amount.money.units == 1000
    assert award.adjustments[0].reason == "one case was reopened" and award.adjustments[0].adjusted_by == "people/TL-S"
    stale = await call_error(
        inc.awards.ApproveAward(awards_pb2.ApproveAwardRequest(name=name, etag="stale"), metadata=lead, timeout=5),
        grpc.StatusCode.ABORTED,
    )
    assert stale.reason == "ETAG_MISMATCH"
    approved = await inc.awards.ApproveAward(
        awards_pb2.ApproveAwardRequest(name=name, etag=award.etag), metadata=lead, timeout=5
    )
    assert approved.state == Award.STATE_APPROVED and approved.approved_by == "people/TL-S"
    twice = await call_error(
        inc.awards.ApproveAward(awards_pb2.ApproveAwardRequest(name=name), metadata=inc.admin, timeout=5),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert twice.reason == "AWARD_APPROVED"

    events = await wait_for_events(
        inc.nats.url,
        lambda ev: any(e.type == "engage.incentives.v1.award.approved" for e in ev),
        what="award.approved",
    )
    approved_events = [e for e in events if e.type == "engage.incentives.v1.award.approved"]
    assert len(approved_events) == 1
    body = events_pb2.AwardEvent.FromString(approved_events[0].data)
    assert body.award.person == "people/S1" and body.award.amount.money.units == 900
    assert approved_events[0].authid == "people/TL-S" and approved_events[0].partitionkey == "people/S1"
    assert any(e.type == "engage.incentives.v1.period.closed" for e in events)


async def test_a_late_event_for_a_closed_period_becomes_an_adjustment_in_the_next(world):
    inc = world.inc
    await create_and_publish(inc, collaboration_scheme())
    await inc.record(event("on-time", "case-solved-cross-department", ["A1"], ts(2025, 1, 6)))
    await inc.awards.ClosePeriod(
        awards_pb2.ClosePeriodRequest(name="schemes/collab/periods/2025-01"), metadata=inc.admin, timeout=10
    )
    frozen = await _scorecard(inc, "2025-01", "A1")
    await inc.record(event("late", "case-solved-cross-department", ["A1"], ts(2025, 1, 9)))
    again = await _scorecard(inc, "2025-01", "A1")
    assert again == frozen and again.state == scorecards_pb2.Scorecard.STATE_FINAL
    assert [c.behaviour_event for c in again.lines[0].contributions] == ["behaviourEvents/on-time"]
    feb = await _scorecard(inc, "2025-02", "A1")
    late = feb.lines[0].contributions
    assert [(c.behaviour_event, c.late_from_period) for c in late] == [("behaviourEvents/late", "2025-01")]


async def test_a_new_version_applies_from_its_date_and_never_rewrites_a_closed_period(world):
    inc = world.inc
    v1 = await create_and_publish(inc, collaboration_scheme())
    await inc.record(
        event("jan", "case-solved-cross-department", ["A1"], ts(2025, 1, 6)),
        event("mar", "case-solved-cross-department", ["A1"], ts(2025, 3, 6)),
    )
    await inc.awards.ClosePeriod(
        awards_pb2.ClosePeriodRequest(name="schemes/collab/periods/2025-01"), metadata=inc.admin, timeout=10
    )
    draft = await inc.schemes.GetScheme(schemes_pb2.GetSchemeRequest(name="schemes/collab"), metadata=inc.admin)
    draft.measures[0].target = 1
    draft = await inc.schemes.UpdateScheme(
        schemes_pb2.UpdateSchemeRequest(scheme=draft, update_mask=FieldMask(paths=["measures"])), metadata=inc.admin
    )
    closed = await call_error(
        inc.schemes.PublishScheme(
            schemes_pb2.PublishSchemeRequest(name="schemes/collab", effective_from="2025-01-01"), metadata=inc.admin
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert closed.reason == "NOT_AFTER_LATEST_VERSION"
    mid_month = await call_error(
        inc.schemes.PublishScheme(
            schemes_pb2.PublishSchemeRequest(name="schemes/collab", effective_from="2025-03-15"), metadata=inc.admin
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert mid_month.fields == ["effective_from"]
    v2 = await inc.schemes.PublishScheme(
        schemes_pb2.PublishSchemeRequest(name="schemes/collab", effective_from="2025-03-01", etag=draft.etag),
        metadata=inc.admin,
    )
    assert v2.version == 2 and [v.effective_from for v in v2.versions] == ["2025-01-01", "2025-03-01"]
    old = await inc.schemes.GetScheme(schemes_pb2.GetSchemeRequest(name="schemes/collab@1"), metadata=inc.admin)
    assert old.measures[0].target == 2 and v1.version == 1
    jan, feb, mar = [await _scorecard(inc, p, "A1") for p in ("2025-01", "2025-02", "2025-03")]
    assert (jan.scheme_version, jan.lines[0].attainment) == (1, 0.5)  # settled under version 1, unchanged
    assert feb.scheme_version == 1
    assert (mar.scheme_version, mar.lines[0].attainment) == (2, 1.0)
    bad = await call_error(
        inc.schemes.CreateScheme(
            schemes_pb2.CreateSchemeRequest(
                scheme_id="broken",
                scheme=collaboration_scheme(
                    payout=schemes_pb2.PayoutCurve(
                        target_payout=100,
                        tiers=[
                            schemes_pb2.Tier(from_attainment=0, rate=1),
                            schemes_pb2.Tier(from_attainment=0, rate=2),
                        ],
                    )
                ),
            ),
            metadata=inc.admin,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert bad.fields == ["scheme.payout.tiers[1].from_attainment"]
    unbalanced = collaboration_scheme()
    unbalanced.measures[1].weight = 30
    bad = await call_error(
        inc.schemes.CreateScheme(
            schemes_pb2.CreateSchemeRequest(scheme_id="broken", scheme=unbalanced), metadata=inc.admin
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert bad.fields == ["scheme.measures"] and "90" in bad.message


async def test_a_draft_is_simulated_over_past_events_against_its_budget(world):
    inc = world.inc
    await inc.schemes.CreateScheme(
        schemes_pb2.CreateSchemeRequest(scheme_id="collab", scheme=collaboration_scheme(budget=1500)),
        metadata=inc.admin,
    )
    await inc.record(
        *(event(f"a{i}", "case-solved-cross-department", ["A1"], ts(2025, 1, 2 + i)) for i in range(2)),
        *(event(f"s{i}", "case-solved-cross-department", ["S1", "S2"], ts(2025, 1, 2 + i)) for i in range(4)),
    )
    result = await inc.schemes.SimulateScheme(
        schemes_pb2.SimulateSchemeRequest(name="schemes/collab", periods=["2025-01", "2025-02"]), metadata=inc.admin
    )
    jan, feb = result.periods
    payouts = {p.person: p.payout.money.units for p in jan.payouts}
    assert payouts == {"people/A1": 600, "people/S1": 600, "people/S2": 600}
    assert jan.total_payout.money.units == 1800 and jan.budget.money.units == 1500 and not jan.within_budget
    assert jan.paid_count == 3 and feb.participant_count == 0 and feb.within_budget
    # Nothing was published: a simulation changes nothing and no scorecard exists.
    await call_error(_scorecard(inc, "2025-01", "A1"), grpc.StatusCode.FAILED_PRECONDITION)
    await inc.settle()
    assert not [e for e in await published(inc.nats.url) if e.type.startswith("engage.incentives.v1.award")]


async def test_the_projection_keeps_the_newest_version_of_each_person(world):
    inc, roles = world.inc, world.roles
    from engage.roles.v1 import directory_pb2

    person = await roles.directory.GetPerson(directory_pb2.GetPersonRequest(name="people/A2"), metadata=roles.admin)
    for unit in ("SVC-1", "SALES-N"):
        person.org_unit = f"orgUnits/{unit}"
        person = await roles.directory.UpdatePerson(
            directory_pb2.UpdatePersonRequest(person=person, update_mask=FieldMask(paths=["org_unit"])),
            metadata=roles.admin,
        )

    async def a2() -> tuple[str, int]:
        from sqlmodel import select

        from services.incentives.store.tables import ProjectedPersonRow

        async with inc.app.db.read() as s:
            row = (await s.exec(select(ProjectedPersonRow).where(ProjectedPersonRow.id == "A2"))).one()
            return row.org_unit_id, row.sequence

    assert await eventually(a2, lambda r: r[1] == 3) == ("SALES-N", 3)


async def test_overlay_credit_and_caps_score_the_same_open_and_at_the_close(world):
    inc = world.inc
    await create_and_publish(inc, collaboration_scheme(credit_split=schemes_pb2.CREDIT_SPLIT_OVERLAY))
    await inc.record(
        *(event(f"team-{i}", "case-solved-cross-department", ["A1", "S1"], ts(2025, 1, 3 + i)) for i in range(5)),
        event("one", "case-solved-cross-department", ["S2"], ts(2025, 1, 9)),
    )
    a1 = await _scorecard(inc, "2025-01", "A1")
    cases = a1.lines[0]
    assert [c.share for c in cases.contributions] == [1.0] * 5  # overlay: full credit each
    # 5 cases on a target of 2 is 250%, capped at the measure's 200%: 0.6 x 2 = 1.2 overall,
    # paid 1,000 up to 1.0 and twice the rate above it: 1,400 EUR.
    assert (cases.value, cases.attainment) == (5.0, 2.0) and a1.attainment == pytest.approx(1.2)
    assert a1.payout.money.units == 1400
    open_cards = {
        c.person: (c.attainment, c.payout.money.units)
        for c in (
            await inc.scorecards.ListScorecards(
                scorecards_pb2.ListScorecardsRequest(parent="schemes/collab/periods/2025-01"), metadata=inc.admin
            )
        ).scorecards
    }
    await inc.awards.ClosePeriod(
        awards_pb2.ClosePeriodRequest(name="schemes/collab/periods/2025-01"), metadata=inc.admin
    )
    awards = await inc.awards.ListAwards(
        awards_pb2.ListAwardsRequest(parent="schemes/collab/periods/2025-01"), metadata=inc.admin
    )
    at_close = {a.person: (a.attainment, a.proposed_amount.money.units) for a in awards.awards}
    assert at_close == open_cards  # summed in the database at the close, from the events when read
    assert at_close["people/S1"] == (pytest.approx(1.2), 1400) and at_close["people/S2"][1] == 300  # 0.6 x 0.5
    frozen = await _scorecard(inc, "2025-01", "S1")
    assert frozen.state == scorecards_pb2.Scorecard.STATE_FINAL and len(frozen.lines[0].contributions) == 5
