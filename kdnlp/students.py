"""Students initialised from a teacher's layers, DistilBERT-style.

The student keeps the teacher's embeddings, head and a subset of its encoder layers. DistilBERT took
layers 0, 2, 4, 7, 9, 11 of BERT-base's twelve: that is `uniform` here (evenly spread, first and last
kept: round-half-up of i*(N-1)/(M-1)). `every_other` takes 0, 2, 4, ...; `first`/`last` take the bottom or
top layers (PKD's "last" idea); a list names the layers.
"""
from __future__ import annotations

import copy
import dataclasses
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


def _layer_pattern(config: Any) -> re.Pattern:
    path, _ = layer_list(config)
    return re.compile(rf"^(.*\b{re.escape(path)})\.(\d+)\.(.*)$")


def _teacher_key(key: str, pattern: re.Pattern, layer_ids: list[int]) -> str:
    """The teacher's name for a student parameter: student layer j is teacher layer layer_ids[j]."""
    m = pattern.match(key)
    return key if m is None else f"{m.group(1)}.{layer_ids[int(m.group(2))]}.{m.group(3)}"


def _shrunk_config(teacher_config: Any, layers: int, **sizes: int | None) -> Any:
    config = copy.deepcopy(teacher_config)
    setattr(config, layer_list(config)[1], layers)
    for key, value in sizes.items():
        if value is not None:
            if value > getattr(config, key):
                raise KdnlpError(f"student {key} {value} is larger than the teacher's {getattr(config, key)}")
            setattr(config, key, value)
    return config


def init_student(teacher, layer_ids: list[int]):
    """A model of the teacher's class holding copies of its embeddings, head and the layers `layer_ids`."""
    _, field = layer_list(teacher.config)
    n = getattr(teacher.config, field)
    if any(not 0 <= i < n for i in layer_ids):
        raise KdnlpError(f"bad layer list {layer_ids}: the teacher has layers 0..{n - 1}")
    student = type(teacher)(_shrunk_config(teacher.config, len(layer_ids)))
    pattern, teacher_state = _layer_pattern(teacher.config), teacher.state_dict()
    state = {key: teacher_state[_teacher_key(key, pattern, layer_ids)] for key in student.state_dict()}
    student.load_state_dict(state, strict=True)
    return student.to(teacher.dtype)


def narrow_student(teacher, layer_ids: list[int], init: str = "truncate", hidden_size: int | None = None,
                   num_attention_heads: int | None = None, intermediate_size: int | None = None):
    """A student of the teacher's class with fewer layers and a smaller width, as TinyBERT's students are.

    `truncate` starts each weight from the leading rows/columns of the matching teacher weight (layer j from
    teacher layer layer_ids[j]); `random` keeps the fresh initialisation.
    """
    config = _shrunk_config(teacher.config, len(layer_ids), hidden_size=hidden_size,
                            num_attention_heads=num_attention_heads, intermediate_size=intermediate_size)
    student = type(teacher)(config)
    if init == "truncate":
        pattern, teacher_state = _layer_pattern(teacher.config), teacher.state_dict()
        state = {
            key: teacher_state[_teacher_key(key, pattern, layer_ids)][tuple(slice(0, n) for n in value.shape)].clone()
            for key, value in student.state_dict().items()
        }
        student.load_state_dict(state, strict=True)
    elif init != "random":
        raise KdnlpError(f"unknown student init '{init}'; valid: copy, truncate, random")
    return student.to(teacher.dtype)


def build_student(teacher, spec) -> tuple[Any, list[int]]:
    """The student a recipe's `student` section describes, and the teacher layers it starts from."""
    _, field = layer_list(teacher.config)
    ids = select_layers(getattr(teacher.config, field), spec.layers, spec.strategy)
    if spec.init == "copy":
        return init_student(teacher, ids), ids
    sizes = {k: getattr(spec, k) for k in ("hidden_size", "num_attention_heads", "intermediate_size")}
    return narrow_student(teacher, ids, spec.init, **sizes), ids


def load_teacher_model(name: str):
    """The teacher with the class its config names (a classifier, or a bare encoder)."""
    import transformers

    from kdnlp.models import _load, load_config

    config = load_config(name)
    arch = (config.architectures or ["AutoModel"])[0]
    cls = getattr(transformers, arch, transformers.AutoModel)
    return _load(cls.from_pretrained, name)


def init_student_folder(teacher: str, output_dir: str, layers: int | list[int] = 3, strategy: str = "uniform",
                        overwrite: bool = False, **spec: Any) -> list[int]:
    """Writes the student `StudentSpec(layers, strategy, **spec)` of `teacher` (and its tokenizer) as a model
    folder; returns the teacher layers it starts from."""
    from kdnlp.config import from_dict
    from kdnlp.models import load_tokenizer
    from kdnlp.recipe import StudentSpec
    from kdnlp.run import RunFolder

    student_spec = from_dict(StudentSpec, {"layers": layers, "strategy": strategy, **spec}, "student")
    folder = RunFolder(output_dir, overwrite)
    student, ids = build_student(load_teacher_model(teacher), student_spec)
    work = folder.start({"command": "init-student", "teacher": str(teacher), **dataclasses.asdict(student_spec)})
    student.save_pretrained(work)
    load_tokenizer(teacher).save_pretrained(work)
    folder.finish()
    return ids
