"""The analysis report: report.html, results.json and matplotlib figures, from the typed results.

``render_report(results, tables, manifest, out_dir)`` writes into ``out_dir``:

- ``report.html``: self-contained page (inline CSS) referencing its figures as ``figures/<name>.png``;
- ``report-standalone.html``: the same page with the figures embedded (base64), for sending as one file;
- ``results.json``: ``results.to_dict()``, the numbers the report was drawn from, plus ``consort_ai``;
- ``consort_ai.csv``: the CONSORT-AI / SPIRIT-AI checklist (:mod:`analysis.checklist`);
- ``figures/*.png``: reading times, quality, preference, ROC per finding, forest plot, CONSORT flow.

The page is the Django template ``analysis/report.html`` (one include per section under ``analysis/report/``). This
module decides what each section shows (:class:`ReportPage` and its parts); the templates only lay it out and
format numbers (:mod:`analysis.templatetags.report_format`). The templates render in their own engine: no settings,
context processors or request are needed, so a report renders the same from a task, a command or a notebook.

Masked exports show the arms as X and Y; nothing here knows which is which.
"""
from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
from django.template import Context, Engine

from .checklist import Checklist, build_checklist
from .evaluation import AIEvaluation, ErrorAnalysis
from .figures import FIGURES, Effect, ForestRow, draw_figures, forest_rows
from .pipeline import AnalysisResults
from .stats._result import StatResult
from .stats.calibration import CalibrationSummary, RecalibratedSummary
from .stats.comparisons import describe
from .stats.multiarm import MultiArmPrimary
from .stats.primary import PreferenceDetails, PrimaryResult, ReadingTimeDetails
from .stats.proportions import PanelMajorityResult, PreferenceRateResult
from .stats.roc import AUCResult, OperatingPointResult
from .stats.sections import Agreement, ModelPointer, TrialBlinding

__all__ = ["FIGURES", "ReportPage", "build_page", "render_html", "render_report"]

TEMPLATES = Path(__file__).resolve().parent / "templates"

CAPTIONS = {
    "consort": "Flow of cases, reads and ratings (CONSORT-style).",
    "reading_time": "Distribution of active reading time per read, by arm.",
    "quality": "Distribution of expert quality scores by arm.",
    "preference": "Expert preference between the two reports of a case (ties apart) and the preference rate with "
                  "its Clopper-Pearson 95% CI.",
    "roc": "Model standalone ROC curve per finding against the reference standard.",
    "reliability": "Reliability diagram per finding: observed rate of the finding against the model's mean "
                   "predicted probability in 10 equal-width bins (marker area ~ cases in the bin), raw and after "
                   "Platt and isotonic recalibration, each cross-fitted over 5 folds (before and after "
                   "calibration), and, where drafts carried them, the calibrated probabilities shown to readers "
                   "(the stored expert calibration, on the cases it was applied to); the dotted diagonal is "
                   "perfect calibration.",
    "forest": "Quality difference and reading-time ratio by center and reader experience (arm × subgroup "
              "interactions in the primary mixed models; descriptive).",
}
MANIFEST_ROWS = (("trial", "Trial"), ("design", "Design"), ("status", "Trial status at export"),
                 ("arms_masked", "Arms masked"), ("assisted_arm", "Assisted arm"),
                 ("generated_at", "Export generated"), ("code_version", "Code version"), ("data_sha256", "Data sha256"))


@dataclass(frozen=True)
class Figure:
    """One figure: ``src`` is a relative path or a data URI; ``caption`` doubles as the alt text."""

    name: str
    src: str
    caption: str


@dataclass(frozen=True)
class PrimaryRow:
    """One endpoint of the primary table. ``percent``: the estimate is a share; ``reduction``: reading time's
    percent reduction (with ``reduction_ci``); ``preference``: the endpoint's details (null share, k, decisive-pair
    rate) when the null share was estimated."""

    label: str
    result: PrimaryResult
    digits: int
    percent: bool = False
    reduction: float | None = None
    reduction_ci: Any = None
    preference: dict[str, Any] | None = None


@dataclass(frozen=True)
class PrimarySection:
    rows: list[PrimaryRow]
    methods: str
    hierarchy_text: str
    engine: str


@dataclass(frozen=True)
class SecondarySection:
    """The paper-style table of descriptive and secondary results; per-arm summaries as (assisted, control)."""

    quality_scores: tuple[dict, dict]
    quality_case_means: tuple[dict, dict]
    quality_test: StatResult | None
    quality_rank_test: StatResult | None
    quality_model: ModelPointer | None
    time: tuple[dict, dict]
    time_relative_reduction: StatResult | None
    time_rank_test: StatResult | None
    time_ratio: StatResult | None
    time_model: ModelPointer | None
    preference: PreferenceRateResult
    panel_majority: PanelMajorityResult
    show_preference: bool


