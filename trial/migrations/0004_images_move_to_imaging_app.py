"""Image and IdentityKey move to the imaging app: state only, the tables stay (docs/architecture.md)."""
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('trial', '0003_audit_chain_per_actor'),
        ('imaging', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
        migrations.RemoveField(
            model_name='image',
            name='case',
        ),
        migrations.DeleteModel(
            name='IdentityKey',
        ),
        migrations.DeleteModel(
            name='Image',
        ),
    ], database_operations=[]),
    ]
