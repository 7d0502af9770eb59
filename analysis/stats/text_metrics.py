"""Report-text metrics against the reference report, offline, and paired comparison by approximate randomisation.

- BLEU: ``sacrebleu``'s sentence BLEU (13a tokenisation, lowercased, exponential smoothing) and corpus BLEU, on a
  0-1 scale (sacrebleu prints 0-100).
- ROUGE-L: ``rouge-score``'s F-measure of the longest common subsequence, Porter-stemmed.
- METEOR: ``nltk``'s meteor_score (exact and Porter-stem matches; the WordNet synonym stage runs only when a WordNet
  reader is passed, because nltk's WordNet data is a download that the platform does not make: without it the
  score is METEOR without synonyms, and ``METEOR_VARIANT`` says so in the report).

Scores of one text against its reference come from :func:`report_scores`; :func:`paired_randomisation` compares two
systems on the same units (e.g. the assisted and unassisted final reports of each case, or the draft and the final
report of each read) by approximate randomisation (Noreen 1989): each unit's pair of scores is swapped with
probability 1/2, and the p value is the share of shuffles whose |mean difference| reaches the observed one, counted
with the (r + 1) / (R + 1) correction; with few units every swap pattern is enumerated and p is exact.
"""
from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import sacrebleu
from nltk.stem import porter
from nltk.translate.meteor_score import meteor_score
from rouge_score import rouge_scorer, tokenize, tokenizers
from sacrebleu.metrics import BLEU

from ._result import jsonable

METEOR_VARIANT = "METEOR (nltk; exact and stem matches, no WordNet synonyms)"
_TOKEN = re.compile(r"[a-z0-9]+(?:[.'-][a-z0-9]+)*")


def tokens(text: str) -> list[str]:
    """Lowercased word tokens (numbers and hyphenated words kept whole), for METEOR."""
    return _TOKEN.findall((text or "").lower())


class _CachedStemmer:
    """nltk's Porter stemmer (the one rouge-score uses) with a memo: stemming is most of ROUGE-L's time, and a
    trial's reports share a small vocabulary."""

    def __init__(self) -> None:

        self.stem = lru_cache(maxsize=200_000)(porter.PorterStemmer().stem)


@lru_cache(maxsize=1)
def _rouge():

    stemmer = _stemmer()

    class StemmingTokenizer(tokenizers.Tokenizer):
        """rouge-score's default tokenisation with use_stemmer=True, through the memoised stemmer."""

        def tokenize(self, text: str) -> list[str]:
            return tokenize.tokenize(text, stemmer)

    return rouge_scorer.RougeScorer(["rougeL"], tokenizer=StemmingTokenizer())


class _NoSynonyms:
    """Stands in for nltk's WordNet reader: no synsets, so METEOR's synonym stage matches nothing."""

    def synsets(self, *args: Any, **kwargs: Any) -> list:
        return []


@dataclass(frozen=True)
class TextScores:
    """One hypothesis text against its reference: each metric on 0-1 (None when either text is empty)."""

    bleu: float | None
    rouge_l: float | None
    meteor: float | None


@lru_cache(maxsize=1)
def _sentence_bleu():

    # What sacrebleu.sentence_bleu builds on every call (effective order, exp smoothing), built once.
    return BLEU(lowercase=True, effective_order=True)


@lru_cache(maxsize=1)
def _stemmer() -> _CachedStemmer:
    return _CachedStemmer()


def bleu(hypothesis: str, reference: str) -> float | None:
    """Sentence BLEU (sacrebleu, 13a, lowercased, exp smoothing, effective order) on 0-1."""
    if not (hypothesis or "").strip() or not (reference or "").strip():
        return None
    return float(_sentence_bleu().sentence_score(hypothesis, [reference]).score) / 100


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float | None:
    """Corpus BLEU (sacrebleu) of aligned hypotheses and references on 0-1."""

    pairs = [(h, r) for h, r in zip(hypotheses, references, strict=True) if (r or "").strip()]
    if not pairs:
        return None
    return float(sacrebleu.corpus_bleu([h for h, _ in pairs], [[r for _, r in pairs]], lowercase=True).score) / 100


def rouge_l(hypothesis: str, reference: str) -> float | None:
    """ROUGE-L F-measure (rouge-score, Porter stemmer)."""
    if not (hypothesis or "").strip() or not (reference or "").strip():
        return None
    return float(_rouge().score(reference, hypothesis)["rougeL"].fmeasure)


def meteor(hypothesis: str, reference: str, wordnet: Any | None = None) -> float | None:
    """METEOR (nltk) of tokenised texts; ``wordnet``: an nltk WordNet reader to add synonym matches."""

    h, r = tokens(hypothesis), tokens(reference)
    if not h or not r:
        return None
    return float(meteor_score([r], h, stemmer=_stemmer(),
                              wordnet=wordnet if wordnet is not None else _NoSynonyms()))


def report_scores(hypothesis: str, reference: str, wordnet: Any | None = None) -> TextScores:
    """BLEU, ROUGE-L and METEOR of one report against the reference report."""
    return TextScores(bleu(hypothesis, reference), rouge_l(hypothesis, reference),
                      meteor(hypothesis, reference, wordnet))


@dataclass
class PairedComparison:
    """Mean score of A and of B over units with both, the mean difference A - B and its randomisation p value."""

    metric: str
    label_a: str
    label_b: str
    n: int
    mean_a: float | None
    mean_b: float | None
    difference: float | None
    p: float | None
    n_shuffles: int
    exact: bool

    def to_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))


def paired_randomisation(a: Sequence[float], b: Sequence[float], metric: str = "", label_a: str = "A",
                         label_b: str = "B", n_shuffles: int = 10000, seed: int = 0) -> PairedComparison:
    """Approximate randomisation test of mean(a - b) = 0 over paired units (pairs with a missing value dropped).

    When 2^n <= ``n_shuffles`` all swap patterns are enumerated (exact p, the observed pattern included);
    otherwise ``n_shuffles`` random patterns give p = (r + 1) / (n_shuffles + 1)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    d = x[ok] - y[ok]
    n = len(d)
    if n == 0:
        return PairedComparison(metric, label_a, label_b, 0, None, None, None, None, 0, False)
    obs = abs(d.mean())
    tol = 1e-12 * max(1.0, obs)
    if n <= 20 and 2 ** n <= n_shuffles:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
        stats_ = np.abs(signs @ d) / n
        p, shuffles, exact = float((stats_ >= obs - tol).mean()), len(signs), True
    else:
        rng = np.random.default_rng(seed)
        hits = 0
        for start in range(0, n_shuffles, 1000):
            m = min(1000, n_shuffles - start)
            signs = rng.choice((1.0, -1.0), size=(m, n))
            hits += int((np.abs(signs @ d) / n >= obs - tol).sum())
        p, shuffles, exact = (hits + 1) / (n_shuffles + 1), n_shuffles, False
    return PairedComparison(metric, label_a, label_b, n, float(x[ok].mean()), float(y[ok].mean()), float(d.mean()),
                            p, shuffles, exact)
