"""Report-text metrics (analysis/stats/text_metrics.py): hand-computed BLEU and ROUGE-L, nltk's documented METEOR
example, and the randomisation test against exact enumeration and scipy's paired permutation test."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from analysis.stats.text_metrics import (
    bleu,
    corpus_bleu,
    meteor,
    paired_randomisation,
    report_scores,
    rouge_l,
)


def test_bleu_by_hand():
    # Clipped n-gram precisions 5/6, 3/5, 2/4, 1/3, equal lengths (BP = 1): BLEU = (1/12)^(1/4).
    assert bleu("the cat sat on the mat", "the cat sat on a mat") == pytest.approx((1 / 12) ** 0.25, abs=1e-6)
    assert bleu("No focal consolidation.", "no focal consolidation.") == pytest.approx(1.0)
    assert bleu("", "anything") is None
    assert corpus_bleu(["the cat sat on the mat"], ["the cat sat on a mat"]) == pytest.approx((1 / 12) ** 0.25,
                                                                                              abs=1e-6)


def test_rouge_l_by_hand():
    # LCS "the quick brown jumps the" = 5 tokens: precision 5/8, recall 5/9, F = 50/85.
    assert rouge_l("The quick brown dog jumps on the log.", "The quick brown fox jumps over the lazy dog") == \
        pytest.approx(50 / 85, abs=1e-9)


def test_meteor_nltk_documented_example():
    # nltk's meteor_score docstring: round(meteor_score([reference1], hypothesis1), 4) == 0.6944 (no synonym match
    # is needed in this pair, so the score without WordNet is the documented one).
    hyp = "It is a guide to action which ensures that the military always obeys the commands of the party"
    ref = "It is a guide to action that ensures that the military will forever heed Party commands"
    assert round(meteor(hyp, ref), 4) == 0.6944
    s = report_scores(hyp, ref)
    assert s.meteor == meteor(hyp, ref) and 0 < s.bleu < 1 and 0 < s.rouge_l < 1


def test_randomisation_exact_by_hand():
    # Differences 1, 2, 3, 4: only all-plus and all-minus reach |mean| 2.5 among the 16 patterns.
    r = paired_randomisation([2, 3, 4, 5], [1, 1, 1, 1])
    assert r.exact and r.n_shuffles == 16 and r.p == pytest.approx(2 / 16) and r.difference == 2.5
    assert paired_randomisation([np.nan], [1.0]).p is None


def test_randomisation_matches_scipy_permutation_test():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0.5, 0.2, 16), rng.normal(0.45, 0.2, 16)
    ref = stats.permutation_test((a, b), lambda x, y: np.mean(x - y), permutation_type="samples",
                                 n_resamples=np.inf, alternative="two-sided")
    approx = paired_randomisation(a, b, n_shuffles=20000, seed=3)
    assert not approx.exact and approx.p == pytest.approx(ref.pvalue, abs=0.01)
    exact = paired_randomisation(a, b, n_shuffles=2 ** 16)
    assert exact.exact and exact.p == pytest.approx(ref.pvalue, abs=1e-9)


def test_rouge_l_with_memoised_stemmer_equals_rouge_score_default():
    from rouge_score import rouge_scorer

    plain = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    ref = ("The heart size is normal. There is a small left pleural effusion with adjacent atelectasis. "
           "No pneumothorax. Impression: small left pleural effusion.")
    for hyp in ("Heart size normal. Small left pleural effusions and basal atelectatic change. No pneumothoraces.",
                "Effusions, effusion, effusing; normally normal hearts."):
        assert rouge_l(hyp, ref) == pytest.approx(plain.score(ref, hyp)["rougeL"].fmeasure, abs=1e-12)


def test_bleu_with_a_reused_scorer_equals_sacrebleu_sentence_bleu():
    import sacrebleu

    ref = "The heart size is normal. Small left pleural effusion. No pneumothorax."
    for hyp in ("Heart size normal. Small left effusion.", "Pneumothorax.", "the HEART size is normal"):
        assert bleu(hyp, ref) == pytest.approx(sacrebleu.sentence_bleu(hyp, [ref], lowercase=True).score / 100,
                                               abs=1e-12)
