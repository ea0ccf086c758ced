"""Recipes: YAML (safe_load) -> dotted overrides -> typed, validated `Recipe`.

A recipe with one stage may give `losses:` (and `training:`) at the top level; it is read as one stage
named `distill`. Overrides address any key by its dotted path; inside a list, an element is found by its
index or its `name`: ``training.learning_rate=3e-5``, ``stages.distill.training.num_train_epochs=2``;
in a one-stage recipe ``losses.hinton.temperature=4`` is short for ``stages.0.losses.hinton.temperature=4``.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from kdnlp.core.config import coerce, from_dict, parse_seed
from kdnlp.core.errors import KdnlpError
from kdnlp.losses import LOSSES, LossTerm, parse_terms
from kdnlp.modeling.students import StudentSpec
from kdnlp.pipeline.sources import SOURCES
from kdnlp.tasks.multitask.problem import Settings
from kdnlp.tasks.seq2seq.generation import GenerationSettings

#: TrainingArguments that kdnlp sets itself from the run folder; a recipe may not.
RESERVED_TRAINING = ("output_dir",)


@dataclass
class Stage:
    """One training run of the student. `data: text` trains on unlabeled text (`--text` files) instead of the
    task's train split: TinyBERT's general distillation, for losses that need no labels; `data: generated` on
    inputs a generator learns from the teacher alone, as its `generator` section says (data-free distillation). `targets` (seq2seq) are
    what the student learns to output: the gold targets, the teacher's best beam (`teacher`, sequence-level KD),
    of its k beams the one closest to the gold target by sentence BLEU (`inter`, Seq-Inter), or each example
    twice, with the gold and with the teacher's target (`both`); the teacher decodes as `generation` says.

    `teacher: previous` makes a teacher-assistant chain (Mirzadeh et al. 2019): the stage learns from the student of
    the stage before it (read back from that stage's model folder), and its own student is built from that teacher
    as its `student` spec says. Otherwise a stage keeps the teacher of the stage before it (`same`; the run's
    teacher for the first stage) and goes on training the same student."""

    name: str
    losses: list[LossTerm]
    training: dict[str, Any] = field(default_factory=dict)
    data: str = "task"  # a name in kdnlp.pipeline.sources.SOURCES
    targets: Literal["gold", "teacher", "inter", "both"] = "gold"
    teacher: Literal["same", "previous"] = "same"
    student: StudentSpec | None = None
    generator: dict[str, Any] = field(default_factory=dict)  # `data: generated` (kdnlp.methods.datafree.trainer.GeneratorSettings)


@dataclass
class Recipe:
    name: str
    description: str
    stages: list[Stage]
    paper: str = ""
    student: StudentSpec | None = None
    max_length: int = 128
    training: dict[str, Any] = field(default_factory=dict)
    generation: dict[str, Any] = field(default_factory=dict)
    multitask: dict[str, Any] = field(default_factory=dict)  # kdnlp.tasks.multitask.problem.Settings

    def generation_settings(self):
        """How the teacher decodes the targets of `targets: teacher` stages (kdnlp.tasks.seq2seq.generation.GenerationSettings)."""
        return from_dict(GenerationSettings, {"max_source_length": self.max_length, **self.generation}, "generation")

    def multitask_settings(self) -> Settings:
        """How a multi-task run mixes, averages and anneals its tasks (kdnlp.tasks.multitask.problem.Settings)."""
        return from_dict(Settings, self.multitask, "multitask")

    @property
    def uses_teacher(self) -> bool:
        return any(s.targets != "gold" or any(LOSSES.get(t.loss).uses_teacher for t in s.losses) for s in self.stages)

    def stage_training(self, stage: Stage) -> dict[str, Any]:
        return {**self.training, **stage.training}

    def to_dict(self) -> dict[str, Any]:
        """The resolved recipe as plain data, in the same shape as a recipe file."""
        out: dict[str, Any] = {"name": self.name, "description": self.description}
        if self.paper:
            out["paper"] = self.paper
        if self.student is not None:
            out["student"] = dataclasses.asdict(self.student)
        out["max_length"] = self.max_length
        out["training"] = dict(self.training)
        if self.generation:
            out["generation"] = dict(self.generation)
        if self.multitask:
            out["multitask"] = dict(self.multitask)
        out["stages"] = [
            {
                "name": s.name,
                "losses": [t.to_dict() for t in s.losses],
                "training": dict(s.training),
                "data": s.data,
                **({"targets": s.targets} if s.targets != "gold" else {}),
                **({"teacher": s.teacher, "student": dataclasses.asdict(s.student)} if s.student else {}),
                **({"generator": dict(s.generator)} if s.generator else {}),
            }
            for s in self.stages
        ]
        return out


def recipe_dir() -> Path:
    """The recipes shipped with kdnlp: inside the installed package, or `recipes/` of a source checkout."""
    package = Path(__file__).resolve().parents[1]
    packaged = package / "recipes"
    return packaged if packaged.is_dir() else package.parent / "recipes"


def available() -> list[str]:
    return sorted(p.stem for p in recipe_dir().glob("*.yaml"))


def read(name_or_path: str) -> tuple[dict[str, Any], Path]:
    """The raw data of a recipe given by name (a file in `recipe_dir()`) or by path."""
    path = Path(name_or_path)
    if not (path.suffix in (".yaml", ".yml") or path.exists()):
        path = recipe_dir() / f"{name_or_path}.yaml"
        if not path.exists():
            raise KdnlpError(f"unknown recipe '{name_or_path}'; valid: {', '.join(available())}, or a path to a .yaml file")
    if not path.is_file():
        raise KdnlpError(f"recipe file '{path}' does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise KdnlpError(
            f"recipe file '{path}' is not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start}); "
            "a recipe is a UTF-8 YAML file"
        ) from None
    except yaml.YAMLError as e:
        raise KdnlpError(f"recipe file '{path}' is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise KdnlpError(f"recipe file '{path}' must hold a mapping at the top level")
    data.setdefault("name", path.stem)
    return data, path


def _child(node: Any, key: str, path: str, create: bool) -> Any:
    if isinstance(node, list):
        for i, item in enumerate(node):
            if key == str(i) or (isinstance(item, dict) and key in (item.get("name"), item.get("loss"))):
                return i
        names = [str(it.get("name") or it.get("loss")) for it in node if isinstance(it, dict)]
        raise KdnlpError(f"override '{path}': no element '{key}' here; have: {', '.join(names) or 'none'}")
    if isinstance(node, dict):
        if key not in node and not create:
            raise KdnlpError(f"override '{path}': no key '{key}' here; have: {', '.join(map(str, node))}")
        return key
    raise KdnlpError(f"override '{path}': '{key}' is inside a value, not a mapping or list")


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Returns a copy of `data` with each ``dotted.path=value`` set (value parsed as YAML)."""
    data = copy.deepcopy(data)
    for item in overrides:
        path, eq, text = item.partition("=")
        if not eq or not path:
            raise KdnlpError(f"bad override '{item}': expected key.path=value")
        keys = path.split(".")
        node = data
        for key in keys[:-1]:
            k = _child(node, key, path, create=True)
            if isinstance(node, dict) and k not in node:
                node[k] = {}
            node = node[k]
        k = _child(node, keys[-1], path, create=True)
        node[k] = parse_value(text)
        if keys[0] == "training" and len(keys) == 2:  # a top-level override wins over the stages' own values
            for st in data.get("stages") or []:
                if isinstance(st, dict) and isinstance(st.get("training"), dict):
                    st["training"].pop(keys[1], None)
    return data


def parse_value(text: str) -> Any:
    """A value given on the command line, read as YAML except that only true/false are booleans
    (YAML 1.1 would turn `save_strategy=no` into False)."""
    if not text:
        return None
    value = yaml.safe_load(text)
    if isinstance(value, bool) and text.lower() not in ("true", "false"):
        return text
    return value


def _normalise(data: dict[str, Any]) -> dict[str, Any]:
    data = dict(data)
    if "losses" in data:
        if "stages" in data:
            raise KdnlpError("a recipe gives either 'losses' (one stage) or 'stages', not both")
        data["stages"] = [{"name": "distill", "losses": data.pop("losses")}]
    return data


#: TrainingArguments fields that seed a generator (parse_seed checks them).
SEEDS = ("seed", "data_seed")


@functools.cache
def training_fields() -> dict[str, Any]:
    """Field name -> type of transformers.TrainingArguments (imported only when a recipe is validated)."""
    from transformers import TrainingArguments

    hints = typing.get_type_hints(TrainingArguments)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(TrainingArguments) if f.init}


