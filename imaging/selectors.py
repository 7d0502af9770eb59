"""Reads for images: who may see a case's images, and a case's images as the viewer's page data."""
from __future__ import annotations

from collections.abc import Callable

from django.db.models import Count
from django.urls import reverse

from core.compiled import CompiledQuery
from trial.models import Case, Trial
from trial.permissions import Role, has_role

from .models import Image, ImportRefusal

ImageAccessRule = Callable[[object, Case], bool]
_access_rules: list[ImageAccessRule] = []


def register_image_access(rule: ImageAccessRule) -> None:
    """Apps above imaging (reading: the case's readers; rating: its experts) register who else may see a case's
    images from their AppConfig.ready(), so imaging imports none of them (docs/architecture.md)."""
    if rule not in _access_rules:
        _access_rules.append(rule)


def image_access_rules() -> tuple[ImageAccessRule, ...]:
    return tuple(_access_rules)


def can_view_case_images(user, case: Case) -> bool:
    """The trial's coordinators, plus whoever a registered rule admits (the reader assigned a read of the case,
    experts with a rating task for it). Nobody else, whatever their other roles."""
    if not getattr(user, "is_authenticated", False):
        return False
    if has_role(user, case.trial, Role.COORDINATOR):
        return True
    return any(rule(user, case) for rule in _access_rules)


def image_entries(case: Case) -> list[dict]:
    """The case's images as the viewer's page data: [{id, meta_url}] (used by the read and rating pages)."""
    return [{"id": pid, "meta_url": reverse("imaging:image-meta", args=[pid])} for pid in _IMAGE_IDS(case_id=case.pk)]


# Compiled once per process (core.compiled; issue 19: every read and rating page asks it).
_IMAGE_IDS = CompiledQuery(
    lambda *, case_id: Image.objects.filter(case_id=case_id).order_by("created_at", "pk").values_list("public_id"),
    kind="column", params={"case_id": int})


def import_refusals_by_reason(trial: Trial) -> dict[str, int]:
    """Files the import refused for ``trial``, counted by reason code (issue 20: the CONSORT flow)."""
    rows = (ImportRefusal.objects.filter(trial=trial).values("reason_code").annotate(n=Count("id"))
            .order_by("reason_code"))
    return {r["reason_code"] or "unknown": r["n"] for r in rows}
