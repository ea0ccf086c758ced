"""`kdnlp distill` as one function: a run of a recipe, a rerun of a run folder, or a recipe run once per seed."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from kdnlp.core.errors import KdnlpError
from kdnlp.pipeline import recipe as recipes
from kdnlp.pipeline import runner, seeds as seeded


def distill(recipe: str | recipes.Recipe | None, task: str | None, output_dir: str | Path,
            from_run: str | Path | None = None, seeds: list[int] | None = None, control: bool = False,
            overrides: list[str] | None = None, **options: Any) -> dict[str, Any]:
    """Runs `recipe` on `task` into `output_dir` (kdnlp.pipeline.runner.run_recipe, whose keywords `options` are),
    or again the run folder `from_run` (`runner.rerun`: its recipe changed by `overrides`, its settings by
    `options`), or with `seeds` once per seed and with `control` beside its no-teacher twin
    (kdnlp.pipeline.seeds.run_seeds). Returns the run's metrics, or the seeds folder's summary; either way
    `summary` holds the text to show (for seeds, the table of summary.md)."""
    if from_run is None and (recipe is None or task is None):
        raise KdnlpError(f"pass --{'recipe' if recipe is None else 'task'} (or --from RUN_DIR to rerun a run)")
    if control and seeds is None:
        raise KdnlpError("--control runs the no-teacher twin of each seed; give the seeds with --seeds, e.g. --seeds 1,2,3")
    if seeds is not None:
        given = [name for name, value in (("--from", from_run), ("--stage", options.get("stage"))) if value]
        if given:
            raise KdnlpError(f"--seeds runs whole recipes in this process; it does not take {given[0]}")
        summary = seeded.run_seeds(recipe, task, output_dir, seeds, control, overrides, **options)
        return {**summary, "summary": seeded.format_comparisons([{"folder": str(output_dir), **summary}])}
    if from_run is not None:
        if recipe is not None:
            raise KdnlpError("--from reruns the run's own recipe: change it with --set, not --recipe")
        return runner.rerun(from_run, output_dir, overrides, task=task, **options)
    return runner.run_recipe(recipe, task, output_dir, overrides=overrides, **options)
