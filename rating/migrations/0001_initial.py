"""Rating, moved from reading: state only over the existing table reading_rating."""
import django.db.models.deletion
import reading.models
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('reading', '0001_initial'),
        ('trial', '0003_audit_chain_per_actor'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
        migrations.CreateModel(
            name='Rating',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('public_id', models.CharField(default=reading.models.opaque_id, editable=False, max_length=24, unique=True)),
                ('order_seed', models.CharField(blank=True, help_text='Seed the A/B order was drawn from', max_length=64)),
                ('order_key', models.BigIntegerField(default=0)),
                ('status', models.CharField(choices=[('todo', 'To do'), ('in_progress', 'In progress'), ('done', 'Done')], default='todo', max_length=12)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('opened_at', models.DateTimeField(blank=True, null=True)),
                ('submitted_at', models.DateTimeField(blank=True, null=True)),
                ('autosaved_at', models.DateTimeField(blank=True, null=True)),
                ('preference', models.CharField(blank=True, choices=[('A', 'Report A'), ('B', 'Report B'), ('none', 'No preference')], max_length=4)),
                ('quality_a', models.PositiveSmallIntegerField(blank=True, null=True)),
                ('quality_b', models.PositiveSmallIntegerField(blank=True, null=True)),
                ('comment', models.TextField(blank=True)),
                ('case', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='ratings', to='trial.case')),
                ('expert', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='ratings', to='trial.membership')),
                ('read_a', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='reading.read')),
                ('read_b', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='reading.read')),
            ],
            options={
                'db_table': 'reading_rating',
                'ordering': ['order_key'],
                'constraints': [models.UniqueConstraint(fields=('case', 'expert'), name='uniq_rating_case_expert'), models.CheckConstraint(condition=models.Q(('quality_a__isnull', True), models.Q(('quality_a__gte', 1), ('quality_a__lte', 5)), _connector='OR'), name='rating_quality_a_range'), models.CheckConstraint(condition=models.Q(('quality_b__isnull', True), models.Q(('quality_b__gte', 1), ('quality_b__lte', 5)), _connector='OR'), name='rating_quality_b_range')],
            },
        ),
    ], database_operations=[]),
    ]
