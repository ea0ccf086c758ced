"""Students initialised from a teacher's layers, DistilBERT-style.

The student keeps the teacher's embeddings, head and a subset of its encoder layers. DistilBERT took
layers 0, 2, 4, 7, 9, 11 of BERT-base's twelve: that is `uniform` here (evenly spread, first and last
kept: round-half-up of i*(N-1)/(M-1)). `every_other` takes 0, 2, 4, ...; `first`/`last` take the bottom or
top layers (PKD's "last" idea); a list names the layers.
"""
from __future__ import annotations

import copy
import re
from typing import Any

from kdnlp.errors import KdnlpError

#: model_type -> (dotted path of the encoder's layer list inside the state dict, config field of its length).
LAYER_LISTS = {
    "bert": ("encoder.layer", "num_hidden_layers"),
    "roberta": ("encoder.layer", "num_hidden_layers"),
    "xlm-roberta": ("encoder.layer", "num_hidden_layers"),
    "camembert": ("encoder.layer", "num_hidden_layers"),
    "electra": ("encoder.layer", "num_hidden_layers"),
    "distilbert": ("transformer.layer", "n_layers"),
}


def layer_list(config: Any) -> tuple[str, str]:
    if config.model_type not in LAYER_LISTS:
        raise KdnlpError(
            f"init-student does not support model type '{config.model_type}'; supported: {', '.join(LAYER_LISTS)}"
        )
    return LAYER_LISTS[config.model_type]


def select_layers(num_teacher: int, layers: int | list[int], strategy: str = "uniform") -> list[int]:
    """Teacher layer indices for the student, bottom to top."""
    if isinstance(layers, list):
        bad = [i for i in layers if not 0 <= i < num_teacher]
        if bad or not layers:
            raise KdnlpError(f"bad layer list {layers}: the teacher has layers 0..{num_teacher - 1}")
        if sorted(set(layers)) != layers:
            raise KdnlpError(f"bad layer list {layers}: give distinct layers in increasing order")
        return list(layers)
    if strategy == "every_other":
        ids = list(range(0, num_teacher, 2))
        if layers != len(ids):
            raise KdnlpError(f"every_other keeps {len(ids)} of {num_teacher} layers, not {layers}; set layers: {len(ids)}")
        return ids
    if not 1 <= layers <= num_teacher:
        raise KdnlpError(f"bad layer count {layers}: must be between 1 and the teacher's {num_teacher}")
    if strategy == "first":
        return list(range(layers))
    if strategy == "last":
        return list(range(num_teacher - layers, num_teacher))
    if strategy == "uniform":
        if layers == 1:
            return [num_teacher - 1]
        return [int(i * (num_teacher - 1) / (layers - 1) + 0.5) for i in range(layers)]
    raise KdnlpError(f"unknown layer strategy '{strategy}'; valid: uniform, every_other, first, last")


def init_student(teacher, layer_ids: list[int]):
    """A model of the teacher's class holding copies of its embeddings, head and the layers `layer_ids`."""
    path, field = layer_list(teacher.config)
    n = getattr(teacher.config, field)
    if any(not 0 <= i < n for i in layer_ids):
        raise KdnlpError(f"bad layer list {layer_ids}: the teacher has layers 0..{n - 1}")
    config = copy.deepcopy(teacher.config)
    setattr(config, field, len(layer_ids))
    student = type(teacher)(config)
    new_index = {old: new for new, old in enumerate(layer_ids)}
    pattern = re.compile(rf"^(.*\b{re.escape(path)})\.(\d+)\.(.*)$")
    state = {}
    for key, value in teacher.state_dict().items():
        m = pattern.match(key)
        if m is None:
            state[key] = value
        elif int(m.group(2)) in new_index:
            state[f"{m.group(1)}.{new_index[int(m.group(2))]}.{m.group(3)}"] = value
    student.load_state_dict(state, strict=True)
    return student.to(teacher.dtype)


def load_teacher_model(name: str):
    """The teacher with the class its config names (a classifier, or a bare encoder)."""
    import transformers

    from kdnlp.models import _load, load_config

    config = load_config(name)
    arch = (config.architectures or ["AutoModel"])[0]
    cls = getattr(transformers, arch, transformers.AutoModel)
    return _load(cls.from_pretrained, name)


def init_student_folder(teacher: str, output_dir: str, layers: int | list[int], strategy: str = "uniform",
                        overwrite: bool = False) -> list[int]:
    """Writes a student built from `teacher`'s layers (and its tokenizer) as a model folder; returns the layers."""
    from kdnlp.models import load_tokenizer
    from kdnlp.run import RunFolder

    folder = RunFolder(output_dir, overwrite)
    model = load_teacher_model(teacher)
    _, field = layer_list(model.config)
    ids = select_layers(getattr(model.config, field), layers, strategy)
    student = init_student(model, ids)
    work = folder.start()
    student.save_pretrained(work)
    load_tokenizer(teacher).save_pretrained(work)
    folder.finish()
    return ids
