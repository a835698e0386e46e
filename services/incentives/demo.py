"""Demo data for `make run`: a live scheme and a few months of behaviour history.

`python -m services.incentives.demo --roles 127.0.0.1:50051 --incentives 127.0.0.1:50053`

Reads the directory from the roles service (as any client would), then,
through the incentives API: creates and publishes the scheme
`collaboration-bonus` (monthly, Europe/Amsterdam, everyone in the company),
records about `--events-per-person` behaviour events per person and month for
the last `--months` months (deterministic ids, so a re-run records nothing
twice), and closes the months that have ended so their awards wait for
approval. Safe to run again.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
from engage.incentives.v1 import (
    awards_pb2,
    awards_pb2_grpc,
    behaviours_pb2,
    behaviours_pb2_grpc,
    schemes_pb2,
    schemes_pb2_grpc,
)
from engage.roles.v1 import directory_pb2, directory_pb2_grpc
from google.protobuf.timestamp_pb2 import Timestamp

from services.incentives.domain.model import Calendar, PeriodKind
from services.incentives.domain.periods import Period, next_period, period_containing
from services.platform.client import channel

SCHEME_ID = "collaboration-bonus"
ZONE = "Europe/Amsterdam"
CALENDAR = Calendar(PeriodKind.MONTH, ZONE)


def scheme() -> schemes_pb2.Scheme:
    def measure(mid: str, name: str, kinds: list[str], agg: int, weight: float, target: float) -> schemes_pb2.Measure:
        return schemes_pb2.Measure(
            id=mid,
            display_name=name,
            behaviour_types=[f"behaviourTypes/{k}" for k in kinds],
            aggregation=agg,  # type: ignore[arg-type]
            weight=weight,
            target=target,
            cap=2.0,
        )

    return schemes_pb2.Scheme(
        display_name="Collaboration bonus",
        description=(
            "Rewards what CRM needs and evaluation forms miss: solving cases with other departments, sharing "
            "knowledge that others reuse, serving other lines of business, and happy customers. Monthly; "
            "100% attainment pays 300 EUR, above target each point pays double, capped at 200%."
        ),
        calendar=schemes_pb2.Calendar(period_kind=schemes_pb2.PERIOD_KIND_MONTH, time_zone=ZONE),
        measures=[
            measure(
                "cross-department-cases",
                "Cases solved with another department",
                ["case-solved-cross-department"],
                schemes_pb2.AGGREGATION_COUNT,
                35,
                3,
            ),
            measure(
                "knowledge-shared",
                "Knowledge articles published or reused",
                ["knowledge-article-published", "knowledge-article-reused"],
                schemes_pb2.AGGREGATION_COUNT,
                20,
                2,
            ),
            measure(
                "internal-customers",
                "Referrals and requests for other lines of business",
                ["referral-to-other-line-of-business", "internal-request-served"],
                schemes_pb2.AGGREGATION_COUNT,
                15,
                2,
            ),
            measure(
                "departments-reached",
                "Departments reached",
                ["case-solved-cross-department", "cross-department-meeting"],
                schemes_pb2.AGGREGATION_DISTINCT_DEPARTMENTS,
                10,
                3,
            ),
            measure(
                "customer-satisfaction",
                "Average customer satisfaction (1-5)",
                ["customer-satisfaction-score"],
                schemes_pb2.AGGREGATION_AVERAGE,
                20,
                4.2,
            ),
        ],
        credit_split=schemes_pb2.CREDIT_SPLIT_SHARED,
        payout=schemes_pb2.PayoutCurve(
            currency_code="EUR",
            target_payout=300,
            threshold=0.4,
            tiers=[schemes_pb2.Tier(from_attainment=0, rate=1), schemes_pb2.Tier(from_attainment=1, rate=2)],
            cap_attainment=2,
            max_payout=900,
        ),
        budget=60000,
    )


@dataclass(frozen=True)
class Member:
    id: str
    unit: str
    lob: str


async def read_directory(roles: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...]) -> list[Member]:
    stub = directory_pb2_grpc.DirectoryServiceStub(roles)
    units: dict[str, directory_pb2.OrgUnit] = {}
    token = ""
    while True:
        page = await stub.ListOrgUnits(
            directory_pb2.ListOrgUnitsRequest(page_size=1000, page_token=token), metadata=metadata
        )
        units.update((u.name, u) for u in page.org_units)
        token = page.next_page_token
        if not token:
            break

    def lob_of(unit: str) -> str:
        seen = 0
        while unit and seen < 50:
            u = units.get(unit)
            if u is None:
                return ""
            if u.kind == directory_pb2.ORG_UNIT_KIND_LINE_OF_BUSINESS:
                return unit
            unit, seen = u.parent, seen + 1
        return ""

    members: list[Member] = []
    token = ""
    while True:
        people = await stub.ListPeople(
            directory_pb2.ListPeopleRequest(page_size=1000, page_token=token), metadata=metadata
        )
        members += [
            Member(p.name.split("/")[1], p.org_unit, lob_of(p.org_unit))
            for p in people.people
            if p.status == directory_pb2.PERSON_STATUS_ACTIVE
        ]
        token = people.next_page_token
        if not token:
            break
    return members


def history(
    members: list[Member], periods: list[Period], per_person: int, seed: int = 20
) -> list[behaviours_pb2.ObservedEvent]:
    """Deterministic behaviour events: same inputs, same ids and contents."""
    rng = random.Random(seed)
    events: list[behaviours_pb2.ObservedEvent] = []
    by_lob: dict[str, list[Member]] = {}
    for m in members:
        by_lob.setdefault(m.lob, []).append(m)
    lobs = [lob for lob in by_lob if lob]
    now = datetime.now(UTC)
    for period in periods:
        span = (min(period.end, now) - period.start).total_seconds()
        for m in members:
            for n in range(rng.randint(0, per_person * 2)):
                at = period.start + timedelta(seconds=rng.uniform(0, span))
                ts = Timestamp()
                ts.FromDatetime(at)
                kind = rng.choices(
                    [
                        "case-solved-cross-department",
                        "knowledge-article-published",
                        "knowledge-article-reused",
                        "referral-to-other-line-of-business",
                        "customer-satisfaction-score",
                        "cross-department-meeting",
                        "peer-recognition-given",
                    ],
                    weights=[30, 5, 8, 8, 35, 8, 6],
                )[0]
                credits = [behaviours_pb2.Credit(person=f"people/{m.id}")]
                o = behaviours_pb2.BehaviourObserved(
                    behaviour_type=f"behaviourTypes/{kind}", occurred_at=ts, source_system="demo-crm"
                )
                other_lobs = [lob for lob in lobs if lob != m.lob]
                if kind in ("case-solved-cross-department", "cross-department-meeting") and other_lobs:
                    partner = rng.choice(by_lob[rng.choice(other_lobs)])
                    credits.append(behaviours_pb2.Credit(person=f"people/{partner.id}"))
                    o.related_org_unit = partner.unit
                elif kind == "referral-to-other-line-of-business" and other_lobs and m.lob:
                    o.customer_line_of_business = rng.choice(other_lobs)
                    o.provider_line_of_business = m.lob
                elif kind == "customer-satisfaction-score":
                    o.value = rng.choices([2, 3, 4, 5], weights=[1, 2, 5, 4])[0]
                elif kind == "peer-recognition-given":
                    o.recipient = f"people/{rng.choice([x for x in members if x.id != m.id] or [m]).id}"
                o.credits.extend(credits)
                o.object_ref = f"demo/{period.id}/{m.id}/{n}"
                events.append(behaviours_pb2.ObservedEvent(id=f"demo-{period.id}-{m.id}-{n}", observation=o))
    return events


async def load(
    roles: grpc.aio.Channel,
    incentives: grpc.aio.Channel,
    metadata: tuple[tuple[str, str], ...] = (),
    months: int = 3,
    per_person: int = 3,
) -> dict[str, int]:
    """Loads the demo; returns counts of what was done."""
    started = time.perf_counter()
    members = await read_directory(roles, metadata)
    schemes = schemes_pb2_grpc.SchemeServiceStub(incentives)
    behaviours = behaviours_pb2_grpc.BehaviourServiceStub(incentives)
    awards = awards_pb2_grpc.AwardServiceStub(incentives)
    first = period_containing(datetime.now(UTC), CALENDAR)
    for _ in range(months):
        first = period_containing(first.start - timedelta(days=1), CALENDAR)
    periods = [first]
    while periods[-1].end <= datetime.now(UTC):
        periods.append(next_period(periods[-1], CALENDAR))
    try:
        await schemes.CreateScheme(
            schemes_pb2.CreateSchemeRequest(scheme_id=SCHEME_ID, scheme=scheme(), request_id=f"demo-{SCHEME_ID}"),
            metadata=metadata,
        )
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.ALREADY_EXISTS:
            raise
    current = await schemes.GetScheme(schemes_pb2.GetSchemeRequest(name=f"schemes/{SCHEME_ID}"), metadata=metadata)
    if not current.versions:
        await schemes.PublishScheme(
            schemes_pb2.PublishSchemeRequest(
                name=f"schemes/{SCHEME_ID}", effective_from=first.start.astimezone(CALENDAR.zone).date().isoformat()
            ),
            metadata=metadata,
        )
    events = history(members, periods, per_person)
    accepted = 0
    for start in range(0, len(events), 2000):
        result = await behaviours.RecordBehaviourEvents(
            behaviours_pb2.RecordBehaviourEventsRequest(events=events[start : start + 2000]),
            metadata=metadata,
            timeout=60,
        )
        accepted += result.accepted_count
    # Events for people the roles events have not reached yet are parked and
    # accepted as the projection catches up; close only once none waits.
    deadline = time.monotonic() + 60
    while True:
        parked = await behaviours.ListBehaviourEvents(
            behaviours_pb2.ListBehaviourEventsRequest(state=behaviours_pb2.BehaviourEvent.STATE_PARKED, page_size=1),
            metadata=metadata,
        )
        if not parked.behaviour_events or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    closed = 0
    for period in periods[:-1]:
        try:
            await awards.ClosePeriod(
                awards_pb2.ClosePeriodRequest(name=f"schemes/{SCHEME_ID}/periods/{period.id}"),
                metadata=metadata,
                timeout=60,
            )
            closed += 1
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.FAILED_PRECONDITION:
                raise
    return {
        "people": len(members),
        "events": len(events),
        "accepted": accepted,
        "periods_closed": closed,
        "milliseconds": int((time.perf_counter() - started) * 1000),
    }


async def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--roles", default="127.0.0.1:50051")
    parser.add_argument("--incentives", default="127.0.0.1:50053")
    parser.add_argument("--token", default="", help="bearer token (not needed with ENGAGE_AUTH_MODE=dev)")
    parser.add_argument("--months", type=int, default=3)
    parser.add_argument("--events-per-person", type=int, default=3)
    args = parser.parse_args()
    metadata = (("authorization", f"Bearer {args.token}"),) if args.token else ()
    roles, incentives = channel(args.roles, default_deadline=30), channel(args.incentives, default_deadline=60)
    try:
        print(await load(roles, incentives, metadata, args.months, args.events_per_person))
    finally:
        await roles.close(None)
        await incentives.close(None)


if __name__ == "__main__":
    asyncio.run(_main())
