"""End to end in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

A manager signs in, assigns a role and sees it; the employee acknowledges it; a
change made through the API by someone else appears on the manager's open page
without a reload (server-sent events fed from NATS). Screenshots of the main
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
from tests.gateway.conftest import Stack, served

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
