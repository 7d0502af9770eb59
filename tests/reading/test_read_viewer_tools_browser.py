"""The viewer's reading tools on the read page (issue 17, reader part): window presets (the file's VOI, lung,
mediastinum, bone) and keyboard window/level, announced in the status line and shown on the image with the view
position and laterality; a loading indicator; the full range fetched only when window/level is first used, sent
as gzip-encoded delta byte planes and decoded to exactly the server's pixels; the next read's display image
prefetched; a magnifier, distance measurement in mm from the stored spacing (saying it is detector spacing), rotate,
flip and full screen; and, on the form, the clinical context and the "normal study" shortcut."""
from __future__ import annotations

import math

import pytest
from django.urls import reverse

from imaging.models import Image
from reading.models import Read
from tests.browser import LAPTOP, assert_accessible, login, screenshot, url_name
from tests.factories.reading import reader_in, reads_of, with_images_and_drafts
from tests.factories.trial import PASSWORD, add_cases, make_trial

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1440, "height": 900}
# The stored image is 1024 x 1024 with 0.2 mm Imager Pixel Spacing; its renditions are 512 x 512 (as an import
# downscales), so one rendition pixel is 0.4 mm.
STORED = 1024
SPACING = 0.2


def _setup(code: str) -> tuple[dict, object]:
    t = make_trial(code=code, centers=1)
    cases = add_cases(t, 2)
    with_images_and_drafts(t, cases, size=512)
    Image.objects.filter(case__trial=t["trial"]).update(
        rows=STORED, columns=STORED, pixel_spacing=[SPACING, SPACING], pixel_spacing_kind="detector",
        laterality="L", patient_age="064Y", patient_sex="F")
    for c in cases:
        c.clinical_indication = "Cough and fever for 5 days"
        c.save(update_fields=["clinical_indication"])
    return t, reader_in(t, "unassisted")


def _open(live_server, page, code: str, m) -> Read:
    login(page, live_server, m.user.username, PASSWORD)
    page.goto(live_server.url + reverse("reading:next", args=[code]))
    page.wait_for_url(lambda u: url_name(u) == "reading:read")
    page.wait_for_function("window.cxrViewer && window.cxrViewer.source !== null && !window.cxrViewer.loading")
    return Read.objects.get(public_id=page.url.rstrip("/").split("/")[-1])


def _state(page) -> dict:
    return page.evaluate("window.cxrViewer.state()")


def _wait_text(page, selector: str, text: str, exact: bool = False) -> None:
    """Wait until the element shows the text (the viewer redraws, and so re-labels, on the next frame)."""
    page.wait_for_function("([sel, text, exact]) => { const t = document.querySelector(sel).textContent; "
                           "return exact ? t === text : t.includes(text); }", arg=[selector, text, exact])


def _voi(page) -> dict:
    return page.evaluate("window.cxrViewer._voi()")