def _check_training(training: dict[str, Any], where: str) -> dict[str, Any]:
    if not isinstance(training, dict):
        raise KdnlpError(f"{where} must be a mapping of TrainingArguments fields")
    fields = training_fields()
    out = {}
    for key, value in training.items():
        if key in RESERVED_TRAINING:
            raise KdnlpError(f"'{where}.{key}' is set by kdnlp from --output-dir; remove it")
        if key not in fields:
            raise KdnlpError(f"unknown key '{where}.{key}': not a transformers.TrainingArguments field")
        hint = fields[key]
        if isinstance(value, bool) and hint is not bool and bool not in typing.get_args(hint):
            raise KdnlpError(f"bad value {value} for {where}.{key}: YAML reads unquoted no/yes/on/off as booleans; quote it")
        simple = hint in (int, float, bool, str) or dataclasses.is_dataclass(hint)
        out[key] = coerce(value, hint, f"{where}.{key}") if simple else value
        if key in SEEDS and out[key] is not None:
            out[key] = parse_seed(out[key], f"{where}.{key}")
    return out


def _chain_link(raw: dict[str, Any], name: str, first: bool) -> tuple[str, StudentSpec | None]:
    """A stage's `teacher` and `student` keys, which go together (see `Stage`)."""
    teacher = coerce(raw.get("teacher", "same"), typing.get_type_hints(Stage)["teacher"], f"stages.{name}.teacher")
    student = None if raw.get("student") is None else from_dict(StudentSpec, raw["student"], f"stages.{name}.student")
    if teacher == "previous" and first:
        raise KdnlpError(f"stage '{name}' is the first stage: there is no previous student for 'teacher: previous'")
    if teacher == "previous" and student is None:
        raise KdnlpError(f"stage '{name}' learns from the previous stage's student (teacher: previous) but has no "
                         "'student' spec to build its own student from it")
    if student is not None and teacher != "previous":
        raise KdnlpError(f"stage '{name}' has a 'student' spec, which only a stage with 'teacher: previous' builds; "
                         "add teacher: previous or remove it (the recipe's top-level 'student' is the first stage's)")
    return teacher, student


