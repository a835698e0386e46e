"""The demo data `make run` loads: a live scheme with months of history, re-runnable."""

from engage.incentives.v1 import awards_pb2, schemes_pb2

from services.incentives.demo import SCHEME_ID, load


async def test_the_demo_loads_a_live_scheme_with_history_and_can_be_run_again(world):
    inc, roles = world.inc, world.roles
    first = await load(roles.channel, inc.channel, inc.admin, months=2, per_person=3)
    assert first["people"] == 9 and first["accepted"] == first["events"] > 0
    assert first["periods_closed"] == 2
    scheme = await inc.schemes.GetScheme(schemes_pb2.GetSchemeRequest(name=f"schemes/{SCHEME_ID}"), metadata=inc.admin)
    assert scheme.state == schemes_pb2.Scheme.STATE_ACTIVE and len(scheme.versions) == 1
    period = scheme.versions[0].effective_from[:7]
    awards = await inc.awards.ListAwards(
        awards_pb2.ListAwardsRequest(parent=f"schemes/{SCHEME_ID}/periods/{period}"), metadata=inc.admin
    )
    assert len(awards.awards) == 9 and any(a.amount.money.units > 0 for a in awards.awards)
    again = await load(roles.channel, inc.channel, inc.admin, months=2, per_person=3)
    assert again["accepted"] == 0 and again["periods_closed"] == 0
