"""Reading in Debian's headless Chromium: worklist, viewer (zoom, window/level), the AI draft edited and submitted,
timing, resume after reload (server autosave and the local copy), and blinding of the unassisted arm checked on
every response the browser received."""
from __future__ import annotations

import pytest
from django.urls import reverse

from reading.models import Read
from tests.browser import NetworkLog, login, resolved, screenshot, url_name
from tests.factories.reading import DRAFT_FINDINGS, DRAFT_IMPRESSION, reader_in, with_images_and_drafts
from tests.factories.trial import PASSWORD, add_cases, make_trial

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FAST = "window.CXR_READ_OPTIONS = {beatMs: 1000, autosaveMs: 300};"
SAMPLE = """async () => {
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const c = document.getElementById('viewer-canvas');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let h = 0, sum = 0;
  for (let i = 0; i < d.length; i += 4) { h = (h * 31 + d[i]) >>> 0; sum += d[i]; }
  return {hash: h, mean: sum / (d.length / 4)};
}"""


def _setup(code: str):
    t = make_trial(code=code, centers=1)
    cases = add_cases(t, 2)
    with_images_and_drafts(t, cases, size=512)
    return t


def _canvas_center(page):
    box = page.locator("#viewer-canvas").bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def _mark_all(page, trial, present_codes=()):
    for code in trial.finding_codes:
        page.check(f"input[name=present_{code}][value={'present' if code in present_codes else 'absent'}]")
        page.select_option(f"select[name=confidence_{code}]", "4")


def _wait_saved(page):
    page.wait_for_function("document.getElementById('save-status').textContent.startsWith('Saved')")


