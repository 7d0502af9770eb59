"""The tidy export: cases, allocations, reads, drafts, ratings as CSV, a data dictionary and a manifest.

Before lock the arms are masked as X/Y (the mapping is drawn from the trial's secret, so it is stable across exports
but not guessable from arm order); after lock they are named. Before lock the export is also arm-neutral
(docs/design.md section 5): columns that exist because of one arm (a read's draft edits), and the experts' blinding
guesses (whose agreement with the masked arms would name them), are withheld and listed in the manifest; the data
dictionary describes only the columns present. Every text cell is escaped against CSV formula injection.
The manifest carries row counts, a sha256 per table, a hash of all the data, and the code version, so an analysis
can be reproduced from the export alone.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import subprocess
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from analysis.stats.chexbert_f1 import CONDITIONS as CHEXBERT_CONDITIONS
from analysis.stats.chexbert_f1 import slug as chexbert_slug
from analysis.stats.text_metrics import report_scores
from core.keyed import keyed_hex
from imaging.selectors import import_refusals_by_reason
from inference.backends.chexbert import ChexbertLabeler
from inference.models import Draft, ModelVersion
from inference.selectors import RETRIEVAL_NOT_ALLOWED, arena_model_versions
from rating.models import ArenaAmendment, ArenaTask, Rating, RatingAmendment
from rating.selectors import arena_left_out_by_reason
from reading.models import Read, ReadAmendment
from reading.selectors import shown_boxes
from reading.services import DRAFT_THRESHOLD
from trial.models import AllocationSlot, Case, Membership, Trial

MASK_LABELS = ["X", "Y", "Z", "W"]

DICTIONARY = {
    "cases": {
        "case_code": "Pseudonymous case code",
        "center": "Center code",
        "status": "imported / enrolled / read / rated / excluded",
        "enrolled": "1 if the case was enrolled",
        "exclusion_reason": "Why a case was excluded (CONSORT flow)",
        "ref_<finding>": "Reference standard for the finding: 1 present, 0 absent, empty unknown",
        "chexbert_labelled": "1 when the case's reference report was labelled by CheXbert (local weights only; "
                             "docs/ai-evaluation.md)",
        "chexbert_<condition>": "CheXbert's label of the reference report: 1 positive, 0 negative, -1 uncertain, "
                                "empty blank",
    },
    "allocations": {
        "unit_type": "reader or case", "unit": "Reader code or case code", "stratum": "Randomisation stratum",
        "sequence": "Position in the stratum's list",
        "block_size": "Size of the permuted block (after lock only: block sizes stay sealed until then)",
        "arm": "Allocated arm (masked before lock)",
    },
    "reads": {
        "read_id": "Opaque read id", "case_code": "Case", "center": "Center of the case",
        "reader": "Reader code (R01...)", "reader_experience": "junior / senior", "arm": "Arm (masked before lock)",
        "session": "Crossover: 1st or 2nd read of the case", "status": "todo / in_progress / done",
        "opened_at": "When the reader first opened the read (ISO 8601, server clock, UTC)",
        "submitted_at": "When the read was submitted (ISO 8601, server clock, UTC); empty while not submitted",
        "active_seconds": "Active reading time reported by the browser (visible and in use), capped by wall time",
        "wall_seconds": "submitted_at - opened_at, server clock",
        "draft_edit_distance": "After lock only. Reads that showed a draft: normalised edit distance between draft "
                               "and final text (0 = unchanged); empty otherwise",
        "n_flipped_findings": "After lock only. Reads that showed a draft: findings whose present/absent call differs "
                              "from the draft; empty otherwise",
        "n_prefilled_findings": "After lock only. Reads that showed a draft: findings whose present/absent choice the "
                                "draft pre-filled (trial setting prefill_draft_findings); empty otherwise",
        "finding_<finding>": "Reader's call: 1 present, 0 absent", "confidence_<finding>": "Reader's confidence 1-5",
        "reader_position": "Position of the read in its reader's sequence of submitted reads (1 = first), by "
                           "submission time",
        "bleu": "Sentence BLEU (0-1) of the submitted report (findings and impression) against the case's reference "
                "report; empty without one (analysis/stats/text_metrics.py)",
        "rouge_l": "ROUGE-L F-measure (0-1) of the submitted report against the reference report",
        "meteor": "METEOR (0-1, no WordNet synonyms) of the submitted report against the reference report",
        "findings_text": "After lock only. The submitted report's findings section (reports edited from a draft keep "
                         "its wording, which the drafts table shows)",
        "impression_text": "After lock only. The submitted report's impression section",
        "draft_findings_text": "After lock only. Reads that showed a draft: the findings text of the draft shown; "
                               "empty otherwise",
        "draft_impression_text": "After lock only. Reads that showed a draft: the impression text of the draft shown; "
                                 "empty otherwise",
        "draft_<finding>": "After lock only. Reads that showed a draft: the draft's call for the finding (1 when its "
                           "probability reached the draft threshold, else 0); empty otherwise",
        "draft_bleu": "After lock only. Sentence BLEU of the draft shown against the reference report",
        "draft_rouge_l": "After lock only. ROUGE-L of the draft shown against the reference report",
        "draft_meteor": "After lock only. METEOR of the draft shown against the reference report",
        "draft_shown": "After lock only. 1 when the read showed its draft, 0 when the read had a draft that was "
                       "withheld (out of distribution) or none (error analysis, issue 20)",
        "chexbert_labelled": "After lock only. 1 when the submitted report was labelled by CheXbert (a reference "
                             "report and local weights needed; docs/ai-evaluation.md)",
        "chexbert_<condition>": "After lock only. CheXbert's label of the submitted report: 1 positive, 0 negative, "
                                "-1 uncertain, empty blank",
        "draft_chexbert_labelled": "After lock only. 1 when the draft shown was labelled by CheXbert",
        "draft_chexbert_<condition>": "After lock only. CheXbert's label of the draft shown (as chexbert_<condition>)",
    },
    "drafts": {
        "case_code": "Case", "model_version": "Model version (masked as 'model' before lock)", "status": "Draft status",
        "prob_<finding>": "Model probability of the finding (the expert model's raw output)",
        "calprob_<finding>": "The same after the expert model's calibration, as shown to readers "
                             "(docs/calibration.md); empty when no calibration was applied to the draft",
        "calibration_id": "The expert calibration record applied to the draft (inference.ExpertCalibration); empty: "
                          "none",
        "generate_s": "Generation time (s)",
        "queue_wait_s": "Time queued before generation (s)",
        "ood_score": "Out-of-distribution score of the input (largest check, 1.0 = a check's cut-off; empty: not "
                     "checked)",
        "ood_action": "What the trial did with an out-of-distribution input: marked (shown with a warning), withheld "
                      "(not shown); empty when in distribution",
        "ood_reasons": "Out-of-distribution reasons, ';'-separated (inference/backends/ood.py REASON_TEXT)",
        "bleu": "Sentence BLEU (0-1) of the draft against the case's reference report; empty without one",
        "rouge_l": "ROUGE-L F-measure (0-1) of the draft against the reference report",
        "meteor": "METEOR (0-1, no WordNet synonyms) of the draft against the reference report",
        "failure": "Why the draft failed, as a category: timed_out, not_allowed (retrieval baseline without the "
                   "trial's consent), out_of_memory, error; empty unless failed",
        "findings_text": "The draft's findings section (empty unless the draft is ready)",
        "impression_text": "The draft's impression section (empty unless the draft is ready)",
        "chexbert_labelled": "1 when the draft was labelled by CheXbert (ready, a reference report, local weights)",
        "chexbert_<condition>": "CheXbert's label of the draft: 1 positive, 0 negative, -1 uncertain, empty blank",
    },
    "ratings": {
        "rating_id": "Opaque rating id", "case_code": "Case", "center": "Center of the case",
        "expert": "Expert code (E01...)",
        "arm_a": "Arm of report A (masked before lock)", "arm_b": "Arm of report B (empty for single-report ratings)",
        "reader_a": "Reader code of report A (identifies the report in crossover designs)",
        "reader_b": "Reader code of report B (empty for single-report ratings)",
        "preference": "A, B or none",
        "quality_a": "Quality of report A (1-5)", "quality_b": "Quality of report B (1-5)",
        "status": "todo / in_progress / done",
        "opened_at": "When the expert first opened the rating (ISO 8601, server clock, UTC)",
        "submitted_at": "When the rating was submitted (ISO 8601, server clock, UTC); empty while not submitted",
        "comment": "After lock only. The expert's free-text comment",
        "blinding_guess": "After lock only. The expert's guess of the report written with AI assistance: A, B or "
                          "dont_know; single reports A (yes) or not_a (no); empty when not asked",
    },
    "box_reviews": {
        "read_id": "After lock only. The read (reads.read_id) that showed the AI box", "case_code": "Case",
        "reader": "Reader code", "arm": "Arm of the read",
        "submitted": "1 when the read was submitted (its decisions are final), else 0",
        "box_id": "The box's id within the AI report shown", "finding": "Finding the box marks (empty: none named)",
        "label": "The model's words for the region",
        "decision": "The reader's decision: accepted, rejected, or empty when the reader left the box undecided",
    },
    "arena": {
        "task_id": "After lock only. Opaque arena task id (the standalone arena: experts compare two model versions' "
                   "drafts of a case, without readers; issue 20)",
        "case_code": "Case", "center": "Center of the case", "expert": "Expert code (E01...)",
        "model_a": "Model version of draft A (shown on the left)", "model_b": "Model version of draft B",
        "preference": "A, B or tie", "quality_a": "Quality of draft A (1-5, optional)",
        "quality_b": "Quality of draft B (1-5, optional)", "status": "todo / in_progress / done",
        "opened_at": "When the expert first opened the task (ISO 8601, server clock, UTC)",
        "submitted_at": "When the judgement was submitted (ISO 8601, server clock, UTC)",
        "comment": "The expert's free-text comment",
    },
    "amendments": {
        "read_id": "After lock only. The amended read (reads.read_id), whose row keeps the first submission",
        "amendment": "Number of the amendment of the read (1 = first)",
        "amended_at": "UTC time of the amendment", "amended_as": "reader (the read's author) or coordinator",
        "reason": "The reason given for the amendment",
        "finding_<finding>": "Call after the amendment: 1 present, 0 absent",
        "confidence_<finding>": "Confidence after the amendment 1-5",
        "bleu": "Sentence BLEU (0-1) of the amended report against the reference report",
        "rouge_l": "ROUGE-L F-measure (0-1) of the amended report against the reference report",
        "meteor": "METEOR (0-1) of the amended report against the reference report",
    },
    "rating_amendments": {
        "rating_id": "After lock only. The amended rating (ratings.rating_id), whose row keeps the first submission",
        "amendment": "Number of the amendment of the rating (1 = first)",
        "amended_at": "UTC time of the amendment", "amended_as": "expert (the rating's author) or coordinator",
        "reason": "The reason given for the amendment",
        "preference": "A, B or none after the amendment (A and B as in the ratings table)",
        "quality_a": "Quality of report A (1-5) after the amendment",
        "quality_b": "Quality of report B (1-5) after the amendment",
        "comment": "The expert's comment after the amendment",
        "blinding_guess": "The blinding guess after the amendment",
    },
    "arena_amendments": {
        "task_id": "After lock only. The amended arena judgement (arena.task_id), whose row keeps the first "
                   "submission",
        "amendment": "Number of the amendment of the judgement (1 = first)",
        "amended_at": "UTC time of the amendment", "amended_as": "expert (the judgement's author) or coordinator",
        "reason": "The reason given for the amendment",
        "preference": "A, B or tie after the amendment (A and B as in the arena table)",
        "quality_a": "Quality of draft A (1-5, optional) after the amendment",
        "quality_b": "Quality of draft B (1-5, optional) after the amendment",
        "comment": "The expert's comment after the amendment",
    },
}
# Whole tables withheld before lock: how often and how much reads and ratings are amended may differ by arm, and
# read_id / rating_id join them to the masked arm, so amendments come out only after lock (issue 18 item 2).
# The AI boxes and the readers' accept/reject decisions (issue 21 item 1) exist for one arm's reads only.
# The standalone arena's judgements name the model versions, and through them the AI arms (issue 20 item 1); their
# amendments join them through task_id.
TABLES_WITHHELD_BEFORE_LOCK = ("amendments", "rating_amendments", "box_reviews", "arena", "arena_amendments")
# Withheld before lock (docs/design.md section 5): filled for one arm only, or naming the masked arms through their
# agreement with them. Free text too: a report edited from a draft keeps the draft's wording (drafts.csv has it for
# every case), and an expert's comment can say which report looked AI-written, as blinding_guess does.
WITHHELD_BEFORE_LOCK = {
    "reads": ("draft_edit_distance", "n_flipped_findings", "n_prefilled_findings", "draft_<finding>", "draft_bleu",
              "draft_rouge_l", "draft_meteor", "findings_text", "impression_text", "draft_findings_text",
              "draft_impression_text", "draft_shown"),
    "ratings": ("comment", "blinding_guess"),
}
# iMRMC's input (doIMRMC): a header line, then reader,case,modality,score rows, the truth as reader "truth".
IMRMC_FILE = "imrmc_{finding}.csv"
# RJafroc's "MRMC" input (DfReadDataFile(f, format = "MRMC"), the Iowa OR-DBM MRMC layout): a header, then
# Reader,Treatment,Case,Truth,Rating rows with integer case ids; RJafroc reads the first five columns only, so the
# sixth names the case. RJafroc needs it fully crossed (every reader reads every case in every arm: the crossover
# design); for readers nested in arms use the iMRMC files (README, "Export").
RJAFROC_FILE = "rjafroc_{finding}.csv"
RJAFROC_HEADER = ["Reader", "Treatment", "Case", "Truth", "Rating", "CaseCode"]
# OWASP CSV injection: a text cell starting with one of these is read as a formula by spreadsheets.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


@dataclass
class Export:
    tables: dict[str, list[dict]]
    manifest: dict
    dictionary: list[dict]
    # other files written as they are (file name -> text): the iMRMC inputs, after lock only
    files: dict[str, str] = field(default_factory=dict)

    def csv_text(self, name: str) -> str:
        return _to_csv(self.tables[name])

    def write(self, out: Path) -> list[Path]:
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for name in self.tables:
            p = out / f"{name}.csv"
            p.write_text(self.csv_text(name))
            paths.append(p)
        for name, text in self.files.items():
            p = out / name
            p.write_text(text)
            paths.append(p)
        p = out / "data_dictionary.csv"
        p.write_text(_to_csv(self.dictionary))
        paths.append(p)
        p = out / "manifest.json"
        p.write_text(json.dumps(self.manifest, indent=2, sort_keys=True))
        paths.append(p)
        return paths


def csv_safe(value: object) -> object:
    """A cell as written: text that a spreadsheet would run as a formula gets a leading apostrophe (OWASP's rule);
    numbers (which may start with '-') are left as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def _to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    if rows:
        fields = list(rows[0].keys())
        w = csv.DictWriter(buf, fieldnames=[csv_safe(f) for f in fields], lineterminator="\n")
        w.writeheader()
        for row in rows:
            w.writerow({csv_safe(k): csv_safe(v) for k, v in row.items()})
    return buf.getvalue()


def code_version() -> str:
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=settings.BASE_DIR,
                             capture_output=True, text=True, timeout=5)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass

    return f"cxr-trial {version('cxr-trial')}"