def test_presets_keyboard_window_level_overlay_and_the_full_range_on_demand(live_server, page):
    t, m = _setup("VWA")
    full_requests = []
    page.on("request", lambda r: full_requests.append(r.url) if "/full.bin?encoding=delta-planes" in r.url else None)
    page.set_viewport_size(LAPTOP)
    read = _open(live_server, page, "VWA", m)

    # Nothing but the display image at load: the full range is not fetched (not even in the background)
    page.wait_for_timeout(1500)
    assert full_requests == []
    s = _state(page)
    assert s["fullState"] == "none" and s["window"] is None and s["preset"] == "voi"

    # The next read's display image is prefetched: an image URL only (the same for every arm)
    nxt = reads_of(m).exclude(pk=read.pk).get()
    next_image = nxt.case.images.get()
    prefetch = page.locator("link[rel=prefetch]")
    assert prefetch.count() == 1
    assert prefetch.get_attribute("href") == reverse("imaging:image-display", args=[next_image.public_id])
    assert prefetch.get_attribute("as") == "image"

    # The overlay: view position, laterality, the window; the spacing and what it is
    overlay = page.locator("#viewer-overlay")
    assert overlay.locator(".ov-view").inner_text() == "PA · laterality L"
    assert overlay.locator(".ov-window").inner_text() == "File VOI"
    # 0.2 mm at 1024 pixels, shown at 512
    assert overlay.locator(".ov-spacing").inner_text() == "0.400 mm/px, detector spacing (not calibrated)"
    assert page.get_attribute("[data-viewer=measure]", "title") == (
        "Measure a distance (d): 0.400 mm/px at the detector (Imager Pixel Spacing), not corrected for magnification")
    assert page.locator("#viewer-loading").is_hidden()

    # The loading indicator shows while an image loads, then goes
    shown = page.evaluate("""async () => {
      const v = window.cxrViewer, el = document.getElementById("viewer-loading");
      const p = v.load(v.meta.id ? `/reading/images/${v.meta.id}/meta.json` : "");
      const during = [!el.hidden, el.textContent.trim(), document.getElementById("viewer-status").textContent];
      await p;
      return {during, after: !el.hidden};
    }""")
    assert shown["during"] == [True, "Loading image…", "Loading image…"] and shown["after"] is False

    # Preset "lung" (key 2): the full range is fetched now, once, compressed, and the preset applies to it
    page.locator("#viewer").focus()
    with page.expect_response(lambda r: "/full.bin" in r.url) as resp_info:
        page.keyboard.press("2")
        assert page.locator("#viewer-loading").inner_text().strip() == "Loading full range…"
    resp = resp_info.value
    assert "encoding=delta-planes" in resp.url
    assert resp.headers["content-encoding"] == "gzip" and resp.headers["x-image-encoding"] == "delta-planes"
    page.wait_for_function("window.cxrViewer.state().fullState === 'ready' && window.cxrViewer.state().window")
    assert len(full_requests) == 1
    s, voi = _state(page), _voi(page)
    assert s["preset"] == "lung" and s["window"]["space"] == "full"
    assert s["window"]["center"] == pytest.approx(voi["center"] - 0.2 * voi["width"])
    assert s["window"]["width"] == pytest.approx(0.6 * voi["width"])
    assert page.locator("#viewer-preset").input_value() == "lung"
    w, c = round(s["window"]["width"]), round(s["window"]["center"])
    _wait_text(page, "#viewer-overlay .ov-window", f"Lung · W {w} L {c}", exact=True)
    assert f"Lung · W {w} L {c} (full range)" in page.locator("#viewer-status").inner_text()
    assert page.locator("#viewer-loading").is_hidden()

    # The decoded full range is exactly the server's raw uint16 array
    same = page.evaluate("""async () => {
      const v = window.cxrViewer;
      const r = await fetch(v.meta.full_url.split("?")[0], {credentials: "same-origin"});
      const raw = new Uint16Array(await r.arrayBuffer());
      if (raw.length !== v.full.length) return false;
      for (let i = 0; i < raw.length; i++) if (raw[i] !== v.full[i]) return false;
      return Math.max(...raw.slice(0, 4096)) > 255 || Math.max(...raw) > 255;
    }""")
    assert same is True

    # Mediastinum and bone (keys 3, 4), then back to the file's VOI (1): the rendition as imported
    for key, name, dc, dw in (("3", "mediastinum", 0.2, 0.6), ("4", "bone", 0.3, 0.4)):
        page.keyboard.press(key)
        page.wait_for_function(f"window.cxrViewer.state().preset === '{name}'")
        s = _state(page)
        assert s["window"]["center"] == pytest.approx(voi["center"] + dc * voi["width"])
        assert s["window"]["width"] == pytest.approx(dw * voi["width"])
    page.keyboard.press("1")
    page.wait_for_function("document.querySelector('#viewer-overlay .ov-window').textContent === 'File VOI'")
    assert _state(page)["window"] is None

    # Keyboard window/level: Shift+arrows, 2% of the range a step; announced in the status line
    span = page.evaluate("(() => { const r = window.cxrViewer._fullRange(); return r.hi - r.lo; })()")
    page.keyboard.press("Shift+ArrowRight")
    page.wait_for_function("window.cxrViewer.state().window !== null")
    s = _state(page)
    assert s["window"]["width"] == pytest.approx(voi["width"] + 0.02 * span)
    assert s["window"]["center"] == pytest.approx(voi["center"])
    page.keyboard.press("Shift+ArrowUp")
    page.wait_for_function(f"Math.abs(window.cxrViewer.state().window.center - {voi['center'] + 0.02 * span}) < 1e-6")
    s = _state(page)
    assert s["preset"] is None and page.locator("#viewer-preset").input_value() == ""
    _wait_text(page, "#viewer-status", f"W {round(s['window']['width'])} L {round(s['window']['center'])} (full range)")
    assert page.get_attribute("#viewer-status", "role") == "status"
    # In W/L mode plain arrows window too (w), and pan again after
    page.keyboard.press("w")
    assert page.get_attribute("[data-viewer=window]", "aria-pressed") == "true"
    page.keyboard.press("ArrowLeft")
    narrower = s["window"]["width"] - 0.02 * span
    page.wait_for_function(f"Math.abs(window.cxrViewer.state().window.width - {narrower}) < 1e-6")
    page.keyboard.press("w")
    tx = _state(page)["tx"]
    page.keyboard.press("ArrowLeft")
    assert _state(page)["tx"] > tx
    # The preset menu works as well as the keys
    page.select_option("#viewer-preset", "bone")
    page.wait_for_function("window.cxrViewer.state().preset === 'bone'")
    assert len(full_requests) == 1  # fetched once

    # The clinical context the trial provides, with age and sex kept by de-identification
    clinical = page.locator("#clinical").inner_text()
    assert "Indication: Cough and fever for 5 days" in clinical
    assert "Age: 64 years" in clinical and "Sex: Female" in clinical

    assert_accessible(page, "read page, viewer windowed")
    page.evaluate("window.cxrViewer.fit()")
    screenshot(page, "read-viewer-presets-1280x720")
    page.set_viewport_size(DESKTOP)
    page.wait_for_timeout(200)
    page.evaluate("window.cxrViewer.fit()")
    screenshot(page, "read-viewer-presets-1440x900")


