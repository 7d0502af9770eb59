"""Boxes from grounded report generators' text (issue 21 item 1): parse, map to the trial's findings, scale to the
image's pixels, and strip the markup from the report the reader sees. Pure: no Django, no torch.

Syntaxes (what each model family writes; coordinates are the model's, converted here):

- ``qwen2``: ``<|object_ref_start|>left effusion<|object_ref_end|><|box_start|>(x1,y1),(x2,y2)<|box_end|>``
  (Qwen2-VL's special tokens; coordinates 0-1000 relative to the input image). Qwen2.5-VL writes the same tokens
  with absolute pixels of its resized input, so the scale is the caller's choice (``coords``).
- ``ref``: ``<ref>left effusion</ref><box>(x1,y1),(x2,y2)</box>`` (Qwen-VL) and ``<ref>..</ref><box>[[x1, y1, x2,
  y2], ...]</box>`` (InternVL); 0-1000 relative.
- ``json``: ``{"bbox_2d": [x1, y1, x2, y2], "label": "..."}`` objects (Qwen2.5-VL's grounding output), absolute
  pixels of the model's input.
- ``think``: DeepMedix-R1's reasoning, ``<think> step 1 with [x_min, y_min, x_max, y_max]; step 2 with [...]
  </think> The answer is: \\boxed{...}`` (its prompt, src/xray_format.jinja of DeepReasoning/DeepMedix-R1):
  absolute pixels of its input (its reward penalises coordinates above 512, the input size). Each step's text is
  kept as the box's reasoning and names the finding.

Coordinate systems (``coords``): ``"rel1000"`` (0-1000 of the input, whatever its size) or ``"absolute"`` (pixels of
an input of ``input_size`` (width, height); default: the image itself). Boxes are returned in pixels of the image
(``image_size``, the stored image the viewer shows), corners ordered, clipped to the image; empty boxes dropped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .text import parse_report

if TYPE_CHECKING:  # base imports this module (Box, ground_result); the type only
    from .base import DraftResult


@dataclass
class Box:
    """A region for a finding, in pixels of the input image: (x0, y0) top-left, (x1, y1) bottom-right."""

    finding: str
    x0: float
    y0: float
    x1: float
    y1: float
    score: float = 1.0
    label: str = ""  # the model's words for the region, when it gave any
    reasoning: str = ""  # the reasoning step that cites the region (DeepMedix-R1 style), when any


_NUM = r"[-+]?\d+(?:\.\d+)?"
_PAIR = rf"\(\s*({_NUM})\s*,\s*({_NUM})\s*\)\s*,?\s*\(\s*({_NUM})\s*,\s*({_NUM})\s*\)"
_QUAD = rf"\[\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*\]"

_QWEN2 = re.compile(
    r"(?:<\|object_ref_start\|>(?P<label>.*?)<\|object_ref_end\|>\s*)?<\|box_start\|>(?P<body>.*?)<\|box_end\|>",
    re.DOTALL)
_REF = re.compile(r"(?:<ref>(?P<label>.*?)</ref>\s*)?<box>(?P<body>.*?)</box>", re.DOTALL)
_THINK = re.compile(r"<think>(?P<body>.*?)</think>", re.DOTALL)
_BOXED = re.compile(r"\\boxed\{(?P<answer>.*)\}", re.DOTALL)
_JSON_OBJECT = re.compile(r"\{[^{}]*\"bbox_2d\"[^{}]*\}")
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)

#: Words that name a finding in a box's label or reasoning step (lower case; first match wins, longest first).
FINDING_WORDS: dict[str, tuple[str, ...]] = {
    "pleural_effusion": ("pleural effusion", "effusion", "costophrenic"),
    "pneumothorax": ("pneumothorax", "pleural line", "absent lung markings"),
    "atelectasis": ("atelectasis", "atelectatic", "collapse", "volume loss"),
    "consolidation": ("consolidation", "air bronchogram", "pneumonia"),
    "cardiomegaly": ("cardiomegaly", "enlarged heart", "cardiac silhouette", "heart size", "enlarged cardiac",
                     "heart"),
    "lung_opacity": ("lung opacity", "opacity", "opacities", "opacification", "infiltrate", "haziness"),
    "support_devices": ("support device", "catheter", "tube", "pacemaker", "line tip", "wire"),
}


@dataclass(frozen=True)
class GroundedText:
    """The text without markup (what the reader sees), the boxes, and DeepMedix-style reasoning when present."""

    text: str
    boxes: list[Box]
    reasoning: str = ""


def finding_for(phrase: str, findings: Sequence[str]) -> str:
    """The trial finding a phrase names ("" when none of ``findings`` is named; the box is kept, unassigned)."""
    low = phrase.lower()
    hits = []
    for code in findings:
        for word in (*FINDING_WORDS.get(code, ()), code.replace("_", " ")):
            at = low.find(word)
            if at >= 0:
                hits.append((-len(word), at, code))
    return min(hits)[2] if hits else ""


def _scale(coords: str, image_size: tuple[int, int], input_size: tuple[int, int] | None) -> tuple[float, float]:
    w, h = image_size
    if coords == "rel1000":
        return w / 1000.0, h / 1000.0
    if coords == "absolute":
        iw, ih = input_size or image_size
        return w / float(iw), h / float(ih)
    raise ValueError(f"unknown coordinate system {coords!r}: use 'rel1000' or 'absolute'")


def to_pixels(values: Sequence[float], *, image_size: tuple[int, int], coords: str = "rel1000",
              input_size: tuple[int, int] | None = None) -> tuple[float, float, float, float] | None:
    """(x0, y0, x1, y1) in pixels of the image: scaled, corners ordered, clipped; None for an empty box."""
    sx, sy = _scale(coords, image_size, input_size)
    x0, y0, x1, y1 = (float(v) for v in values)
    x0, x1 = sorted((x0 * sx, x1 * sx))
    y0, y1 = sorted((y0 * sy, y1 * sy))
    w, h = image_size
    x0, x1 = min(max(x0, 0.0), w), min(max(x1, 0.0), w)
    y0, y1 = min(max(y0, 0.0), h), min(max(y1, 0.0), h)
    if x1 - x0 <= 0 or y1 - y0 <= 0:
        return None
    return round(x0, 2), round(y0, 2), round(x1, 2), round(y1, 2)


def _quads(body: str) -> list[tuple[str, ...]]:
    return re.findall(_PAIR, body) or re.findall(_QUAD, body)


def _box(values, label: str, findings, reasoning: str = "", **scale) -> Box | None:
    px = to_pixels(values, **scale)
    if px is None:
        return None
    return Box(finding=finding_for(f"{label} {reasoning}", findings), x0=px[0], y0=px[1], x1=px[2], y1=px[3],
               label=label.strip(), reasoning=reasoning.strip())


def _tagged(text: str, pattern: re.Pattern, findings, **scale) -> tuple[str, list[Box]]:
    """Boxes of the tag syntaxes; the markup is replaced by its label so the sentence still reads."""
    boxes: list[Box] = []

    def replace(match: re.Match) -> str:
        label = (match.group("label") or "").strip()
        for quad in _quads(match.group("body")):
            box = _box(quad, label, findings, **scale)
            if box is not None:
                boxes.append(box)
        return label

    return pattern.sub(replace, text), boxes


def _json_boxes(text: str, findings, **scale) -> tuple[str, list[Box]]:
    boxes: list[Box] = []
    spans = []
    for match in _JSON_OBJECT.finditer(text):
        spans.append(match.span())  # markup either way: a malformed object is dropped from the text, unboxed
        try:
            obj = json.loads(match.group(0))
            values = [float(v) for v in obj["bbox_2d"]]
        except (ValueError, TypeError, KeyError):
            continue
        if len(values) != 4:
            continue
        box = _box(values, str(obj.get("label", "")), findings, **scale)
        if box is not None:
            boxes.append(box)
    for start, end in reversed(spans):
        text = text[:start] + text[end:]
    if spans:  # what is left of a JSON list or code fence around the objects
        text = _FENCE.sub(lambda m: m.group(1), text)
        text = re.sub(r"\[[\s,]*\]", "", text)
    return text, boxes


def _think(text: str, findings, **scale) -> tuple[str, list[Box], str]:
    match = _THINK.search(text)
    if not match:
        return text, [], ""
    reasoning = match.group("body").strip()
    boxes = []
    for step in re.split(r";\s*|\n+", reasoning):
        for quad in re.findall(_QUAD, step):
            box = _box(quad, "", findings, reasoning=re.sub(_QUAD, "", step).strip(" ,.:"), **scale)
            if box is not None:
                boxes.append(box)
    rest = text[: match.start()] + text[match.end():]
    answer = _BOXED.search(rest)
    rest = answer.group("answer") if answer else re.sub(r"^\W*The answer is:?", "", rest.strip(), flags=re.I)
    return rest.strip(), boxes, reasoning


def parse_grounded(text: str, *, image_size: tuple[int, int], findings: Sequence[str],
                   coords: str = "rel1000", input_size: tuple[int, int] | None = None) -> GroundedText:
    """Every syntax above, in one pass each; the text comes back without markup. ``findings``: the trial's codes."""
    scale = {"image_size": image_size, "coords": coords, "input_size": input_size}
    text, think_boxes, reasoning = _think(text, findings, **scale)
    text, qwen_boxes = _tagged(text, _QWEN2, findings, **scale)
    text, ref_boxes = _tagged(text, _REF, findings, **scale)
    text, json_boxes = _json_boxes(text, findings, **scale)
    text = re.sub(r"[ \t]{2,}", " ", text).strip()
    return GroundedText(text, think_boxes + qwen_boxes + ref_boxes + json_boxes, reasoning)


