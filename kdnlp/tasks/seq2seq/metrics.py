"""Scores of generated text against references: BLEU and chrF (sacrebleu), ROUGE (rouge-score), all on 0-100.

BLEU and chrF use sacrebleu's defaults (13a tokenisation, exponential smoothing; chrF2 with character 6-grams), so a
score equals what `sacrebleu REF -i HYP -m bleu chrf` prints for the same texts, one a line.
"""
from __future__ import annotations

import re

from kdnlp.core.errors import KdnlpError

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
_SENTENCE_END = re.compile(r"\n+|(?<=[.!?])\s+")


def _check(hypotheses: list[str], references: list[str]) -> None:
    if len(hypotheses) != len(references):
        raise KdnlpError(f"{len(hypotheses)} hypotheses but {len(references)} references; give one hypothesis per reference")
    if not hypotheses:
        raise KdnlpError("no hypotheses to score")


def translation_scores(hypotheses: list[str], references: list[str]) -> dict[str, float]:
    """Corpus BLEU and chrF of the hypotheses against one reference each."""
    import sacrebleu

    _check(hypotheses, references)
    return {"bleu": sacrebleu.corpus_bleu(hypotheses, [references]).score,
            "chrf": sacrebleu.corpus_chrf(hypotheses, [references]).score}


def sentence_lines(text: str) -> str:
    """`text` with one sentence a line, as rougeLsum reads it: lines already there are kept, and a line is also broken
    after `.`, `!` or `?` followed by whitespace. A plain rule standing in for nltk's punkt sentence splitter (whose
    model is a separate download, missing offline), so scores do not depend on what happens to be installed; it
    also breaks after abbreviations such as "Mr.", which moves rougeLsum only slightly."""
    return "\n".join(s for s in _SENTENCE_END.split(text.strip()) if s)


def summary_scores(hypotheses: list[str], references: list[str]) -> dict[str, float]:
    """ROUGE-1, ROUGE-2, ROUGE-L and ROUGE-Lsum F-measures (Porter stemmer on), each the mean over the pairs.

    The mean, not rouge-score's bootstrap aggregate (which resamples at random). rougeLsum takes the longest common
    subsequence per reference sentence, so both texts are split into sentences first (`sentence_lines`). rouge-score's
    tokeniser keeps only a-z and 0-9 after lowercasing: it is meant for English.
    """
    from rouge_score import rouge_scorer

    _check(hypotheses, references)
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    totals = dict.fromkeys(ROUGE_TYPES, 0.0)
    for hyp, ref in zip(hypotheses, references):
        scores = scorer.score(sentence_lines(ref), sentence_lines(hyp))  # (target, prediction)
        for key in ROUGE_TYPES:
            totals[key] += scores[key].fmeasure
    return {key: 100 * total / len(hypotheses) for key, total in totals.items()}


def closest_to_reference(hypotheses: list[str], reference: str) -> int:
    """The index of the hypothesis with the highest sentence BLEU against `reference`, the earliest on ties: the
    beam candidate that Kim & Rush's (2016) sequence-level interpolation (Seq-Inter) trains the student on."""
    import sacrebleu

    if not hypotheses:
        raise KdnlpError("no hypotheses to choose from")
    scores = [sacrebleu.sentence_bleu(h, [reference]).score for h in hypotheses]
    return scores.index(max(scores))