def arm_labels(trial: Trial) -> dict[int, str]:
    """Arm id -> label in exports: the arm code after lock, a mask letter before."""
    arms = list(trial.arms.order_by("pk"))
    if trial.is_locked:
        return {a.pk: a.code for a in arms}
    order = sorted(arms, key=lambda a: keyed_hex(trial.secret, "mask", a.pk))
    return {a.pk: MASK_LABELS[i] for i, a in enumerate(order)}


def _people_codes(trial: Trial, role: str, prefix: str) -> dict[int, str]:
    ids = Membership.objects.filter(trial=trial, role=role).order_by("pk").values_list("pk", flat=True)
    return {pk: f"{prefix}{i + 1:02d}" for i, pk in enumerate(ids)}


def _iso(dt) -> str:
    return dt.isoformat() if dt else ""


def build_export(trial: Trial, chexbert: ChexbertLabeler | None = None, chexbert_error: str = "") -> Export:
    """The export; with ``chexbert`` (a labeler loaded from local weights) the reports' CheXbert labels too
    (docs/ai-evaluation.md "Model-based text metrics"); ``chexbert_error`` is recorded in the manifest when the
    configured weights did not load."""
    codes = trial.finding_codes
    references: dict[str, str] = {}
    arms = arm_labels(trial)
    readers = _people_codes(trial, "reader", "R")
    experts = _people_codes(trial, "expert", "E")
    tables: dict[str, list[dict]] = {}

    rows = []
    # The reference library (issue 21 item 2) is not part of the trial: never enrolled, read or rated; counted in
    # the manifest only, so the CONSORT flow's registered / not enrolled counts are the trial's own cases.
    for c in Case.objects.filter(trial=trial, library=False).select_related("center").order_by("code"):
        row = {"case_code": c.code, "center": c.center.code, "status": c.status,
               "enrolled": int(c.enrolled_at is not None), "exclusion_reason": c.exclusion_reason}
        for f in codes:
            v = c.reference_findings.get(f)
            row[f"ref_{f}"] = "" if v is None else int(v)
        rows.append(row)
        references[c.code] = (c.reference_report or "").strip()
    tables["cases"] = rows

    rows = []
    slots = (AllocationSlot.objects.filter(stratum__allocation_list__trial=trial, revealed_at__isnull=False)
             .select_related("stratum", "case").order_by("stratum__key", "sequence"))
    for s in slots:
        rows.append({"unit_type": "case" if s.case_id else "reader",
                     "unit": s.case.code if s.case_id else readers.get(s.membership_id, ""),
                     "stratum": s.stratum.key, "sequence": s.sequence,
                     # Block sizes are sealed until lock (docs/design.md section 5): they make allocations predictable.
                     **({"block_size": s.block_size} if trial.is_locked else {}),
                     "arm": arms[s.arm_id]})
    tables["allocations"] = rows

    rows = []
    reads = (Read.objects.filter(case__trial=trial).select_related("case__center", "reader", "draft")
             .order_by("case__code", "session", "pk"))
    positions = _reader_positions(trial)
    for r in reads:
        row = {"read_id": r.public_id, "case_code": r.case.code, "center": r.case.center.code,
               "reader": readers.get(r.reader_id, ""), "reader_experience": r.reader.experience if r.reader else "",
               "arm": arms[r.arm_id], "session": r.session, "status": r.status,
               "opened_at": _iso(r.opened_at), "submitted_at": _iso(r.submitted_at),
               "active_seconds": round(r.active_seconds, 3) if r.submitted_at else "",
               "wall_seconds": round(r.wall_seconds, 3) if r.wall_seconds is not None else "",
               "draft_edit_distance": "" if r.draft_edit_distance is None else round(r.draft_edit_distance, 4),
               "n_flipped_findings": len(r.flipped_findings or []) if r.draft_id else "",
               "n_prefilled_findings": len(r.prefilled_marks or {}) if r.draft_id else ""}
        for f in codes:
            mark = (r.finding_marks or {}).get(f) or {}
            present = mark.get("present")
            row[f"finding_{f}"] = "" if present is None or not r.submitted_at else int(bool(present))
            row[f"confidence_{f}"] = mark.get("confidence", "") if r.submitted_at else ""
        row["reader_position"] = positions.get(r.pk, "")
        final = _report_text(r) if r.submitted_at else ""
        row.update(_text_columns(final, r.case.reference_report, ""))
        row["findings_text"] = r.findings_text if r.submitted_at else ""
        row["impression_text"] = r.impression_text if r.submitted_at else ""
        if trial.is_locked:  # arm-specific columns (docs/design.md section 5)
            row.update(_draft_columns(r, codes))
        rows.append(row)
    tables["reads"] = rows

    rows = []
    for d in Draft.objects.filter(case__trial=trial).select_related("case", "model_version").order_by("case__code"):
        row = {"case_code": d.case.code, "model_version": d.model_version.name if trial.is_locked else "model",
               "status": d.status}
        for f in codes:
            p = (d.probabilities or {}).get(f)
            row[f"prob_{f}"] = "" if p is None else round(float(p), 6)
        for f in codes:
            c = (d.calibrated_probabilities or {}).get(f)
            row[f"calprob_{f}"] = "" if c is None else round(float(c), 6)
        row["calibration_id"] = ((d.parameters or {}).get("calibration") or {}).get("id", "")
        row["generate_s"] = "" if d.generate_s is None else round(d.generate_s, 4)
        row["queue_wait_s"] = "" if d.queue_wait_s is None else round(d.queue_wait_s, 4)
        row["ood_score"] = "" if d.ood_score is None else round(d.ood_score, 4)
        row["ood_action"] = d.ood_action
        row["ood_reasons"] = ";".join(d.ood_reasons or [])
        row["failure"] = failure_kind(d)
        ready = d.status == Draft.Status.READY
        row.update(_text_columns(_report_text(d) if ready else "", d.case.reference_report, ""))
        row["findings_text"] = d.findings_text if ready else ""
        row["impression_text"] = d.impression_text if ready else ""
        rows.append(row)
    tables["drafts"] = rows

    rows = []
    ratings = (Rating.objects.filter(case__trial=trial).select_related("case__center", "read_a", "read_b")
               .order_by("case__code", "expert_id"))
    for g in ratings:
        done = g.submitted_at is not None
        rows.append({"rating_id": g.public_id, "case_code": g.case.code, "center": g.case.center.code,
                     "expert": experts.get(g.expert_id, ""), "arm_a": arms[g.read_a.arm_id],
                     "arm_b": arms[g.read_b.arm_id] if g.read_b_id else "",
                     "reader_a": readers.get(g.read_a.reader_id, ""),
                     "reader_b": readers.get(g.read_b.reader_id, "") if g.read_b_id else "", "status": g.status,
                     "opened_at": _iso(g.opened_at), "submitted_at": _iso(g.submitted_at),
                     "comment": g.comment if done else "",
                     "preference": g.preference if done else "", "quality_a": g.quality_a if done else "",
                     "quality_b": g.quality_b if done and g.quality_b is not None else "",
                     "blinding_guess": g.blinding_guess if done else ""})
    tables["ratings"] = rows
    if trial.is_locked:
        tables["amendments"] = _amendment_rows(trial, codes)
        tables["rating_amendments"] = _rating_amendment_rows(trial)
        tables["box_reviews"] = _box_review_rows(trial, arms, readers)
        tables["arena"] = _arena_rows(trial, experts)
        tables["arena_amendments"] = _arena_amendment_rows(trial)
    if chexbert is not None:
        chexbert_columns(tables, chexbert, references, locked=trial.is_locked)
    withheld = {} if trial.is_locked else _withhold(tables)

    table_hashes = {name: hashlib.sha256(_to_csv(t).encode()).hexdigest() for name, t in tables.items()}
    manifest = {
        "trial": trial.code,
        "design": trial.design,
        "status": trial.status,
        "arms_masked": not trial.is_locked,
        "assisted_arm": next((arms[a.pk] for a in trial.arms.all() if a.is_ai), None) if trial.is_locked else None,
        # issue 20: every AI arm (several model versions), for the multi-arm primary analysis; named after lock only
        "ai_arms": [arms[a.pk] for a in trial.arms.order_by("code") if a.is_ai] if trial.is_locked else None,
        "findings": codes,
        "model_versions": model_versions(trial),
        # files the import refused, by reason only (imaging.ImportRefusal; issue 20): the CONSORT flow
        "import_refusals": import_refusals_by_reason(trial),
        "withheld_until_lock": withheld,
        "tables_withheld_until_lock": [] if trial.is_locked else list(TABLES_WITHHELD_BEFORE_LOCK),
        "reference_library": {"cases": Case.objects.filter(trial=trial, library=True).count(),
                              "similar_cases_shown": trial.similar_cases_k,
                              "encoder": trial.similar_cases_encoder},
        # the standalone arena's versions and the drafts it left out, by reason (after lock only: names versions)
        "arena": arena_flow(trial) if trial.is_locked else None,
        "preference_majority": trial.preference_majority,
        "expert_panel_size": trial.expert_panel_size,
        # model-based text metrics (issue 20 item 4): the local weights used, or why none were
        "text_models": {"chexbert": chexbert.describe() if chexbert is not None
                        else ({"error": chexbert_error} if chexbert_error else None)},
        "generated_at": timezone.now().isoformat(),
        "code_version": code_version(),
        "tables": {name: {"rows": len(t), "sha256": table_hashes[name]} for name, t in tables.items()},
        "data_sha256": hashlib.sha256(json.dumps(table_hashes, sort_keys=True).encode()).hexdigest(),
    }
    # The iMRMC inputs carry the arm names, so they come with the named arms only (docs/design.md section 5).
    files = {**imrmc_files(tables, codes), **rjafroc_files(tables, codes)} if trial.is_locked else {}
    manifest["files"] = {name: {"sha256": hashlib.sha256(text.encode()).hexdigest()} for name, text in files.items()}
    return Export(tables, manifest, data_dictionary(tables, codes, withheld), files)