def _canvas_css_point(page, x: float, y: float) -> dict:
    """Rendition pixel (x, y) -> page CSS pixels, through the viewer's own transform."""
    return page.evaluate("""([x, y]) => {
      const v = window.cxrViewer, m = v.matrix(), r = v.canvas.getBoundingClientRect(), css = r.width / v.canvas.width;
      return {x: r.left + (m[0] * x + m[2] * y + m[4]) * css, y: r.top + (m[1] * x + m[3] * y + m[5]) * css};
    }""", [x, y])


def test_magnifier_measurement_rotate_flip_and_full_screen(live_server, page):
    t, m = _setup("VWB")
    page.set_viewport_size(DESKTOP)
    _open(live_server, page, "VWB", m)

    # Magnifier: the button (aria-pressed) and m; the loupe's centre follows the pointer
    loupe_btn = page.locator("[data-viewer=magnifier]")
    loupe_btn.click()
    assert loupe_btn.get_attribute("aria-pressed") == "true"
    p = _canvas_css_point(page, 256, 200)
    page.mouse.move(p["x"], p["y"])
    box = page.locator(".viewer-loupe").bounding_box()
    assert abs(box["x"] + box["width"] / 2 - p["x"]) < 2 and abs(box["y"] + box["height"] / 2 - p["y"]) < 2
    # It magnifies: the loupe holds a 3x view, so it spans a third of the pixels the same width of canvas shows
    assert page.evaluate("window.cxrViewer.state().loupe") is True
    page.locator("#viewer").focus()
    page.keyboard.press("m")
    assert page.locator(".viewer-loupe").count() == 0 and loupe_btn.get_attribute("aria-pressed") == "false"

    # Measurement (d): a drag of 100 rendition pixels across is 40 mm (0.2 mm detector spacing at 1024, shown at 512)
    page.keyboard.press("d")
    assert page.get_attribute("[data-viewer=measure]", "aria-pressed") == "true"
    a, b = _canvas_css_point(page, 150, 250), _canvas_css_point(page, 250, 250)
    page.mouse.move(a["x"], a["y"])
    page.mouse.down()
    page.mouse.move(b["x"], b["y"], steps=5)
    page.mouse.up()
    s = _state(page)
    assert len(s["measurements"]) == 1
    line = s["measurements"][0]
    assert line["unit"] == "mm"
    expected = math.hypot(line["x1"] - line["x0"], line["y1"] - line["y0"]) * 0.4
    assert line["value"] == pytest.approx(expected) and line["value"] == pytest.approx(40, abs=1.0)
    assert page.locator("#viewer-overlay .ov-measure").inner_text() == f"Last line {line['value']:.1f} mm ·"
    assert f"last line {line['value']:.1f} mm" in page.locator("#viewer-status").inner_text()
    assert "not corrected for magnification" in page.get_attribute("[data-viewer=measure]", "title")
    assert_accessible(page, "read page, magnifier and measurement")
    page.locator("[data-viewer=magnifier]").click()
    q = _canvas_css_point(page, 360, 300)
    page.mouse.move(q["x"], q["y"])
    screenshot(page, "read-viewer-tools-1440x900")
    page.set_viewport_size(LAPTOP)
    page.wait_for_timeout(200)
    q = _canvas_css_point(page, 360, 300)
    page.mouse.move(q["x"], q["y"])
    screenshot(page, "read-viewer-tools-1280x720")
    page.locator("[data-viewer=magnifier]").click()

    # Rotate (o) 90 degrees clockwise: the image's top-left corner goes to the top right; the line stays on the
    # same image pixels and keeps its length
    page.locator("#viewer").focus()
    page.keyboard.press("o")
    s2 = _state(page)
    assert s2["orient"] == {"rotate": 90, "flipH": False, "flipV": False}
    corner, far = _canvas_css_point(page, 0, 0), _canvas_css_point(page, 512, 512)
    assert corner["x"] > far["x"] and corner["y"] < far["y"]
    assert s2["measurements"] == s["measurements"]
    # Flip horizontally (h): the corner comes back to the left; flip vertically (button) moves it to the bottom
    page.keyboard.press("h")
    corner, far = _canvas_css_point(page, 0, 0), _canvas_css_point(page, 512, 512)
    assert corner["x"] < far["x"] and corner["y"] < far["y"]
    page.locator("[data-viewer=flip-v]").click()
    assert page.get_attribute("[data-viewer=flip-v]", "aria-pressed") == "true"
    corner, far = _canvas_css_point(page, 0, 0), _canvas_css_point(page, 512, 512)
    assert corner["y"] > far["y"]
    assert "rotated 90°, flipped horizontally, flipped vertically" in page.locator("#viewer-overlay").inner_text()
    # A pointer position maps back to the same image pixel under any orientation
    back = page.evaluate("""() => { const v = window.cxrViewer, m = v.matrix();
      const q = v.toImage(m[0] * 100 + m[2] * 300 + m[4], m[1] * 100 + m[3] * 300 + m[5]); return [q.x, q.y]; }""")
    assert back == [pytest.approx(100), pytest.approx(300)]
    # Escape clears the lines; r resets the orientation
    page.keyboard.press("Escape")
    assert _state(page)["measurements"] == []
    page.keyboard.press("r")
    assert _state(page)["orient"] == {"rotate": 0, "flipH": False, "flipV": False}

    # Measuring from the keyboard (still in measure mode): arrows move a crosshair from the centre, Enter at each end
    assert _state(page)["measureMode"] is True and _state(page)["measurements"] == []
    page.locator("#viewer").focus()  # Enter on a button presses the button, not the measurement
    page.keyboard.press("Enter")
    for _ in range(10):
        page.keyboard.press("ArrowRight")  # 4 device pixels a step
    page.keyboard.press("Enter")
    s3 = _state(page)
    dpr = page.evaluate("window.devicePixelRatio")
    assert len(s3["measurements"]) == 1 and s3["measurements"][0]["unit"] == "mm"
    assert s3["measurements"][0]["value"] == pytest.approx(40 * dpr / s3["scale"] * 0.4)
    _wait_text(page, "#viewer-status", f"last line {s3['measurements'][0]['value']:.1f} mm")
    page.keyboard.press("Escape")
    assert _state(page)["measurements"] == []

    # Full screen: the whole viewer (toolbar included), by the button; Escape (or f) leaves
    page.locator("[data-viewer=fullscreen]").click()
    page.wait_for_function("document.fullscreenElement && document.fullscreenElement.id === 'viewer-root'")
    page.locator("#viewer").focus()
    page.keyboard.press("f")
    page.wait_for_function("document.fullscreenElement === null")


