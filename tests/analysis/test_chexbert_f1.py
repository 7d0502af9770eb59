"""CheXbert-F1 (analysis/stats/chexbert_f1.py): f1chexbert's definitions against a hand-computed example and against
scikit-learn's classification_report itself (tests/analysis/results/chexbert_f1_sklearn.json, written by
make_chexbert_f1_reference.py beside it), and the paired randomisation against brute-force enumeration."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.evaluation import NO_WEIGHTS, chexbert_summary
from analysis.stats.chexbert_f1 import (
    CONDITIONS,
    CONDITIONS_5,
    binary_matrix,
    chexbert_f1,
    paired_f1_randomisation,
    rrg_binary,
    slug,
    unit_counts,
)

REFERENCE = Path(__file__).parent / "results" / "chexbert_f1_sklearn.json"
CARD, EDEMA, NF = CONDITIONS.index("Cardiomegaly"), CONDITIONS.index("Edema"), CONDITIONS.index("No Finding")


def _row(**labels):
    row = [None] * 14
    for k, v in labels.items():
        row[{"card": CARD, "edema": EDEMA, "nf": NF}[k]] = v
    return row


def test_rrg_mode_counts_uncertain_as_positive():
    assert [rrg_binary(v) for v in (1, -1, 0, None, "", "1", "-1.0", "0")] == [1, 1, 0, 0, 0, 1, 1, 0]


def test_f1_by_hand():
    refs = [_row(card=1, edema=0), _row(card=-1, edema=1), _row(nf=1)]
    hyps = [_row(card=1, edema=-1), _row(edema=1), _row(card=0, nf=1)]
    r = chexbert_f1(refs, hyps)
    # Cardiomegaly TP1 FN1 -> 2/3; Edema TP1 FP1 -> 2/3; No Finding TP1 -> 1; the other 11: no support, F1 0.
    assert r.n == 3
    assert r.all14.micro_f1 == pytest.approx(6 / 8)
    assert r.all14.macro_f1 == pytest.approx((2 / 3 + 2 / 3 + 1) / 14)
    assert r.all14.weighted_f1 == pytest.approx((2 * 2 / 3 + 2 / 3 + 1) / 4)
    assert r.top5.micro_f1 == pytest.approx(4 / 6)
    assert r.top5.macro_f1 == pytest.approx((2 / 3 + 2 / 3) / 5)
    assert r.accuracy_5 == pytest.approx(1 / 3)
    card = next(c for c in r.all14.conditions if c.condition == "Cardiomegaly")
    assert (card.precision, card.recall, card.support) == (1.0, 0.5, 2)
    assert [c.condition for c in r.top5.conditions] == ["Cardiomegaly", "Edema", "Consolidation", "Atelectasis",
                                                      "Pleural Effusion"]
    assert set(CONDITIONS_5) == {c.condition for c in r.top5.conditions}
    perfect = chexbert_f1(refs, refs)
    assert perfect.all14.micro_f1 == 1.0 and perfect.accuracy_5 == 1.0
    with pytest.raises(ValueError, match="2 reference label rows but 3"):
        chexbert_f1(refs[:2], hyps)


@pytest.mark.parametrize("case", range(2))
def test_matches_scikit_learn_classification_report(case):
    data = json.loads(REFERENCE.read_text())["cases"][case]
    r = chexbert_f1(data["references"], data["hypotheses"])
    for ours, theirs in ((r.all14, data["report_14"]), (r.top5, data["report_5"])):
        assert ours.micro_f1 == pytest.approx(theirs["micro avg"]["f1-score"], abs=1e-12)
        assert ours.micro_precision == pytest.approx(theirs["micro avg"]["precision"], abs=1e-12)
        assert ours.micro_recall == pytest.approx(theirs["micro avg"]["recall"], abs=1e-12)
        assert ours.macro_f1 == pytest.approx(theirs["macro avg"]["f1-score"], abs=1e-12)
        assert ours.weighted_f1 == pytest.approx(theirs["weighted avg"]["f1-score"], abs=1e-12)
        for c in ours.conditions:
            ref = theirs[c.condition]
            assert (c.precision, c.recall, c.f1) == pytest.approx(
                (ref["precision"], ref["recall"], ref["f1-score"]), abs=1e-12)
            assert c.support == ref["support"]
    assert r.accuracy_5 == pytest.approx(data["accuracy_5"], abs=1e-12)
    assert any(c.support == 0 for c in r.all14.conditions)  # the zero-support rule is exercised


def _labels(rng, n):
    return [list(rng.choice(np.array([1, 0, -1, None], dtype=object), size=14)) for _ in range(n)]


@pytest.mark.parametrize(("statistic", "five"), [("micro", False), ("macro", False), ("micro", True)])
def test_randomisation_matches_brute_force(statistic, five):
    rng = np.random.default_rng(3)
    n = 7
    ref, a, b = _labels(rng, n), _labels(rng, n), _labels(rng, n)
    t = binary_matrix(ref)
    ca, cb = unit_counts(t, binary_matrix(a)), unit_counts(t, binary_matrix(b))
    res = paired_f1_randomisation(ca, cb, statistic=statistic, five=five, label_a="a", label_b="b")
    key = {"micro": "micro_f1", "macro": "macro_f1"}[statistic]

    def f1(hyps):
        rep = chexbert_f1(ref, hyps)
        return getattr(rep.top5 if five else rep.all14, key)

    obs = f1(a) - f1(b)
    diffs = []
    for swap in itertools.product((False, True), repeat=n):  # recomputed from the labels, not from counts
        sa = [b[i] if s else a[i] for i, s in enumerate(swap)]
        sb = [a[i] if s else b[i] for i, s in enumerate(swap)]
        diffs.append(abs(f1(sa) - f1(sb)))
    assert res.exact and res.n_shuffles == 2 ** n and res.n == n
    assert res.difference == pytest.approx(obs, abs=1e-12)
    assert res.mean_a == pytest.approx(f1(a)) and res.mean_b == pytest.approx(f1(b))
    assert res.p == pytest.approx(np.mean(np.array(diffs) >= abs(obs) - 1e-12), abs=1e-12)
    assert res.metric == f"chexbert_{statistic}_f1_{5 if five else 14}"


def test_randomisation_sampled_and_degenerate():
    rng = np.random.default_rng(4)
    ref, a = _labels(rng, 40), _labels(rng, 40)
    t = binary_matrix(ref)
    same = paired_f1_randomisation(unit_counts(t, binary_matrix(a)), unit_counts(t, binary_matrix(a)),
                                   n_shuffles=500, seed=1)
    assert same.difference == 0 and same.p == 1.0 and not same.exact
    perfect = paired_f1_randomisation(unit_counts(t, t), unit_counts(t, binary_matrix(a)), n_shuffles=2000, seed=1)
    assert perfect.mean_a == 1.0 and perfect.p < 0.01
    again = paired_f1_randomisation(unit_counts(t, t), unit_counts(t, binary_matrix(a)), n_shuffles=2000, seed=1)
    assert again.p == perfect.p
    empty = paired_f1_randomisation(np.zeros((0, 14, 3)), np.zeros((0, 14, 3)))
    assert empty.n == 0 and empty.p is None


def test_summary_from_tables_without_reads_or_weights():
    """analysis.evaluation.chexbert_summary on bare tables: no weights, weights that failed, references only."""
    none = chexbert_summary(pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), "ai", "un")
    assert not none.computed and none.reason == NO_WEIGHTS
    failed = chexbert_summary(pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), "ai", "un",
                              text_models={"chexbert": {"error": "no chexbert.pth"}})
    assert not failed.computed and "did not load (no chexbert.pth)" in failed.reason
    row = {"case_code": "C1", "chexbert_labelled": 1, **{f"chexbert_{slug(c)}": "" for c in CONDITIONS}}
    row[f"chexbert_{slug('Edema')}"] = 1
    cases = pd.DataFrame([row])
    drafts = pd.DataFrame([{**row, f"chexbert_{slug('Edema')}": -1}])  # uncertain counts as positive
    s = chexbert_summary(pd.DataFrame(), drafts, cases, "ai", "un", text_models={"chexbert": {"path": "/w"}})
    assert s.computed and s.final_by_arm == {} and s.comparisons == []
    assert s.drafts.n == 1 and s.drafts.all14.micro_f1 == 1.0
