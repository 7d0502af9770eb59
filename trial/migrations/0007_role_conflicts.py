# Issue 14 (role exclusivity): reports, never deletes, memberships that break the rule in
# trial.permissions.role_conflict (an expert holds no other role; a reader is not also statistician or
# coordinator). A coordinator resolves each one through the services (remove_member, with a reason: audited).

from django.db import migrations


def report_role_conflicts(apps, schema_editor):
    from trial.permissions import role_conflict

    Membership = apps.get_model("trial", "Membership")
    held: dict[tuple[int, int], list[str]] = {}
    for user_id, trial_id, role in Membership.objects.order_by("trial_id", "user_id", "pk").values_list(
            "user_id", "trial_id", "role"):
        held.setdefault((trial_id, user_id), []).append(role)
    Trial = apps.get_model("trial", "Trial")
    User = Membership._meta.get_field("user").related_model
    conflicts = []
    for (trial_id, user_id), roles in held.items():
        for i, role in enumerate(roles[1:], start=1):
            why = role_conflict(set(roles[:i]), role)
            if why:
                conflicts.append((trial_id, user_id, roles, why))
                break
    if not conflicts:
        return
    print(f"\n  Role exclusivity: {len(conflicts)} existing conflict(s), kept as they are (resolve them with "
          "remove_member, which is audited):")
    for trial_id, user_id, roles, why in conflicts:
        trial_code = Trial.objects.filter(pk=trial_id).values_list("code", flat=True).first()
        username = User.objects.filter(pk=user_id).values_list("username", flat=True).first()
        print(f"  - trial {trial_code}: {username} holds {', '.join(sorted(roles))}. {why}")


class Migration(migrations.Migration):

    dependencies = [
        ("trial", "0006_audit_signature"),
    ]

    operations = [
        migrations.RunPython(report_role_conflicts, migrations.RunPython.noop, elidable=True),
    ]
