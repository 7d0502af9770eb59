"""The CONSORT-AI / SPIRIT-AI checklist of the report (issue 20 item 5): each AI-specific item with what the
platform recorded for it, or that the protocol must say it. No Django: built from the analysis results, the
analysis tables and the export manifest, so it reproduces from the export alone.

Items and short texts: CONSORT-AI extension (Liu X, Cruz Rivera S, Moher D, Calvert MJ, Denniston AK; SPIRIT-AI and
CONSORT-AI Working Group. Nat Med 2020;26:1364-1374, doi:10.1038/s41591-020-1034-x) and SPIRIT-AI extension
(Cruz Rivera S, Liu X, Chan A-W et al. Nat Med 2020;26:1351-1363, doi:10.1038/s41591-020-1037-7). Texts are
shortened; the papers hold the full wording.

Blinding (docs/design.md section 5): before lock nothing here says which masked arm saw the AI's drafts; items
that need it read "after lock".
"""
from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from .pipeline import AnalysisResults

SOURCE = ("CONSORT-AI: Liu et al., Nat Med 2020;26:1364-1374 (doi:10.1038/s41591-020-1034-x). SPIRIT-AI: "
          "Cruz Rivera et al., Nat Med 2020;26:1351-1363 (doi:10.1038/s41591-020-1037-7).")
NOT_RECORDED = "not recorded: the protocol must say"
AFTER_LOCK = "after lock"

#: (key, CONSORT-AI item, SPIRIT-AI item, short text). ``key`` names what the platform can record for it.
ITEMS: tuple[tuple[str, str, str, str], ...] = (
    ("ai_in_title", "1a,b(i)", "1(i)", "Indicate that the intervention involves AI/machine learning in the title "
                                       "and/or abstract and specify the type of model."),
    ("intended_use_short", "1a,b(ii)", "1(ii)", "State the intended use of the AI intervention within the clinical "
                                                "pathway, including its purpose and intended users."),
    ("intended_use", "2a(i)", "6a(i)", "Explain the intended use of the AI intervention in the context of the "
                                       "clinical pathway, including its purpose and its intended users."),
    ("participants", "4a(i)", "10(i)", "State the inclusion and exclusion criteria at the level of participants."),
    ("input_criteria", "4a(ii)", "10(ii)", "State the inclusion and exclusion criteria at the level of the input "
                                           "data."),
    ("integration", "4b", "9", "Describe how the AI intervention was integrated into the trial setting, including "
                               "any onsite or offsite requirements."),
    ("version", "5(i)", "11a(i)", "State which version of the AI algorithm was used."),
    ("input_acquisition", "5(ii)", "11a(ii)", "Describe how the input data were acquired and selected for the AI "
                                              "intervention."),
    ("poor_input", "5(iii)", "11a(iii)", "Describe how poor quality or unavailable input data were assessed and "
                                         "handled."),
    ("human_ai_input", "5(iv)", "11a(iv)", "Specify whether there was human-AI interaction in the handling of the "
                                           "input data, and what level of expertise was required of users."),
    ("output", "5(v)", "11a(v)", "Specify the output of the AI intervention."),
    ("decision", "5(vi)", "11a(vi)", "Explain how the AI intervention's outputs contributed to decision-making or "
                                     "other elements of clinical practice."),
    ("errors", "19", "22", "Describe results of any analysis of performance errors and how errors were identified "
                           "(SPIRIT-AI: plans to identify and analyse them); if none, justify why not."),
    ("access", "25", "29", "State whether and how the AI intervention and/or its code can be accessed, including "
                           "any restrictions to access or re-use."),
)


@dataclass(frozen=True)
class ChecklistItem:
    """One item: its CONSORT-AI and SPIRIT-AI numbers, short text, what the platform recorded (or
    :data:`NOT_RECORDED`), and where the record comes from."""

    consort_ai: str
    spirit_ai: str
    text: str
    recorded: str
    source: str

    @property
    def is_recorded(self) -> bool:
        return self.recorded != NOT_RECORDED


@dataclass(frozen=True)
class Checklist:
    items: list[ChecklistItem]
    masked: bool
    source: str = SOURCE

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "masked": self.masked, "items": [asdict(i) for i in self.items]}

    def csv_text(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["consort_ai", "spirit_ai", "text", "recorded", "source"])
        for i in self.items:
            w.writerow([i.consort_ai, i.spirit_ai, i.text, i.recorded, i.source])
        return buf.getvalue()


def _counts(col: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in col.astype(object).fillna("").astype(str).value_counts().sort_index().items()}


def _fmt(d: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in d.items()) if d else "none"


def _version(manifest: dict, drafts: pd.DataFrame, masked: bool) -> tuple[str, str]:
    versions = manifest.get("model_versions") or []
    if not versions and (drafts.empty or "model_version" not in drafts):
        return NOT_RECORDED, ""
    parts = []
    for v in versions:
        name = AFTER_LOCK if masked else str(v.get("name") or "")
        hashes = [f"{k} {str(h)[:16]}" for k, h in sorted((v.get("hashes") or {}).items()) if h]
        parts.append(f"{name}: " + ("; ".join(hashes) if hashes else "no weight or tokenizer hashes recorded"))
    if not parts:
        names = sorted(set(drafts["model_version"].astype(str)))
        parts = [f"{AFTER_LOCK if masked else n}: no weight or tokenizer hashes recorded" for n in names]
    return " | ".join(parts), "manifest model_versions (model version, draft provenance); drafts.model_version"


