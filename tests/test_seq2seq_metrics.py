"""BLEU/chrF equal sacrebleu's command line; ROUGE on cases worked out by hand; Seq-Inter's choice of hypothesis."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from kdnlp.core.errors import KdnlpError
from kdnlp.tasks.seq2seq.metrics import closest_to_reference, sentence_lines, summary_scores, translation_scores

REFERENCES = [
    "Zwei junge weiße Männer sind im Freien in der Nähe vieler Büsche.",
    "Mehrere Männer mit Schutzhelmen bedienen ein Antriebsradsystem.",
    "Ein kleines Mädchen klettert in ein Spielhaus aus Holz.",
    "Ein Mann in einem blauen Hemd steht auf einer Leiter und putzt ein Fenster.",
    "Zwei Männer stehen am Herd und bereiten Essen zu.",
    "Ein Boston Terrier läuft über saftig-grünes Gras vor einem weißen Zaun.",
]
HYPOTHESES = [
    "Zwei junge Männer sind draußen in der Nähe von Büschen.",
    "Mehrere Männer mit Helmen bedienen eine Maschine.",
    "Ein kleines Mädchen klettert in ein Holzspielhaus.",
    "Ein Mann in blauem Hemd putzt auf einer Leiter ein Fenster.",
    "Zwei Männer kochen am Herd.",
    "Ein Terrier rennt über grünes Gras vor einem weißen Zaun!",
]


def cli_scores(tmp_path, hypotheses, references, *options):
    (tmp_path / "ref.txt").write_text("\n".join(references) + "\n", encoding="utf-8")
    (tmp_path / "hyp.txt").write_text("\n".join(hypotheses) + "\n", encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "sacrebleu", str(tmp_path / "ref.txt"), "-i", str(tmp_path / "hyp.txt"),
                          "-m", "bleu", "chrf", "-f", "json", *options], capture_output=True, text=True, check=True)
    bleu, chrf = json.loads(out.stdout)
    assert bleu["name"] == "BLEU" and chrf["name"] == "chrF2"
    return bleu["score"], chrf["score"]


def test_bleu_and_chrf_equal_sacrebleus_command_line(tmp_path):
    ours = translation_scores(HYPOTHESES, REFERENCES)
    assert 10 < ours["bleu"] < 90 and 10 < ours["chrf"] < 90  # a case with partial matches, far from 0 and 100
    assert cli_scores(tmp_path, HYPOTHESES, REFERENCES) == (round(ours["bleu"], 1), round(ours["chrf"], 1))
    assert cli_scores(tmp_path, HYPOTHESES, REFERENCES, "-w", "4") == (round(ours["bleu"], 4), round(ours["chrf"], 4))
    part = translation_scores(HYPOTHESES[:3], REFERENCES[:3])
    assert cli_scores(tmp_path, HYPOTHESES[:3], REFERENCES[:3], "-w", "4") == (round(part["bleu"], 4), round(part["chrf"], 4))
    assert translation_scores(REFERENCES, REFERENCES) == pytest.approx({"bleu": 100.0, "chrf": 100.0})


def test_rouge_by_hand():
    # the cat sat/lay on the mat: 5 of 6 unigrams, 3 of 5 bigrams (the cat, on the, the mat), LCS 5 of 6.
    scores = summary_scores(["the cat sat on the mat"], ["the cat lay on the mat"])
    assert scores == pytest.approx({"rouge1": 500 / 6, "rouge2": 60.0, "rougeL": 500 / 6, "rougeLsum": 500 / 6})
    # Porter stems: cats/cat and running/runs match.
    assert summary_scores(["Cats running."], ["The cat runs."])["rouge1"] == pytest.approx(100 * 2 / 2.5)
    # Two sentences in the other order: one LCS over the whole text covers half the words; per sentence, all of them.
    swapped = summary_scores(["The dog barked. The cat slept."], ["The cat slept. The dog barked."])
    assert swapped["rougeL"] == pytest.approx(50.0) and swapped["rougeLsum"] == pytest.approx(100.0)
    # The mean over pairs.
    assert summary_scores(["a b", "c d"], ["a b", "x y"])["rouge1"] == pytest.approx(50.0)


def test_sentence_lines():
    assert sentence_lines(" One. Two!  Three?\nFour\n\nfive 3.5 six. ") == "One.\nTwo!\nThree?\nFour\nfive 3.5 six."


def test_closest_to_reference_takes_the_best_sentence_bleu_and_the_earliest_tie():
    reference = "a man rides a brown horse along the beach"
    hypotheses = ["a dog sleeps", "a man rides a horse", "a man rides a brown horse on the beach",
                  "a man rides a brown horse on the beach", "a woman rides"]
    assert closest_to_reference(hypotheses, reference) == 2
    assert closest_to_reference(hypotheses[3:], reference) == 0
    assert closest_to_reference(["x", reference], reference) == 1


def test_mismatched_or_empty_inputs():
    with pytest.raises(KdnlpError, match="2 hypotheses but 1 references"):
        translation_scores(["a", "b"], ["a"])
    with pytest.raises(KdnlpError, match="no hypotheses to score"):
        summary_scores([], [])
    with pytest.raises(KdnlpError, match="no hypotheses to choose from"):
        closest_to_reference([], "a")
