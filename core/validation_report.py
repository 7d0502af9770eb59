"""The validation report (issue 18 item 7): a traceability matrix from the requirements in docs/requirements.yaml
to the tests that verify them (``@pytest.mark.requirement("ID")``, written into the JUnit XML as ``requirement``
properties by tests/conftest.py) and their results, with the code version and the date, as one HTML file.

Pure: reads two files, writes one; no Django. ``make validation-report`` runs the suite and then this module:

    python -m core.validation_report --junit build/validation/junit.xml --requirements docs/requirements.yaml \
        --out build/validation/report.html
"""
from __future__ import annotations

import argparse
import datetime as dt
import html
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

PROPERTY = "requirement"
PASSED, FAILED, ERROR, SKIPPED = "passed", "failed", "error", "skipped"
VERIFIED, NOT_VERIFIED, FAILING = "verified", "not verified", "failing"


@dataclass(frozen=True)
class Requirement:
    id: str
    text: str
    source: str


@dataclass(frozen=True)
class TestResult:
    nodeid: str
    outcome: str
    seconds: float
    message: str
    requirements: tuple[str, ...]


@dataclass
class Row:
    requirement: Requirement
    tests: list[TestResult] = field(default_factory=list)

    @property
    def status(self) -> str:
        if any(t.outcome in (FAILED, ERROR) for t in self.tests):
            return FAILING
        if any(t.outcome == PASSED for t in self.tests):
            return VERIFIED
        return NOT_VERIFIED  # no test, or only skipped ones


@dataclass
class Matrix:
    rows: list[Row]
    unknown: dict[str, list[TestResult]]  # requirement ids used in tests but not in the requirements file
    totals: Counter
    code_version: str
    generated_at: dt.datetime
    run_at: str

    @property
    def ok(self) -> bool:
        return all(r.status == VERIFIED for r in self.rows) and not self.unknown


def load_requirements(path: Path) -> list[Requirement]:
    data = yaml.safe_load(Path(path).read_text())
    reqs, seen = [], set()
    for item in data:
        rid = str(item["id"])
        if rid in seen:
            raise ValueError(f"requirement {rid} is listed twice in {path}")
        seen.add(rid)
        reqs.append(Requirement(rid, str(item["text"]), str(item["source"])))
    return reqs


def _outcome(case: ET.Element) -> tuple[str, str]:
    for tag, outcome in (("failure", FAILED), ("error", ERROR), ("skipped", SKIPPED)):
        el = case.find(tag)
        if el is not None:
            return outcome, el.get("message", "") or (el.text or "").strip()[:300]
    return PASSED, ""


