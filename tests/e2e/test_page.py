"""The player page in a real browser: Debian's Chromium, headless, driven by Playwright.

A player registers with the keyboard, watches global's top 10, plays, and sees the ranks
change as another player (over the protocol, from the test) passes them and is passed back;
the page comes back by itself after the gateway restarts; refusals are shown; and the page's
files are served with their types and a strict Content-Security-Policy, and nothing else is.

Assertions wait on the DOM (Playwright's expect), never on time.
"""

import re
import uuid
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright, expect
from yarl import URL

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
PASSWORD = "correct horse battery"
# Generous: a gateway restart, a reconnect backoff and a coalesced board change fit in it.
WAIT_MS = 30_000

expect.set_options(timeout=WAIT_MS)

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install chromium"
)


@pytest.fixture(scope="module")
async def browser():
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield browser
        await browser.close()


class Tab:
    """A page and whatever went wrong in it: script errors, console errors (CSP refusals
    among them), and the WebSocket URLs it opened."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.problems: list[str] = []
        self.sockets: list[str] = []
        page.on("pageerror", lambda error: self.problems.append(str(error)))
        page.on("console", self._console)
        page.on("websocket", lambda socket: self.sockets.append(socket.url))

    def _console(self, message) -> None:
        if message.type == "error":
            self.problems.append(message.text)


@pytest.fixture
async def tab(browser, stack):
    # Reduced motion holds a moved row's highlight still, so the screenshot shows it.
    context = await browser.new_context(
        viewport={"width": 1180, "height": 820}, reduced_motion="reduce"
    )
    page = await context.new_page()
    page.set_default_timeout(WAIT_MS)
    await page.goto(stack.url + "/")
    yield Tab(page)
    await context.close()


# The focused element by its id, or by its text when it has none.
FOCUSED = "document.activeElement.id || document.activeElement.textContent"


async def _stored(page: Page, field: str) -> str:
    """A field of the session the page keeps in sessionStorage."""
    return await page.evaluate(f"JSON.parse(sessionStorage.getItem('podium.session')).{field}")


def _row(page: Page, player_id: str):
    return page.locator(f'#board-rows tr[data-player-id="{player_id}"]')


async def _sign_in(page: Page, username: str) -> None:
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_label("Password").press("Enter")
    await expect(page.locator("#account-name")).to_have_text(username)


async def _watch(page: Page, board: str, view: str, size: str) -> None:
    await page.get_by_label("Board", exact=True).select_option(board)
    await page.get_by_label("View").select_option(view)
    await page.locator("#size").fill(size)
    await page.get_by_role("button", name="Watch").click()


async def _play(page: Page, points: int, score: int) -> None:
    await page.get_by_label("Points").fill(str(points))
    await page.get_by_label("Points").press("Enter")
    await expect(page.locator("#play-result")).to_have_text(f"Applied: your score is {score:,}.")


async def test_a_player_registers_plays_and_sees_ranks_change_live(tab, players):
    page = tab.page
    username = "w" + uuid.uuid4().hex[:12]

    # Keyboard only: type, Tab past "Log in" to "Register", Enter.
    await page.get_by_label("Username").focus()
    await page.keyboard.type(username)
    await page.keyboard.press("Tab")
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Tab")
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("button", name="Register")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator("#account-name")).to_have_text(username)
    await expect(page.locator("#connection")).to_have_text("Live")
    me = await _stored(page, "player_id")

    await _watch(page, "global", "top", "10")
    await expect(page.locator("#board-caption")).to_have_text("global: top 10, all time")
    # The module's first test: its stack's global board is still empty.
    await expect(page.locator("#board-rows")).to_have_text("No scores yet.")
    await expect(page.locator("#my-rank")).to_have_text("Not ranked")

    await _play(page, 120, 120)
    mine = _row(page, me)
    await expect(mine.locator(".rank")).to_have_text("1")
    await expect(mine).to_contain_text(f"{username} (you)")
    await expect(mine).to_have_attribute("data-change", "new")
    await expect(page.locator("#my-rank")).to_have_text("1")
    await expect(page.locator("#my-score")).to_have_text("120")
    await expect(page.locator("#my-plays")).to_have_text("1")

    rival = await players()
    assert (await rival.play("score", {"points": 500}))["status"] == "applied"
    theirs = _row(page, rival.player_id)
    await expect(theirs.locator(".rank")).to_have_text("1")
    await expect(theirs).to_have_attribute("data-change", "new")
    await expect(mine.locator(".rank")).to_have_text("2")
    await expect(mine).to_have_attribute("data-change", "down")
    await expect(mine.locator(".change")).to_have_text("down 1 place: ▼1")
    await expect(page.locator("#my-rank")).to_have_text("2")
    await expect(page.locator("#rank-announcer")).to_have_text(
        "You are now ranked 2 on global, down 1 place."
    )

    await _play(page, 1000, 1120)
    await expect(mine.locator(".rank")).to_have_text("1")
    await expect(mine.locator(".change")).to_have_text("up 1 place: ▲1")
    await expect(theirs.locator(".rank")).to_have_text("2")
    await expect(theirs).to_have_attribute("data-change", "down")
    await expect(page.locator("#board-rows tr")).to_have_count(2)
    await expect(page.locator("#rank-announcer")).to_have_text(
        "You are now ranked 1 on global, up 1 place."
    )
    # Under reduced motion the highlight of a moved row does not animate.
    assert await mine.evaluate("row => getComputedStyle(row).animationName") == "none"

    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "page.png"), full_page=True)
    await page.emulate_media(color_scheme="dark")
    await page.screenshot(path=str(ARTIFACTS / "page-dark.png"), full_page=True)
    token = await _stored(page, "access_token")
    assert tab.sockets and all("ticket=" in url and token not in url for url in tab.sockets)
    assert tab.problems == []


async def test_the_around_view_follows_the_player_among_neighbours(tab, players):
    page = tab.page
    player = await players(connect=False)
    above, below = await players(), await players()
    # The lowest scores of the module's daily board: the three are its last three places.
    for other, points in ((above, 3), (below, 1)):
        assert (await other.play("score", {"points": points}))["status"] == "applied"
    await _sign_in(page, player.username)

    await _watch(page, "daily", "around", "3")
    await expect(page.locator("#board-rows")).to_have_text("Play to get on this board.")
    await _play(page, 2, 2)

    mine = _row(page, player.player_id)
    await expect(mine).to_contain_class("me")
    rows = page.locator("#board-rows tr")
    await expect(rows).to_have_count(3)
    assert await rows.nth(0).get_attribute("data-player-id") == above.player_id
    assert await rows.nth(1).get_attribute("data-player-id") == player.player_id
    assert await rows.nth(2).get_attribute("data-player-id") == below.player_id
    await expect(page.locator("#my-score")).to_have_text("2")

    # A reload keeps the tab's session and the view it watched.
    await page.reload()
    await expect(page.locator("#board-caption")).to_contain_text("daily: 3 rows around you")
    await expect(_row(page, player.player_id)).to_contain_class("me")
    await expect(page.get_by_label("View")).to_have_value("around")
    assert tab.problems == []


async def test_the_players_view_ranks_chosen_players_among_themselves(tab, players):
    page = tab.page
    player = await players(connect=False)
    friend = await players()
    assert (await friend.play("score", {"points": 1}))["status"] == "applied"
    await _sign_in(page, player.username)
    await _play(page, 2, 2)

    await page.get_by_label("View").select_option("players")
    await page.get_by_label("Player ids").fill(f"{friend.player_id},\n{friend.player_id}")
    await page.get_by_label("Player ids").press("Tab")
    await page.keyboard.press("Enter")

    await expect(page.locator("#board-caption")).to_have_text("global: 2 chosen players, all time")
    rows = page.locator("#board-rows tr")
    await expect(rows).to_have_count(2)
    # Earlier tests' players rank above both on the whole board.
    await expect(_row(page, player.player_id).locator(".rank")).to_have_text(
        re.compile(r"^1 \(board \d+\)$")
    )
    await expect(_row(page, friend.player_id).locator(".rank")).to_have_text(
        re.compile(r"^2 \(board \d+\)$")
    )
    assert tab.problems == []


async def test_the_page_reconnects_after_the_gateway_restarts_and_resumes_its_view(
    tab, stack, players
):
    page = tab.page
    player = await players(connect=False)
    rival = await players()
    await _sign_in(page, player.username)
    await _watch(page, "weekly", "top", "5")
    # 2000 is above every weekly score of the module's earlier tests.
    await _play(page, 1000, 1000)
    await _play(page, 1000, 2000)
    await expect(_row(page, player.player_id).locator(".rank")).to_have_text("1")

    await stack.restart("gateway")
    await rival.close()
    await rival.connect()
    for _ in range(3):
        assert (await rival.play("score", {"points": 1000}))["status"] == "applied"

    await expect(_row(page, rival.player_id).locator(".rank")).to_have_text("1")
    await expect(_row(page, player.player_id).locator(".rank")).to_have_text("2")
    await expect(page.locator("#connection")).to_have_text("Live")
    await _play(page, 1000, 3000)
    await _play(page, 1000, 4000)
    await expect(_row(page, player.player_id).locator(".rank")).to_have_text("1")
    assert len(tab.sockets) >= 2
    # Console errors of the dropped socket are expected; script errors are not.
    assert not [p for p in tab.problems if "WebSocket" not in p and "ERR_" not in p]


async def test_refusals_are_shown_where_they_happen(tab, players):
    page = tab.page
    player = await players(connect=False)

    await page.get_by_label("Username").fill("x")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Register").click()
    await expect(page.locator("#sign-in-message")).to_contain_text("(INVALID_USERNAME)")
    await page.get_by_label("Username").fill(player.username)
    await page.get_by_label("Password").fill("wrong password")
    await page.get_by_role("button", name="Log in").click()
    await expect(page.locator("#sign-in-message")).to_contain_text("(INVALID_CREDENTIALS)")
    await page.get_by_role("button", name="Register").click()
    await expect(page.locator("#sign-in-message")).to_contain_text("(USERNAME_TAKEN)")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "sign-in.png"))

    await _sign_in(page, player.username)
    await _watch(page, "global", "top", "101")
    await expect(page.locator("#watch-message")).to_contain_text("whole number in that range")
    await page.get_by_label("View").select_option("players")
    await page.get_by_label("Player ids").fill("not-a-player")
    await page.get_by_role("button", name="Watch").click()
    await expect(page.locator("#watch-message")).to_have_text('"not-a-player" is not a player id.')
    await page.get_by_label("Points").fill("1001")
    await page.get_by_label("Points").press("Enter")
    await expect(page.locator("#play-result")).to_have_text(
        "Points must be a whole number from 1 to 1000."
    )

    # The same player plays from another device: the page's state hash is stale, then fresh.
    await player.connect()
    assert (await player.play("score", {"points": 5}))["status"] == "applied"
    await page.get_by_label("Points").fill("10")
    await page.get_by_label("Points").press("Enter")
    await expect(page.locator("#play-result")).to_have_text(
        "Not applied: your state changed elsewhere. Play again."
    )
    await expect(page.locator("#my-plays")).to_have_text("1")
    await _play(page, 10, 15)

    await page.get_by_role("button", name="Log out").click()
    await expect(page.get_by_label("Username")).to_be_focused()
    await expect(page.locator("#sign-in-message")).to_have_text("Signed out.")
    assert await page.evaluate("sessionStorage.getItem('podium.session')") is None
    # Only the refused sign-ins (4xx answers) reached the console.
    assert all("status of 4" in problem for problem in tab.problems)


async def test_every_control_is_reachable_with_the_tab_key(tab, players):
    page = tab.page
    player = await players(connect=False)
    await _sign_in(page, player.username)
    await expect(page.locator("#connection")).to_have_text("Live")

    reached = set()
    for _ in range(20):
        await page.keyboard.press("Tab")
        reached.add(await page.evaluate(FOCUSED))

    assert {"skip-link", "logout", "board", "view", "size", "points", "play-button"} <= reached
    assert "Watch" in reached

    await page.get_by_role("link", name="Skip to the leaderboard").focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#board-table")).to_be_focused()


async def test_the_page_and_its_files_are_served_with_types_and_a_strict_policy(stack, http):
    async with http.get(stack.url + "/") as page:
        html = await page.text()
        policy = page.headers["Content-Security-Policy"]
        assert page.status == 200
        assert page.headers["Content-Type"] == "text/html; charset=utf-8"
        assert page.headers["Cache-Control"] == "no-cache"
        assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert "unsafe" not in policy and "http" not in policy
    assert '<script type="module" src="/static/app.js"></script>' in html
    assert html.count("<script") == 1 and " style=" not in html

    for name, kind in (
        ("app.js", "text/javascript; charset=utf-8"),
        ("live.js", "text/javascript; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("icon.svg", "image/svg+xml"),
    ):
        async with http.get(f"{stack.url}/static/{name}") as reply:
            assert (reply.status, reply.headers["Content-Type"]) == (200, kind), name
            assert reply.headers["Cache-Control"] == "no-cache"
            last_modified = reply.headers["Last-Modified"]
        headers = {"If-Modified-Since": last_modified}
        async with http.get(f"{stack.url}/static/{name}", headers=headers) as again:
            assert again.status == 304


@pytest.mark.parametrize(
    "path",
    [
        "/static/",
        "/static",
        "/static/missing.js",
        "/static/..%2Fpage.py",
        "/static/%2e%2e%2Fapp.py",
        "/static/page.py",
        "/static/app.js/",
        "/static/.hidden.js",
        "/index.html",
    ],
)
async def test_nothing_but_the_pages_files_is_served(stack, http, path):
    # Sent as written: the client must not resolve the dots or decode the slashes first.
    async with http.get(URL(stack.url + path, encoded=True)) as reply:
        body = await reply.json()

    assert reply.status == 404
    assert body["error"]["code"] == "NOT_FOUND"


async def test_the_page_routes_refuse_other_methods(stack, http):
    async with http.post(stack.url + "/static/app.js") as reply:
        body = await reply.json()

    assert reply.status == 405
    assert body["error"]["code"] == "METHOD_NOT_ALLOWED"