def has_markup(text: str) -> bool:
    return bool(_THINK.search(text) or _QWEN2.search(text) or _REF.search(text) or _JSON_OBJECT.search(text))


def grounding_options(options: Mapping) -> dict:
    """The parser's settings from a model version's ``options``: ``box_coords`` (``rel1000``, the default, or
    ``absolute``) and ``box_input_size`` ([width, height] of the model's input, for ``absolute``)."""
    size = options.get("box_input_size")
    return {"coords": str(options.get("box_coords", "rel1000")),
            "input_size": (int(size[0]), int(size[1])) if size else None}


def ground_result(result: DraftResult, image_size: tuple[int, int], findings: Sequence[str],
                  options: Mapping[str, Any]) -> None:
    """A report with grounding markup (inference/backends/grounding.py) gets its boxes, in pixels of the first
    image, and loses the markup; the reasoning, if any, goes to the parameters. A result that already has boxes, or
    whose text has no markup, is left as it is."""
    if result.boxes or not has_markup(result.text or ""):
        return
    grounded = parse_grounded(result.text, image_size=image_size, findings=findings, **grounding_options(options))
    result.text = grounded.text
    result.findings, result.impression = parse_report(grounded.text)
    result.boxes = grounded.boxes
    result.parameters = {**result.parameters, "boxes_image_size": list(image_size),
                         **({"reasoning": grounded.reasoning} if grounded.reasoning else {})}
