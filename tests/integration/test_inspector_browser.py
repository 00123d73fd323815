"""The inspector in a real browser: Debian's headless Chromium (through playwright) against a real
``agentmem serve --inspector-writes`` process on a free loopback port. Signs in, visits every screen
with no console error, retries the pending learn with the button, and screenshots each screen
(into the test's tmp dir, or ``AGENTMEM_SCREENSHOTS=dir`` to keep them).

Without ``/usr/bin/chromium`` the test is skipped, unless ``AGENTMEM_REQUIRE_BROWSER`` is set (CI),
where it fails instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from server.conftest import serving
from server.inspector_data import USER, seed

from agentmem import MemoryManager
from agentmem.server.keys import ApiKeys

CHROMIUM = Path("/usr/bin/chromium")
REQUIRE_BROWSER = bool(os.environ.get("AGENTMEM_REQUIRE_BROWSER"))


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        if REQUIRE_BROWSER:
            pytest.fail(
                f"AGENTMEM_REQUIRE_BROWSER is set but {CHROMIUM} is missing (apt-get install chromium)"
            )
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    kept = os.environ.get("AGENTMEM_SCREENSHOTS")
    folder = Path(kept) if kept else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def served(db_url: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``(base URL, admin key)`` of ``agentmem serve --inspector-writes`` over the seeded database."""
    seed(db_url)
    with MemoryManager(db=db_url) as mem:
        key = ApiKeys(mem).create(admin=True, label="browser test").secret
    with serving("--db", db_url, "--inspector-writes", log=tmp_path / "serve.log") as (base, _proc):
        yield base, key


def test_every_screen_in_chromium_and_the_retry_button(
    chromium: Path, served: tuple[str, str], shots: Path, db_url: str
) -> None:
    from playwright.sync_api import sync_playwright

    base, key = served
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            page.on(
                "console",
                lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
            )
            page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))

            def shot(name: str) -> None:
                page.screenshot(path=str(shots / f"{name}.png"))

            page.goto(f"{base}/inspector/")
            assert page.url == f"{base}/inspector/sign-in"
            shot("00-sign-in")
            page.fill("input[name=key]", key)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/inspector/")
            assert page.locator("table.grid").get_by_text(USER, exact=True).is_visible()
            shot("01-users")

            page.click(f"a[href='/inspector/users/{USER}']")
            page.wait_for_url(f"{base}/inspector/users/{USER}")
            assert page.get_by_text("Works at Globex").is_visible()
            assert page.get_by_text("Works at Acme").count() == 0
            page.check("input[name=closed]")  # the inspector's script submits the form
            page.wait_for_url("**closed=true")
            assert page.locator("tr.closed").get_by_text("Works at Acme").is_visible()
            # Stored markup is text on the page, never run.
            assert page.get_by_text("<script>alert('pwned')</script>", exact=False).count() >= 1
            shot("02-layers")

            page.click("nav >> text=Context preview")
            page.fill("input[name=query]", "work")
            page.fill("input[name=token_budget]", "60")
            page.select_option("select[name=agent_id]", "coach")
            page.click("button:has-text('Compile')")
            page.wait_for_url("**/context?**")
            assert "<user_profile>" in page.locator("pre.xml").inner_text()
            assert page.get_by_text("Dropped").is_visible()
            shot("03-context")

            page.click("nav >> text=Search")
            page.fill("input[name=query]", "Globex")
            page.click("button:has-text('Search')")
            page.wait_for_url("**/search?**")
            page.click("table.grid >> text=Works at Globex")
            page.wait_for_url("**/items/**")
            assert page.locator(".badge.op-add").count() == 1
            shot("04-item-history")

            page.click("nav >> text=Sessions")
            assert page.get_by_text("s1", exact=True).is_visible()
            shot("05-sessions")
            page.click("a:has-text('s1')")
            assert page.get_by_text("Hi, plan my week").is_visible()
            shot("06-session")

            page.click("nav >> text=Pending learns")
            assert page.get_by_text("I have a cat named Miso.").is_visible()
            shot("07-pending")
            page.click("#retry")
            page.wait_for_url("**/pending?retried=1**")
            assert page.get_by_text("No pending learns").is_visible()
            shot("08-pending-retried")
        finally:
            browser.close()

    assert problems == []
    with MemoryManager(db=db_url) as mem:
        assert mem.pending(user_id=USER) == []
    assert sorted(p.name for p in shots.glob("*.png")) == [
        "00-sign-in.png",
        "01-users.png",
        "02-layers.png",
        "03-context.png",
        "04-item-history.png",
        "05-sessions.png",
        "06-session.png",
        "07-pending.png",
        "08-pending-retried.png",
    ]
