"""Unlabeled text for general distillation: text files, saved datasets (every string column), clear errors."""
from __future__ import annotations

import datasets
import pytest

from kdnlp.tasks.text import load_text
from kdnlp.core.errors import KdnlpError


def test_text_files_and_saved_datasets_mix(tmp_path):
    (tmp_path / "a.txt").write_text("first line\n\n  second line  \n")
    datasets.Dataset.from_dict({"text": ["from a dataset", " "], "label": [0, 1]}).save_to_disk(tmp_path / "single")
    pairs = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"sentence1": ["s1 a", "s1 b"], "sentence2": ["s2 a", "s2 b"], "idx": [0, 1]}),
        "validation": datasets.Dataset.from_dict({"sentence1": ["dev"], "sentence2": ["dev"], "idx": [0]}),
    })
    pairs.save_to_disk(tmp_path / "pairs")
    ds = load_text([str(tmp_path / "a.txt"), str(tmp_path / "single"), str(tmp_path / "pairs")])
    assert ds["text"] == ["first line", "second line", "from a dataset", "s1 a", "s1 b", "s2 a", "s2 b"]
    assert len(load_text([str(tmp_path / "pairs")], max_samples=3)) == 3


def test_bad_text_sources_are_one_line_errors(tmp_path):
    with pytest.raises(KdnlpError, match="text file .*missing.txt' does not exist"):
        load_text([str(tmp_path / "missing.txt")])
    (tmp_path / "plain").mkdir()
    with pytest.raises(KdnlpError, match="not one saved by datasets"):
        load_text([str(tmp_path / "plain")])
    datasets.Dataset.from_dict({"x": [1, 2]}).save_to_disk(tmp_path / "numbers")
    with pytest.raises(KdnlpError, match="has no text column; columns: x"):
        load_text([str(tmp_path / "numbers")])
    with pytest.raises(KdnlpError, match="no file, saved dataset or loadable Hub dataset") as e:
        load_text(["no-such-org/no-such-dataset"])  # offline in the tests; unknown online
    assert "\n" not in str(e.value)
