"""Test images: the imaging.Image row with its files under MEDIA_ROOT, standing in for the import pipeline's output.
`add_image` writes the import's renditions (an 8-bit display PNG and a 16-bit full-range PNG); `add_drawn_image`
stores a drawn chest picture (no patient data) as both."""
from __future__ import annotations

import hashlib
import io
import random
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFilter

from imaging.models import Image
from trial.models import Case

SAMPLE_PNGS = [
    Path(__file__).resolve().parents[2] / "fixtures" / "cxr-png" / "00000001_000.png",
]
FULL_SCALE = 16  # the 16-bit file holds 12 bits: display value * 16 plus a smooth ramp, so W/L has range to use


def _base_pixels(size: int) -> np.ndarray:
    for p in SAMPLE_PNGS:
        if p.is_file():
            with PILImage.open(p) as im:
                im = im.convert("L")
                if im.size != (size, size):
                    im = im.resize((size, size))
                return np.asarray(im, dtype=np.uint8)
    y, x = np.mgrid[0:size, 0:size]
    img = (x * 200 / size + 20).astype(np.float64)
    disc = (x - size / 2) ** 2 + (y - size / 2) ** 2 < (size / 4) ** 2
    img[disc] = 235
    return img.clip(0, 255).astype(np.uint8)


def write_pngs(case: Case, size: int = 256, name: str = "img") -> tuple[str, str, dict]:
    """Write the display PNG and the 16-bit PNG for a case; returns (display_rel, full_rel, display meta)."""
    base = _base_pixels(size)
    ramp = np.tile(np.linspace(0, FULL_SCALE - 1, size), (size, 1))
    full = (base.astype(np.float64) * FULL_SCALE + ramp).clip(0, 65535).astype(np.uint16)
    rel_dir = Path("renditions") / str(case.trial_id) / case.code
    out = Path(settings.MEDIA_ROOT) / rel_dir
    out.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(base, mode="L").save(out / f"{name}.png")
    lo, hi = int(full.min()), int(full.max())
    # The import's conventions (trial/imaging/rendition.py): stored = modality - min; window in modality units.
    full = (full - lo).astype(np.uint16)
    meta = {"width": size, "height": size, "invert": False, "min": lo, "max": hi,
            "window_center": (lo + hi) / 2, "window_width": hi - lo,
            "full_range": {"encoding": "png-gray16", "slope": 1, "intercept": lo}}
    PILImage.fromarray(full).save(out / f"{name}-16.png")
    return str(rel_dir / f"{name}.png"), str(rel_dir / f"{name}-16.png"), meta


def add_image(case: Case, size: int = 256, name: str = "img") -> Image:
    display_rel, full_rel, meta = write_pngs(case, size, name)
    digest = hashlib.sha256(f"{case.pk}|{name}".encode()).hexdigest()
    return Image.objects.create(
        case=case, source_sha256=digest, sha256=digest, dicom_file=f"dicom/{case.code}/{name}.dcm",
        display_file=display_rel, full_range_file=full_rel, sop_instance_uid=f"2.25.{int(digest[:20], 16)}",
        modality="DX", view_position="PA", rows=size, columns=size, bits_allocated=16, bits_stored=12,
        photometric_interpretation="MONOCHROME2", display=meta,
    )


def png_bytes(size: int = 384, seed: int = 0) -> bytes:
    """A synthetic chest-radiograph-like picture (body, lungs, heart, spine, ribs): no real patient data."""
    rng = random.Random(seed)
    s = size
    img = PILImage.new("L", (s, s), 12)
    d = ImageDraw.Draw(img)
    d.ellipse((0.06 * s, 0.04 * s, 0.94 * s, 1.25 * s), fill=150)  # soft tissue
    for x0, x1 in ((0.14, 0.47), (0.53, 0.86)):  # lungs
        d.ellipse((x0 * s, 0.14 * s, x1 * s, 0.86 * s), fill=52 + rng.randint(0, 10))
    for i in range(9):  # ribs
        y = (0.2 + 0.07 * i) * s
        for x0, x1 in ((0.12, 0.49), (0.51, 0.88)):
            d.arc((x0 * s, y - 0.06 * s, x1 * s, y + 0.1 * s), 200, 340, fill=95, width=max(2, s // 90))
    d.rectangle((0.475 * s, 0.0, 0.525 * s, s), fill=185)  # spine
    d.ellipse((0.38 * s, 0.48 * s, 0.7 * s + rng.randint(0, s // 20), 0.84 * s), fill=165)  # heart
    d.line((0.2 * s, 0.16 * s, 0.46 * s, 0.2 * s), fill=190, width=s // 40)  # clavicles
    d.line((0.54 * s, 0.2 * s, 0.8 * s, 0.16 * s), fill=190, width=s // 40)
    img = img.filter(ImageFilter.GaussianBlur(s / 110))
    noise = PILImage.effect_noise((s, s), 9).point(lambda v: v - 128)
    img = PILImage.eval(PILImage.blend(img, noise.convert("L"), 0.04), lambda v: v)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def add_drawn_image(case: Case, seed: int = 0) -> Image:
    """An Image row over a drawn chest picture (png_bytes) saved as both its display and full-range file."""
    data = png_bytes(seed=seed)
    sha = hashlib.sha256(data + str(case.pk).encode()).hexdigest()
    display = default_storage.save(f"images/{case.trial_id}/{sha}-display.png", ContentFile(data))
    full = default_storage.save(f"images/{case.trial_id}/{sha}-full.png", ContentFile(data))
    return Image.objects.create(
        case=case, source_sha256=sha, sha256=sha, dicom_file=f"images/{case.trial_id}/{sha}.dcm",
        display_file=display, full_range_file=full, sop_instance_uid=f"2.25.{int(sha[:16], 16)}", modality="DX",
        view_position="PA", rows=384, columns=384, bits_allocated=16, bits_stored=12,
        photometric_interpretation="MONOCHROME2",
        display={"min": 0, "max": 255, "window_center": 128, "window_width": 256},
    )


def add_picture(case: Case, picture: PILImage.Image, name: str = "pic", *, view_position: str = "PA",
                flags: tuple[str, ...] = ()) -> Image:
    """An Image row over a given picture (8-bit grey display PNG; the 16-bit file holds the same values * 16):
    blank, noise or a real radiograph for the out-of-distribution checks."""
    grey = np.asarray(picture.convert("L"), dtype=np.uint8)
    rel_dir = Path("renditions") / str(case.trial_id) / case.code
    out = Path(settings.MEDIA_ROOT) / rel_dir
    out.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(grey, mode="L").save(out / f"{name}.png")
    PILImage.fromarray(grey.astype(np.uint16) * FULL_SCALE).save(out / f"{name}-16.png")
    digest = hashlib.sha256(grey.tobytes() + f"{case.pk}|{name}".encode()).hexdigest()
    h, w = grey.shape
    return Image.objects.create(
        case=case, source_sha256=digest, sha256=digest, dicom_file=f"dicom/{case.code}/{name}.dcm",
        display_file=str(rel_dir / f"{name}.png"), full_range_file=str(rel_dir / f"{name}-16.png"),
        sop_instance_uid=f"2.25.{int(digest[:20], 16)}", modality="DX", view_position=view_position, rows=h,
        columns=w, bits_allocated=16, bits_stored=12, photometric_interpretation="MONOCHROME2", flags=list(flags),
        display={"width": w, "height": h, "invert": False, "min": 0, "max": 255 * FULL_SCALE,
                 "window_center": 128 * FULL_SCALE, "window_width": 256 * FULL_SCALE},
    )
