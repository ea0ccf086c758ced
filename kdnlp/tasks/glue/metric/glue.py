"""GLUE metrics as an `evaluate` module that ships inside kdnlp, so `evaluate.load` needs no network.

The config name is a kdnlp task key (`sst2`, `mnli-mm`, ...); which metrics a task reports comes from
kdnlp's GLUE table. Tasks with several metrics also report `combined_score`, their mean.
"""
import datasets
import evaluate
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import f1_score, matthews_corrcoef

from kdnlp.tasks.glue.data import get_task

_CITATION = """@inproceedings{wang2019glue,
  title={{GLUE}: A Multi-Task Benchmark and Analysis Platform for Natural Language Understanding},
  author={Wang, Alex and Singh, Amanpreet and Michael, Julian and Hill, Felix and Levy, Omer and Bowman, Samuel R.},
  booktitle={ICLR}, year={2019}}"""

_FUNCTIONS = {
    "accuracy": lambda p, r: float((p == r).mean()),
    "f1": lambda p, r: float(f1_score(r, p)),
    "matthews_correlation": lambda p, r: float(matthews_corrcoef(r, p)),
    "pearson": lambda p, r: float(pearsonr(p, r)[0]),
    "spearmanr": lambda p, r: float(spearmanr(p, r)[0]),
}


class Glue(evaluate.Metric):
    def _info(self):
        task = get_task(self.config_name)
        kind = "float32" if task.regression else "int64"
        return evaluate.MetricInfo(
            description=f"GLUE metrics for {task.name}: {', '.join(task.metrics)}",
            citation=_CITATION,
            inputs_description="predictions: class indices (scores for stsb); references: gold labels",
            features=datasets.Features({"predictions": datasets.Value(kind), "references": datasets.Value(kind)}),
            format="numpy",
        )

    def _compute(self, predictions, references):
        task = get_task(self.config_name)
        if task.regression:  # evaluate hands over float32: correlations computed in float32 would be rounded
            predictions, references = predictions.astype("float64"), references.astype("float64")
        out = {m: _FUNCTIONS[m](predictions, references) for m in task.metrics}
        if len(out) > 1:
            out["combined_score"] = sum(out.values()) / len(out)
        return out