def load_junit(path: Path) -> tuple[list[TestResult], str]:
    """Test results from a pytest JUnit XML file, and when the run started (the suite's timestamp)."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    results = []
    for case in root.iter("testcase"):
        classname, name = case.get("classname", ""), case.get("name", "")
        nodeid = f"{classname}::{name}" if classname else name  # JUnit's dotted module (and class) path
        reqs = tuple(p.get("value", "") for p in case.findall("properties/property") if p.get("name") == PROPERTY)
        outcome, message = _outcome(case)
        results.append(TestResult(nodeid, outcome, float(case.get("time", 0) or 0), message, reqs))
    run_at = suites[0].get("timestamp", "") if suites else ""
    return results, run_at


def code_version(cwd: Path | None = None) -> str:
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=cwd, capture_output=True, text=True,
                             timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def build_matrix(requirements: list[Requirement], results: list[TestResult], *, version: str, run_at: str = "",
                 now: dt.datetime | None = None) -> Matrix:
    rows = {r.id: Row(r) for r in requirements}
    unknown: dict[str, list[TestResult]] = {}
    for result in results:
        for rid in result.requirements:
            (rows[rid].tests if rid in rows else unknown.setdefault(rid, [])).append(result)
    return Matrix(rows=list(rows.values()), unknown=unknown, totals=Counter(r.outcome for r in results),
                  code_version=version, generated_at=now or dt.datetime.now(dt.UTC), run_at=run_at)


_CSS = """body{font-family:system-ui,sans-serif;margin:2rem;color:#222}table{border-collapse:collapse;width:100%}
th,td{border:1px solid #ccc;padding:.3rem .5rem;vertical-align:top;text-align:left}th{background:#f3f3f3}
.verified{color:#11632a}.failing,.failed,.error{color:#a4161a;font-weight:bold}.not-verified,.skipped{color:#8a5a00}
ul{margin:0;padding-left:1.1rem}code{font-size:.85em}"""


def _cls(status: str) -> str:
    return status.replace(" ", "-")


def render_html(m: Matrix) -> str:
    e = html.escape
    status_counts = Counter(r.status for r in m.rows)
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Validation report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Validation report: requirements traced to tests</h1>",
        "<table class='meta'><tbody>",
        f"<tr><th>Code version</th><td id='code-version'><code>{e(m.code_version)}</code></td></tr>",
        f"<tr><th>Report generated (UTC)</th><td id='generated-at'>{e(m.generated_at.isoformat(timespec='seconds'))}"
        "</td></tr>",
        f"<tr><th>Test run started</th><td id='run-at'>{e(m.run_at or 'unknown')}</td></tr>",
        "<tr><th>Tests</th><td id='totals'>" + ", ".join(
            f"{m.totals.get(k, 0)} {k}" for k in (PASSED, FAILED, ERROR, SKIPPED)) + "</td></tr>",
        "<tr><th>Requirements</th><td id='req-totals'>" + ", ".join(
            f"{status_counts.get(k, 0)} {k}" for k in (VERIFIED, FAILING, NOT_VERIFIED)) + "</td></tr>",
        f"<tr><th>Overall</th><td id='overall' class='{'verified' if m.ok else 'failing'}'>"
        f"{'every requirement verified' if m.ok else 'NOT every requirement verified'}</td></tr>",
        "</tbody></table>",
        "<h2>Traceability matrix</h2>",
        "<table id='matrix'><thead><tr><th>Requirement</th><th>Text</th><th>Source</th><th>Tests</th>"
        "<th>Status</th></tr></thead><tbody>",
    ]
    for row in m.rows:
        r = row.requirement
        tests = "".join(
            f"<li><code>{e(t.nodeid)}</code> <span class='{_cls(t.outcome)}'>{e(t.outcome)}</span>"
            + (f"<br><small>{e(t.message)}</small>" if t.message and t.outcome != PASSED else "") + "</li>"
            for t in row.tests) or "<li><em>no test</em></li>"
        out.append(f"<tr id='req-{e(r.id)}'><td>{e(r.id)}</td><td>{e(r.text)}</td><td>{e(r.source)}</td>"
                   f"<td><ul>{tests}</ul></td><td class='status {_cls(row.status)}'>{e(row.status)}</td></tr>")
    out.append("</tbody></table>")
    if m.unknown:
        out.append("<h2>Tests naming requirements not in docs/requirements.yaml</h2><ul id='unknown'>")
        for rid, tests in sorted(m.unknown.items()):
            out.append(f"<li>{e(rid)}: " + ", ".join(f"<code>{e(t.nodeid)}</code>" for t in tests) + "</li>")
        out.append("</ul>")
    out.append("</body></html>")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--junit", required=True, type=Path)
    ap.add_argument("--requirements", default=Path("docs/requirements.yaml"), type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--code-version", default=None, help="default: git describe --always --dirty")
    args = ap.parse_args(argv)
    results, run_at = load_junit(args.junit)
    matrix = build_matrix(load_requirements(args.requirements), results,
                          version=args.code_version or code_version(), run_at=run_at)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render_html(matrix))
    print(f"{args.out}: {sum(r.status == VERIFIED for r in matrix.rows)}/{len(matrix.rows)} requirements verified")
    return 0 if matrix.ok else 1


if __name__ == "__main__":
    sys.exit(main())
