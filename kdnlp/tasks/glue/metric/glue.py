"""GLUE metrics as an `evaluate` module that ships inside kdnlp, so `evaluate.load` needs no network.

The config name is the comma-separated metrics to report (a task's `metrics` in kdnlp's GLUE table, e.g.
`f1,accuracy`), so any task of that table's form can use it; correlations mean a regression. Several metrics also
report `combined_score`, their mean.
"""
import datasets
import evaluate
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import f1_score, matthews_corrcoef

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


REGRESSION = {"pearson", "spearmanr"}


class Glue(evaluate.Metric):
    def _info(self):
        names = self.config_name.split(",")
        unknown = [m for m in names if m not in _FUNCTIONS]
        if unknown:
            raise ValueError(f"unknown metric '{unknown[0]}'; valid: {', '.join(_FUNCTIONS)}")
        kind = "float32" if REGRESSION & set(names) else "int64"
        return evaluate.MetricInfo(
            description=f"GLUE metrics: {', '.join(names)}",
            citation=_CITATION,
            inputs_description="predictions: class indices (scores for stsb); references: gold labels",
            features=datasets.Features({"predictions": datasets.Value(kind), "references": datasets.Value(kind)}),
            format="numpy",
        )

    def _compute(self, predictions, references):
        names = self.config_name.split(",")
        if REGRESSION & set(names):  # evaluate hands over float32: correlations computed in float32 would be rounded
            predictions, references = predictions.astype("float64"), references.astype("float64")
        out = {m: _FUNCTIONS[m](predictions, references) for m in names}
        if len(out) > 1:
            out["combined_score"] = sum(out.values()) / len(out)
        return out