def imrmc_files(tables: dict[str, list[dict]], codes: list[str]) -> dict[str, str]:
    """One iMRMC input per finding with a reference standard (file name -> text)."""
    out = {}
    for f in codes:
        text = imrmc_text(tables["reads"], tables["cases"], f)
        if text:
            out[IMRMC_FILE.format(finding=f)] = text
    return out


def rjafroc_files(tables: dict[str, list[dict]], codes: list[str]) -> dict[str, str]:
    """One RJafroc "MRMC" input per finding with a reference standard (file name -> text)."""
    out = {}
    for f in codes:
        text = rjafroc_text(tables["reads"], tables["cases"], f)
        if text:
            out[RJAFROC_FILE.format(finding=f)] = text
    return out


def _scored_reads(reads: list[dict], truth: dict, finding: str) -> list[tuple[str, str, str, int]]:
    """(reader, case code, arm, score) of the submitted reads of cases with a reference standard, scored as the
    analysis scores them (analysis/stats/trial.py, reader accuracy): +confidence when marked present, -confidence
    when absent, the 0/1 call without a confidence."""
    rows = []
    for r in reads:
        call, conf = r.get(f"finding_{finding}", ""), r.get(f"confidence_{finding}", "")
        if call == "" or not r["reader"] or r["case_code"] not in truth:
            continue
        score = (1 if int(call) > 0 else -1) * abs(int(conf)) if conf not in ("", None) else int(call)
        rows.append((r["reader"], r["case_code"], r["arm"], score))
    return rows


