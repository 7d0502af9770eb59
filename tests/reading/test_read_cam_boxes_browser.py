"""CAM boxes on the read page (issue 21 item 1): boxes from the expert DenseNet's class-activation maps
(inference/backends/cam.py), computed here with a tiny checkpoint in torchxrayvision's format on the case's stored
image, are drawn by the viewer's AI-box toggle for the AI-arm reader, each where the draft put it, named as the
expert model's activation map; the unassisted reader gets none."""
from __future__ import annotations

import pytest

from inference.backends.xrv_densenet import XrvExpert
from inference.case_views import case_views
from tests.browser import LAPTOP, assert_accessible, screenshot
from tests.factories.reading import reader_in, with_images_and_drafts
from tests.factories.trial import add_cases, make_trial
from tests.inference.xrv_checkpoint import write_tiny_xrv_checkpoint
from tests.reading.test_read_ai_boxes_browser import _open

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _expected(page, box: dict, image_size: list[int]) -> dict:
    return page.evaluate("""([b, size]) => {
      const v = window.cxrViewer, c = v.canvas, r = c.getBoundingClientRect(), css = r.width / c.width;
      const k = v.width / size[0], s = v.view.scale;
      return {x: r.left + (v.view.tx + b.x0 * k * s) * css, y: r.top + (v.view.ty + b.y0 * k * s) * css,
              width: (b.x1 - b.x0) * k * s * css, height: (b.y1 - b.y0) * k * s * css};
    }""", [box, image_size])


def test_cam_boxes_of_the_expert_are_drawn_for_the_ai_reader(live_server, page, tmp_path):
    from inference.models import Draft

    ckpt = tmp_path / "densenet121-res224-all-best.pt"
    write_tiny_xrv_checkpoint(ckpt)

    t = make_trial(code="CAMB", centers=1)
    cases = add_cases(t, 1)
    with_images_and_drafts(t, cases, size=512)
    image, shown = case_views(cases[0])[0]
    boxes = XrvExpert(ckpt, "densenet121-res224-all").cam_boxes(shown, ["pleural_effusion", "cardiomegaly",
                                                                        "lung_opacity", "atelectasis"])
    boxes = [{**b, "image": image.public_id} for b in boxes][:2]
    assert len(boxes) == 2 and all(b["source"] == "cam" for b in boxes)
    Draft.objects.filter(case=cases[0]).update(boxes=boxes, parameters={"boxes_image_size": list(shown.size)})

    page.set_viewport_size(LAPTOP)
    _open(live_server, page, "CAMB", reader_in(t, "ai_assisted").user)
    page.locator("#ai-boxes-toggle").click()
    drawn = page.locator(".ai-box")
    assert drawn.count() == 2
    for i, box in enumerate(boxes):
        got, want = drawn.nth(i).bounding_box(), _expected(page, box, list(shown.size))
        assert all(abs(got[k] - want[k]) < 1.0 for k in want), (got, want)
    drawn.nth(0).focus()
    label = drawn.nth(0).locator(".ai-box-label").inner_text()
    assert label.endswith(": expert model's activation map")
    assert_accessible(page, "read page with CAM boxes")
    screenshot(page, "read-cam-boxes")

    _open(live_server, page, "CAMB", reader_in(t, "unassisted").user)
    assert page.locator("#ai-boxes, #ai-boxes-toggle, .ai-box").count() == 0
