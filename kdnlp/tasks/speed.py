"""Latency and throughput of a model on real inputs, the same way for every kind of task."""
from __future__ import annotations

import statistics
import time

from kdnlp.core.errors import KdnlpError


def timed(run, singles: list, batches: list, repeats: int = 3) -> dict[str, float]:
    """Median latency (ms) of `run` on one example at a time, and examples/s over `batches` (best of `repeats`),
    after a warm-up. `run` takes a list of examples."""
    for x in singles[:8]:
        run([x])  # warm-up
    latencies = []
    for x in singles:
        start = time.perf_counter()
        run([x])
        latencies.append(time.perf_counter() - start)
    run(batches[0])
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for b in batches:
            run(b)
        best = min(best, time.perf_counter() - start)
    return {"latency_ms_b1": 1000 * statistics.median(latencies), "throughput_b32": sum(map(len, batches)) / best}


def speed_batches(examples: list, limit: int = 256) -> tuple[list, list]:
    """Up to 64 single examples and up to `limit` examples in full batches of 32 (at least 32 examples needed)."""
    if len(examples) < 32:
        raise KdnlpError(f"speed needs at least 32 examples, got {len(examples)}")
    return examples[:64], [examples[i : i + 32] for i in range(0, min(len(examples), limit) - 31, 32)]
