"""Arm.model_version now lives in inference.ArmModelVersion (copied by inference 0003, which runs first)."""
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("trial", "0009_import_settings_and_review"),
        ("inference", "0003_arm_model_version"),
    ]

    operations = [
        migrations.RemoveField(model_name="arm", name="model_version"),
    ]
