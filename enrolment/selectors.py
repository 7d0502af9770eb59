"""The coordinator's case page (issue 17): one case's state across the apps the enrolment workflow joins (its
images, drafts, reads and rating tasks). Enrolment is the lowest app that may import all of them
(docs/architecture.md)."""
from __future__ import annotations

from django.db.models import Count, Q
from django.shortcuts import get_object_or_404
from django.urls import reverse

from inference.models import Draft
from rating.models import Rating
from reading.models import Read
from trial.blinding import is_blinded_participant
from trial.models import Case, Trial
from trial.permissions import Role, require_role


def case_for_coordinator(user, trial_code: str, case_id: int) -> Case:
    trial = get_object_or_404(Trial, code=trial_code)
    require_role(user, trial, Role.COORDINATOR)
    return get_object_or_404(Case.objects.select_related("trial", "center", "arm"), pk=case_id, trial=trial)


def case_overview(user, case: Case) -> dict:
    """What a coordinator may see of one case: metadata, import flags, images (links to the permission-checked
    image endpoints), draft and read status, rating tasks (expert, status, no A/B or arm), and links to the
    amendment pages of submitted reads and ratings while the trial is not locked. No report, draft or rating
    content; arms only to a coordinator who is not also a blinded participant (trial/blinding.py, docs/design.md
    section 5)."""
    require_role(user, case.trial, Role.COORDINATOR)
    show_arms = not is_blinded_participant(user, case.trial)
    images = [
        {"id": im.public_id, "modality": im.modality, "view_position": im.view_position, "rows": im.rows,
         "columns": im.columns, "pixel_spacing": im.pixel_spacing, "flags": list(im.flags or []),
         "burned_in_annotation": im.burned_in_annotation,
         "display_url": reverse("imaging:image-display", args=[im.public_id]),
         "meta_url": reverse("imaging:image-meta", args=[im.public_id])}
        for im in case.images.order_by("created_at", "pk")
    ]
    drafts = [
        {"model_version": d.model_version.display_label, "status": d.status, "queued_at": d.queued_at,
         "finished_at": d.finished_at}
        for d in Draft.objects.filter(case=case).select_related("model_version").order_by("queued_at", "pk")
    ] if show_arms else []  # a draft exists only for the AI arm: its model names the arm
    # no amendment links for a coordinator who also reads or rates: the pages refuse them (others' reads/ratings)
    amendable = not case.trial.is_locked and show_arms
    # A paired case's reads are made in the trial's arm order, so with the arm column hidden the row order would
    # still say which reader is in which arm: then the random public id orders them (docs/design.md section 5).
    read_order = ("session", "pk") if show_arms else ("session", "public_id")
    reads = [
        # a coordinator who is also an expert or reader sees no reader's name: an expert may learn no reader's
        # identity before lock (docs/design.md section 5), and names plus the reading timetable point to arms;
        # nor the timetable: one read submitted and the next opened moments later chain a reader's reads
        {"reader": (r.reader.user.username if show_arms else "hidden") if r.reader_id else None,
         "arm": r.arm.code if show_arms else None, "session": r.session, "status": r.status,
         "opened_at": r.opened_at if show_arms else None, "submitted_at": r.submitted_at if show_arms else None,
         "amend_url": reverse("reading:amend", args=[case.trial.code, r.public_id])
         if amendable and r.is_submitted else None}
        for r in Read.objects.filter(case=case).select_related("reader__user", "arm").order_by(*read_order)
    ]
    rating_tasks = [
        {"expert": t.expert.user.username, "status": t.status, "submitted_at": t.submitted_at,
         "amend_url": reverse("rating:amend", args=[case.trial.code, t.public_id])
         if amendable and t.status == Rating.Status.DONE else None}
        for t in Rating.objects.filter(case=case).select_related("expert__user").order_by("pk")
    ]
    ratings = Rating.objects.filter(case=case).aggregate(
        total=Count("id"), done=Count("id", filter=Q(status=Rating.Status.DONE)))
    return {
        "code": case.code, "center": case.center.code, "status": case.status,
        "arm": case.arm.code if (case.arm_id and show_arms) else None,
        "enrolled_at": case.enrolled_at, "exclusion_reason": case.exclusion_reason,
        "needs_review": case.needs_review, "review_reason": case.review_reason,
        "has_reference_standard": bool(case.reference_findings or case.reference_report),
        "images": images, "drafts": drafts, "reads": reads, "ratings": ratings,
        "rating_tasks": rating_tasks,
        "arm_hidden": not show_arms,
        "can_exclude": case.status != Case.Status.EXCLUDED and not case.trial.is_locked,
    }
