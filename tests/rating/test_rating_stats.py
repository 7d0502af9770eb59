"""Blinding, statistically (issue 6): over many tasks, A is the assisted report about half the time (binomial
test), and no field sent to the expert predicts the arm. Report content is the same in both arms here except an
extra sentence in some assisted reports, so after normalisation report length is the only content difference;
the arms' surface styles (a draft's upper case and bullets vs prose or numbered lists) must leave no trace."""
import random
import re
from collections import defaultdict

import pytest
from django.urls import reverse
from rest_framework.test import APIClient
from scipy import stats

from rating.models import Rating
from rating.selectors import normalise_text, task_label
from reading.models import Read
from tests.factories.rating import EXTRA, complete_case, rating_trial
from tests.factories.trial import PASSWORD

pytestmark = pytest.mark.django_db
N_CASES = 120
# A field "predicts the arm" when its association with it is this unlikely by chance. The draws are random per run
# (task ids are random), and this test makes a few dozen such checks, so the level is Bonferroni-small: a false
# alarm is rare (< 0.1% of runs), while a real leak (a field that sorts or differs by arm) gives p far below it.
P_MIN = 1e-5


def leaves(obj, prefix=""):
    """(path, value) for every scalar in a JSON document; lists of scalars become tuples."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from leaves(v, f"{prefix}.{k}" if prefix else k)
    elif isinstance(obj, list) and any(isinstance(v, dict | list) for v in obj):
        for i, v in enumerate(obj):
            yield from leaves(v, f"{prefix}.{i}")
    elif isinstance(obj, list):
        yield prefix, tuple(obj)
    else:
        yield prefix, obj


def association_p(values: list, y: list[bool]) -> float:
    """How likely the association of a field with the arm is under 'no association'."""
    distinct = set(values)
    if len(distinct) <= 1:
        return 1.0
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        x1 = [v for v, a in zip(values, y, strict=True) if a]
        x0 = [v for v, a in zip(values, y, strict=True) if not a]
        return stats.mannwhitneyu(x1, x0).pvalue
    if len(distinct) <= 10:
        keys = sorted(distinct, key=repr)
        table = [[sum(1 for v, a in zip(values, y, strict=True) if v == k and a == arm) for k in keys]
                 for arm in (True, False)]
        return stats.chi2_contingency(table).pvalue
    # High-cardinality values (ids, codes): does their sort order separate the arms?
    order = {v: i for i, v in enumerate(sorted(distinct, key=repr))}
    ranks = [order[v] for v in values]
    return stats.mannwhitneyu([r for r, a in zip(ranks, y, strict=True) if a],
                              [r for r, a in zip(ranks, y, strict=True) if not a]).pvalue


def derived(values: list) -> dict[str, list]:
    """The field itself and simple transforms a leak could hide in (parity, length, first and last character)."""
    out = {"value": values}
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        out["parity"] = [v % 2 for v in values]
    if all(isinstance(v, str) for v in values):
        out |= {"length": [len(v) for v in values], "first": [v[:1] for v in values], "last": [v[-1:] for v in values]}
    return out


def within_case_p(values: list, y: list[bool], cases: list) -> float:
    """Between the tasks of one case whose A differs in arm, does the field's order follow the arm? A sign test
    over cases (catches what differs by arm only inside a case, like the parity of consecutive ids)."""
    try:
        order = {v: i for i, v in enumerate(sorted(set(values)))}
    except TypeError:
        order = {v: i for i, v in enumerate(sorted(set(values), key=repr))}
    groups = defaultdict(lambda: ([], []))
    for v, a, c in zip(values, y, cases, strict=True):
        groups[c][0 if a else 1].append(order[v])
    up = down = 0
    for ai, plain in groups.values():
        if ai and plain:
            d = sum(ai) / len(ai) - sum(plain) / len(plain)
            up, down = up + (d > 0), down + (d < 0)
    return stats.binomtest(up, up + down, 0.5).pvalue if up + down else 1.0


@pytest.fixture
def many():
    t = rating_trial(code="RSTAT", experts=4, panel=3, cases=N_CASES,
                     secret="a-fixed-secret-so-the-draws-are-reproducible")
    rng = random.Random(20240601)
    extra = {}
    for case in t["cases"]:
        extra[case.pk] = rng.random() < 0.5
        complete_case(case, rng=rng, extra_for_ai=extra[case.pk])
    t["extra"] = extra
    return t


def test_a_is_the_assisted_report_about_half_the_time_and_no_field_predicts_the_arm(many, client):
    t = many
    ratings = list(Rating.objects.select_related("read_a__arm", "read_b__arm", "expert__user"))
    assert len(ratings) == N_CASES * 3
    a_is_ai = {r.public_id: r.read_a.arm.code == "ai_assisted" for r in ratings}

    _assert_fair_ab_draw(ratings, a_is_ai)
    rows = _everything_sent(t)
    assert set(rows) == set(a_is_ai)
    ids = list(rows)
    by_id = {r.public_id: r for r in ratings}
    _assert_reports_differ_only_by_the_extra_sentence(rows, ids, a_is_ai, by_id, t["extra"])
    _assert_no_field_predicts_the_arm(rows, ids, a_is_ai, by_id)
    _assert_ids_leak_nothing(ratings, rows, ids)
    _assert_one_page_template(t, ratings, a_is_ai, client)


def _assert_fair_ab_draw(ratings: list, a_is_ai: dict) -> None:
    """1. The A/B draw is fair: binomial test against 1/2, overall and per expert."""
    k, n = sum(a_is_ai.values()), len(a_is_ai)
    assert stats.binomtest(k, n, 0.5).pvalue > 1e-4, (k, n)
    assert 0.40 < k / n < 0.60
    per_expert = defaultdict(list)
    for r in ratings:
        per_expert[r.expert_id].append(a_is_ai[r.public_id])
    for draws in per_expert.values():
        assert stats.binomtest(sum(draws), len(draws), 0.5).pvalue > P_MIN


def _everything_sent(t: dict) -> dict[str, dict]:
    """2. Everything the expert's API sends, per task: the task document and its worklist row."""
    rows: dict[str, dict] = {}
    for expert in t["experts"]:
        api = APIClient()
        api.force_authenticate(expert.user)
        page, pages = 1, 1
        while page <= pages:  # every page of the worklist
            wl = api.get(reverse("rating-worklist", args=[t["trial"].code]), {"page": page}).json()
            pages = wl["pages"]
            page += 1
            for item in wl["tasks"]:
                doc = api.get(reverse("rating-task", args=[t["trial"].code, item["id"]])).json()
                rows[item["id"]] = {"worklist": item, "task": doc}
    return rows


