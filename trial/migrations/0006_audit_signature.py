# Issue 14 (audit anchoring): chain heads carry an HMAC-SHA256 signature under AUDIT_SIGNING_KEY (from the
# environment, never stored here). Existing heads are signed now, with the key this migration runs under; their
# links are still checked by verify_audit, so signing does not hide an earlier edit that was not re-hashed.

from django.db import migrations, models


def sign_existing_heads(apps, schema_editor):
    from trial.audit import head_signature

    AuditHead = apps.get_model("trial", "AuditHead")
    for head in AuditHead.objects.filter(signature="").iterator():
        head.signature = head_signature(head.chain, head.count, head.last_hash)
        head.save(update_fields=["signature"])


class Migration(migrations.Migration):

    dependencies = [
        ("trial", "0005_allocation_salt"),
    ]

    operations = [
        migrations.AddField(
            model_name="audithead",
            name="signature",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.RunPython(sign_existing_heads, migrations.RunPython.noop),
    ]