@dataclass(frozen=True)
class AucRow:
    model: str
    finding: str
    auc: AUCResult
    operating_point: OperatingPointResult


@dataclass(frozen=True)
class CalibrationRow:
    """One model's calibration for one finding (:func:`analysis.stats.calibration.calibration_report`): the raw and
    the cross-fitted Platt and isotonic reliability summaries, or the ``note`` saying why there are none."""

    model: str
    finding: str
    n: int | None = None
    note: str | None = None
    raw: CalibrationSummary | None = None
    platt: RecalibratedSummary | None = None
    isotonic: RecalibratedSummary | None = None


@dataclass(frozen=True)
class ReaderRow:
    """Sensitivity and specificity per arm (None when the arm has no reads) and the MRMC AUC difference."""

    finding: str
    assisted: OperatingPointResult | None
    control: OperatingPointResult | None
    mrmc: Effect | None
    ustat: Effect | None = None  # nested designs: the U-statistic (iMRMC) alternative (docs/primary_analysis.md)


@dataclass(frozen=True)
class MethodsSection:
    design: str
    paired: bool
    majority_k: Any


@dataclass(frozen=True)
class ManifestRow:
    """One row of the data manifest: a value (``code``: shown as code), or an exported table's rows and sha256."""

    label: str
    value: Any = None
    code: bool = False
    table: dict[str, Any] | None = None


@dataclass(frozen=True)
class MultiArmRow:
    """One primary endpoint of one AI arm's contrast with the control, at the contrast's adjusted level. ``ci`` is
    the result's interval with a non-finite end as None, as results.json holds it (the table shows a dash for the
    whole interval then); ``holm_listed`` is False when the contrast has no Holm p for the endpoint (an empty cell,
    where a listed None is a dash)."""

    endpoint: str
    result: PrimaryResult
    ci: tuple[float | None, float | None]
    holm_p: float | None
    holm_listed: bool


@dataclass(frozen=True)
class MultiArmContrastRows:
    """One AI arm against the control: its endpoints in the testing order."""

    arm: str
    control: str
    alpha: float
    conf_level: float
    rows: list[MultiArmRow]


@dataclass(frozen=True)
class MultiArmSection:
    """The several-AI-arms table (issue 20; :class:`~analysis.stats.multiarm.MultiArmPrimary`), read from the typed
    result: each contrast's endpoints in its hierarchy order."""

    control: str
    arms: list[str]
    alpha: float
    rule: str
    notes: list[str]
    contrasts: list[MultiArmContrastRows]


@dataclass(frozen=True)
class ReportPage:
    """Everything the report template shows, decided here (the template only lays it out)."""

    title: str
    assisted: str
    control: str
    masked: bool
    design: str
    data_sha256: str
    code_version: Any
    primary: PrimarySection | None
    secondary: SecondarySection
    auc_rows: list[AucRow]
    calibration_rows: list[CalibrationRow]
    reader_rows: list[ReaderRow]
    reader_ustat: bool  # a U-statistic column (nested designs)
    agreement: Agreement
    subgroups: list[ForestRow]
    blinding: TrialBlinding
    #: ``results.ai_evaluation`` (issue 20; docs/ai-evaluation.md): the arena ranking of the arms, the standalone
    #: arena's ranking of model versions, human-AI interaction, the AI boxes' review and the text metrics, typed
    ai_evaluation: AIEvaluation
    methods: MethodsSection
    checklist: Checklist
    warnings: list[str]
    manifest: list[ManifestRow]
    css: str
    figures: dict[str, Figure] = field(default_factory=dict)
    #: ``results.multi_arm`` (trials with several AI arms; issue 20), typed, else None
    multi_arm: MultiArmSection | None = None
    #: ``results.error_analysis`` (issue 20; CONSORT-AI item 19), else None
    error_analysis: ErrorAnalysis | None = None


def _primary_section(results: AnalysisResults, a: str, c: str) -> PrimarySection:
    pr = results.primary
    t, p = pr.reading_time, pr.preference
    rows = [
        PrimaryRow(f"Report quality, difference {a} − {c} (1–5)", pr.quality, 2),
        PrimaryRow(f"Reading time, ratio of geometric means {a} / {c}", t, 3,
                   reduction=t.details.percent_reduction if isinstance(t.details, ReadingTimeDetails) else None,
                   reduction_ci=t.details.percent_reduction_ci if isinstance(t.details, ReadingTimeDetails) else None),
        PrimaryRow(f"Share of cases where ≥ k experts prefer {a}", p, 3, percent=True,
                   preference=p.details if isinstance(p.details, PreferenceDetails) else None),
    ]
    return PrimarySection(rows=rows, methods=pr.methods, hierarchy_text=pr.hierarchy_text, engine=pr.engine)