def _assert_reports_differ_only_by_the_extra_sentence(
    rows: dict, ids: list, a_is_ai: dict, by_id: dict, extra: dict
) -> None:
    """2a. Reports: after normalisation the two reports of a task have the same sentences, except the extra
    sentence some assisted reports carry. Styles (case, bullets, numbering, spacing, stops) leave no trace."""
    extra_sentence = normalise_text(EXTRA)[0]
    for i in ids:
        a, b = rows[i]["task"]["reports"]
        rating = by_id[i]
        ai_report, plain = (a, b) if a_is_ai[i] else (b, a)
        assert plain["impression"] == ai_report["impression"]
        if extra[rating.case_id]:
            assert ai_report["findings"] == plain["findings"] + [extra_sentence]
        else:
            assert ai_report["findings"] == plain["findings"]
    # ... so report length is the only content difference, and it predicts the arm only through that sentence.
    length_diff = [len(" ".join(rows[i]["task"]["reports"][0]["findings"]))
                   - len(" ".join(rows[i]["task"]["reports"][1]["findings"])) for i in ids]
    no_extra = [d for d, i in zip(length_diff, ids, strict=True) if not extra[by_id[i].case_id]]
    assert set(no_extra) == {0}


def _assert_no_field_predicts_the_arm(rows: dict, ids: list, a_is_ai: dict, by_id: dict) -> None:
    """2b. Every other field: no association with the arm of A."""
    y = [a_is_ai[i] for i in ids]
    fields: dict[str, list] = defaultdict(list)
    for i in ids:
        for part in ("worklist", "task"):
            for path, value in leaves(rows[i][part]):
                if part == "task" and path.startswith("reports."):
                    continue  # checked above
                fields[f"{part}.{path}"].append(value)
    assert {"worklist.id", "worklist.position", "task.id", "task.label", "task.status"} <= set(fields)
    case_of = [by_id[i].case_id for i in ids]
    for path, values in fields.items():
        assert len(values) == len(ids), path
        for how, feature in derived(values).items():
            p = association_p(feature, y)
            assert p > P_MIN, f"{path} ({how}) predicts the arm (p={p:.2g})"
            p = within_case_p(feature, y, case_of)
            assert p > P_MIN, f"{path} ({how}) predicts the arm within a case (p={p:.2g})"


def _assert_ids_leak_nothing(ratings: list, rows: dict, ids: list) -> None:
    """2c. Ids do not sort by creation order either, and are not any read's id."""
    created = sorted(ratings, key=lambda r: r.pk)
    rho, p = stats.spearmanr(range(len(created)), [sorted(ids).index(r.public_id) for r in created])
    assert p > P_MIN, f"rating ids sort by creation order (rho={rho:.2f})"
    read_ids = set(Read.objects.values_list("public_id", flat=True))
    assert not read_ids & set(ids)
    for r in ratings:
        assert r.read_a.public_id not in str(rows[r.public_id]) and r.read_b.public_id not in str(rows[r.public_id])


def _assert_one_page_template(t: dict, ratings: list, a_is_ai: dict, client) -> None:
    """3. The page is the same template whatever the arm: with the task's own values and the report sentences
    blanked, every task page of an expert is byte-identical."""
    expert = t["experts"][0]
    client.login(username=expert.user.username, password=PASSWORD)
    skeletons = defaultdict(set)
    mine = [r for r in ratings if r.expert_id == expert.pk][:24]
    for r in mine:
        html = client.get(reverse("rating:task", args=[t["trial"].code, r.public_id])).content.decode()
        assert r.case.code not in html  # the case code carries the center
        html = html.replace(r.public_id, "<ID>").replace(task_label(r), "<LABEL>")
        html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "<CSRF>", html)
        html = re.sub(r"<li>[^<]*</li>", "<li/>", html)
        html = re.sub(r'<script id="rating-config"[^<]*</script>', "<CONFIG>", html)
        html = re.sub(r"task \d+ of \d+ · \d+ rated", "<POS>", html)
        skeletons[a_is_ai[r.public_id]].add(re.sub(r"(<li/>)+", "<LIS/>", html))
    assert len(skeletons[True]) == len(skeletons[False]) == 1
    assert skeletons[True] == skeletons[False]
