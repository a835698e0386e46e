"""End to end in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

A manager signs in, assigns a role and sees it; the employee acknowledges it; a
change made through the API by someone else appears on the manager's open page
without a reload (server-sent events fed from NATS). A manager picks from ranked
candidates with their skill gaps, reads the skill matrix and approves and adjusts
awards; an employee reads their scorecard and assesses themselves. Screenshots of the main
pages go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from gateway.app import create_app
from services.platform.settings import PROJECT_ROOT
from tests.gateway.conftest import CLOSED, SCHEME, Stack, served
from tests.support.waiting import eventually

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = PROJECT_ROOT / "test-artifacts" / "screenshots"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() or not shutil.which("chromium"), reason="needs Debian chromium"
)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        await browser.close()


async def sign_in(browser: Browser, base_url: str, user: str, **context: object) -> Page:
    page = await (await browser.new_context(base_url=base_url, **context)).new_page()  # type: ignore[arg-type]
    page.set_default_timeout(10_000)
    await page.goto("/signin")
    await page.click(f'button[data-user="{user}"]')
    await page.wait_for_load_state("load")
    return page


async def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def test_manager_assigns_employee_acknowledges_and_changes_appear_live(stack: Stack, browser: Browser) -> None:
    app = create_app(stack.settings.model_copy(update={"live_updates": True}))
    async with served(app) as base_url:
        await app.state.gateway.live.connected.wait()
        signin = await (await browser.new_context(base_url=base_url)).new_page()
        await signin.goto("/signin")
        await shot(signin, "signin")

        # A team lead signs in and lands on their team.
        manager = await sign_in(browser, base_url, "TL-N")
        await expect(manager).to_have_url(f"{base_url}/team")
        await expect(manager.locator("#team-table")).to_contain_text("Agent one")
        await expect(manager.locator("#team-table")).not_to_contain_text("Service one")
        await shot(manager, "team")

        # Assigns a role to A1 and sees it in the team table.
        await manager.click("text=Assign a role")
        await manager.select_option("#role", "roles/service-agent")
        await manager.select_option("#person", "people/A1")
        await manager.select_option("#orgUnit", "orgUnits/SALES-N")
        await manager.fill("#validFrom", date.today().isoformat())
        await manager.fill("#reason", "Covers refunds for the northern accounts")
        await shot(manager, "assign")
        await manager.click("button:text('Assign')")
        await expect(manager.locator(".notice")).to_contain_text("Assigned")
        a1 = manager.locator('tr[data-person="people/A1"]')
        await expect(a1).to_contain_text("Service agent")
        await expect(a1).to_contain_text("not yet acknowledged")

        # The employee acknowledges it ...
        employee = await sign_in(browser, base_url, "A1")
        await expect(employee).to_have_url(f"{base_url}/me")
        await shot(employee, "my-roles")
        await employee.click("button:text('I take on this role')")
        await expect(employee.locator(".notice")).to_contain_text("Acknowledged")
        await expect(employee.locator(".card").first).to_contain_text("Acknowledged")
        await shot(employee, "my-roles-acknowledged")

        # ... and the manager's open page shows it without a reload.
        await expect(manager.locator("body[data-live=on]")).to_have_count(1)
        await expect(a1).to_contain_text("acknowledged", timeout=10_000)
        await expect(a1).not_to_contain_text("not yet acknowledged", timeout=10_000)

        # An HR administrator assigns A2 through the API: it appears live too.
        async with httpx.AsyncClient(base_url=base_url) as api:
            created = await api.post(
                "/api/v1/assignments",
                json={
                    "person": "people/A2",
                    "role": "roles/service-agent",
                    "orgUnit": "orgUnits/SALES-N",
                    "reason": "HR",
                },
                headers=stack.auth("admin"),
            )
            assert created.status_code == 201, created.text
        await expect(manager.locator('tr[data-person="people/A2"]')).to_contain_text("Service agent", timeout=10_000)
        await shot(manager, "team-live-update")

        # Who decides?
        await manager.goto("/decide?person=people/A1&category=decisionCategories/customer-refund&amount=350")
        await expect(manager.locator("#answer")).to_be_visible()
        await shot(manager, "who-decides")

        # The team page on a phone.
        phone = await sign_in(browser, base_url, "TL-N", viewport={"width": 390, "height": 844})
        await shot(phone, "team-phone")


async def test_manager_assigns_from_ranked_candidates_and_decides_awards_employee_sees_scorecard(
    stack: Stack, browser: Browser
) -> None:
    async with served(stack.app, lifespan="off") as base_url:
        manager = await sign_in(browser, base_url, "TL-N")

        # Candidates for a role, ranked, with their gaps; the manager picks one and assigns.
        await manager.goto("/assign")
        await manager.select_option("#find-role", "roles/service-agent")
        await manager.click("button:text('Show candidates')")
        table = manager.locator("#candidates")
        await expect(table.locator("tbody tr").first).to_have_attribute("data-candidate", "people/A1")
        tl = table.locator('tr[data-candidate="people/TL-N"]')
        await expect(tl).to_contain_text("1 of 3 (mandatory)")
        await expect(tl).to_contain_text("mandatory gap")
        await shot(manager, "assign-candidates")
        await tl.locator("text=Choose").click()
        await expect(manager.locator("#person")).to_have_value("people/TL-N")
        await expect(manager.locator("#role")).to_have_value("roles/service-agent")
        await manager.fill("#validFrom", date.today().isoformat())
        await manager.fill("#reason", "Backs up the agents")
        await manager.click("button:text('Assign')")
        await expect(manager.locator(".notice")).to_contain_text("Assigned")
        row = manager.locator('tr[data-person="people/TL-N"]')

        async def fit_shown() -> str:  # the skills service learns of the assignment from its event
            await manager.reload()
            return await row.locator("td.fit").inner_text()

        await eventually(fit_shown, lambda text: "33%" in text, 15, "TL-N's fit on the team page")
        await expect(row.locator("td.fit")).to_contain_text("customer-empathy")
        await expect(manager.locator('tr[data-person="people/A1"] td.scorecard')).to_contain_text("% of target")
        await shot(manager, "team-with-fit-and-scorecards")

        await manager.click("text=Skill matrix")
        await expect(manager.locator('#skill-matrix tr[data-person="people/TL-N"] td.gap')).to_have_count(1)
        await shot(manager, "skill-matrix")

        # Awards of the closed period: approve one, adjust another with a reason.
        await manager.goto(f"/awards?scheme=schemes/{SCHEME}&period={CLOSED}")
        a1 = manager.locator(f'tr[data-award="schemes/{SCHEME}/periods/{CLOSED}/awards/A1"]')
        await expect(a1).to_contain_text("Agent one")
        await expect(manager.locator('tr[data-award$="/awards/TL-N"]')).to_contain_text("your own award")
        await a1.locator("button:text('Approve')").click()
        await expect(manager.locator(".notice")).to_contain_text("Approved")
        await expect(a1).to_contain_text("approved")
        a2 = manager.locator(f'tr[data-award="schemes/{SCHEME}/periods/{CLOSED}/awards/A2"]')
        await a2.locator("summary").click()
        await a2.locator("input[name=amount]").fill("250")
        await a2.locator("input[name=reason]").fill("Stood in for the whole team")
        await a2.locator("button:text('Adjust')").click()
        await expect(manager.locator(".notice")).to_contain_text("Adjusted")
        await expect(a2).to_contain_text("Stood in for the whole team")
        await shot(manager, "awards")

        # The employee sees their scorecard with the events that counted, and assesses themselves.
        employee = await sign_in(browser, base_url, "A1")
        await employee.click("text=My scorecard")
        await expect(employee.locator("#scorecard")).to_contain_text("Open: new events still count.")
        await expect(employee.locator("#scorecard")).to_contain_text("behaviourEvents/a1-now")
        await employee.goto(f"/me/scorecard?scheme=schemes/{SCHEME}&period={CLOSED}")
        card = employee.locator("#scorecard")
        await expect(card).to_contain_text("Final")
        await expect(card.locator('[data-measure="cross-cases"]')).to_contain_text("behaviourEvents/a1-1")
        await expect(card.locator('[data-measure="cross-cases"]')).to_contain_text("50%")  # shared with S1
        await shot(employee, "my-scorecard")
        await employee.click("text=My skills")
        await employee.select_option("#skill", "skills/customer-empathy")
        await employee.fill("#level", "5")
        await employee.click("button:text('Record my assessment')")
        await expect(employee.locator(".notice")).to_contain_text("Recorded")
        await expect(employee.locator('tr[data-skill="skills/customer-empathy"]')).to_contain_text("5")
        await shot(employee, "my-skills")

        # ... and lends their refund decisions to a colleague for a while, then takes them back.
        await employee.click("text=Delegations")
        await employee.select_option("#delegate", "people/A2")
        await employee.check('input[value="decisionCategories/customer-refund"]')
        await employee.fill("#validTo", date(2041, 1, 1).isoformat())
        await employee.fill("#reason", "Two weeks of holiday")
        await employee.click("button:text('Delegate')")
        await expect(employee.locator(".notice")).to_contain_text("Delegated")
        row = employee.locator("#delegations tbody tr").first
        await expect(row).to_contain_text("Agent two")
        await expect(row).to_contain_text("in force")
        await shot(employee, "my-delegations")
        await row.locator("button:text('Revoke')").click()
        await expect(employee.locator(".notice")).to_contain_text("Revoked")
        await expect(employee.locator("#delegations tbody tr").first).to_contain_text("revoked")
