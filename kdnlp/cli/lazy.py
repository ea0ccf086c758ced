"""Handles on the modules below the CLI that import them on first use, so that `kdnlp --help` imports no torch."""
from __future__ import annotations

import importlib
from typing import Any


class LazyModule:
    """Stands for the module `name`, imported when one of its attributes is first read."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self.name), attr)


def lazy(name: str) -> Any:
    return LazyModule(name)
