"""Run folders: built aside in `<out>.partial`, moved into place only when the run has finished.

So a crash never leaves a half-written model where a finished one is expected, and a run that
replaces an old one (`--overwrite`) removes the old one only after the new one is complete.
Layout: `model/` (a plain Hugging Face model folder), `recipe.yaml`, `run.json`, `metrics.json`,
`settings.json`, and `stages/<name>/` (the Trainer's checkpoints, the stage's student in `model/`, and
`done.json` once the stage has finished); a multi-task run adds `tasks/<task>/model/`, each task's classifier.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from kdnlp.core.errors import KdnlpError

#: What a run was started with; a rerun with the same settings continues it.
SETTINGS = "settings.json"
#: The file that makes a folder a seeds folder (`distill --seeds`, kdnlp.pipeline.seeds): its mean ± sd and comparison.
SUMMARY = "summary.json"


def is_seeds_folder(path: str | os.PathLike) -> bool:
    return (Path(path) / SUMMARY).is_file()


def check_output_dir(path: Path, overwrite: bool) -> None:
    if path.exists() and not path.is_dir():
        raise KdnlpError(f"output path '{path}' is a file, not a folder")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise KdnlpError(
            f"output folder '{path}' exists and is not empty; pass --overwrite to replace it "
            "(the old one is removed only once the new run has finished)"
        )


def check_output_file(path: Path, option: str) -> None:
    """`path` can take a file written later: it is no folder and its folder exists (checked before the work)."""
    if path.is_dir():
        raise KdnlpError(f"bad value '{path}' for {option}: it is a folder; give a file path, e.g. {path / 'results.json'}")
    if not path.parent.is_dir():
        raise KdnlpError(f"bad value '{path}' for {option}: '{path.parent}' is not an existing folder; create it first")


class RunFolder:
    def __init__(self, path: str | os.PathLike, overwrite: bool = False, replaces: bool = False):
        """`overwrite`: the run may replace a finished folder at `path` and discard an interrupted one with other
        settings; `replaces`: only the first (the caller has kept what the finished folder holds)."""
        self.path = Path(path)
        self.overwrite = overwrite
        self.replaces = overwrite or replaces
        self.work = self.path.with_name(self.path.name + ".partial")
        self.made = False  # whether `start` made `work` (rather than continuing an interrupted run's)
        check_output_dir(self.path, self.replaces)

    def check(self, settings: dict[str, Any], resume: bool = False) -> None:
        """Raises unless `start` may go ahead: an interrupted run in `work` is continued only with the same
        `settings` (and is required with `resume`); one with other settings is discarded only with `overwrite`."""
        saved = self.work / SETTINGS
        if not self.work.exists() or not saved.is_file():
            if resume:
                raise KdnlpError(f"nothing to resume: no interrupted run in '{self.work}'")
            return
        if self.overwrite and not resume:
            return
        old = read_json(saved, remedy="pass --overwrite (without --resume) to discard the interrupted run")
        if old == settings:
            return
        diff = next(k for k in sorted({*old, *settings}) if old.get(k) != settings.get(k))
        raise KdnlpError(
            f"'{self.work}' holds an interrupted run with another '{diff}'; rerun with the same settings to "
            "continue it" + ("" if resume else ", or pass --overwrite to discard it")
        )

    def start(self, settings: dict[str, Any], resume: bool = False) -> Path:
        """The folder to build the run in (after `check`): the interrupted run's, with its finished stages, when
        it has the same `settings`, else a new one."""
        self.check(settings, resume)
        saved = self.work / SETTINGS
        if saved.is_file() and _readable(saved) == settings:
            return self.work
        if self.work.exists():
            shutil.rmtree(self.work)
        self.work.mkdir(parents=True)
        write_json(saved, settings)
        self.made = True
        return self.work

    def discard(self) -> None:
        """Removes the folder `start` made, after an input check failed in it: left, it would pass for an
        interrupted run and block the corrected command. An interrupted run's folder that was continued stays."""
        if self.made:
            shutil.rmtree(self.work, ignore_errors=True)

    def finish(self) -> Path:
        check_output_dir(self.path, self.replaces)  # someone may have written there meanwhile
        old = self.path.with_name(f".{self.path.name}.old-{os.getpid()}")
        if self.path.exists():
            self.path.rename(old)
        self.work.rename(self.path)
        if old.exists():
            shutil.rmtree(old)
        return self.path


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def read_json(path: Path, *keys: str, remedy: str = "rerun the command that wrote it") -> dict[str, Any]:
    """The JSON object in `path`, which must hold `keys`; a one-line error naming the file and ending with `remedy`
    when it is missing, damaged (cut short, edited) or not what kdnlp writes there."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KdnlpError(f"'{path}' does not exist: {remedy}") from None
    except (OSError, ValueError) as e:  # ValueError: not JSON, or not UTF-8
        raise KdnlpError(f"'{path}' is damaged ({str(e).splitlines()[0]}): kdnlp writes a JSON object there; "
                         f"{remedy}") from None
    if not isinstance(data, dict):
        raise KdnlpError(f"'{path}' is damaged (a JSON {type(data).__name__}, not the object kdnlp writes there): "
                         f"{remedy}")
    missing = [k for k in keys if k not in data]
    if missing:
        raise KdnlpError(f"'{path}' is damaged (it lacks '{missing[0]}'): {remedy}")
    return data


def _readable(path: Path) -> dict[str, Any] | None:
    """`read_json(path)`, or None if it cannot be read."""
    try:
        return read_json(path)
    except KdnlpError:
        return None
