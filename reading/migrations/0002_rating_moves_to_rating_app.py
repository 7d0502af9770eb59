"""Rating moves to the rating app: state only, the table reading_rating stays (docs/architecture.md)."""
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('reading', '0001_initial'),
        ('rating', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
        migrations.DeleteModel(
            name='Rating',
        ),
    ], database_operations=[]),
    ]