def rjafroc_text(reads: list[dict], cases: list[dict], finding: str) -> str:
    """RJafroc "MRMC" input for one finding: the iMRMC file's scores, one row per read, cases numbered 1.. in the
    order of their codes (RJafroc wants integer case ids; the last column keeps the code). Empty when no read
    qualifies."""
    truth = {c["case_code"]: c[f"ref_{finding}"] for c in cases if c.get(f"ref_{finding}", "") != ""}
    rows = _scored_reads(reads, truth, finding)
    if not rows:
        return ""
    case_id = {code: n for n, code in enumerate(sorted({case for _r, case, _m, _s in rows}), start=1)}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(RJAFROC_HEADER)
    for reader, case, arm, score in sorted(rows, key=lambda r: (r[0], r[2], case_id[r[1]])):
        w.writerow([reader, arm, case_id[case], int(truth[case]), score, case])
    return buf.getvalue()


def imrmc_text(reads: list[dict], cases: list[dict], finding: str) -> str:
    """iMRMC input for one finding: submitted reads of cases with a reference standard, scored as the analysis
    scores them (analysis/stats/trial.py, reader accuracy): +confidence when marked present, -confidence when
    absent, the 0/1 call without a confidence. Modality is the arm; truth rows 1 present, 0 absent. Empty when no
    read qualifies."""
    truth = {c["case_code"]: c[f"ref_{finding}"] for c in cases if c.get(f"ref_{finding}", "") != ""}
    rows = _scored_reads(reads, truth, finding)
    if not rows:
        return ""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["BEGIN DATA:", "", "", ""])
    for case in sorted({case for _r, case, _m, _s in rows}):
        w.writerow(["truth", case, "truth", int(truth[case])])
    w.writerows(sorted(rows))
    return buf.getvalue()


