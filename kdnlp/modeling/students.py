"""Students initialised from a teacher's layers, DistilBERT-style.

The student keeps the teacher's embeddings, head and a subset of its encoder layers, counted as hidden states
(1..N, kdnlp.modeling.layers) and chosen by a count and one of kdnlp.modeling.layers' rules, or by a list. DistilBERT took layers
1, 3, 5, 8, 10, 12 of BERT-base's twelve: that is `spread`. `uniform` takes the layers its layer map trains the
student toward (TinyBERT's).

Encoder-decoder models (BART, Marian, T5) have two layer lists, chosen separately as in distilBART's
shrink-and-fine-tune (Shleifer & Rush, 2020), which keeps all 12 encoder layers of BART-large and 6, 3 or 1
of its decoder's: `layers` chooses encoder layers and `decoder_layers` decoder layers (by default all).
"""
from __future__ import annotations

import copy
import dataclasses
import re
from dataclasses import dataclass
from typing import Any, Literal

from kdnlp.core.config import from_dict
from kdnlp.core.errors import KdnlpError, say
from kdnlp.core.run import RunFolder
from kdnlp.modeling.layers import RULES, check_layers, pick
from kdnlp.modeling.models import load_pretrained, load_tokenizer

#: model_type -> its layer lists, each (dotted path of the list inside the state dict, config field of its length):
#: the encoder's, and for encoder-decoder models the decoder's.
LAYER_LISTS: dict[str, tuple[tuple[str, str], ...]] = {
    "bert": (("encoder.layer", "num_hidden_layers"),),
    "roberta": (("encoder.layer", "num_hidden_layers"),),
    "xlm-roberta": (("encoder.layer", "num_hidden_layers"),),
    "camembert": (("encoder.layer", "num_hidden_layers"),),
    "electra": (("encoder.layer", "num_hidden_layers"),),
    "distilbert": (("transformer.layer", "n_layers"),),
    "bart": (("encoder.layers", "encoder_layers"), ("decoder.layers", "decoder_layers")),
    "marian": (("encoder.layers", "encoder_layers"), ("decoder.layers", "decoder_layers")),
    "t5": (("encoder.block", "num_layers"), ("decoder.block", "num_decoder_layers")),
}
#: model_type -> the config fields that a narrow student's `hidden_size`, `num_attention_heads` and
#: `intermediate_size` set, where they have other names (BERT's own names are the default).
WIDTHS: dict[str, dict[str, tuple[str, ...]]] = {
    "distilbert": {"hidden_size": ("dim",), "num_attention_heads": ("n_heads",), "intermediate_size": ("hidden_dim",)},
    "bart": {"hidden_size": ("d_model",), "num_attention_heads": ("encoder_attention_heads", "decoder_attention_heads"),
             "intermediate_size": ("encoder_ffn_dim", "decoder_ffn_dim")},
    "marian": {"hidden_size": ("d_model",), "num_attention_heads": ("encoder_attention_heads", "decoder_attention_heads"),
               "intermediate_size": ("encoder_ffn_dim", "decoder_ffn_dim")},
    "t5": {"hidden_size": ("d_model",), "num_attention_heads": ("num_heads",), "intermediate_size": ("d_ff",)},
}
#: Parameters that only the first layer of a list holds and every layer of it uses (T5's relative position bias):
#: the student's first layer takes them from the teacher's first layer, whichever teacher layer it copies otherwise.
FIRST_LAYER_ONLY = ("relative_attention_bias",)
#: Attention projections that hold the heads' vectors side by side: along their rows (queries, keys and values: weight
#: and bias) or their columns (the output projection's weight), in each model family's parameter names.
HEAD_ROWS = re.compile(r"\.(query|key|value|[qkv]_lin|[qkv]_proj|SelfAttention\.[qkv]|EncDecAttention\.[qkv])\.(weight|bias)$")
HEAD_COLUMNS = re.compile(r"\.(attention\.output\.dense|out_lin|out_proj|SelfAttention\.o|EncDecAttention\.o)\.weight$")
#: The StudentSpec field that chooses each layer list's layers, in LAYER_LISTS order.
LAYER_KEYS = ("layers", "decoder_layers")
#: The StudentSpec fields that make a student narrower than its teacher.
SIZE_KEYS = ("hidden_size", "num_attention_heads", "intermediate_size")


