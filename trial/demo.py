"""The demo trial: a paired-by-case trial from the fixtures, seeded through the same services as real use."""
from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import transaction

from . import services
from .models import Trial

User = get_user_model()
DEMO_CODE = "DEMO-CXR"
DEMO_PASSWORD = "demo-password"


@dataclass
class DemoResult:
    trial: Trial
    logins: dict[str, str] = field(default_factory=dict)
    created: bool = True


def _user(username: str, **extra) -> User:
    return services.get_or_create_user(username, password=DEMO_PASSWORD, **extra)


@transaction.atomic
def seed_people(n_centers: int = 3) -> tuple[Trial, dict[str, str]]:
    coord = _user("coordinator", first_name="Casey", last_name="Coordinator")
    coord.is_staff = True
    coord.save(update_fields=["is_staff"])
    coord.user_permissions.add(*Permission.objects.filter(codename="add_trial"))
    coord = User.objects.get(pk=coord.pk)
    trial = services.create_trial(
        coord, code=DEMO_CODE, title="Demo: AI-drafted chest X-ray reports for junior radiologists",
        design=Trial.Design.PAIRED_BY_CASE, expert_panel_size=3, preference_majority=2,
    )
    centers = [services.add_center(coord, trial, code=f"c{i + 1}", name=name)
               for i, name in enumerate(["North Hospital", "River Clinic", "Hill Medical Center"][:n_centers])]
    services.add_arm(coord, trial, code="unassisted", name="Standard care")
    services.add_arm(coord, trial, code="ai_assisted", name="AI-assisted", is_ai=True)
    readers = []
    for c in centers:
        for j in range(2):
            u = _user(f"reader{len(readers) + 1}")
            readers.append(services.add_member(coord, trial, user=u, role="reader", center=c,
                                               experience="junior" if j == 0 else "senior"))
    for j in range(3):
        services.add_member(coord, trial, user=_user(f"expert{j + 1}"), role="expert", center=centers[j % len(centers)])
    services.add_member(coord, trial, user=_user("statistician"), role="statistician")
    # Block size 2 per center: each center's two readers land in different arms.
    services.generate_allocation_list(coord, trial, seed="demo-seed", block_sizes=[2], slots_per_stratum=20)
    services.advance_status(coord, trial, Trial.Status.ENROLLING)
    for m in readers:
        services.enrol_reader(coord, m)
    services.advance_status(coord, trial, Trial.Status.READING)
    logins = {"coordinator": "coordinator", "reader (AI arm)": "", "reader (unassisted)": "",
              "expert": "expert1", "statistician": "statistician"}
    for m in trial.memberships.filter(role="reader").select_related("arm", "user").order_by("user__username"):
        key = "reader (AI arm)" if m.arm.is_ai else "reader (unassisted)"
        logins[key] = logins[key] or m.user.username
    return trial, logins


def seed_demo() -> DemoResult:
    existing = Trial.objects.filter(code=DEMO_CODE).first()
    if existing is not None:
        return DemoResult(existing, demo_logins(existing), created=False)
    trial, logins = seed_people()
    return DemoResult(trial, logins)


def demo_logins(trial: Trial) -> dict[str, str]:
    logins = {"coordinator": "coordinator", "expert": "expert1", "statistician": "statistician"}
    for m in trial.memberships.filter(role="reader").select_related("arm", "user").order_by("user__username"):
        key = "reader (AI arm)" if m.arm and m.arm.is_ai else "reader (unassisted)"
        logins.setdefault(key, m.user.username)
    return logins