def _poor_input(results: AnalysisResults, manifest: dict) -> tuple[str, str]:
    ood = results.consort.drafts_out_of_distribution
    refusals = manifest.get("import_refusals")
    out = [f"out-of-distribution inputs: {ood.cases_marked} case(s) marked, {ood.cases_withheld} withheld"
           f" (reasons: {_fmt(dict(ood.reasons))})"]
    out.append("import refusals by reason: " + (_fmt(refusals) if refusals is not None else "not recorded by the "
                                                "export (refused files are logged at import only)"))
    ex = results.consort.exclusion_reasons
    out.append(f"cases excluded: {results.consort.cases_excluded} ({_fmt(dict(ex))})")
    return "; ".join(out), "consort.drafts_out_of_distribution, cases.exclusion_reason, manifest import_refusals"


def _failures(raw_drafts: pd.DataFrame, raw_reads: pd.DataFrame) -> str:
    """Failed drafts and what happened to the reads of their cases (all arms together: no arm named)."""
    if raw_drafts.empty or "status" not in raw_drafts:
        return "no drafts in the export"
    st = raw_drafts["status"].astype(str)
    by_status = _counts(st)
    failed_cases = set(raw_drafts.loc[st == "failed", "case_code"].astype(str))
    text = f"drafts by status: {_fmt(by_status)}"
    if failed_cases and not raw_reads.empty and "case_code" in raw_reads:
        r = raw_reads[raw_reads["case_code"].astype(str).isin(failed_cases)]
        text += (f"; {len(failed_cases)} case(s) with a failed draft: {len(r)} read(s) of them "
                 f"({_fmt(_counts(r['status'])) if 'status' in r else 'status not exported'}), read without a draft")
    return text


def _interaction(results: AnalysisResults) -> str:
    inter = results.ai_evaluation.interaction
    if results.labels.masked:
        return f"{AFTER_LOCK}: what readers kept, edited, added or removed from the drafts names the AI arm"
    if not inter.n_reads_with_draft:
        return "no reads showed a draft"
    t = ", ".join(f"{k} {v}" for k, v in inter.totals.items())
    return (f"{inter.n_reads_with_draft} read(s) showed a draft; finding calls {t}; per-finding override rates "
            f"for {len(inter.overrides)} finding(s), automation bias in {len(inter.automation_bias)} cell(s)")


def _error_listing(results: AnalysisResults) -> str:
    ea = results.error_analysis
    if ea is None:
        return ""
    by = ea.by_finding.values()
    kept, corrected = sum(d["kept"] for d in by), sum(d["corrected"] for d in by)
    return (f"; error listing for expert review: {len(ea.draft_errors)} wrong finding call(s) in drafts shown to "
            f"readers (kept {kept}, corrected {corrected}), {len(ea.failed_drafts)} failed draft(s) with their reads")


def build_checklist(results: AnalysisResults, tables: dict[str, pd.DataFrame], manifest: dict) -> Checklist:
    """The checklist from what the analysis has: ``tables`` are the raw export tables (failed drafts are not in
    the analysis set)."""
    masked = bool(results.labels.masked or manifest.get("arms_masked"))
    raw_drafts = tables.get("drafts", pd.DataFrame())
    raw_reads = tables.get("reads", pd.DataFrame())
    findings = manifest.get("findings") or []
    version, version_src = _version(manifest, raw_drafts, masked)
    poor, poor_src = _poor_input(results, manifest)
    c = results.consort
    recorded: dict[str, tuple[str, str]] = {
        "participants": (f"{c.cases_registered} case(s) registered, {c.cases_enrolled} enrolled, "
                         f"{c.cases_excluded} excluded; reader and case eligibility criteria: {NOT_RECORDED}",
                         "consort flow"),
        "input_criteria": (poor, poor_src),
        "integration": ("drafts generated on the platform's inference workers before the read; "
                        f"which masked arm is shown them: {AFTER_LOCK}" if masked else
                        f"drafts generated on the platform's inference workers, shown to the "
                        f"{results.labels.assisted} arm before the read", "trial design"),
        "version": (version, version_src),
        "poor_input": (poor + "; " + _failures(raw_drafts, raw_reads), poor_src + ", drafts.status, reads.status"),
        "output": ((f"a draft report (findings and impression text) and a probability per finding; findings list "
                    f"({len(findings)}): {', '.join(map(str, findings))}") if findings else NOT_RECORDED,
                   "manifest findings (trial protocol), drafts.prob_<finding>"),
        "decision": (_interaction(results), "results.ai_evaluation.interaction"),
        "errors": ((f"{AFTER_LOCK}: the drafts' calls per read are withheld until lock" if masked else
                    f"model standalone accuracy per finding for {len(results.ai_standalone.models)} model "
                    "version(s); automation bias by whether the draft was right" + _error_listing(results)),
                   "results.ai_standalone, results.ai_evaluation.interaction.automation_bias, "
                   "results.error_analysis"),
    }
    items = []
    for key, consort, spirit, text in ITEMS:
        rec, src = recorded.get(key, (NOT_RECORDED, ""))
        items.append(ChecklistItem(consort, spirit, text, rec, src if rec != NOT_RECORDED else ""))
    return Checklist(items=items, masked=masked)