@dataclass
class StudentSpec:
    """How the student is made from the teacher.

    `layers` is a count (chosen by `strategy`, a rule of kdnlp.modeling.layers) or an explicit list of teacher layers,
    counted from 1 as hidden states (0 is the embeddings). With `init: copy` the student is the teacher with
    only those layers (DistilBERT-style). For an encoder-decoder teacher `layers` chooses encoder layers and `decoder_layers` decoder layers (the same
    way; None keeps them all: distilBART's shrink), and the sizes below apply to both. A narrower student
    (`hidden_size`, `num_attention_heads`, `intermediate_size` below the teacher's) is built from the
    teacher's config and starts from truncated teacher weights (`init: truncate`) or at random (`init: random`).
    """

    layers: int | list[int] = 3
    decoder_layers: int | list[int] | None = None
    strategy: Literal[RULES] = "uniform"
    init: Literal["copy", "truncate", "random"] = "copy"
    hidden_size: int | None = None
    num_attention_heads: int | None = None
    intermediate_size: int | None = None

    def validate(self, where: str) -> None:
        narrow = any(v is not None for v in (self.hidden_size, self.num_attention_heads, self.intermediate_size))
        if narrow and self.init == "copy":
            raise KdnlpError(f"{where}: a student of another width cannot copy the teacher's layers; set init: truncate or random")
        if self.hidden_size is not None and self.num_attention_heads is not None and self.hidden_size % self.num_attention_heads:
            raise KdnlpError(f"{where}: hidden_size {self.hidden_size} is not a multiple of num_attention_heads {self.num_attention_heads}")


def layer_lists(config: Any) -> tuple[tuple[str, str], ...]:
    if config.model_type not in LAYER_LISTS:
        raise KdnlpError(
            f"init-student does not support model type '{config.model_type}'; supported: {', '.join(LAYER_LISTS)}"
        )
    return LAYER_LISTS[config.model_type]


def select_layers(num_teacher: int, layers: int | list[int], strategy: str = "uniform",
                  key: str = "layers") -> list[int]:
    """Teacher layers for the student, bottom to top, counted 1..num_teacher as hidden states; `key` names the
    choice in errors (`decoder_layers`)."""
    if isinstance(layers, list):
        if not layers:
            raise KdnlpError(f"bad {key} []: give at least one of the teacher's layers 1..{num_teacher}")
        check_layers(layers, num_teacher, f"{key} {layers}")
        if sorted(set(layers)) != layers:
            raise KdnlpError(f"bad {key} {layers}: give distinct layers in increasing order")
        return list(layers)
    if not 1 <= layers <= num_teacher:
        raise KdnlpError(f"bad {key} count {layers}: must be between 1 and the teacher's {num_teacher}")
    return pick(strategy, layers, num_teacher, key.replace("_", " "))


def select_student_layers(config: Any, layers: int | list[int], decoder_layers: int | list[int] | None = None,
                          strategy: str = "uniform") -> list[list[int]]:
    """The teacher layers of each of the student's layer lists, as `StudentSpec` chooses them: `layers` of the
    encoder, and of an encoder-decoder model's decoder `decoder_layers` (None keeps them all)."""
    lists = layer_lists(config)
    if len(lists) == 1 and decoder_layers is not None:
        raise KdnlpError(f"decoder_layers is for encoder-decoder models; '{config.model_type}' has no decoder")
    out = []
    for (_, field), choice, key in zip(lists, (layers, decoder_layers), LAYER_KEYS):
        n = getattr(config, field)
        out.append(list(range(1, n + 1)) if choice is None else select_layers(n, choice, strategy, key))
    return out


def _layer_patterns(config: Any) -> list[re.Pattern]:
    return [re.compile(rf"^(.*\b{re.escape(path)})\.(\d+)\.(.*)$") for path, _ in layer_lists(config)]


