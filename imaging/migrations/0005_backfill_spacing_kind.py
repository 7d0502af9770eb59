"""Fill pixel_spacing_kind and laterality of images imported before 0003 from their stored de-identified DICOM
headers (no pixels read). A missing or unreadable file leaves the image as it was: the viewer then says that what
the spacing means was not recorded."""
from pathlib import Path

import pydicom
from django.conf import settings
from django.db import migrations

from imaging.dicom.summary import instance_summary


def backfill(apps, schema_editor):
    Image = apps.get_model("imaging", "Image")
    root = Path(settings.MEDIA_ROOT).resolve()
    for image in Image.objects.filter(pixel_spacing_kind="").exclude(dicom_file="").iterator():
        path = (root / image.dicom_file).resolve()
        if root not in path.parents or not path.is_file():
            continue
        try:
            summary = instance_summary(pydicom.dcmread(path, stop_before_pixels=True))
        except Exception:  # noqa: BLE001  (an unreadable file is left as it was)
            continue
        image.pixel_spacing_kind = summary.pixel_spacing_kind
        image.laterality = image.laterality or summary.laterality
        image.save(update_fields=["pixel_spacing_kind", "laterality"])


class Migration(migrations.Migration):
    dependencies = [("imaging", "0004_viewer_metadata")]
    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
