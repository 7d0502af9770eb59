"""Image and IdentityKey, moved from trial: state only over the existing tables trial_image, trial_identitykey."""
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('trial', '0003_audit_chain_per_actor'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
        migrations.CreateModel(
            name='IdentityKey',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(max_length=20)),
                ('original', models.CharField(max_length=200)),
                ('pseudonym', models.CharField(max_length=200)),
                ('trial', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='identity_keys', to='trial.trial')),
            ],
            options={
                'db_table': 'trial_identitykey',
                'constraints': [models.UniqueConstraint(fields=('trial', 'kind', 'original'), name='uniq_identity_key')],
            },
        ),
        migrations.CreateModel(
            name='Image',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('public_id', models.CharField(editable=False, max_length=24, unique=True)),
                ('source_sha256', models.CharField(help_text='Hash of the original file: re-import is idempotent', max_length=64)),
                ('sha256', models.CharField(help_text='Hash of the stored de-identified file', max_length=64)),
                ('dicom_file', models.CharField(max_length=300)),
                ('display_file', models.CharField(help_text='8-bit lossless PNG after VOI/window', max_length=300)),
                ('full_range_file', models.CharField(help_text='16-bit PNG of the full dynamic range', max_length=300)),
                ('sop_instance_uid', models.CharField(help_text='Pseudonymous UID', max_length=64)),
                ('modality', models.CharField(max_length=8)),
                ('view_position', models.CharField(blank=True, max_length=16)),
                ('rows', models.PositiveIntegerField()),
                ('columns', models.PositiveIntegerField()),
                ('bits_allocated', models.PositiveSmallIntegerField()),
                ('bits_stored', models.PositiveSmallIntegerField()),
                ('photometric_interpretation', models.CharField(max_length=16)),
                ('pixel_spacing', models.JSONField(blank=True, null=True)),
                ('display', models.JSONField(default=dict, help_text='What the viewer needs for window/level on the full range')),
                ('burned_in_annotation', models.BooleanField(default=False, help_text='Flagged for coordinator review')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('case', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='images', to='trial.case')),
            ],
            options={
                'db_table': 'trial_image',
                'ordering': ['case', 'created_at'],
                'constraints': [models.UniqueConstraint(fields=('case', 'source_sha256'), name='uniq_image_source')],
            },
        ),
    ], database_operations=[]),
    ]
