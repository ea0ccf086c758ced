"""Sequence-to-sequence tasks (translation, summarisation): text in, text out, scored on generated text.

Training compares per-token outputs (`logits` of shape batch x target length x vocabulary, masked to real
target tokens). Evaluation during training reports the loss only (no batch x length x vocabulary logits are
gathered); a finished run, and `kdnlp eval`, decode the dev sources and score the text (sacrebleu BLEU and chrF,
or ROUGE), with the same generation settings for every model.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from kdnlp.core.errors import KdnlpError, say
from kdnlp.core.names import unprefixed
from kdnlp.modeling.models import load_config, load_pretrained, resolve
from kdnlp.tasks.base import KINDS, Card, Kind, Problem
from kdnlp.tasks.seq2seq import metrics as seq2seq
from kdnlp.tasks.seq2seq.data import load_pairs
from kdnlp.tasks.seq2seq.generation import (GenerationSettings, check_teacher, generate, generation_config,
                                            teacher_targets)
from kdnlp.tasks.seq2seq.metrics import closest_to_reference
from kdnlp.tasks.speed import speed_batches, timed

#: Seq2seq task names: the metrics each reports (the first ranks models), and the function of
#: kdnlp.tasks.seq2seq.metrics that computes them from decoded text.
METRICS = {"translation": ("bleu", "chrf"), "summarization": ("rouge1", "rouge2", "rougeL", "rougeLsum")}
SCORERS = {"translation": "translation_scores", "summarization": "summary_scores"}


def decoder_tokens(config) -> tuple[int, int]:
    """The start and padding tokens with which a model's forward makes its decoder inputs from labels."""
    start, pad = getattr(config, "decoder_start_token_id", None), getattr(config, "pad_token_id", None)
    if start is None or pad is None:
        raise KdnlpError(f"the teacher '{config.name_or_path}' sets no decoder_start_token_id or no pad_token_id in "
                         "its config, so its decoder inputs cannot be made from the targets; set both in its "
                         "config.json")
    return start, pad


