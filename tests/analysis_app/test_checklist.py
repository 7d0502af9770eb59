"""The CONSORT-AI / SPIRIT-AI checklist (issue 20 item 5) on a small simulated trial: the model version and its
hashes, failed and out-of-distribution drafts with known counts, the findings list, the interaction after lock; the
checklist in results.json and consort_ai.csv; before lock it names no model and no AI arm."""
from __future__ import annotations

import csv
import json
import re

import pandas as pd
import pytest

from analysis.checklist import AFTER_LOCK, ITEMS, NOT_RECORDED
from analysis.services import run_analysis
from inference.models import Draft, ModelVersion, OodAction
from trial import services
from trial.models import Trial

pytestmark = pytest.mark.django_db

WEIGHTS = "ab" * 32
TOKENIZER = "cd" * 32


def _prepare(trial: Trial) -> list[str]:
    """One failed draft, one withheld and one marked out-of-distribution draft, recorded hashes. Returns the
    cases in that order."""
    drafts = list(Draft.objects.filter(case__trial=trial).order_by("case__code"))
    failed, withheld, marked = drafts[0], drafts[1], drafts[2]
    Draft.objects.filter(pk=failed.pk).update(status=Draft.Status.FAILED, error="timed out")
    Draft.objects.filter(pk=withheld.pk).update(ood_action=OodAction.WITHHELD, ood_reasons=["blank"], ood_score=2.0)
    Draft.objects.filter(pk=marked.pk).update(ood_action=OodAction.MARKED, ood_reasons=["noise", "lateral_only"],
                                              ood_score=1.2)
    ModelVersion.objects.filter(pk=marked.model_version_id).update(weights_sha256=WEIGHTS)
    params = {**marked.parameters, "provenance": {"source_files_sha256": {"tokenizer.json": TOKENIZER}}}
    Draft.objects.filter(pk=marked.pk).update(parameters=params)
    # the first ready draft's provenance is read: make every ready draft carry it
    Draft.objects.filter(case__trial=trial, status=Draft.Status.READY).update(parameters=params)
    return [failed.case.code, withheld.case.code, marked.case.code]


def _items(res: dict) -> dict[str, dict]:
    return {i["consort_ai"]: i for i in res["consort_ai"]["items"]}


def test_checklist_before_and_after_lock(tmp_path, make_small_trial):
    out = make_small_trial(code="CHECK", lock=False)
    trial = out["trial"]
    failed_case, _, _ = _prepare(trial)
    n_drafts = Draft.objects.filter(case__trial=trial).count()
    failed_reads = trial.cases.get(code=failed_case).reads.all()
    n_failed_reads, n_failed_done = failed_reads.count(), failed_reads.filter(status="done").count()

    res = run_analysis(trial, tmp_path / "before")
    items = _items(res)
    assert [i["consort_ai"] for i in res["consort_ai"]["items"]] == [c for _k, c, _s, _t in ITEMS]
    assert items["5(i)"]["spirit_ai"] == "11a(i)" and items["19"]["spirit_ai"] == "22"
    version = items["5(i)"]["recorded"]
    assert version.startswith(f"{AFTER_LOCK}: ")
    assert f"weights_sha256 {WEIGHTS[:16]}" in version
    assert f"provenance.source_files_sha256.tokenizer.json {TOKENIZER[:16]}" in version
    poor = items["5(iii)"]["recorded"]
    assert "1 case(s) marked, 1 withheld (reasons: blank 1, lateral_only 1, noise 1)" in poor
    assert f"drafts by status: failed 1, ready {n_drafts - 1}" in poor
    todo = n_failed_reads - n_failed_done
    status = ", ".join(f"{k} {v}" for k, v in sorted({"done": n_failed_done, "todo": todo}.items()) if v)
    assert f"1 case(s) with a failed draft: {n_failed_reads} read(s) of them ({status})" in poor
    assert items["5(v)"]["recorded"].endswith(", ".join(trial.finding_codes))
    assert items["5(vi)"]["recorded"].startswith(AFTER_LOCK)
    assert items["1a,b(i)"]["recorded"] == NOT_RECORDED and items["25"]["recorded"] == NOT_RECORDED
    # Blinding: no model name, no arm name, no masked label presented as the AI arm.
    text = json.dumps(res["consort_ai"])
    assert ModelVersion.objects.get(drafts__case=trial.cases.get(code=failed_case)).name not in text
    for code, name in trial.arms.values_list("code", "name"):
        assert code not in text and name not in text
    for label in ("X", "Y"):
        assert not re.search(rf"\b{label}\b", text)

    # consort_ai.csv next to results.json holds the same items; the page shows the section.
    report = tmp_path / "before" / "report"
    rows = list(csv.DictReader((report / "consort_ai.csv").open(encoding="utf-8")))
    assert [(r["consort_ai"], r["recorded"]) for r in rows] == [(i["consort_ai"], i["recorded"])
                                                                for i in res["consort_ai"]["items"]]
    assert json.loads((report / "results.json").read_text())["consort_ai"] == res["consort_ai"]
    html = (report / "report.html").read_text()
    assert "CONSORT-AI and SPIRIT-AI checklist" in html and "11a(iii)" in html

    coord = trial.memberships.get(role="coordinator").user
    trial = services.advance_status(coord, Trial.objects.get(pk=trial.pk), Trial.Status.LOCKED, reason="test")
    res = run_analysis(trial, tmp_path / "after")
    items = _items(res)
    assert items["5(i)"]["recorded"].startswith("simulated-model-v1: ")
    reads = pd.read_csv(tmp_path / "after" / "export" / "reads.csv", dtype={"arm": str})
    with_draft = reads[(reads["arm"] == "ai_assisted") & (reads["status"] == "done")]
    inter = res["ai_evaluation"]["interaction"]
    assert items["5(vi)"]["recorded"].startswith(f"{inter['n_reads_with_draft']} read(s) showed a draft")
    # the simulation linked every assisted read to its draft before the draft was marked failed here; the read of
    # the draft marked withheld did not show it (reads.draft_shown 0), so the interaction leaves it out
    assert len(with_draft) == 8 and (with_draft["draft_shown"] == 0).sum() == 1
    assert inter["n_reads_with_draft"] == 7
    assert "shown to the ai_assisted arm" in items["4b"]["recorded"]