def test_ai_reader_reads_edits_the_draft_and_submits(live_server, page):
    t = _setup("BRA")
    m = reader_in(t, "ai_assisted")
    page.add_init_script(FAST)
    login(page, live_server, m.user.username, PASSWORD)
    page.goto(live_server.url + reverse("reading:worklist", args=["BRA"]))
    # Usually both cases; 1 when the factory had to enrol a third reader into this arm (tests/factories/trial.py)
    mine = Read.objects.filter(reader=m).count()
    assert mine >= 1 and page.inner_text("#count-todo") == str(mine)
    screenshot(page, "worklist")
    page.keyboard.press("n")
    page.wait_for_url(lambda u: url_name(u) == "reading:read")
    public_id = resolved(page.url).kwargs["public_id"]
    read = Read.objects.get(public_id=public_id)
    assert read.reader_id == m.pk and read.opened_at is not None and read.draft_id is not None

    # The viewer: zoom with the wheel, then window/level by right-drag on the full range
    page.wait_for_function("window.cxrViewer && window.cxrViewer.source !== null")
    s0 = page.evaluate(SAMPLE)
    fit_scale = page.evaluate("window.cxrViewer.state().scale")
    x, y = _canvas_center(page)
    page.mouse.move(x, y)
    page.mouse.wheel(0, -500)
    page.wait_for_function("(s) => window.cxrViewer.state().scale > 1.5 * s", arg=fit_scale)
    s1 = page.evaluate(SAMPLE)
    assert s1["hash"] != s0["hash"]
    assert page.evaluate("window.cxrViewer.state().fullState") == "none"  # not fetched at load
    page.mouse.move(x, y)
    page.mouse.down(button="right")
    page.mouse.move(x - 150, y + 80, steps=6)
    page.mouse.up(button="right")
    # The first window/level gesture fetches the full range and carries the window over onto it
    page.wait_for_function("window.cxrViewer.state().fullRange && window.cxrViewer.state().window.space === 'full'")
    page.evaluate("new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
    s2 = page.evaluate(SAMPLE)
    state = page.evaluate("window.cxrViewer.state()")
    assert state["window"]["space"] == "full" and s2["hash"] != s1["hash"] and s2["mean"] != s1["mean"]
    page.keyboard.press("i")
    s3 = page.evaluate(SAMPLE)
    assert s3["mean"] != s2["mean"]
    page.keyboard.press("r")
    reset = page.evaluate("window.cxrViewer.state()")
    assert reset["window"] is None and reset["invert"] is False and reset["scale"] == pytest.approx(fit_scale)
    page.keyboard.press("+")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("w")
    keyed = page.evaluate("window.cxrViewer.state()")
    assert keyed["scale"] > fit_scale and keyed["tx"] != reset["tx"] and keyed["windowMode"] is True
    page.keyboard.press("w")

    # The draft prefills the form; probabilities beside the findings
    assert page.input_value("#findings_text") == DRAFT_FINDINGS
    assert page.input_value("#impression_text") == DRAFT_IMPRESSION
    assert page.inner_text("tr[data-code=pleural_effusion] .hint").strip() == "87%"
    edited = DRAFT_FINDINGS.replace("left apex", "right apex") + " EDITED-BY-READER"
    page.fill("#findings_text", edited)
    _mark_all(page, t["trial"], present_codes=("pleural_effusion",))
    _wait_saved(page)

    # Reload mid-read: the server's autosave comes back
    page.reload()
    page.wait_for_function("window.cxrViewer && window.cxrViewer.source !== null")
    assert page.input_value("#findings_text") == edited
    assert page.is_checked("input[name=present_pleural_effusion][value=present]")
    assert Read.objects.get(pk=read.pk).opened_at == read.opened_at  # same read, same clock

    # A dropped connection: autosaves fail, the local copy restores the text after reload
    page.route("**/autosave/", lambda route: route.abort())
    page.fill("#impression_text", "LOCAL-ONLY impression")
    page.wait_for_function("document.getElementById('save-status').textContent.startsWith('Offline')")
    page.unroute("**/autosave/")
    page.reload()
    assert page.input_value("#impression_text") == "LOCAL-ONLY impression"
    _wait_saved(page)
    assert Read.objects.get(pk=read.pk).impression_text == "LOCAL-ONLY impression"

    # Work a few seconds (heartbeats every second in this test), then Ctrl+Enter
    for i in range(4):
        page.mouse.move(x + i * 5, y)
        page.wait_for_timeout(700)
    screenshot(page, "read-ai")
    page.focus("#findings_text")
    page.keyboard.press("Control+Enter")
    page.wait_for_function("document.getElementById('form-message').textContent === 'Report submitted.'")

    read.refresh_from_db()
    assert read.status == Read.Status.DONE and read.submitted_at.tzinfo is not None
    assert read.findings_text == edited and read.impression_text == "LOCAL-ONLY impression"
    assert 2 <= read.active_seconds <= read.wall_seconds + 0.5
    assert read.wall_seconds < 120
    assert 0 < read.draft_edit_distance < 1
    # marked absent against p >= 0.5: atelectasis (0.61), lung opacity (0.91); pleural effusion agrees
    assert sorted(read.flipped_findings) == ["atelectasis", "lung_opacity"]
    assert Read.objects.filter(case__trial=t["trial"], submitted_at__isnull=False).count() == 1


def test_unassisted_read_carries_no_trace_of_the_draft(live_server, page):
    t = _setup("BRU")
    m = reader_in(t, "unassisted")
    ai_reader = reader_in(t, "ai_assisted")
    page.add_init_script(FAST)
    log = NetworkLog(page)
    login(page, live_server, m.user.username, PASSWORD)
    page.goto(live_server.url + reverse("reading:worklist", args=["BRU"]))
    page.click("#next-read")
    page.wait_for_url(lambda u: url_name(u) == "reading:read")
    public_id = resolved(page.url).kwargs["public_id"]
    read = Read.objects.get(public_id=public_id)
    assert read.arm.code == "unassisted"
    page.wait_for_function("window.cxrViewer && window.cxrViewer.source !== null")
    s0 = page.evaluate(SAMPLE)
    x, y = _canvas_center(page)
    page.keyboard.down("Shift")
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 120, y - 60, steps=5)
    page.mouse.up()
    page.keyboard.up("Shift")
    assert page.evaluate(SAMPLE)["hash"] != s0["hash"]
    assert page.input_value("#findings_text") == ""
    page.fill("#findings_text", "Lungs are clear. No effusion.")
    page.fill("#impression_text", "Normal chest radiograph.")
    _mark_all(page, t["trial"])
    _wait_saved(page)
    page.wait_for_timeout(1200)
    screenshot(page, "read-unassisted")
    page.dblclick("#submit-read")  # a double click submits once
    page.wait_for_function("document.getElementById('form-message').textContent === 'Report submitted.'")
    # a retry from a second request is answered with the saved result
    again = page.evaluate("""(url) => fetch(url, {method: 'POST', credentials: 'same-origin',
        headers: {'Content-Type': 'application/json',
                  'X-CSRFToken': document.querySelector('input[name=csrfmiddlewaretoken]').value},
        body: JSON.stringify({findings_text: 'other'})}).then(r => r.json().then(b => [r.status, b]))""",
                          reverse("reading-api:submit", args=[public_id]))
    assert again[0] == 200 and again[1]["already_submitted"] is True
    assert again[1]["report"]["findings_text"] == "Lungs are clear. No effusion."
    read.refresh_from_db()
    assert read.status == Read.Status.DONE and read.draft_id is None and read.active_seconds > 0
    page.reload()  # the submitted read opens read-only
    assert page.is_disabled("#findings_text")

    # No trace of the draft in the page source or in any response the browser received
    page_source = page.content()
    draft = read.case.drafts.get()
    assert draft.status == "ready"  # there was a draft to leak
    everything = log.text() + page_source
    assert any(u.endswith(reverse("reading:read", args=["BRU", public_id])) for u, _ in log.bodies)
    read_api = {f"reading-api:{n}" for n in ("detail", "open", "heartbeat", "autosave", "submit")}
    assert any(url_name(u) in read_api for u, _ in log.bodies)
    for needle in (DRAFT_FINDINGS, DRAFT_IMPRESSION, "Zebra", "Sentinel", "0.8731", "0.6123", "87%"):
        assert needle not in everything
    assert "draft" not in everything.lower()
    assert f'"draft_id": {draft.pk}' not in everything

    # Another reader's read: the 404 of an unknown id, on the page and on the API
    other = Read.objects.filter(reader=ai_reader).first()
    resp = page.goto(live_server.url + reverse("reading:read", args=["BRU", other.public_id]))
    assert resp.status == 404
    other_api = live_server.url + reverse("reading-api:detail", args=[other.public_id])
    assert page.request.get(other_api).status == 404
    other.refresh_from_db()
    assert other.opened_at is None


