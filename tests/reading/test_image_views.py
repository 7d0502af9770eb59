"""Image serving: who may see a case's images, the display PNG, and the full range as raw uint16."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from PIL import Image as PILImage

from imaging.selectors import can_view_case_images
from rating.models import Rating
from reading.models import Read
from tests.factories.reading import reads_of

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def test_permissions_and_files(paired):
    un = paired["un_reader"]
    read = reads_of(un).first()
    case = read.case
    image = case.images.get()
    other_center_reader = next(m for m in paired["readers"] if m.center_id != case.center_id)
    expert, expert2 = paired["experts"][0], paired["experts"][1]
    ai_read = Read.objects.get(case=case, arm=paired["arms"]["ai_assisted"])
    Rating.objects.create(case=case, expert=expert, read_a=read, read_b=ai_read)

    assert can_view_case_images(un.user, case)
    assert can_view_case_images(ai_read.reader.user, case)
    assert can_view_case_images(paired["coordinator"], case)
    assert can_view_case_images(expert.user, case)
    assert not can_view_case_images(expert2.user, case)
    assert not can_view_case_images(other_center_reader.user, case)
    assert not can_view_case_images(paired["statistician"].user, case)

    url = {kind: reverse(f"imaging:image-{kind.split('.')[0]}", args=[image.public_id])
           for kind in ("meta.json", "display.png", "full.bin")}
    for user in (un.user, paired["coordinator"], expert.user):
        c = _client(user)
        meta = c.get(url["meta.json"])
        assert meta.status_code == 200
        assert meta.json()["width"] == 256 and meta.json()["display"]["window_width"] > 0
        png = c.get(url["display.png"])
        assert png.status_code == 200 and png["Content-Type"] == "image/png"
        assert b"".join(png.streaming_content)[:8] == b"\x89PNG\r\n\x1a\n"
    for user in (expert2.user, other_center_reader.user, paired["statistician"].user):
        c = _client(user)
        for kind in ("meta.json", "display.png", "full.bin"):
            assert c.get(url[kind]).status_code == 404  # as an unknown id
    assert _client(un.user).get(reverse("imaging:image-display", args=["nope"])).status_code == 404
    anon = Client().get(url["display.png"])
    assert anon.status_code == 302  # to the login page

    full = _client(un.user).get(url["full.bin"])
    assert full.status_code == 200
    w, h = int(full["X-Image-Width"]), int(full["X-Image-Height"])
    raw = b"".join(full.streaming_content)
    assert len(raw) == w * h * 2
    arr = np.frombuffer(raw, dtype="<u2").reshape(h, w)
    with PILImage.open(Path(settings.MEDIA_ROOT) / image.full_range_file) as im:
        expected = np.asarray(im).astype(np.uint16)
    assert np.array_equal(arr, expected) and arr.max() > 255
    cached = Path(settings.MEDIA_ROOT) / "cache" / "full-range" / f"{image.public_id}.u16"
    assert cached.is_file()
    again = b"".join(_client(un.user).get(url["full.bin"]).streaming_content)
    assert again == raw


def test_path_outside_media_root_is_refused(paired):
    un = paired["un_reader"]
    image = reads_of(un).first().case.images.get()
    image.display_file = "../../etc/passwd"
    image.save()
    assert _client(un.user).get(reverse("imaging:image-display", args=[image.public_id])).status_code == 404
