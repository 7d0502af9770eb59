"""Factories for tests: people and trials are made through the real services, so audit and rules apply."""
from __future__ import annotations

import hashlib
import itertools
from contextlib import contextmanager
from unittest import mock

import factory
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from trial import services
from trial.models import Trial

User = get_user_model()
PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    password = factory.django.Password(PASSWORD)


@contextmanager
def reproducible_secret_part(label: str):
    """Test trials need reproducible allocations (which reader is in which arm decides which reads each test's
    reader gets), as they had when the seed was used as given. trial.randomisation joins a secret random part (and
    draws a salt) from `secrets.token_hex`; the factory fixes both from the trial's code and seed. Concealment
    itself is tested without this (tests/security/test_concealment.py sets its trial up from a protocol)."""
    calls = itertools.count()

    def fixed(nbytes: int = 32) -> str:
        return hashlib.sha256(f"test-only|{label}|{next(calls)}".encode()).hexdigest()[: 2 * nbytes]

    with mock.patch("trial.randomisation.secrets.token_hex", fixed):
        yield


def make_trial(
    *,
    code: str = "T1",
    design: str = Trial.Design.PAIRED_BY_CASE,
    centers: int = 2,
    readers_per_arm_per_center: int = 1,
    experts: int = 2,
    ai_model: bool = True,
    seed: str = "seed-1",
    block_sizes=(2, 4),
    slots_per_stratum: int | None = None,
    status: str = Trial.Status.READING,
    enrol_readers: bool = True,
    allow_retrieval_baseline: bool = True,
    extra_arms: tuple[str, ...] = (),
    **settings,
) -> dict:
    """A ready trial: coordinator, centers, two arms (more with ``extra_arms``), readers, experts, a statistician,
    a sealed list.
    The AI arm's default model is the retrieval baseline (tests have no weights), so the trial allows it unless
    ``allow_retrieval_baseline=False``."""
    coord = UserFactory(username=f"{code.lower()}-coord", is_staff=True)
    coord.user_permissions.add(*Permission.objects.filter(codename="add_trial"))
    coord = User.objects.get(pk=coord.pk)
    trial = services.create_trial(coord, code=code, title=f"Trial {code}", design=design,
                                  allow_retrieval_baseline=allow_retrieval_baseline, **settings)
    cs = [services.add_center(coord, trial, code=f"c{i + 1}", name=f"Center {i + 1}") for i in range(centers)]
    un = services.add_arm(coord, trial, code="unassisted", name="Standard care")
    ai = services.add_arm(coord, trial, code="ai_assisted", name="AI-assisted", is_ai=ai_model)
    more = {a: services.add_arm(coord, trial, code=a, name=f"Arm {a}", is_ai=ai_model) for a in extra_arms}
    readers = []
    for c in cs:
        for j in range(2 * readers_per_arm_per_center):
            u = UserFactory(username=f"{code.lower()}-reader-{c.code}-{j}")
            readers.append(services.add_member(coord, trial, user=u, role="reader", center=c, experience="junior"))
    expert_ms = []
    for j in range(experts):
        u = UserFactory(username=f"{code.lower()}-expert-{j}")
        expert_ms.append(services.add_member(coord, trial, user=u, role="expert", center=cs[j % len(cs)]))
    stat = services.add_member(coord, trial, user=UserFactory(username=f"{code.lower()}-stat"), role="statistician")
    with reproducible_secret_part(f"{code}|{seed}"):
        services.generate_allocation_list(coord, trial, seed=seed, block_sizes=list(block_sizes),
                                          slots_per_stratum=slots_per_stratum)
    order = services.STATUS_ORDER
    while order.index(trial.status) < order.index(status):
        # A reason every step: the factory moves on with work outstanding (no reads yet), which needs one.
        trial = services.advance_status(coord, trial, order[order.index(trial.status) + 1], reason="test")
    if enrol_readers and trial.randomisation_unit == "reader" and trial.status in ("enrolling", "reading"):
        readers = [services.enrol_reader(coord, m) for m in readers]
        readers += _complete_arms_per_center(coord, trial, cs, readers, code)
    trial.refresh_from_db()
    return {"trial": trial, "coordinator": coord, "centers": cs, "arms": {"unassisted": un, "ai_assisted": ai, **more},
            "readers": readers, "experts": expert_ms, "statistician": stat}


def _complete_arms_per_center(coord, trial, centers, readers, code: str) -> list:
    """With block sizes 2 and 4 (a single size is refused since issue 14) a center's two readers may both land in
    one arm (p = 1/6). Paired designs need a reader of each arm at each center, as a real coordinator would ensure:
    enrol one more reader there until both arms are present (one suffices with block sizes 2 and 4). Extra readers
    go at the end of the list."""
    extra = []
    for c in centers:
        while len({m.arm_id for m in [*readers, *extra] if m.center_id == c.pk}) < trial.arms.count():
            n = sum(m.center_id == c.pk for m in [*readers, *extra])
            u = UserFactory(username=f"{code.lower()}-reader-{c.code}-{n}")
            m = services.add_member(coord, trial, user=u, role="reader", center=c, experience="junior")
            extra.append(services.enrol_reader(coord, m))
    return extra


def add_cases(t: dict, n: int, enrol: bool = True, prefix: str = "CASE") -> list:
    cases = []
    for i in range(n):
        c = services.add_case(
            t["coordinator"], t["trial"], center=t["centers"][i % len(t["centers"])], code=f"{prefix}{i:05d}"
        )
        if enrol:
            c = services.enrol_case(t["coordinator"], c)
        cases.append(c)
    return cases


@pytest.fixture
def trial_setup(db):
    return make_trial()