def _amendment_rows(trial: Trial, codes: list[str]) -> list[dict]:
    """One row per amendment of a read, with the report after it; the reads table keeps the first submission,
    which the analysis counts by default (docs/primary_analysis.md)."""
    rows = []
    amendments = (ReadAmendment.objects.filter(read__case__trial=trial).select_related("read__case")
                  .order_by("read__case__code", "read__public_id", "number"))
    for a in amendments:
        row = {"read_id": a.read.public_id, "amendment": a.number, "amended_at": _iso(a.created_at),
               "amended_as": a.amended_as, "reason": a.reason}
        marks = a.amended.get("finding_marks") or {}
        for f in codes:
            mark = marks.get(f) or {}
            row[f"finding_{f}"] = "" if mark.get("present") is None else int(bool(mark["present"]))
            row[f"confidence_{f}"] = "" if mark.get("confidence") is None else mark["confidence"]
        text = f"{a.amended.get('findings_text', '').strip()}\n{a.amended.get('impression_text', '').strip()}".strip()
        row.update(_text_columns(text, a.read.case.reference_report, ""))
        rows.append(row)
    return rows


def _arena_rows(trial: Trial, experts: dict[int, str]) -> list[dict]:
    """The standalone arena's judgements (after lock only), one row per task, in the task's A/B terms."""
    rows = []
    tasks = (ArenaTask.objects.filter(case__trial=trial)
             .select_related("case__center", "draft_a__model_version", "draft_b__model_version")
             .order_by("case__code", "expert_id", "pk"))
    for t in tasks:
        done = t.submitted_at is not None
        rows.append({"task_id": t.public_id, "case_code": t.case.code, "center": t.case.center.code,
                     "expert": experts.get(t.expert_id, ""), "model_a": t.draft_a.model_version.name,
                     "model_b": t.draft_b.model_version.name, "preference": t.preference if done else "",
                     "quality_a": t.quality_a if done and t.quality_a is not None else "",
                     "quality_b": t.quality_b if done and t.quality_b is not None else "", "status": t.status,
                     "opened_at": _iso(t.opened_at), "submitted_at": _iso(t.submitted_at),
                     "comment": t.comment if done else ""})
    return rows


