"""Rating tasks: when they are made, who gets them, the recorded A/B order (issue 6)."""
import hashlib
import hmac
from collections import Counter

import pytest
from django.urls import reverse

from core.errors import InvalidInput
from rating import selectors as rating_selectors
from rating import services as rating_services
from rating.models import Rating
from reading.models import Read
from tests.factories.rating import GOOD, complete_case, rating_trial, submit_read
from tests.factories.trial import PASSWORD, UserFactory
from trial import services
from trial.models import AuditEntry, Case, Trial

pytestmark = pytest.mark.django_db


def test_tasks_are_made_when_the_pair_is_complete_and_only_once():
    t = rating_trial(code="RT1", experts=3, panel=2, cases=1)
    case = t["cases"][0]
    r1, r2 = Read.objects.filter(case=case).order_by("pk")
    submit_read(r1)
    assert not Rating.objects.filter(case=case).exists()  # half a pair: nothing to rate yet
    submit_read(r2)
    ratings = list(Rating.objects.filter(case=case))
    assert len(ratings) == 2 and len({r.expert_id for r in ratings}) == 2
    assert all({r.read_a_id, r.read_b_id} == {r1.pk, r2.pk} for r in ratings)
    assert rating_services.create_rating_tasks(case) == []  # idempotent
    rating_services.on_read_submitted(r2)
    assert Rating.objects.filter(case=case).count() == 2
    case.refresh_from_db()
    assert case.status == Case.Status.READ
    assert AuditEntry.objects.filter(action="rating:create").count() == 2


def test_short_panel_is_topped_up_when_an_expert_joins():
    t = rating_trial(code="RT2", experts=1, panel=2, cases=1)
    complete_case(t["cases"][0])
    assert Rating.objects.count() == 1
    from rating.selectors import rating_progress

    assert rating_progress(t["trial"])["cases_short_of_panel"] == 1  # the coordinator is told
    late = services.add_member(t["coordinator"], t["trial"], user=UserFactory(username="late-expert"), role="expert")
    # Joining tops the panel up, in the same transaction: no one has to run anything.
    assert Rating.objects.count() == 2 and Rating.objects.filter(expert=late).count() == 1
    assert rating_services.create_rating_tasks(t["cases"][0]) == []
    assert rating_progress(t["trial"])["cases_short_of_panel"] == 0


def test_workload_is_balanced_and_panel_size_respected():
    t = rating_trial(code="RT3", experts=4, panel=2, cases=10)
    for c in t["cases"]:
        complete_case(c)
    per_case = Counter(Rating.objects.values_list("case", flat=True))
    assert set(per_case.values()) == {2}
    per_expert = Counter(Rating.objects.values_list("expert", flat=True))
    assert sorted(per_expert.values()) == [5, 5, 5, 5]


def test_experts_are_kept_off_their_own_center():
    t = rating_trial(code="RT4", experts=4, panel=2, cases=8, off_center=True)
    for c in t["cases"]:
        complete_case(c)
    assert Rating.objects.count() == 16
    for r in Rating.objects.select_related("case", "expert"):
        assert r.expert.center_id != r.case.center_id
    # Without the setting, own-center experts are used too.
    t2 = rating_trial(code="RT4B", experts=2, panel=2, cases=2)
    for c in t2["cases"]:
        complete_case(c)
    assert Rating.objects.filter(case__trial=t2["trial"]).count() == 4


def test_order_seed_is_recorded_and_reproduces_the_order():
    t = rating_trial(code="RT5", experts=3, panel=3, cases=6)
    for c in t["cases"]:
        complete_case(c)
    trial = Trial.objects.get(pk=t["trial"].pk)
    for r in Rating.objects.select_related("read_a__arm", "read_b__arm"):
        expected = hmac.new(trial.secret.encode(), f"rating-order|{r.public_id}".encode(), hashlib.sha256).hexdigest()
        assert r.order_seed == expected
        first, second = sorted([r.read_a, r.read_b], key=lambda x: (x.arm.is_ai, x.arm.code, x.pk))
        swapped = rating_services.swap_from_seed(r.order_seed)
        assert (r.read_a, r.read_b) == ((second, first) if swapped else (first, second))
        assert len(r.public_id) >= 16 and r.public_id.replace("-", "").replace("_", "").isalnum()