def test_normal_study_marks_every_finding_absent_and_asks_first_when_one_was_present(live_server, page):
    t, m = _setup("VWC")
    page.set_viewport_size(LAPTOP)
    _open(live_server, page, "VWC", m)
    codes = t["trial"].finding_codes
    button = page.locator("#normal-study")
    assert button.inner_text() == "Normal study: all absent"

    # Nothing marked: no question, every finding absent, focus on the first confidence to give
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss() if len(dialogs) == 1 else d.accept()))
    button.click()
    assert dialogs == []
    assert all(page.is_checked(f"input[name=present_{c}][value=absent]") for c in codes)
    assert page.evaluate("document.activeElement.name") == f"confidence_{codes[0]}"
    assert "All 6 findings marked absent" in page.locator("#form-message").inner_text()

    # One marked present: it asks; dismissed, nothing changes; accepted (Alt+N from the keyboard), all absent
    page.check(f"input[name=present_{codes[1]}][value=present]")
    page.locator("#viewer").focus()
    page.keyboard.press("Alt+n")
    assert len(dialogs) == 1 and "from present to absent" in dialogs[0]
    assert page.is_checked(f"input[name=present_{codes[1]}][value=present]")
    button.focus()
    page.keyboard.press("Enter")
    assert len(dialogs) == 2
    assert all(page.is_checked(f"input[name=present_{c}][value=absent]") for c in codes)

    # The change is saved like any other (autosave)
    read = Read.objects.get(reader=m, status=Read.Status.IN_PROGRESS)
    page.wait_for_function("document.getElementById('save-status').textContent.includes('Saved')", timeout=20000)
    read.refresh_from_db()
    assert all((read.finding_marks or {}).get(c, {}).get("present") is False for c in codes)
    assert_accessible(page, "read page after normal study")
