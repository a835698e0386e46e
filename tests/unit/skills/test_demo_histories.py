"""The demo skill histories: deterministic, re-runnable, on each skill's scale."""

from datetime import UTC, datetime

from services.skills.catalogue_seed import LEADERSHIP_SCALE, SKILLS
from services.skills.demo_histories import DemoHolder, history_rows

ANCHOR = datetime(2026, 11, 1, tzinfo=UTC)
HOLDERS = [
    DemoHolder(f"E{i}", {"customer-empathy": 3, "crm-case-management": 2, "strategic-thinking": 6, "unknown": 2})
    for i in range(200)
]


def test_histories_are_deterministic_with_unique_external_ids_and_levels_on_the_scale():
    rows = list(history_rows(HOLDERS, ANCHOR))
    assert rows == list(history_rows(HOLDERS, ANCHOR))
    ids = [r.assessment.external_id for r in rows]
    assert len(ids) == len(set(ids))
    top = {s.id: 7 if s.scale == LEADERSHIP_SCALE else 5 for s in SKILLS}
    for r in rows:
        skill = r.assessment.skill.removeprefix("skills/")
        assert 1 <= r.assessment.level <= top[skill]
        if r.assessment.HasField("expire_time"):
            assert r.assessment.expire_time.ToDatetime() > r.assessment.assess_time.ToDatetime()
    assert not any(r.assessment.skill == "skills/unknown" for r in rows)
    sources = {r.assessment.source for r in rows}
    assert len(sources) == 3  # manager, self and certification