def test_case_randomised_scores_single_reports_without_preference(client):
    t = rating_trial(code="RT6", design=Trial.Design.CASE_RANDOMISED, experts=2, panel=2, cases=2)
    for c in t["cases"]:
        complete_case(c)
    ratings = list(Rating.objects.all())
    assert len(ratings) == 4 and all(r.read_b_id is None for r in ratings)
    r = ratings[0]
    expert = r.expert.user
    payload = rating_selectors.task_payload(r)
    assert payload["kind"] == "single" and len(payload["reports"]) == 1 and payload["preferences"] == []
    with pytest.raises(InvalidInput, match="no preference"):
        rating_services.submit_rating(expert, r, {"preference": "A", "quality_a": 4})
    with pytest.raises(InvalidInput, match="no report B"):
        rating_services.submit_rating(expert, r, {"quality_a": 4, "quality_b": 3})
    client.login(username=expert.username, password=PASSWORD)
    html = client.get(reverse("rating:task", args=[t["trial"].code, r.public_id])).content.decode()
    assert 'id="report-A"' in html and 'id="report-B"' not in html and 'name="preference"' not in html
    worklist = client.get(reverse("rating:worklist", args=[t["trial"].code]))
    assert "Score one report" in worklist.content.decode()
    resp = client.post(reverse("rating:task", args=[t["trial"].code, r.public_id]),
                       {"quality_a": "4", "comment": ""})
    assert resp.status_code == 302
    r.refresh_from_db()
    assert r.status == "done" and r.quality_a == 4 and r.preference == "" and r.quality_b is None


def test_crossover_rates_one_readers_pair_per_case():
    t = rating_trial(code="RT7", design=Trial.Design.CROSSOVER, experts=2, panel=2, cases=3,
                     washout_days=0)
    for c in t["cases"]:
        complete_case(c)
    assert Rating.objects.count() == 6
    for r in Rating.objects.select_related("read_a__arm", "read_b__arm"):
        assert r.read_a.reader_id == r.read_b.reader_id
        assert {r.read_a.arm.code, r.read_b.arm.code} == {"unassisted", "ai_assisted"}
    # Every case's panel compares the same pair.
    for c in t["cases"]:
        assert len({frozenset((r.read_a_id, r.read_b_id)) for r in Rating.objects.filter(case=c)}) == 1


def test_case_is_rated_when_its_panel_has_submitted_and_progress_counts():
    t = rating_trial(code="RT8", experts=2, panel=2, cases=2)
    for c in t["cases"]:
        complete_case(c)
    progress = rating_selectors.rating_progress(t["trial"])
    by_expert = progress.pop("ratings_by_expert")
    assert progress == {"ratings_total": 4, "ratings_done": 0, "cases_short_of_panel": 0}
    assert [(e["todo"], e["done"]) for e in by_expert] == [(2, 0), (2, 0)]
    case = t["cases"][0]
    for r in Rating.objects.filter(case=case).select_related("expert__user"):
        rating_services.submit_rating(r.expert.user, r, GOOD)
    case.refresh_from_db()
    assert case.status == Case.Status.RATED
    progress = rating_selectors.rating_progress(t["trial"])
    by_expert = progress.pop("ratings_by_expert")
    assert progress == {"ratings_total": 4, "ratings_done": 2, "cases_short_of_panel": 0}
    assert [(e["todo"], e["done"]) for e in by_expert] == [(1, 1), (1, 1)]  # each expert rated the first case


def test_excluded_case_gets_no_tasks():
    t = rating_trial(code="RT9", experts=2, panel=2, cases=1)
    services.exclude_case(t["coordinator"], t["cases"][0], reason="image quality")
    complete_case(t["cases"][0])
    assert not Rating.objects.exists()


