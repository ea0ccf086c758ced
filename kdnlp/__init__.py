"""kdnlp: distill Hugging Face transformers into small, fast students.

The Python API mirrors the CLI: `finetune`, `distill` (all of distill: a run, --from, --seeds), `run_recipe` (distill),
`run_seeds` (distill --seeds), `init_student_folder`, `evaluate_models`, `augment_glue`, `train_mlm`, `new_model_folder`,
`generate_folder`. They are imported on first use, so `import kdnlp` stays light.
"""
__version__ = "0.1.0"

_API = {
    "finetune": "kdnlp.pipeline.runner",
    "distill": "kdnlp.pipeline.distill",
    "run_recipe": "kdnlp.pipeline.runner",
    "run_seeds": "kdnlp.pipeline.seeds",
    "init_student_folder": "kdnlp.modeling.students",
    "evaluate_models": "kdnlp.tools.evaluation",
    "augment_glue": "kdnlp.tools.augment",
    "train_mlm": "kdnlp.tools.mlm",
    "new_model_folder": "kdnlp.modeling.scratch",
    "generate_folder": "kdnlp.tasks.seq2seq.generation",
    "DistillationTrainer": "kdnlp.training.trainer",
}


def __getattr__(name):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'kdnlp' has no attribute {name!r}")
