"""The web inspector through the app (both backends): every screen with a signed-in browser's key
cookie, sign-in, isolation between users, escaping, read-only mode and CSRF on its one write."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from agentmem import MemoryManager
from agentmem.server import create_app
from agentmem.server.auth import INSPECTOR_COOKIE

from .conftest import ClientFor, MakeKey
from .inspector_data import OTHER, PAYLOAD, USER, Seeded, seed

BrowserFor = Callable[[FastAPI, str], TestClient]


@pytest.fixture
def seeded(db_url: str, mem: MemoryManager) -> Seeded:
    return seed(db_url)


@pytest.fixture
def writable(mem: MemoryManager) -> FastAPI:
    return create_app(mem, inspector_writes=True)


@pytest.fixture
def browser_for() -> Iterator[BrowserFor]:
    made: list[TestClient] = []

    def browser(app: FastAPI, key: str) -> TestClient:
        """A client that signs in like a browser: the key goes in the form once, then only the cookie."""
        made.append(TestClient(app, follow_redirects=False))
        answer = made[-1].post("/inspector/sign-in", data={"key": key})
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == "/inspector/"
        return made[-1]

    yield browser
    for one in made:
        one.close()


def screens(seeded: Seeded, user: str = USER) -> list[str]:
    u = f"/inspector/users/{user}"
    return [
        "/inspector/",
        u,
        f"{u}?closed=true",
        f"{u}?agent_id=coach",
        f"{u}/context",
        f"{u}/context?query=work&token_budget=40&agent_id=coach",
        f"{u}/context?query=work&session_id=s1",
        f"{u}/search?query=Globex",
        f"{u}/items/{seeded.old_fact}",
        f"{u}/sessions",
        f"{u}/sessions/s1",
        f"{u}/pending",
    ]


def test_sign_in_sets_a_strict_httponly_cookie_and_every_screen_answers(
    app: FastAPI, seeded: Seeded, admin_key: str, browser_for: BrowserFor
) -> None:
    plain = TestClient(app, follow_redirects=False)
    answer = plain.post("/inspector/sign-in", data={"key": admin_key})
    cookie = answer.headers["set-cookie"]
    assert f"{INSPECTOR_COOKIE}=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/inspector" in cookie
    browser = browser_for(app, admin_key)
    for path in screens(seeded):
        page = browser.get(path)
        assert page.status_code == 200, (path, page.text[:300])
        assert page.headers["content-type"].startswith("text/html")
        assert "no-store" in page.headers["cache-control"]
    users = browser.get("/inspector/").text
    assert f"<code>{USER}</code>" in users
    assert f"<code>{OTHER}</code>" in users
    assert browser.get("/inspector/static/inspector.css").headers["content-type"].startswith("text/css")


def test_without_a_usable_key_pages_send_the_browser_to_sign_in(
    app: FastAPI, seeded: Seeded, admin_key: str, make_key: MakeKey
) -> None:
    anonymous = TestClient(app, follow_redirects=False)
    for path in screens(seeded):
        answer = anonymous.get(path)
        assert (answer.status_code, answer.headers["location"]) == (303, "/inspector/sign-in"), path
    assert anonymous.get("/inspector/sign-in").status_code == 200
    wrong = anonymous.post("/inspector/sign-in", data={"key": "am_not_a_key"})
    assert wrong.status_code == 401
    assert "Unknown or revoked key" in wrong.text
    assert "set-cookie" not in wrong.headers
    forged = TestClient(app, follow_redirects=False, cookies={INSPECTOR_COOKIE: "am_forged"})
    assert forged.get("/inspector/").status_code == 303


def test_the_key_cookie_is_not_accepted_by_the_api(
    app: FastAPI, admin_key: str, browser_for: BrowserFor
) -> None:
    browser = browser_for(app, admin_key)
    browser.cookies.set(INSPECTOR_COOKIE, admin_key)  # even sent on every path, /v1 ignores it
    assert browser.get("/v1/keys").status_code == 401


def test_signing_out_forgets_the_cookie(app: FastAPI, admin_key: str, browser_for: BrowserFor) -> None:
    browser = browser_for(app, admin_key)
    out = browser.post("/inspector/sign-out")
    assert (out.status_code, out.headers["location"]) == (303, "/inspector/sign-in")
    assert browser.get("/inspector/").status_code == 303


def test_a_user_bound_key_sees_only_its_user(
    app: FastAPI, seeded: Seeded, make_key: MakeKey, browser_for: BrowserFor
) -> None:
    browser = browser_for(app, make_key(user_id=USER))
    users = browser.get("/inspector/").text
    assert f"<code>{USER}</code>" in users
    assert OTHER not in users
    for path in screens(seeded, OTHER):
        if path == "/inspector/":
            continue
        assert browser.get(path).status_code == 404, path
    assert browser.get(f"/inspector/users/{OTHER}/items/{seeded.other_fact}").status_code == 404
    # Another user's item through one's own user: the same 404 as an unknown id.
    assert browser.get(f"/inspector/users/{USER}/items/{seeded.other_fact}").status_code == 404
    assert browser.get(f"/inspector/users/{USER}").status_code == 200


def test_an_agent_bound_key_sees_only_its_agent(
    app: FastAPI, seeded: Seeded, make_key: MakeKey, browser_for: BrowserFor
) -> None:
    browser = browser_for(app, make_key(user_id=USER, agent_id="planner"))
    assert browser.get(f"/inspector/users/{USER}?agent_id=coach").status_code == 404
    page = browser.get(f"/inspector/users/{USER}").text
    assert "Works at Globex" in page
    assert "Runs marathons" not in page


def test_stored_markup_renders_as_text(
    app: FastAPI, seeded: Seeded, admin_key: str, browser_for: BrowserFor
) -> None:
    browser = browser_for(app, admin_key)
    for path in [
        f"/inspector/users/{USER}",
        f"/inspector/users/{USER}/context",
        f"/inspector/users/{USER}/search?query=notes",
        f"/inspector/users/{USER}/items/{seeded.payload_fact}",
    ]:
        page = browser.get(path).text
        assert PAYLOAD not in page, path
        assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in page, path
    # The XML preview escapes the escaped XML once more: the page shows compile()'s text exactly.
    preview = browser.get(f"/inspector/users/{USER}/context").text
    assert "&amp;lt;script&amp;gt;" in preview
    query = browser.get(f"/inspector/users/{USER}/search", params={"query": PAYLOAD}).text
    assert PAYLOAD not in query


def test_closed_facts_show_with_their_successors(
    app: FastAPI, seeded: Seeded, admin_key: str, browser_for: BrowserFor
) -> None:
    browser = browser_for(app, admin_key)
    live = browser.get(f"/inspector/users/{USER}").text
    assert "Works at Globex" in live
    assert "Works at Acme" not in live
    assert "show closed (1)" in live
    closed = browser.get(f"/inspector/users/{USER}", params={"closed": "true"}).text
    row = re.search(r'<tr class="closed">.*?</tr>', closed, re.S)
    assert row is not None
    assert "Works at Acme" in row.group()
    assert "superseded" in row.group()
    assert f"/items/{seeded.new_fact}" in row.group()
    assert "Works at Globex" in row.group()


def test_an_items_history_runs_old_to_new(
    app: FastAPI, seeded: Seeded, admin_key: str, browser_for: BrowserFor
) -> None:
    browser = browser_for(app, admin_key)
    page = browser.get(f"/inspector/users/{USER}/items/{seeded.old_fact}").text
    ops = re.findall(r'class="badge op-(\w+)"', page)
    assert ops == ["add", "supersede"]
    assert "replaced by" in page
    assert "Works at Globex" in page
    assert browser.get(f"/inspector/users/{USER}/items/m_unknown").status_code == 404


def test_the_context_preview_shows_the_exact_xml_and_what_was_dropped(
    app: FastAPI, mem: MemoryManager, seeded: Seeded, admin_key: str, browser_for: BrowserFor
) -> None:
    browser = browser_for(app, admin_key)
    budget = 25
    xml = mem.compile(user_id=USER, query="work", token_budget=budget)
    page = browser.get(
        f"/inspector/users/{USER}/context", params={"query": "work", "token_budget": str(budget)}
    ).text
    shown = re.search(r'<pre id="xml" class="xml">(.*?)</pre>', page, re.S)
    assert shown is not None
    unescaped = shown.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&#39;", "'")
    assert unescaped.replace("&amp;", "&") == xml
    included = re.search(r"Included <span class=\"count\">(\d+)</span>", page)
    dropped = re.search(r"Dropped <span class=\"count\">(\d+)</span>", page)
    assert included
    assert dropped
    live_lines = len(mem.get(user_id=USER).items)
    assert int(included.group(1)) + int(dropped.group(1)) == live_lines
    assert int(dropped.group(1)) > 0  # the budget is too small for everything
    unbounded = browser.get(f"/inspector/users/{USER}/context").text
    assert "nothing dropped" in unbounded
    bad = browser.get(f"/inspector/users/{USER}/context", params={"token_budget": "lots"})
    assert bad.status_code == 200
    assert "whole number" in bad.text


def test_read_only_mode_has_no_retry_and_refuses_the_post(
    app: FastAPI, mem: MemoryManager, seeded: Seeded, admin_key: str, browser_for: BrowserFor
) -> None:
    browser = browser_for(app, admin_key)
    page = browser.get(f"/inspector/users/{USER}/pending").text
    assert "I have a cat named Miso." in page
    assert "disabled" in page
    assert "--inspector-writes" in page
    assert 'name="csrf"' not in page
    answer = browser.post(f"/inspector/users/{USER}/pending/retry", data={"csrf": "anything"})
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "read_only"
    assert len(mem.pending(user_id=USER)) == 1


def test_retry_needs_the_csrf_token_and_then_learns(
    writable: FastAPI, mem: MemoryManager, seeded: Seeded, admin_key: str, browser_for: BrowserFor
) -> None:
    browser = browser_for(writable, admin_key)
    retry = f"/inspector/users/{USER}/pending/retry"
    page = browser.get(f"/inspector/users/{USER}/pending").text
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert token is not None
    for data in ({}, {"csrf": "0" * 64}, {"csrf": ""}):
        answer = browser.post(retry, data=data)
        assert (answer.status_code, answer.json()["error"]["code"]) == (403, "csrf_failed"), data
    assert len(mem.pending(user_id=USER)) == 1
    done = browser.post(retry, data={"csrf": token.group(1)})
    assert done.status_code == 303
    assert done.headers["location"].endswith("/pending?retried=1&still=0")
    assert mem.pending(user_id=USER) == []
    after = browser.get(done.headers["location"]).text
    assert "Retried: 1 learned" in after
    assert "No pending learns" in after


def test_a_token_is_bound_to_the_browsers_key(
    writable: FastAPI, seeded: Seeded, admin_key: str, make_key: MakeKey, browser_for: BrowserFor
) -> None:
    first = browser_for(writable, admin_key)
    second = browser_for(writable, make_key(admin=True))
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', first.get(f"/inspector/users/{USER}/pending").text)
    assert token is not None
    answer = second.post(f"/inspector/users/{USER}/pending/retry", data={"csrf": token.group(1)})
    assert answer.status_code == 403


def test_open_mode_needs_no_sign_in(app: FastAPI, seeded: Seeded) -> None:
    anonymous = TestClient(app, follow_redirects=False)
    assert anonymous.get("/inspector/").status_code == 200
    assert "open mode" in anonymous.get("/inspector/sign-in").text


def test_a_key_in_a_header_works_too(seeded: Seeded, client_for: ClientFor, admin_key: str) -> None:
    assert client_for(admin_key).get(f"/inspector/users/{USER}").status_code == 200


def test_errors_are_a_page_for_a_browser_and_json_for_other_clients(
    writable: FastAPI, seeded: Seeded, admin_key: str, browser_for: BrowserFor
) -> None:
    browser = browser_for(writable, admin_key)
    html = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    markup = "m_<img src=x onerror=alert(1)>"
    missing = f"/inspector/users/{USER}/items/{markup}"
    page = browser.get(missing, headers=html)
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "no-store" in page.headers["cache-control"]
    assert "404 Not Found" in page.text
    assert markup not in page.text  # the id named in the message is escaped like memory
    assert "m_&lt;img" in page.text
    refused = browser.post(f"/inspector/users/{USER}/pending/retry", data={"csrf": "x"}, headers=html)
    assert refused.status_code == 403
    assert "CSRF token" in refused.text
    assert browser.get(f"/inspector/users/{USER}/search?limit=lots", headers=html).status_code == 422
    assert browser.get(missing).json()["error"]["code"] == "not_found"
    # Signing in is still a redirect, whatever the browser accepts.
    anonymous = TestClient(writable, follow_redirects=False)
    assert anonymous.get(f"/inspector/users/{USER}", headers=html).status_code == 303
