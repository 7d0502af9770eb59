"""Input and output serializers of the import API."""
from django.core.files.uploadedfile import UploadedFile
from rest_framework import serializers


class ImportRequestSerializer(serializers.Serializer):
    """Multipart: the center's code and one or more DICOM files. A refusal is 400 {code: "invalid", <field>: why}
    (context["trial"]: the trial whose centers the code is looked up in)."""

    center = serializers.CharField()
    files = serializers.ListField(child=serializers.FileField())

    def to_internal_value(self, data):
        # Not DRF's per-field errors: the import API's refusals name the field with one sentence (docs/import.md).
        center = self.context["trial"].centers.filter(code=data.get("center", "")).first()
        if center is None:
            raise serializers.ValidationError({"code": "invalid", "center": "Give the code of one of this trial's "
                                                                           "centers."})
        files = [f for f in (data.getlist("files") if hasattr(data, "getlist") else []) if isinstance(f, UploadedFile)]
        if not files:
            raise serializers.ValidationError({"code": "invalid", "files": "Attach one or more DICOM files as "
                                                                         "`files`."})
        return {"center": center, "files": files}


class ImportResultSerializer(serializers.Serializer):
    filename = serializers.CharField()
    status = serializers.ChoiceField(choices=["imported", "duplicate", "refused"])
    reason_code = serializers.CharField(allow_blank=True)
    message = serializers.CharField(allow_blank=True)
    case_code = serializers.CharField(allow_blank=True)
    image_id = serializers.CharField(allow_blank=True)
    flags = serializers.ListField(child=serializers.CharField())


class ImportResponseSerializer(serializers.Serializer):
    results = ImportResultSerializer(many=True)


class ReferenceCsvSerializer(serializers.Serializer):
    csv = serializers.CharField(max_length=5_000_000)


class ReferenceImportedSerializer(serializers.Serializer):
    updated = serializers.IntegerField(help_text="Cases whose reference standard was written")


class RowErrorSerializer(serializers.Serializer):
    row = serializers.IntegerField()
    message = serializers.CharField()


class ReferenceRefusedSerializer(serializers.Serializer):
    code = serializers.ChoiceField(choices=["invalid_rows"])
    errors = RowErrorSerializer(many=True)


class ImageMetaSerializer(serializers.Serializer):
    """What the viewer needs for one image (imaging/image_views.py explains the display and full-range fields)."""

    id = serializers.CharField()
    width = serializers.IntegerField(allow_null=True)
    height = serializers.IntegerField(allow_null=True)
    photometric_interpretation = serializers.CharField(allow_blank=True)
    view_position = serializers.CharField(allow_blank=True)
    pixel_spacing = serializers.JSONField(allow_null=True, help_text="[row, column] mm of the stored rows x columns")
    pixel_spacing_kind = serializers.CharField(
        allow_blank=True, help_text="calibrated | detector (not corrected for magnification) | unstated | empty")
    rows = serializers.IntegerField(help_text="The stored image's rows (the renditions may be smaller)")
    columns = serializers.IntegerField()
    laterality = serializers.CharField(allow_blank=True)
    display = serializers.JSONField(help_text="min, max, window_center, window_width, full_range, invert, ...")
    display_url = serializers.CharField()
    full_url = serializers.CharField(allow_null=True)


class ImageEntrySerializer(serializers.Serializer):
    """One of a case's images on the read and rating pages and APIs (imaging.selectors.image_entries)."""

    id = serializers.CharField()
    meta_url = serializers.CharField()