def arena_flow(trial: Trial) -> dict:
    """The standalone arena's flow (issue 20 item 1): its versions, the enrolled cases, those in the arena, and the
    arena versions' drafts of the enrolled cases left out, by reason (rating.selectors.arena_left_out_by_reason: a
    constant number of queries, whatever the number of cases)."""
    versions = arena_model_versions(trial)
    cases = (Case.objects.filter(trial=trial, enrolled_at__isnull=False, library=False)
             .exclude(status=Case.Status.EXCLUDED).order_by("pk"))
    case_ids = list(cases.values_list("pk", flat=True))
    tasks = ArenaTask.objects.filter(case__trial=trial)
    return {"model_versions": [mv.name for mv in versions], "cases_enrolled": len(case_ids),
            "cases_in_arena": tasks.values("case").distinct().count(), "tasks": tasks.count(),
            "judgements": tasks.filter(status=ArenaTask.Status.DONE).count(),
            "excluded_drafts": arena_left_out_by_reason(cases, case_ids, versions)}


def _box_review_rows(trial: Trial, arms: dict[int, str], readers: dict[int, str]) -> list[dict]:
    """One row per AI box a read showed (reading.selectors.shown_boxes) with the reader's decision on it."""
    rows = []
    reads = (Read.objects.filter(case__trial=trial, draft__isnull=False, arm__is_ai=True)
             .select_related("case__trial", "arm", "draft").order_by("case__code", "session", "pk"))
    for r in reads:
        for b in shown_boxes(r, r.draft):
            rows.append({"read_id": r.public_id, "case_code": r.case.code, "reader": readers.get(r.reader_id, ""),
                         "arm": arms[r.arm_id], "submitted": int(r.submitted_at is not None), "box_id": b["id"],
                         "finding": b["finding"] or "", "label": b.get("label") or "",
                         "decision": (r.box_reviews or {}).get(b["id"], "")})
    return rows