class Seq2SeqProblem(Problem):
    """A seq2seq task; capabilities (kdnlp.tasks.capabilities): TeacherTargets, TargetInputs, ModelChecks."""

    outputs = "tokens"
    training_defaults = {"prediction_loss_only": True}

    def __init__(self, name: str, source: str | None = None, target: str | None = None, num_beams: int = 5,
                 max_new_tokens: int | None = None):
        self.name = name
        self.source, self.target = source, target
        self.num_beams, self.max_new_tokens = num_beams, max_new_tokens

    @property
    def metric_names(self) -> tuple[str, ...]:
        return METRICS[self.name]

    def generation(self, max_length: int, **changes: Any):
        """The decoding settings of evaluation (greedy when num_beams is 1)."""
        return GenerationSettings(**{"num_beams": self.num_beams, "max_new_tokens": self.max_new_tokens,
                                     "max_source_length": max_length, **changes})

    def load(self, split, data_dir, max_samples=None, seed=42, labeled=True):
        if data_dir is None:
            raise KdnlpError(f"{self.name} needs --data-dir: a folder of parallel files, a saved dataset or a Hub id")
        return load_pairs(data_dir, split, self.source, self.target, max_samples, seed)

    def encode(self, ds, tokenizer, max_length, prefix=""):
        max_length = min(max_length, tokenizer.model_max_length)  # a model with fewer positions reads fewer tokens

        def tok(batch):
            if prefix:
                enc = tokenizer(batch["source"], truncation=True, max_length=max_length)
                return {prefix + k: v for k, v in enc.items()}
            return tokenizer(batch["source"], text_target=batch["target"], truncation=True, max_length=max_length)

        return ds.map(tok, batched=True, remove_columns=ds.column_names, desc=f"tokenising {self.name}")

    def collator(self, tokenizer, model=None):
        from transformers import DataCollatorForSeq2Seq

        return DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100)

    def train_set(self, ds, targets, teacher, settings, device=None):
        if targets == "gold":
            return ds
        import datasets

        out = teacher_targets(teacher, ds, settings, device=device)
        if targets == "inter":
            picked = [h[closest_to_reference([x["text"] for x in h], ref)]["text"]
                      for h, ref in zip(out["hypotheses"], out["target"])]
        else:
            picked = out["teacher"]
        taught = datasets.Dataset.from_dict({"source": out["source"], "target": picked})
        return datasets.concatenate_datasets([ds, taught]) if targets == "both" else taught

    def target_inputs(self, inputs, config):
        """The decoder's inputs, which the collator made from the targets with the student's start token, made
        again with the teacher's: a student of another architecture may start decoding from another token."""
        shared = {k: v for k, v in inputs.items() if k.startswith("decoder_")}
        if "decoder_input_ids" in shared and "labels" in inputs:
            from transformers.models.bart.modeling_bart import shift_tokens_right

            start, pad = decoder_tokens(config)
            shared["decoder_input_ids"] = shift_tokens_right(inputs["labels"], pad, start)
        return shared

    def check_models(self, terms, teacher, student, teacher_model, student_model):
        """Fails if a term runs the teacher on the student's targets and the teacher cannot make its own decoder
        inputs from them (`target_inputs`), or if a term compares the two models' per-token distributions and they
        predict over vocabularies of different sizes."""
        if any(loss.uses_teacher for _, loss in terms):
            decoder_tokens(teacher_model.config)
        compared = [name for name, loss in terms if loss.uses_teacher and "logits" in loss.needs]
        taught, learning = (m.get_output_embeddings().weight.shape[0] for m in (teacher_model, student_model))
        if compared and taught != learning:
            raise KdnlpError(f"teacher '{teacher}' predicts over {taught} tokens and student '{student}' over "
                             f"{learning}, and the term '{compared[0]}' compares their distributions token by token; "
                             "use a student with the teacher's vocabulary size")

    def check_teacher(self, name):
        check_teacher(name)
        if _weightless(name):
            raise KdnlpError(f"'{name}' holds a config but no weights; train it first: kdnlp finetune --model {name} "
                             f"--task {self.name} ...")

    def load_model(self, name, require_head, **kwargs):
        from transformers import AutoModelForSeq2SeqLM

        (self.check_teacher if require_head else check_teacher)(name)  # a model to train may still lack weights
        if _weightless(name):
            say(f"'{name}' has no weights: starting from a random initialisation of its config")
            model = AutoModelForSeq2SeqLM.from_config(load_config(name), **kwargs)
            folder = Path(resolve(name))
            if (folder / "generation_config.json").is_file():  # from_config does not read it
                from transformers import GenerationConfig

                model.generation_config = GenerationConfig.from_pretrained(folder)
            return model
        return load_pretrained(name, AutoModelForSeq2SeqLM, **kwargs)

    def final_metrics(self, evaluated, model, tokenizer, dev, max_length, teacher=None):
        loss = {k: v for k, v in unprefixed(evaluated).items() if k == "loss"}
        return {**loss, **self.score(model, tokenizer, dev, max_length, 64)}

    def decode(self, model, tokenizer, sources: list[str], max_length: int, batch_size: int = 64) -> list[str]:
        settings = self.generation(max_length, batch_size=batch_size)
        return [outs[0][0] for outs in generate(model, tokenizer, sources, settings)]

    def score(self, model, tokenizer, ds, max_length, batch_size):
        hypotheses = self.decode(model, tokenizer, list(ds["source"]), max_length, batch_size)
        return getattr(seq2seq, SCORERS[self.name])(hypotheses, list(ds["target"]))

    def task_score(self, metrics):
        return float(metrics[self.metric_names[0]])

    def speed(self, model, tokenizer, ds, max_length):
        import torch

        model.eval()
        config = generation_config(model, tokenizer, self.generation(max_length))  # as `decode` decodes

        def run(batch):
            enc = tokenizer(batch, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
            model.generate(**{k: v.to(model.device) for k, v in enc.items()}, generation_config=config)

        with torch.inference_mode():
            return timed(run, *speed_batches(list(ds["source"])), repeats=1)

    def card(self, data_dir):
        """The data's folder (or Hub id) names the dataset; every quality metric the run has is reported."""
        where = Path(str(data_dir)).name
        return Card("text2text-generation", [], self.name, where or self.name, where or self.name, None, "validation",
                    None)


def _weightless(name: str) -> bool:
    """A local model folder with a config but no weights (kdnlp new-model writes those)."""
    folder = Path(resolve(name))
    return folder.is_dir() and not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin"))


def _problem(task: str, **options) -> Seq2SeqProblem | None:
    return Seq2SeqProblem(task, **options) if task in METRICS else None


KINDS.register("seq2seq")(Kind(_problem, ", ".join(METRICS), ("source", "target", "num_beams", "max_new_tokens")))
