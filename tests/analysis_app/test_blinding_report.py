"""The blinding indices in the analysis results and report (issue 14): withheld before lock, reported after."""
from __future__ import annotations

import pytest

from analysis.services import run_analysis
from rating.models import Rating
from tests.analysis_app.conftest import small_simulated_trial
from trial import services
from trial.models import Trial

pytestmark = pytest.mark.django_db


def test_blinding_section_after_lock_only(tmp_path):
    out = small_simulated_trial(code="BLINDRES", cases=16, lock=False, guess_right=0.5, guess_dont_know=0.3)
    trial = out["trial"]
    assert trial.ask_blinding_guess
    before = run_analysis(trial, tmp_path / "before")
    assert before["blinding"]["n"] == 0  # the answers would name the masked arms
    assert "Blinding of the experts" in (tmp_path / "before" / "report" / "report.html").read_text()

    coord = trial.memberships.get(role="coordinator").user
    trial = services.lock_trial(coord, Trial.objects.get(pk=trial.pk), reason="test")
    res = run_analysis(trial, tmp_path / "after")
    b = res["blinding"]
    ratings = list(Rating.objects.filter(case__trial=trial).select_related("read_a__arm"))
    right = sum(r.blinding_guess == ("A" if r.read_a.arm.is_ai else "B") for r in ratings)
    wrong = sum(r.blinding_guess == ("B" if r.read_a.arm.is_ai else "A") for r in ratings)
    assert b["n"] == len(ratings) == 32
    assert b["by_arm"]["ai_assisted"]["estimate"] == pytest.approx((right - wrong) / len(ratings))
    assert b["by_arm"]["unassisted"]["estimate"] == b["by_arm"]["ai_assisted"]["estimate"]
    lo, hi = b["by_arm"]["ai_assisted"]["ci"]
    assert lo < b["by_arm"]["ai_assisted"]["estimate"] < hi
    assert 0 <= b["james"]["estimate"] <= 1
    html = (tmp_path / "after" / "report" / "report.html").read_text()
    assert "Bang, arm ai_assisted" in html and "James (trial)" in html