def _sha256_values(params: dict, prefix: str = "", depth: int = 0) -> dict[str, str]:
    """Hash values in a draft's parameters (weights, tokenizer and other file hashes, under keys naming sha256):
    ``path.to.key`` -> hex digest."""
    out: dict[str, str] = {}
    for k, v in (params or {}).items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and "sha256" in str(k):  # file name -> digest
            out.update({f"{key}.{n}": h for n, h in v.items() if isinstance(h, str) and h})
        elif isinstance(v, dict) and depth < 3:
            out.update(_sha256_values(v, f"{key}.", depth + 1))
        elif "sha256" in str(k) and isinstance(v, str) and v and k != "prompt_sha256":
            out[key] = v
    return out


def model_versions(trial: Trial) -> list[dict]:
    """The model versions that drafted for the trial, with their weights and tokenizer hashes from the version and
    the first ready draft's provenance (CONSORT-AI 5(i)). The name is 'model' before lock, as in drafts.csv."""
    out = []
    for mv in ModelVersion.objects.filter(drafts__case__trial=trial).distinct().order_by("name"):
        draft = Draft.objects.filter(case__trial=trial, model_version=mv, status=Draft.Status.READY).order_by("pk")
        first = draft.first()
        hashes = {"weights_sha256": mv.weights_sha256} if mv.weights_sha256 else {}
        hashes.update(_sha256_values(first.parameters if first else {}))
        out.append({"name": mv.name if trial.is_locked else "model", "backend": mv.backend, "hashes": hashes})
    return out


def _answer_after(after: dict) -> dict:
    """An amended A/B answer's columns (ratings and arena judgements alike); blanks for what it left empty."""
    return {"preference": after.get("preference") or "",
            "quality_a": "" if after.get("quality_a") is None else after["quality_a"],
            "quality_b": "" if after.get("quality_b") is None else after["quality_b"],
            "comment": after.get("comment") or ""}


def _rating_amendment_rows(trial: Trial) -> list[dict]:
    """One row per amendment of a rating, with the answer after it; the ratings table keeps the first submission,
    which the analysis counts (docs/primary_analysis.md)."""
    rows = []
    amendments = (RatingAmendment.objects.filter(rating__case__trial=trial).select_related("rating")
                  .order_by("rating__case__code", "rating__public_id", "number"))
    for a in amendments:
        after = a.amended
        rows.append({"rating_id": a.rating.public_id, "amendment": a.number, "amended_at": _iso(a.created_at),
                     "amended_as": a.amended_as, "reason": a.reason, **_answer_after(after),
                     "blinding_guess": after.get("blinding_guess") or ""})
    return rows


def _arena_amendment_rows(trial: Trial) -> list[dict]:
    """One row per amendment of an arena judgement, with the answer after it (A/B as in the arena table); the arena
    table keeps the first submission, which the arena's analysis counts (docs/ai-evaluation.md). The task's expert or
    a coordinator amends a judgement (rating.services.amend_arena_task); amended_as records which, as for ratings."""
    rows = []
    amendments = (ArenaAmendment.objects.filter(task__case__trial=trial).select_related("task")
                  .order_by("task__case__code", "task__public_id", "number"))
    for a in amendments:
        rows.append({"task_id": a.task.public_id, "amendment": a.number, "amended_at": _iso(a.created_at),
                     "amended_as": a.amended_as, "reason": a.reason, **_answer_after(a.amended)})
    return rows


def _reader_positions(trial: Trial) -> dict[int, int]:
    """Read id -> its position (1-based) in its reader's submitted reads, by submission time (learning curves)."""
    out: dict[int, int] = {}
    seen: dict[int, int] = {}
    for pk, reader in (Read.objects.filter(case__trial=trial, submitted_at__isnull=False, reader__isnull=False)
                       .order_by("reader_id", "submitted_at", "pk").values_list("pk", "reader_id")):
        seen[reader] = seen.get(reader, 0) + 1
        out[pk] = seen[reader]
    return out


