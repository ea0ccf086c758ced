"""kdnlp: distill Hugging Face transformers into small, fast students.

The Python API mirrors the CLI: `finetune`, `run_recipe` (distill), `run_seeds` (distill --seeds), `init_student_folder`,
`evaluate_models`, `augment_glue`, `train_mlm`, `new_model_folder`, `generate_folder`. They are imported on first use, so
`import kdnlp` stays light.
"""
__version__ = "0.1.0"

_API = {
    "finetune": "kdnlp.distill",
    "run_recipe": "kdnlp.distill",
    "run_seeds": "kdnlp.seeds",
    "init_student_folder": "kdnlp.students",
    "evaluate_models": "kdnlp.evaluation",
    "augment_glue": "kdnlp.augment",
    "train_mlm": "kdnlp.mlm",
    "new_model_folder": "kdnlp.scratch",
    "generate_folder": "kdnlp.generation",
    "DistillationTrainer": "kdnlp.trainer",
}


def __getattr__(name):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'kdnlp' has no attribute {name!r}")
