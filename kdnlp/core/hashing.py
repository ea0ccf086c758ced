"""Where kdnlp's disk caches live, and the digests of what makes two models compute the same outputs (cache keys)."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch


def weights_digest(model: torch.nn.Module) -> str:
    """Hash of the model's weights, their dtype and its attention implementation: what makes two loaded models
    compute the same outputs."""
    dtype = next(model.parameters()).dtype
    h = hashlib.sha256(f"{dtype} {model.config._attn_implementation}".encode())
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def cache_dir() -> Path:
    if os.environ.get("KDNLP_CACHE"):
        return Path(os.environ["KDNLP_CACHE"])
    import datasets

    return Path(datasets.config.HF_DATASETS_CACHE) / "kdnlp-teacher"
