"""Attacks on the sixth session's full-range cache (imaging/range_cache.py: written at import, encoded by the Celery
task imaging.tasks.encode_full_range): who can fetch it, what its names say, and what a dead worker or a
half-written file leaves for a reader. Real J2K fixture, real PostgreSQL; the task is called as the worker would."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from imaging import range_cache
from imaging import services as imports
from imaging.models import Image
from imaging.tasks import encode_full_range
from tests.factories.trial import make_trial
from trial.models import Membership, Trial

pytestmark = pytest.mark.django_db

RG1 = Path(settings.BASE_DIR) / "fixtures" / "dicom" / "RG1_CR_chest_MONO1_J2K_lossless.dcm"


@pytest.fixture
def imported(db, django_capture_on_commit_callbacks):
    t = make_trial(code="FRA", status=Trial.Status.SETUP, enrol_readers=False)
    with django_capture_on_commit_callbacks(execute=True):  # the raw cache is written after the import's commit
        r = imports.import_file(t["coordinator"], t["trial"], t["centers"][0], "rg1.dcm", RG1.read_bytes())
    assert r.status == "imported", r
    t["image"] = Image.objects.select_related("case").get(public_id=r.image_id)
    return t


def _client(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def _full(client: Client, image: Image, planes: bool):
    url = reverse("imaging:image-full", args=[image.public_id]) + ("?encoding=delta-planes" if planes else "")
    return client.get(url, HTTP_ACCEPT_ENCODING="gzip")


def _body(resp) -> bytes:
    return b"".join(resp.streaming_content) if resp.streaming else resp.content


def test_other_trials_and_unassigned_members_get_no_full_range_and_names_say_nothing(imported):
    t, image = imported, imported["image"]
    assert encode_full_range(image.pk) == "written"
    raw = range_cache.raw_path(image.public_id)
    # The cache's file names are the image's opaque id: no case code (it carries the center), trial or arm.
    for p in (raw, range_cache.planes_path(raw)):
        assert p.is_file() and p.name.startswith(image.public_id)
        assert image.case.code not in p.name and t["trial"].code not in p.name
    other = make_trial(code="FRB", experts=1, status=Trial.Status.SETUP, enrol_readers=False)
    intruders = {"other trial's coordinator": other["coordinator"],
                 "statistician": t["statistician"].user,
                 "expert without a task of the case": t["experts"][0].user,
                 "reader without a read of the case": t["readers"][0].user}
    for who, user in intruders.items():
        for planes in (False, True):
            resp = _full(_client(user), image, planes)
            assert resp.status_code in (403, 404), who
            assert b"\x00" not in resp.content and resp.get("X-Image-Width") is None, who
    # A statistician who is also the other trial's coordinator gets nothing through that role either.
    Membership.objects.create(user=t["statistician"].user, trial=other["trial"], role="coordinator")
    assert _full(_client(t["statistician"].user), image, True).status_code in (403, 404)
    assert _full(_client(t["coordinator"]), image, True).status_code == 200


def test_a_dead_worker_or_a_half_written_file_is_never_served(imported):
    """A worker killed mid-write leaves a temporary file beside the cache; a raw file cut short (a full disk, a copy
    interrupted) keeps a fresh mtime. Neither reaches a reader: the temporary name is never served, the cut raw
    file is remade from the stored DICOM, and the task does not encode it."""
    t, image = imported, imported["image"]
    raw = range_cache.raw_path(image.public_id)
    whole = raw.read_bytes()
    w, h = image.display["width"], image.display["height"]
    # the worker died while writing the planes: a partial temporary file, no planes file
    (raw.parent / "dead-worker.tmp").write_bytes(gzip.compress(b"\x01" * 100)[:20])
    assert not range_cache.planes_path(raw).exists()
    c = _client(t["coordinator"])
    served = _body(_full(c, image, True))
    assert gzip.decompress(served) == range_cache.delta_planes(np.frombuffer(whole, "<u2").reshape(h, w))
    # the raw cache cut short after the planes were made
    range_cache.planes_path(raw).unlink()
    raw.write_bytes(whole[: len(whole) // 2])
    assert encode_full_range(image.pk) == "no raw cache"  # nothing encoded from half the pixels
    assert not range_cache.planes_path(raw).exists()
    resp = _full(c, image, False)
    assert resp.status_code == 200 and _body(resp) == whole  # remade, whole
    assert raw.read_bytes() == whole
    assert encode_full_range(image.pk) == "written" and encode_full_range(image.pk) == "fresh"
    assert gzip.decompress(_body(_full(c, image, True))) == gzip.decompress(served)
