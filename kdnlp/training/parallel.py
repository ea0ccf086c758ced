"""Multi-process runs without a launcher: `kdnlp distill --num-processes N` starts N copies of the same command
with the environment torchrun would give them (RANK, WORLD_SIZE, MASTER_ADDR/PORT...), so the Trainer runs
DDP (gloo on CPU, NCCL on GPUs). `accelerate launch -m kdnlp ...` and `torchrun -m kdnlp ...` do the same.

Rank 0 talks to the terminal; the other ranks' stderr goes to files, and is shown only if a rank fails
while rank 0 does not (rank 0 normally reports the same error itself). If one rank fails, the others,
which would wait forever at the next collective, are stopped.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def launched() -> bool:
    """True inside a process started by a launcher (this one, torchrun or accelerate launch)."""
    return "LOCAL_RANK" in os.environ


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(argv: list[str], num_processes: int) -> int:
    """Runs `python -m kdnlp *argv` in `num_processes` processes on this machine; returns the exit code."""
    threads = max(1, (os.cpu_count() or 1) // num_processes)
    common = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "WORLD_SIZE": str(num_processes),
              "LOCAL_WORLD_SIZE": str(num_processes), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(threads))}
    with tempfile.TemporaryDirectory(prefix="kdnlp-ranks-") as tmp:
        logs = [None] + [open(Path(tmp) / f"rank{r}.log", "w+") for r in range(1, num_processes)]
        procs = [
            subprocess.Popen([sys.executable, "-m", "kdnlp", *argv], stderr=logs[r],
                             stdout=None if r == 0 else subprocess.DEVNULL,
                             env={**os.environ, **common, "RANK": str(r), "LOCAL_RANK": str(r)})
            for r in range(num_processes)
        ]
        try:
            while any(p.poll() is None for p in procs) and all(p.poll() in (None, 0) for p in procs):
                time.sleep(0.2)
            failed = [r for r, p in enumerate(procs) if p.poll() not in (None, 0)]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.terminate()
            for p in procs:
                p.wait()
        if failed and failed[0] != 0:
            logs[failed[0]].seek(0)
            lines = [line for line in logs[failed[0]].read().splitlines() if line.strip()]
            print(f"kdnlp: rank {failed[0]} failed: {lines[-1] if lines else 'no message'}", file=sys.stderr)
        for f in logs[1:]:
            f.close()
    return procs[failed[0]].returncode if failed else 0