def _parse_stage(raw: Any, i: int) -> Stage:
    """Stage `i` (from 0) of a recipe's `stages`, validated."""
    if not isinstance(raw, dict):
        raise KdnlpError(f"stages[{i}] must be a mapping, got {raw!r}")
    keys = ("name", "losses", "training", "data", "targets", "teacher", "student", "generator")
    extra = [k for k in raw if k not in keys]
    if extra:
        raise KdnlpError(f"unknown key 'stages[{i}].{extra[0]}'; valid keys: {', '.join(keys)}")
    name = coerce(raw.get("name", f"stage{i + 1}"), str, f"stages[{i}].name")
    terms = parse_terms(raw.get("losses") or [], f"stages.{name}.losses", f"stage '{name}'")
    if not terms:
        raise KdnlpError(f"stage '{name}' has no losses")
    source = coerce(raw.get("data", "task"), str, f"stages.{name}.data")
    kind = SOURCES.get(source)
    if not kind.labelled:
        labelled = [t.loss for t in terms if not LOSSES.get(t.loss).uses_teacher]
        if labelled:
            raise KdnlpError(f"stage '{name}' trains on {kind.examples}, but its loss '{labelled[0]}' needs labels")
    targets = coerce(raw.get("targets", "gold"), typing.get_type_hints(Stage)["targets"], f"stages.{name}.targets")
    teacher, student = _chain_link(raw, name, first=i == 0)
    generator = kind.settings(raw.get("generator"), f"stages.{name}.generator")
    return Stage(name, terms, _check_training(raw.get("training") or {}, f"stages.{name}.training"), source,
                 targets, teacher, student, generator)


def parse(data: dict[str, Any]) -> Recipe:
    data = _normalise(data)
    known = {f.name for f in dataclasses.fields(Recipe)}
    unknown = [k for k in data if k not in known]
    if unknown:
        raise KdnlpError(f"unknown recipe key '{unknown[0]}'; valid keys: {', '.join(sorted(known))}, losses")
    for key in ("name", "description"):
        if key not in data:
            raise KdnlpError(f"recipe is missing the key '{key}'")
    if not data.get("stages"):
        raise KdnlpError("recipe has no stages: give 'losses' or 'stages'")
    stages = [_parse_stage(raw, i) for i, raw in enumerate(coerce(data["stages"], list, "stages"))]
    if len({s.name for s in stages}) != len(stages):
        raise KdnlpError("stage names must be unique")
    student = data.get("student")
    max_length = coerce(data.get("max_length", 128), int, "max_length")
    if max_length < 8:
        raise KdnlpError(f"bad value {max_length} for max_length: must be at least 8")
    recipe = Recipe(
        name=coerce(data["name"], str, "name"),
        description=coerce(data["description"], str, "description"),
        paper=coerce(data.get("paper", ""), str, "paper"),
        student=None if student is None else from_dict(StudentSpec, student, "student"),
        max_length=max_length,
        training=_check_training(data.get("training") or {}, "training"),
        generation=coerce(data.get("generation") or {}, dict, "generation"),
        multitask=coerce(data.get("multitask") or {}, dict, "multitask"),
        stages=stages,
    )
    if recipe.multitask:
        recipe.multitask_settings()  # validates the keys and values
    if recipe.generation or any(s.targets != "gold" for s in stages):
        recipe.generation_settings()  # validates the keys and values
    return recipe


def load(name_or_path: str, overrides: list[str] | None = None) -> Recipe:
    data, _ = read(name_or_path)
    return from_data(data, overrides)


def from_data(data: dict[str, Any], overrides: list[str] | None = None) -> Recipe:
    """A recipe from its data (a recipe file's contents, or `Recipe.to_dict()` as a run folder keeps it)."""
    data = _normalise(data)
    if len(data.get("stages") or []) == 1:  # in a one-stage recipe `losses` is short for `stages.0.losses`
        overrides = [f"stages.0.{o}" if o.startswith(("losses.", "losses=")) else o for o in overrides or []]
    return parse(apply_overrides(data, overrides or []))