def test_three_arms_pairs_drawn_uniformly_in_advance_and_rated_by_the_whole_panel():
    """Issue 20: with three arms each case's pair is one of the three drawn from the trial's secret once every read
    is in (never adaptively), the whole panel rates that pair, and sides are drawn per task."""
    t = rating_trial(code="RT3ARM", experts=3, panel=2, cases=24, extra_arms=("ai_v2",), block_sizes=(3, 6))
    trial = t["trial"]
    assert trial.arms.count() == 3
    first = t["cases"][0]
    reads = list(Read.objects.filter(case=first).order_by("pk"))
    assert len(reads) == 3 and len({r.arm_id for r in reads}) == 3
    submit_read(reads[0])
    submit_read(reads[1])
    assert not Rating.objects.filter(case=first).exists()  # the third read is still out
    submit_read(reads[2])
    assert Rating.objects.filter(case=first).count() == 2
    for c in t["cases"][1:]:
        complete_case(c)
    pairs = Counter()
    swapped = 0
    for case in t["cases"]:
        ratings = list(Rating.objects.filter(case=case).select_related("read_a__arm", "read_b__arm"))
        assert len(ratings) == 2
        shown = {frozenset((r.read_a_id, r.read_b_id)) for r in ratings}
        assert len(shown) == 1  # one pair per case, to the whole panel
        # The draw is reproducible from the secret alone: uniform index into the canonical list of pairs.
        canon = sorted(Read.objects.filter(case=case).select_related("arm"), key=lambda r: (r.arm.is_ai, r.arm.code,
                                                                                           r.pk))
        all_pairs = [(a, b) for i, a in enumerate(canon) for b in canon[i + 1:]]
        digest = hmac.new(trial.secret.encode(), f"arm-pair|case|{case.pk}".encode(), hashlib.sha256).hexdigest()
        a, b = all_pairs[int(digest[:14], 16) % 3]
        assert shown == {frozenset((a.pk, b.pk))}
        pairs[(a.arm.code, b.arm.code)] += 1
        swapped += sum(r.read_a_id == b.pk for r in ratings)
    assert len(pairs) == 3 and sum(pairs.values()) == 24  # every pair of arms is compared
    assert 0 < swapped < 48  # sides randomised per task


def test_three_arm_trial_runs_end_to_end_with_arena_ranking(tmp_path):
    """Issue 20: a three-arm trial's ratings feed the arena ranking (all three arms, bootstrap CIs) in the report."""
    import math
    import random

    from analysis.services import run_analysis

    t = rating_trial(code="RT3END", experts=3, panel=3, cases=24, extra_arms=("ai_v2",), block_sizes=(3, 6))
    trial = t["trial"]
    for c in t["cases"]:
        complete_case(c)
    # Log-strengths 1.5 apart: the pairs come from the trial's random secret, so the data differ per run; at 1.0
    # apart the order came out wrong in about one run in a dozen, at 1.5 (win probability 0.82 per step, about 24
    # comparisons per pair of arms) the order is about 3 standard errors clear.
    strength = {"unassisted": 0.0, "ai_assisted": 1.5, "ai_v2": 3.0}
    rng = random.Random(5)
    for r in Rating.objects.filter(case__trial=trial).select_related("read_a__arm", "read_b__arm", "expert__user"):
        d = strength[r.read_a.arm.code] - strength[r.read_b.arm.code]
        u = rng.random()
        pref = "none" if u < 0.15 else ("A" if rng.random() < 1 / (1 + math.exp(-d)) else "B")
        rating_services.open_rating(r.expert.user, r)
        rating_services.submit_rating(r.expert.user, r, {"preference": pref, "quality_a": 3, "quality_b": 3})
    for status in (Trial.Status.RATING, Trial.Status.LOCKED):
        trial = services.advance_status(t["coordinator"], Trial.objects.get(pk=trial.pk), status, reason="test")
    res = run_analysis(trial, tmp_path / "run")
    ranking = res["ai_evaluation"]["arena"]["ranking"]
    assert ranking["n_comparisons"] == 72  # 24 cases x a panel of 3
    items = {i["item"]: i for i in ranking["items"]}
    assert set(items) == {"unassisted", "ai_assisted", "ai_v2"}
    assert items["ai_v2"]["rank"] == 1 and items["unassisted"]["rank"] == 3
    assert all(i["ci"][0] is not None for i in ranking["items"])
    assert "Report arena" in (tmp_path / "run" / "report" / "report.html").read_text()