def _report_text(obj) -> str:
    return f"{obj.findings_text.strip()}\n{obj.impression_text.strip()}".strip()


def _text_columns(text: str, reference: str, prefix: str) -> dict[str, object]:
    """BLEU, ROUGE-L, METEOR of a report against the reference report (empty cells without either text)."""
    scores = report_scores(text, reference or "") if text and (reference or "").strip() else None
    return {f"{prefix}{k}": ("" if scores is None or getattr(scores, k) is None else round(getattr(scores, k), 6))
            for k in ("bleu", "rouge_l", "meteor")}


def _draft_columns(r: Read, codes: list[str]) -> dict[str, object]:
    """The AI's call per finding in the draft this read showed, the draft's text metrics and its text (empty
    without one)."""
    probs = (r.draft.probabilities or {}) if r.draft_id else {}
    row: dict[str, object] = {}
    for f in codes:
        p = probs.get(f)
        row[f"draft_{f}"] = "" if p is None else int(float(p) >= DRAFT_THRESHOLD)
    row.update(_text_columns(_report_text(r.draft) if r.draft_id else "", r.case.reference_report, "draft_"))
    row["draft_findings_text"] = r.draft.findings_text if r.draft_id else ""
    row["draft_impression_text"] = r.draft.impression_text if r.draft_id else ""
    row["draft_shown"] = int(bool(r.draft_id and not r.draft.is_withheld))
    return row


def _labelled_text(row: dict, prefix: str, reference: str) -> str:
    # The report as _report_text joins it; nothing to label without a reference report (as the BLEU columns).
    if not reference:
        return ""
    findings, impression = (str(row.get(prefix + k) or "").strip() for k in ("findings_text", "impression_text"))
    return f"{findings}\n{impression}".strip()


def chexbert_columns(tables: dict[str, list[dict]], labeler: ChexbertLabeler, references: dict[str, str],
                     locked: bool) -> None:
    """Add CheXbert's 14 labels (``chexbert_<condition>``, with ``chexbert_labelled``) of the reference reports
    (cases), the ready drafts (drafts) and, after lock, the submitted reports and the drafts shown (reads), in
    place. Each distinct text is labelled once. Run before the columns withheld until lock are dropped (it reads
    the report texts)."""
    jobs: list[tuple[dict, str, str]] = [(row, "", references.get(row["case_code"], ""))
                                         for row in tables.get("cases", [])]
    # The reads' labels after lock only: a report's wording is withheld before lock (it can echo the draft's, which
    # drafts.csv has for every case), and which conditions a report mentions at all (blank vs negative) is wording.
    for row in tables.get("reads", []) if locked else []:
        ref = references.get(row["case_code"], "")
        jobs.append((row, "", _labelled_text(row, "", ref)))
        if "draft_findings_text" in row:
            jobs.append((row, "draft_", _labelled_text(row, "draft_", ref)))
    for row in tables.get("drafts", []):
        jobs.append((row, "", _labelled_text(row, "", references.get(row["case_code"], ""))))
    texts = sorted({t for _, _, t in jobs if t})
    labels = dict(zip(texts, labeler.label(texts), strict=True))
    for row, prefix, text in jobs:
        lab = labels.get(text) if text else None
        row[f"{prefix}chexbert_labelled"] = 1 if lab is not None else ""
        for name, v in zip(CHEXBERT_CONDITIONS, lab or (None,) * len(CHEXBERT_CONDITIONS), strict=True):
            row[f"{prefix}chexbert_{chexbert_slug(name)}"] = "" if v is None else v


#: Draft error messages -> failure category (the messages are written by inference.runner / inference.selectors).
FAILURE_KINDS = (("time limit", "timed_out"), ("out of memory", "out_of_memory"), ("outofmemory", "out_of_memory"))


def failure_kind(d: Draft) -> str:
    """A failed draft's reason as a category, no free text (the error message may quote a path or a stack)."""
    if d.status != Draft.Status.FAILED:
        return ""
    if d.error == RETRIEVAL_NOT_ALLOWED:
        return "not_allowed"
    err = (d.error or "").lower()
    return next((kind for needle, kind in FAILURE_KINDS if needle in err), "error")


def _withhold(tables: dict[str, list[dict]]) -> dict[str, list[str]]:
    """Drop the columns withheld before lock (in place); returns what was withheld, per table."""
    out = {}
    for name, cols in WITHHELD_BEFORE_LOCK.items():
        for row in tables.get(name, []):
            for col in cols:
                row.pop(col, None)
        out[name] = list(cols)
    return out


def data_dictionary(tables: dict[str, list[dict]], codes: list[str], withheld: dict[str, list[str]]) -> list[dict]:
    """The dictionary rows of the columns exported (a withheld column is not described)."""
    rows = []
    for table, cols in DICTIONARY.items():
        if table not in tables:  # a table withheld until lock is not described
            continue
        present = set(tables[table][0]) if tables.get(table) else None
        for col, desc in cols.items():
            names = ([col.replace("<finding>", f) for f in codes] if "<finding>" in col
                     else [col.replace("<condition>", chexbert_slug(c)) for c in CHEXBERT_CONDITIONS]
                     if "<condition>" in col else [col])
            if col in withheld.get(table, ()) or (present is not None and not present & set(names)):
                continue
            rows.append({"table": table, "column": col, "description": desc})
    return rows
