"""The grounded-report parser (inference/backends/grounding.py): each model family's box syntax, scaled to the
image's pixels by hand-computed values, the markup stripped from the report, boxes mapped to the trial's findings;
and a backend whose model writes markup gets its boxes through Backend.generate."""
from __future__ import annotations

import pytest
from PIL import Image

from inference.backends.base import DEFAULT_FINDINGS, Backend, BackendConfig, Box, DraftResult, ground_result
from inference.backends.grounding import finding_for, has_markup, parse_grounded, to_pixels

F = DEFAULT_FINDINGS


def _xy(box: Box) -> tuple[float, float, float, float]:
    return box.x0, box.y0, box.x1, box.y1


def test_qwen2_tokens_relative_to_1000():
    text = ("Findings: <|object_ref_start|>Left pleural effusion<|object_ref_end|><|box_start|>(600,700),(900,950)"
            "<|box_end|> is seen. Impression: Effusion.")
    g = parse_grounded(text, image_size=(512, 256), findings=F)
    assert g.text == "Findings: Left pleural effusion is seen. Impression: Effusion."
    (box,) = g.boxes
    # 600 / 1000 * 512 = 307.2, 700 / 1000 * 256 = 179.2, 900 * 0.512 = 460.8, 950 * 0.256 = 243.2
    assert _xy(box) == pytest.approx((307.2, 179.2, 460.8, 243.2))
    assert box.finding == "pleural_effusion" and box.label == "Left pleural effusion"


def test_qwen2_5_tokens_in_absolute_pixels_of_the_resized_input():
    text = "<|object_ref_start|>pneumothorax<|object_ref_end|><|box_start|>(28,14),(140,280)<|box_end|>"
    g = parse_grounded(text, image_size=(1000, 2000), findings=F, coords="absolute", input_size=(280, 560))
    # x scale 1000 / 280, y scale 2000 / 560 (both 25/7): 28 -> 100, 14 -> 50, 140 -> 500, 280 -> 1000
    assert _xy(g.boxes[0]) == pytest.approx((100.0, 50.0, 500.0, 1000.0))
    assert g.boxes[0].finding == "pneumothorax" and g.text == "pneumothorax"


def test_qwen_vl_ref_box_and_internvl_lists():
    g = parse_grounded("The <ref>enlarged heart</ref><box>(300,400),(700,800)</box> and "
                       "<ref>patchy opacity</ref><box>[[10, 20, 110, 220], [500,500,600,600]]</box> remain.",
                       image_size=(1000, 1000), findings=F)
    assert g.text == "The enlarged heart and patchy opacity remain."
    assert [b.finding for b in g.boxes] == ["cardiomegaly", "lung_opacity", "lung_opacity"]
    assert [_xy(b) for b in g.boxes] == [(300, 400, 700, 800), (10, 20, 110, 220), (500, 500, 600, 600)]


def test_qwen2_5_json_bbox_2d():
    text = ('Findings: right apical pneumothorax.\n```json\n[{"bbox_2d": [56, 112, 280, 336], "label": "right '
            'pneumothorax"}, {"bbox_2d": [1, 2, 3], "label": "broken"}]\n```')
    g = parse_grounded(text, image_size=(1120, 1120), findings=F, coords="absolute", input_size=(560, 560))
    (box,) = g.boxes  # the three-number one is not a box
    assert _xy(box) == (112.0, 224.0, 560.0, 672.0) and box.finding == "pneumothorax"
    assert g.text == "Findings: right apical pneumothorax."  # the malformed object is markup too


def test_deepmedix_reasoning_steps_with_absolute_boxes():
    text = ("<think> The right costophrenic angle is blunted with [300, 350, 480, 500]; the heart is enlarged with "
            "[150, 200, 370, 420]; the lungs are otherwise clear </think>. The answer is: \\boxed{Findings: Small "
            "right pleural effusion. Impression: Cardiomegaly.}")
    g = parse_grounded(text, image_size=(1024, 1024), findings=F, coords="absolute", input_size=(512, 512))
    assert g.text == "Findings: Small right pleural effusion. Impression: Cardiomegaly."
    assert [b.finding for b in g.boxes] == ["pleural_effusion", "cardiomegaly"]
    assert [_xy(b) for b in g.boxes] == [(600, 700, 960, 1000), (300, 400, 740, 840)]
    assert g.boxes[0].reasoning == "The right costophrenic angle is blunted with"
    assert g.reasoning.startswith("The right costophrenic") and "clear" in g.reasoning


def test_boxes_are_ordered_clipped_and_empty_ones_dropped():
    assert to_pixels((900, 100, 1100, 50), image_size=(200, 100)) == (180.0, 5.0, 200.0, 10.0)
    assert to_pixels((1200, 10, 1300, 20), image_size=(200, 100)) is None  # wholly outside
    assert to_pixels((10, 10, 10, 20), image_size=(200, 100)) is None  # no width
    with pytest.raises(ValueError):
        to_pixels((0, 0, 1, 1), image_size=(10, 10), coords="normalised")


def test_finding_words():
    assert finding_for("blunted left costophrenic angle", F) == "pleural_effusion"
    assert finding_for("right lower lobe consolidation with opacity", F) == "consolidation"  # longer word first
    assert finding_for("rib fracture", F) == ""
    assert finding_for("effusion", ("pneumothorax",)) == ""  # only the trial's findings


def test_text_without_markup_is_left_alone():
    r = DraftResult(findings="Clear.", impression="Normal.", text="Findings: Clear. Impression: Normal.",
                    probabilities={}, backend="x")
    assert not has_markup(r.text)
    ground_result(r, (100, 100), F, {})
    assert r.boxes is None and r.findings == "Clear."


class GroundedModel(Backend):
    """A model whose output carries Qwen-VL grounding markup (what a grounded report generator returns)."""

    name = "grounded-test"

    def _load(self, config: BackendConfig) -> None:
        pass

    def _generate(self, images, findings, context) -> DraftResult:
        text = ("Findings: <ref>Right pneumothorax</ref><box>(500,0),(1000,500)</box>. "
                "Impression: Pneumothorax.")
        return DraftResult(findings=text, impression="", text=text, probabilities={}, backend=self.name)


def test_a_backend_result_with_markup_gets_boxes_in_pixels_of_the_first_image():
    model = GroundedModel()
    model.load({"options": {}})
    result = model.generate([Image.new("RGB", (640, 480)), Image.new("RGB", (100, 100))])
    assert result.findings == "Right pneumothorax." and result.impression == "Pneumothorax."
    (box,) = result.boxes
    assert (box.finding, _xy(box)) == ("pneumothorax", (320.0, 0.0, 640.0, 240.0))
    assert result.parameters["boxes_image_size"] == [640, 480]
    assert result.to_dict()["boxes"][0]["label"] == "Right pneumothorax"  # what Draft.boxes stores