def _finite(x: Any) -> float | None:
    """x, or None when it is missing or not finite (results.json's form of a number)."""
    return None if x is None or not math.isfinite(x) else x


def _multi_arm_section(multi: MultiArmPrimary | None) -> MultiArmSection | None:
    if multi is None:
        return None
    contrasts = []
    for c in multi.contrasts:
        rows = []
        for ep in c.primary.hierarchy:
            r: PrimaryResult = getattr(c.primary, ep)
            rows.append(MultiArmRow(endpoint=ep, result=r, ci=(_finite(r.ci[0]), _finite(r.ci[1])),
                                    holm_p=c.holm_p.get(ep), holm_listed=ep in c.holm_p))
        contrasts.append(MultiArmContrastRows(arm=c.arm, control=c.control, alpha=c.alpha, conf_level=c.conf_level,
                                              rows=rows))
    return MultiArmSection(control=multi.control, arms=list(multi.arms), alpha=multi.alpha, rule=multi.rule,
                           notes=list(multi.notes), contrasts=contrasts)


def _secondary_section(results: AnalysisResults, a: str, c: str) -> SecondarySection:
    q, t, p = results.quality, results.reading_time, results.preference
    none = describe([])
    qd, qc, td = q.descriptive_reports, q.descriptive_case_means, t.descriptive
    return SecondarySection(
        quality_scores=(qd.get(a, none), qd.get(c, none)),
        quality_case_means=(qc.get(a, none), qc.get(c, none)),
        quality_test=q.comparison.paired_t if results.paired_analysis else q.comparison.welch_t,
        quality_rank_test=q.comparison.wilcoxon if results.paired_analysis else q.comparison.mann_whitney,
        quality_model=q.mixed_model,
        time=(td.get(a, none), td.get(c, none)),
        time_relative_reduction=t.comparison.relative_reduction,
        time_rank_test=t.comparison.wilcoxon if results.paired_analysis else t.comparison.mann_whitney,
        time_ratio=t.comparison.geometric_mean_ratio,
        time_model=t.mixed_model,
        preference=p.pairs,
        panel_majority=p.panel_majority,
        show_preference=bool(p.pairs.n_pairs),
    )


def _auc_rows(results: AnalysisResults) -> list[AucRow]:
    return [AucRow(str(mv), code, blk.auc, blk.operating_point)
            for mv, per in results.ai_standalone.models.items() for code, blk in per.items()]


def _calibration_rows(results: AnalysisResults) -> list[CalibrationRow]:
    rows = []
    for mv, per in results.ai_standalone.models.items():
        for code, blk in per.items():
            cal = blk.calibration
            rows.append(CalibrationRow(str(mv), code, n=cal.n, note=cal.note, raw=cal.raw, platt=cal.platt,
                                       isotonic=cal.isotonic))
    return rows


def _reader_rows(results: AnalysisResults, a: str, c: str) -> list[ReaderRow]:
    rows = []
    for code, blk in results.reader_accuracy.findings.items():
        sa, sc = blk.by_arm.get(a), blk.by_arm.get(c)
        rows.append(ReaderRow(code, sa.sens_spec if sa else None, sc.sens_spec if sc else None, Effect.of(blk.mrmc),
                              Effect.of(blk.mrmc_ustat)))
    return rows


def _warnings(results: AnalysisResults) -> list[str]:
    out = list(results.warnings)
    for sec, label in ((results.quality, "Quality mixed model"), (results.reading_time, "Reading-time mixed model")):
        mm = sec.mixed_model
        if mm is None:
            continue
        if mm.note:
            out.append(f"{label}: {mm.note}")
        if mm.converged is False:
            out.append(f"{label}: the optimiser did not report convergence; read the adjusted estimate with care.")
    return list(dict.fromkeys(out))


def _manifest_rows(manifest: dict) -> list[ManifestRow]:
    rows = []
    for key, label in MANIFEST_ROWS:
        v = manifest.get(key)
        if key == "arms_masked":
            v = "yes (X/Y)" if v else "no"
        rows.append(ManifestRow(label, v, code=key in ("data_sha256", "code_version")))
    for name, info in (manifest.get("tables") or {}).items():
        rows.append(ManifestRow(f"{name}.csv", table=info))
    return rows


