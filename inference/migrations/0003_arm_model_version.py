"""The arm -> model version link moves from trial.Arm.model_version into this app (docs/architecture.md): the trial
app then knows nothing of inference. Rows are copied; trial 0010 drops the old column afterwards."""
import django.db.models.deletion
from django.db import migrations, models


def copy_links(apps, schema_editor):
    Arm = apps.get_model("trial", "Arm")
    ArmModelVersion = apps.get_model("inference", "ArmModelVersion")
    ArmModelVersion.objects.bulk_create(
        ArmModelVersion(arm_id=arm_id, model_version_id=mv_id)
        for arm_id, mv_id in Arm.objects.filter(model_version__isnull=False).values_list("pk", "model_version_id")
    )


def copy_back(apps, schema_editor):
    Arm = apps.get_model("trial", "Arm")
    ArmModelVersion = apps.get_model("inference", "ArmModelVersion")
    for link in ArmModelVersion.objects.all():
        Arm.objects.filter(pk=link.arm_id).update(model_version_id=link.model_version_id)


class Migration(migrations.Migration):

    dependencies = [
        ("inference", "0002_initial"),
        ("trial", "0009_import_settings_and_review"),
    ]

    operations = [
        migrations.CreateModel(
            name="ArmModelVersion",
            fields=[
                ("arm", models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, primary_key=True,
                                             related_name="model_assignment", serialize=False, to="trial.arm")),
                ("model_version", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT,
                                                    related_name="arm_assignments", to="inference.modelversion")),
            ],
            options={"verbose_name": "arm's model version"},
        ),
        migrations.RunPython(copy_links, copy_back),
    ]