def test_autosaves_carry_active_seconds_and_spare_the_heartbeats(live_server, page):
    """read.js sends the active seconds with each autosave, and no heartbeat while autosaves carried them within
    the beat interval (docs/performance.md, "The reading room's requests"): typing steadily for several beat
    intervals sends autosaves with seconds and no heartbeat, and the read is credited the time."""
    t = _setup("BRS")
    m = reader_in(t, "unassisted")
    page.add_init_script("window.CXR_READ_OPTIONS = {beatMs: 2000, autosaveMs: 300};")
    login(page, live_server, m.user.username, PASSWORD)
    read = Read.objects.filter(reader=m).order_by("order_key").first()
    page.goto(live_server.url + reverse("reading:read", args=["BRS", read.public_id]))
    page.wait_for_function("window.cxrViewer && window.cxrViewer.source !== null")
    page.wait_for_timeout(2500)  # idle typing-wise, active (input a moment ago): a heartbeat carries the seconds
    sent = []
    page.on("request", lambda r: sent.append((r.url, r.post_data_json)) if r.method == "POST" else None)
    for i in range(14):  # ~7 s of typing: 3.5 beat intervals, an autosave every ~0.5 s
        page.type("#findings_text", f"w{i} ")
        page.wait_for_timeout(500)
    _wait_saved(page)
    beats = [b for u, b in sent if u.endswith("/heartbeat/")]
    saves = [b for u, b in sent if u.endswith("/autosave/")]
    assert len(saves) >= 5 and not beats, (len(saves), beats)
    assert all("seconds" in b for b in saves) and sum(b["seconds"] for b in saves) >= 4
    read.refresh_from_db()
    assert read.findings_text.startswith("w0 w1") and read.active_seconds >= 4  # ~7 s typed; the last beat later
    # Typing stops: the seconds since the last autosave go out in a heartbeat within two intervals
    page.mouse.move(10, 10)
    page.wait_for_timeout(4500)
    assert [u for u, _ in sent if u.endswith("/heartbeat/")]
