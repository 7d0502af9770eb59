# Issue 14 (concealment): the sealed list gets a secret salt and a scheme; lists sealed before keep the legacy
# scheme (unsalted commitment, random.Random generator) so verify_allocation can still check them.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("trial", "0004_images_move_to_imaging_app"),
    ]

    operations = [
        migrations.AlterField(
            model_name="allocationlist",
            name="seed",
            field=models.CharField(editable=False, max_length=200),
        ),
        migrations.AddField(
            model_name="allocationlist",
            name="salt",
            field=models.CharField(blank=True, editable=False, help_text="Secret 256-bit commitment salt",
                                   max_length=64),
        ),
        # Existing rows: the legacy scheme; new rows: the model default.
        migrations.AddField(
            model_name="allocationlist",
            name="scheme",
            field=models.CharField(default="legacy-v1", editable=False, max_length=12,
                                   help_text="trial.randomisation scheme"),
        ),
        migrations.AlterField(
            model_name="allocationlist",
            name="scheme",
            field=models.CharField(default="v2", editable=False, max_length=12,
                                   help_text="trial.randomisation scheme"),
        ),
        migrations.AlterField(
            model_name="allocationlist",
            name="block_sizes",
            field=models.JSONField(help_text="Secret until lock"),
        ),
        migrations.AlterField(
            model_name="allocationlist",
            name="list_hash",
            field=models.CharField(help_text="sha256 over (salt, seed, list): the commitment", max_length=64),
        ),
    ]