def build_page(results: AnalysisResults, manifest: dict, figures: dict[str, str],
               checklist: Checklist | None = None) -> ReportPage:
    """What the report shows. ``figures``: name -> img src (relative path or data URI); ``checklist`` defaults to
    one built without the raw tables (no failed drafts)."""
    a, c = results.labels.shown()
    return ReportPage(
        title=f"Analysis report · {manifest.get('trial') or ''}",
        assisted=a, control=c,
        masked=bool(results.labels.masked or manifest.get("arms_masked")),
        design=results.design,
        data_sha256=str(manifest.get("data_sha256", ""))[:16],
        code_version=manifest.get("code_version"),
        primary=_primary_section(results, a, c),
        secondary=_secondary_section(results, a, c),
        auc_rows=_auc_rows(results),
        calibration_rows=_calibration_rows(results),
        reader_rows=(reader_rows := _reader_rows(results, a, c)),
        reader_ustat=any(r.ustat is not None and r.ustat.estimate is not None for r in reader_rows),
        agreement=results.agreement,
        subgroups=forest_rows(results),
        blinding=results.blinding,
        ai_evaluation=results.ai_evaluation,
        methods=MethodsSection(design=results.design, paired=results.paired_analysis,
                               majority_k=results.preference.panel_majority.k or None),
        checklist=checklist or build_checklist(results, {}, manifest),
        warnings=_warnings(results),
        manifest=_manifest_rows(manifest),
        css=CSS,
        figures={name: Figure(name, src, CAPTIONS[name]) for name, src in figures.items()},
        multi_arm=_multi_arm_section(results.multi_arm),
        error_analysis=results.error_analysis,
    )


@cache
def _engine() -> Engine:
    return Engine(dirs=[str(TEMPLATES)], libraries={"report_format": "analysis.templatetags.report_format"},
                  autoescape=True)


def render_html(page: ReportPage) -> str:
    """The report page as HTML (``analysis/report.html``); numbers unlocalised, as in results.json."""
    return _engine().get_template("analysis/report.html").render(Context({"page": page}, use_l10n=False))


def render_report(results: AnalysisResults, tables: dict[str, pd.DataFrame], manifest: dict, out_dir: Path,
                  payload: dict[str, Any] | None = None) -> Path:
    """Write report.html, report-standalone.html, results.json and figures/*.png into ``out_dir``; return the
    path of report.html. ``payload`` is what results.json holds (default ``results.to_dict()``; the analysis run
    adds its ``summary``); the CONSORT-AI checklist is added to it as ``consort_ai`` (from the raw ``tables``)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # key order kept: the primary block comes first
    payload = results.to_dict() if payload is None else payload
    checklist = build_checklist(results, tables, manifest)
    payload["consort_ai"] = checklist.to_dict()
    (out_dir / "consort_ai.csv").write_text(checklist.csv_text(), encoding="utf-8")
    (out_dir / "results.json").write_text(json.dumps(payload, indent=2, allow_nan=False))
    paths = draw_figures(results, tables, out_dir / "figures")
    rel = {name: f"figures/{p.name}" for name, p in paths.items()}
    report = out_dir / "report.html"
    report.write_text(render_html(build_page(results, manifest, rel, checklist)), encoding="utf-8")
    embedded = {name: "data:image/png;base64," + base64.b64encode(p.read_bytes()).decode() for name, p in paths.items()}
    (out_dir / "report-standalone.html").write_text(render_html(build_page(results, manifest, embedded, checklist)),
                                                    encoding="utf-8")
    return report


CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1b2730;max-width:1100px;margin:2em auto;
padding:0 1.2em;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:2px solid #dfe7ec;
padding-bottom:.2em}h3{font-size:1.05em}
table{border-collapse:collapse;width:100%;margin:.6em 0 1em;font-size:.92em}
th,td{border-bottom:1px solid #e3e8ec;padding:.35em .5em;text-align:left;vertical-align:top}
th{background:#f3f6f8;font-weight:600}td.num{font-variant-numeric:tabular-nums;white-space:nowrap}
caption{text-align:left;font-size:.9em;color:#5f6b74;padding:.2em 0}
.muted{color:#5f6b74}.masked{background:#fff6e0;border:1px solid #f0d48a;padding:.6em .8em;border-radius:6px}
.warnings li{color:#8a4b00}figure{margin:1em 0}figure img{max-width:100%;border:1px solid #e3e8ec}
figcaption{font-size:.9em;color:#5f6b74}code{background:#f3f6f8;padding:0 .25em;border-radius:3px}
.kv td:first-child{width:14em;color:#5f6b74}
.results td:first-child{min-width:15em}.results td:last-child{white-space:normal;font-size:.85em;color:#5f6b74}
td.num.wrap{white-space:normal}
"""
