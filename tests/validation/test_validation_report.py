"""The validation report (issue 18 item 7): requirement -> tests -> pass/fail, code version and date, as HTML."""
from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from core.validation_report import (
    FAILING,
    NOT_VERIFIED,
    VERIFIED,
    build_matrix,
    load_junit,
    load_requirements,
    main,
    render_html,
)

ROOT = Path(__file__).resolve().parents[2]

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="0" failures="1" skipped="1" tests="5" time="3.2"
  timestamp="2026-11-30T12:00:00.000000+00:00" hostname="ci">
 <testcase classname="tests.trial.test_audit" name="test_every_setup_change_is_on_record" time="0.5">
  <properties><property name="requirement" value="AUD-1"/></properties></testcase>
 <testcase classname="tests.trial.test_audit" name="test_broken" time="0.1">
  <properties><property name="requirement" value="AUD-1"/><property name="requirement" value="AUD-2"/></properties>
  <failure message="assert &lt;script&gt;1 == 2">trace</failure></testcase>
 <testcase classname="tests.trial.test_backup" name="test_restore" time="2.0">
  <properties><property name="requirement" value="BAK-1"/></properties></testcase>
 <testcase classname="tests.imaging.test_deid" name="test_skipped" time="0.0">
  <properties><property name="requirement" value="DEI-1"/></properties><skipped message="no data"/></testcase>
 <testcase classname="tests.other" name="test_stray" time="0.0">
  <properties><property name="requirement" value="ZZZ-9"/></properties></testcase>
 <testcase classname="tests.other" name="test_unmarked" time="0.0"/>
</testsuite></testsuites>
"""

REQS = """- {id: AUD-1, text: Audit trail, source: 21 CFR 11.10(e)}
- {id: AUD-2, text: Tamper evidence, source: EU GMP Annex 11 s9}
- {id: BAK-1, text: Backups restore, source: EU GMP Annex 11 s7.2}
- {id: DEI-1, text: De-identification, source: DICOM PS3.15 Annex E}
- {id: CAI-1, text: Model version <named>, source: CONSORT-AI 5(i)}
"""


@pytest.fixture
def files(tmp_path):
    (tmp_path / "junit.xml").write_text(JUNIT)
    (tmp_path / "req.yaml").write_text(REQS)
    return tmp_path


@pytest.mark.requirement("VAL-1")
def test_matrix_from_a_small_junit_xml(files):
    results, run_at = load_junit(files / "junit.xml")
    assert run_at == "2026-11-30T12:00:00.000000+00:00" and len(results) == 6
    m = build_matrix(load_requirements(files / "req.yaml"), results, version="abc1234-dirty",
                     run_at=run_at, now=dt.datetime(2026, 11, 30, 13, 0, tzinfo=dt.UTC))
    status = {r.requirement.id: r.status for r in m.rows}
    assert status == {"AUD-1": FAILING, "AUD-2": FAILING, "BAK-1": VERIFIED, "DEI-1": NOT_VERIFIED,
                      "CAI-1": NOT_VERIFIED}
    assert [t.nodeid for t in m.rows[0].tests] == ["tests.trial.test_audit::test_every_setup_change_is_on_record",
                                                   "tests.trial.test_audit::test_broken"]
    assert list(m.unknown) == ["ZZZ-9"] and not m.ok
    assert dict(m.totals) == {"passed": 4, "failed": 1, "skipped": 1}

    page = render_html(m)
    assert "<code>abc1234-dirty</code>" in page and "2026-11-30T13:00:00+00:00" in page
    row = re.search(r"<tr id='req-BAK-1'>.*?</tr>", page, re.S).group(0)
    assert "Backups restore" in row and "EU GMP Annex 11 s7.2" in row and "test_restore" in row
    assert "class='status verified'" in row
    assert "class='status failing'" in re.search(r"<tr id='req-AUD-2'>.*?</tr>", page, re.S).group(0)
    assert "<em>no test</em>" in re.search(r"<tr id='req-CAI-1'>.*?</tr>", page, re.S).group(0)
    assert "<script>" not in page and "&lt;script&gt;" in page and "Model version &lt;named&gt;" in page
    assert "ZZZ-9" in page and "NOT every requirement verified" in page


def test_the_command_writes_the_report_and_fails_when_a_requirement_is_not_verified(files):
    out = files / "report" / "report.html"
    assert main(["--junit", str(files / "junit.xml"), "--requirements", str(files / "req.yaml"), "--out", str(out),
                 "--code-version", "v1"]) == 1
    assert out.read_text().startswith("<!doctype html>")
    (files / "ok.yaml").write_text("- {id: BAK-1, text: Backups restore, source: EU GMP Annex 11 s7.2}\n")
    (files / "ok.xml").write_text(re.sub(r"<testcase classname=\"tests\.(?!trial\.test_backup).*?</testcase>|"
                                         r"<testcase classname=\"tests\.other\" name=\"test_unmarked\"[^>]*/>",
                                         "", JUNIT, flags=re.S))
    assert main(["--junit", str(files / "ok.xml"), "--requirements", str(files / "ok.yaml"), "--out", str(out),
                 "--code-version", "v1"]) == 0
    assert "every requirement verified" in out.read_text()


def test_marks_reach_the_report_through_a_real_pytest_run(tmp_path):
    """tests/conftest.py writes each `requirement` mark into pytest's JUnit XML; the report reads it from there."""
    junit = tmp_path / "junit.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
                    f"{Path(__file__).relative_to(ROOT)}::test_matrix_from_a_small_junit_xml"],
                   cwd=ROOT, env=os.environ, check=True, capture_output=True, text=True)
    results, _ = load_junit(junit)
    assert [(r.nodeid, r.outcome, r.requirements) for r in results] == [
        ("tests.validation.test_validation_report::test_matrix_from_a_small_junit_xml", "passed", ("VAL-1",))]


def test_an_unknown_requirement_id_fails_collection(tmp_path):
    probe = ROOT / "tests" / "validation" / f"test_probe_{os.getpid()}.py"
    probe.write_text("import pytest\n\n\n@pytest.mark.requirement('NOPE-1')\ndef test_x():\n    assert True\n")
    try:
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--collect-only",
                               str(probe.relative_to(ROOT))], cwd=ROOT, env=os.environ, capture_output=True, text=True)
    finally:
        probe.unlink()
    assert proc.returncode != 0 and "requirement 'NOPE-1' is not in docs/requirements.yaml" in proc.stdout + proc.stderr


def test_every_requirement_has_a_marked_test():
    """Each requirement in docs/requirements.yaml is named by at least one test's `requirement` mark."""
    used = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        for args in re.findall(r"mark\.requirement\(([^)]*)\)", path.read_text()):
            used |= set(re.findall(r"[\"']([A-Z]+-\d+)[\"']", args))
    missing = [r.id for r in load_requirements(ROOT / "docs" / "requirements.yaml") if r.id not in used]
    assert not missing, f"requirements without a test: {missing}"
