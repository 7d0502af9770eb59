"""Input and output serializers of the import API."""
from rest_framework import serializers


class ImportRequestSerializer(serializers.Serializer):
    center = serializers.CharField()
    files = serializers.ListField(child=serializers.FileField())


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
