"""GetRoleFit's in-memory view (services/skills/store/fit_view.py): what it
answers and how fresh it is, with a second replica on the same database."""

from datetime import UTC, datetime, timedelta

from services.skills.store.fit_view import FitView, ViewFit
from tests.integration.skills.catalogue_requests import CERTIFICATION, MANAGER, assessment, create
from tests.integration.skills.conftest import start_skills, stop_skills
from tests.integration.skills.test_fit import fit, setup_company
from tests.support.waiting import eventually

ROLE = "crm-champion"


async def held(view: FitView, person: str) -> ViewFit | None:
    return await view.fit(person, ROLE, None, datetime.now(UTC))


def level_of(answer: ViewFit | None, skill: str) -> int | None:
    return None if answer is None else answer.levels.get(skill, (0, 0))[0]


async def test_the_view_sees_its_own_writes_at_once_and_another_replicas_within_the_poll(stack):
    await setup_company(stack)
    skills = stack.skills
    view = skills.app.fit_view
    s1 = await eventually(lambda: held(view, "S1"), lambda a: a is not None, 10, "the view loaded with the role")
    assert level_of(s1, "teaming") == 2 and s1.version == 1

    # Written through this replica: the next answer has it, without waiting for a poll.
    await skills.assessments.CreateAssessment(create("S1", assessment("teaming", 3, MANAGER)), metadata=skills.admin)
    assert level_of(await held(view, "S1"), "teaming") == 3
    assert (await fit(skills, "S1", f"roles/{ROLE}")).skills[2].effective_level == 3

    # Written through another replica of the same database: seen within the poll (0.1 s here).
    other = await start_skills(skills.app.db.url, skills.nats, skills.mint)
    try:
        await other.assessments.CreateAssessment(
            create("S1", assessment("teaming", 5, CERTIFICATION)), metadata=other.admin
        )
        written = datetime.now(UTC)
        await eventually(
            lambda: held(view, "S1"), lambda a: level_of(a, "teaming") == 5, 5, "the other replica's write"
        )
        assert datetime.now(UTC) - written < timedelta(seconds=2)
        assert (await fit(skills, "S1", f"roles/{ROLE}")).skills[2].effective_level == 5
    finally:
        await stop_skills(other)


async def test_a_level_past_its_expiry_is_left_to_the_database(stack):
    await setup_company(stack)
    skills = stack.skills
    view = skills.app.fit_view
    await eventually(lambda: held(view, "S2"), lambda a: a is not None, 10, "the view loaded with the role")
    await skills.assessments.CreateAssessment(
        create("S2", assessment("teaming", 5, CERTIFICATION, expires_in=timedelta(hours=1))), metadata=skills.admin
    )
    now = datetime.now(UTC)
    assert level_of(await view.fit("S2", ROLE, None, now), "teaming") == 5
    # An hour on, the view holds a level past its valid_until: it does not answer.
    assert await view.fit("S2", ROLE, None, now + timedelta(hours=2)) is None


async def test_the_view_follows_role_changes_and_knows_what_it_does_not_hold(stack):
    await setup_company(stack)
    skills = stack.skills
    view = skills.app.fit_view
    await eventually(lambda: held(view, "S1"), lambda a: a is not None, 10, "the view loaded with the role")
    now = datetime.now(UTC)
    assert await view.fit("nobody", ROLE, None, now) is None  # the database answers NOT_FOUND
    assert await view.fit("S1", "no-such-role", None, now) is None
    assert await view.fit("S1", ROLE, 2, now) is None  # a version it does not hold
    pinned = await view.fit("S1", ROLE, 1, now)
    assert pinned is not None and [r.skill for r in pinned.requirements] == [
        "crm-case-management",
        "knowledge-sharing",
        "teaming",
    ]
