"""Playwright in Debian's headless Chromium (no browser download). Import the fixtures from conftest."""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.urls import Resolver404, ResolverMatch, resolve, reverse

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed (apt-get install -y chromium); `make test` installs it.")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    # bypass_csp: Playwright's wait_for_function() evaluates strings in the page, which the app's strict CSP
    # (no 'unsafe-eval') refuses. The app's own CSP compliance is tested in tests/security/test_csp_browser.py.
    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
    pg = ctx.new_page()
    pg.set_default_timeout(15000)
    yield pg
    # Closing the page fires pagehide, where the read page sends its last request; give the live server a moment to
    # finish it before the test database is flushed (a TRUNCATE racing that request's row locks deadlocked once).
    pg.close()
    time.sleep(0.5)
    ctx.close()


def login(page, live_server, username: str, password: str) -> None:
    page.goto(live_server.url + reverse("login"))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


class NetworkLog:
    """Collects every response body the browser receives (for blinding assertions)."""

    def __init__(self, page):
        self.bodies: list[tuple[str, bytes]] = []
        page.on("response", self._on_response)

    def _on_response(self, response):
        try:
            self.bodies.append((response.url, response.body()))
        except Exception:  # redirects and aborted requests have no body
            self.bodies.append((response.url, b""))

    def text(self) -> str:
        return "\n".join(b.decode("utf-8", "replace") for _, b in self.bodies)


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


def resolved(url: str) -> ResolverMatch | None:
    """What a URL the browser saw resolves to (None outside the app): tests match by URL name, not path."""
    try:
        return resolve(urlsplit(url).path)
    except Resolver404:
        return None


def url_name(url: str) -> str | None:
    match = resolved(url)
    return match.view_name if match else None


LAPTOP = {"width": 1280, "height": 720}

# The element's box inside every scrolling ancestor's box, and the element (not a sticky bar) under its centre.
_UNCLIPPED = """(el) => {
  const r = el.getBoundingClientRect();
  for (let p = el.parentElement; p; p = p.parentElement) {
    if (!/(auto|scroll|hidden)/.test(getComputedStyle(p).overflowY)) continue;
    const q = p.getBoundingClientRect();
    if (r.top < q.top - 1 || r.bottom > q.bottom + 1) return "clipped by " + p.tagName + "." + p.className;
  }
  const hit = document.elementFromPoint((r.left + r.right) / 2, (r.top + r.bottom) / 2);
  if (!hit || !(hit === el || el.contains(hit) || hit.contains(el))) {
    return "covered by " + (hit && hit.outerHTML.slice(0, 80));
  }
  return "";
}"""


def assert_in_view(page, selector: str) -> None:
    """The element is in the viewport as the page stands (its bounding box inside the window), not clipped by a
    scrolling box and not covered by another element (a sticky bar)."""
    loc = page.locator(selector).first
    box = loc.bounding_box()
    size = page.viewport_size
    assert box is not None, f"{selector} is not rendered"
    assert box["x"] >= 0 and box["y"] >= 0, (selector, box)
    assert box["x"] + box["width"] <= size["width"] and box["y"] + box["height"] <= size["height"], (selector, box)
    problem = loc.evaluate(_UNCLIPPED)
    assert not problem, f"{selector}: {problem}"


def end_session(page) -> None:
    """Ends the browser's session on the server, as an expiry does (the cookie stays; the server forgets it)."""
    from importlib import import_module

    from django.conf import settings

    keys = [c["value"] for c in page.context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME]
    assert keys, "no session cookie"
    store = import_module(settings.SESSION_ENGINE).SessionStore
    for key in keys:
        store(session_key=key).delete()


AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"  # vendored, see its README.md
_AXE_RUN = """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations.map((v) => ({
  id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 4).map((n) => n.target.join(" "))}))"""


def axe_violations(page, impacts: tuple[str, ...] = ("serious", "critical")) -> list[str]:
    """axe-core's violations of the page as it stands, of the given impacts, one line each."""
    if not page.evaluate("() => !!window.axe"):
        page.add_script_tag(path=str(AXE))
    found = page.evaluate(_AXE_RUN)
    return [f"{v['impact']} {v['id']} ({v['help']}): {v['nodes']}" for v in found if v["impact"] in impacts]


def assert_accessible(page, label: str = "") -> None:
    """No serious or critical axe-core violation on the page (issue 17)."""
    problems = axe_violations(page)
    assert not problems, f"{label or page.url}:\n" + "\n".join(problems)
