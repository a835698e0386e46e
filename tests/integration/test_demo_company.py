"""The demo company `make run` loads: it loads, answers as the README says, and reloads safely."""

import asyncio

import grpc

from scripts import demo_company


async def test_demo_company_loads_answers_and_reloads_without_changes(roles):
    def load_twice() -> tuple[demo_company.LoadReport, demo_company.LoadReport, list[str]]:
        with grpc.insecure_channel(f"127.0.0.1:{roles.app.port}") as channel:
            api = demo_company.RolesApi(channel, roles.mint.token(roles=["hr_admin"]))
            first = demo_company.load(api)
            second = demo_company.load(api)
            company = demo_company.build_company()
            answers = [
                demo_company.outcome_text(demo_company.check(api, e), company) for e in demo_company.examples(company)
            ]
        return first, second, answers

    first, second, answers = await asyncio.to_thread(load_twice)
    assert first.people >= 250 and first.assignments_created > 200 and first.roles_created >= 10
    assert (second.rows_created, second.rows_updated, second.assignments_created) == (0, 0, 0)
    assert second.rows_unchanged == first.rows_created
    # 350 and 500 EUR refunds are the agent's own; 1,200 goes up; market entry to the top.
    assert answers[0] == answers[1] == "DECIDE"
    assert answers[2].startswith("ESCALATE to people/") and "team-lead" in answers[2]
    assert "chief-executive" in answers[-1]