def _teacher_key(key: str, patterns: list[re.Pattern], layer_ids: list[list[int]]) -> str:
    """The teacher's name for a student parameter: student layer j of a list (its index, from 0) is teacher layer
    ids[j] of that list (a hidden state, from 1)."""
    for pattern, ids in zip(patterns, layer_ids):
        m = pattern.match(key)
        if m is not None:
            if any(name in m.group(3).split(".") for name in FIRST_LAYER_ONLY):
                return key
            return f"{m.group(1)}.{ids[int(m.group(2))] - 1}.{m.group(3)}"
    return key


def _shrunk_config(teacher_config: Any, counts: list[int], **sizes: int | None) -> Any:
    """The teacher's config with `counts` layers in its layer lists and the given sizes (StudentSpec's names)."""
    config = copy.deepcopy(teacher_config)
    for (_, field), n in zip(layer_lists(config), counts):
        setattr(config, field, n)
    names = WIDTHS.get(config.model_type, {})
    for key, value in sizes.items():
        if value is not None:
            for name in names.get(key, (key,)):
                if value > getattr(config, name):
                    raise KdnlpError(f"student {key} {value} is larger than the teacher's {getattr(config, name)}")
                setattr(config, name, value)
    if any(sizes.values()):
        hidden, heads = (getattr(config, names.get(k, (k,))[0]) for k in ("hidden_size", "num_attention_heads"))
        if hidden % heads:
            raise KdnlpError(f"student hidden_size {hidden} is not a multiple of num_attention_heads {heads}")
        if config.model_type == "t5":  # T5 sizes heads by d_kv, not d_model / heads: a narrow student's split d_model
            config.d_kv = hidden // heads
    return config


def _heads(config: Any) -> int:
    return getattr(config, WIDTHS.get(config.model_type, {}).get("num_attention_heads", ("num_attention_heads",))[0])


def _truncated(key: str, weight, shape, heads: tuple[int, int]):
    """The leading block of the teacher's `weight` in the student's `shape`, except along an attention projection's
    head axis (HEAD_ROWS, HEAD_COLUMNS), where student head h takes the leading units of teacher head h: a plain
    slice would split the teacher's heads across the student's (hidden 384 -> 312 with 12 heads: student head 1
    would hold the last 6 units of teacher head 0 and 20 of head 1), and head-to-head losses (tinybert_attention)
    would pair heads that share nothing. `heads`: the teacher's and the student's head counts (the student has no
    more: _shrunk_config); a student whose heads are wider than the teacher's gets the plain slice."""
    axis = 0 if HEAD_ROWS.search(key) else 1 if HEAD_COLUMNS.search(key) else None
    if axis is not None:
        n_t, n_s = heads
        d_t, d_s = weight.shape[axis] // n_t, shape[axis] // n_s
        if d_s <= d_t:
            by_head = weight.narrow(axis, 0, n_s * d_t).unflatten(axis, (n_s, d_t))
            weight = by_head.narrow(axis + 1, 0, d_s).flatten(axis, axis + 1)
    return weight[tuple(slice(0, n) for n in shape)].clone()


def _student(teacher, config, layer_ids: list[list[int]] | None, truncate: bool = False):
    """A model of the teacher's class built from `config`, holding the teacher's weights unless `layer_ids` is None
    (layer j of each layer list from the teacher's layer_ids[list][j]), cut to the student's shapes if `truncate`
    (`_truncated`)."""
    student = type(teacher)(config)
    if layer_ids is not None:
        patterns, teacher_state = _layer_patterns(teacher.config), teacher.state_dict()
        # Frozen parameters are computed, not learned (Marian's sinusoidal positions): a slice of the teacher's
        # table is no such table, so a student of another width keeps its own.
        frozen = {name for name, p in student.named_parameters() if not p.requires_grad} if truncate else set()
        heads = (_heads(teacher.config), _heads(config))
        state = {}
        for key, value in student.state_dict().items():
            old = teacher_state[_teacher_key(key, patterns, layer_ids)]
            if truncate:
                old = value if key in frozen else _truncated(key, old, value.shape, heads)
            state[key] = old
        student.load_state_dict(state, strict=True)
    if teacher.can_generate():  # beam size, length limits... of a trained seq2seq teacher
        student.generation_config = copy.deepcopy(teacher.generation_config)
    return student.to(teacher.dtype)


def init_student(teacher, layer_ids: list[int], decoder_layer_ids: list[int] | None = None):
    """A model of the teacher's class holding copies of its embeddings, head and the layers `layer_ids` (counted from
    1, kdnlp.modeling.layers; for an encoder-decoder model: of its encoder, and the decoder layers `decoder_layer_ids`, all of
    them if None)."""
    ids = select_student_layers(teacher.config, list(layer_ids), decoder_layer_ids)
    return _student(teacher, _shrunk_config(teacher.config, [len(i) for i in ids]), ids)


def narrow_student(teacher, layer_ids: list[int], init: str = "truncate", hidden_size: int | None = None,
                   num_attention_heads: int | None = None, intermediate_size: int | None = None,
                   decoder_layer_ids: list[int] | None = None):
    """A student of the teacher's class with fewer layers and a smaller width, as TinyBERT's students are.

    `truncate` starts each weight from the leading rows/columns of the matching teacher weight (layer j from
    teacher layer layer_ids[j], decoder layer j from decoder_layer_ids[j]); `random` keeps the fresh initialisation.
    """
    if init not in ("truncate", "random"):
        raise KdnlpError(f"unknown student init '{init}'; valid: copy, truncate, random")
    ids = select_student_layers(teacher.config, list(layer_ids), decoder_layer_ids)
    config = _shrunk_config(teacher.config, [len(i) for i in ids], hidden_size=hidden_size,
                            num_attention_heads=num_attention_heads, intermediate_size=intermediate_size)
    return _student(teacher, config, ids if init == "truncate" else None, truncate=True)


def build_student(teacher, spec) -> tuple[Any, list[int]]:
    """The student a recipe's `student` section describes, and the teacher layers it starts from: its encoder's, for
    an encoder-decoder model (`select_student_layers` gives the decoder's too)."""
    ids = select_student_layers(teacher.config, spec.layers, spec.decoder_layers, spec.strategy)
    decoder = ids[1] if len(ids) > 1 else None
    if spec.init == "copy":
        return init_student(teacher, ids[0], decoder), ids[0]
    sizes = {k: getattr(spec, k) for k in SIZE_KEYS}
    return narrow_student(teacher, ids[0], spec.init, **sizes, decoder_layer_ids=decoder), ids[0]


def student_config(teacher_config: Any, spec) -> Any:
    """The config of the student `spec` (a StudentSpec) builds from a teacher with `teacher_config`, without building
    it: checks a spec before anything trains."""
    ids = select_student_layers(teacher_config, spec.layers, spec.decoder_layers, spec.strategy)
    return _shrunk_config(teacher_config, [len(i) for i in ids], **{k: getattr(spec, k) for k in SIZE_KEYS})


def init_student_folder(teacher: str, output_dir: str, layers: int | list[int] = 3, strategy: str = "uniform",
                        overwrite: bool = False, **spec: Any) -> list[int]:
    """Writes the student `StudentSpec(layers, strategy, **spec)` of `teacher` (and its tokenizer) as a model
    folder; returns the teacher layers it starts from."""
    student_spec = from_dict(StudentSpec, {"layers": layers, "strategy": strategy, **spec}, "student")
    folder = RunFolder(output_dir, overwrite)
    teacher_model = load_pretrained(teacher)
    student, ids = build_student(teacher_model, student_spec)
    if teacher_model.config.is_encoder_decoder:
        decoder = select_student_layers(teacher_model.config, ids, student_spec.decoder_layers, student_spec.strategy)[1]
        say(f"student: encoder layers from teacher layers {ids}, decoder layers from teacher decoder layers {decoder}")
    work = folder.start({"command": "init-student", "teacher": str(teacher), **dataclasses.asdict(student_spec)})
    student.save_pretrained(work)
    load_tokenizer(teacher).save_pretrained(work)
    folder.finish()
    return ids
