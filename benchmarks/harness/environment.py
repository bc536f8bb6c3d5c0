"""Where a benchmark ran: versions, device, threads and commit, recorded beside its figures."""

import os
import platform
import subprocess
from pathlib import Path

import torch

import fastsnn


def environment(device: str | torch.device = "cpu", **extra) -> dict:
    """The record of this process's setup on ``device``; ``extra`` adds entries (e.g. a peer's version)."""
    return {
        "torch": torch.__version__,
        "fastsnn": fastsnn.__version__,
        "python": platform.python_version(),
        "device": device_name(torch.device(device)),
        "threads": torch.get_num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "commit": commit(),
        **extra,
    }


def device_name(device: torch.device) -> str:
    """The GPU's name, or ``cpu (<processor>, <n> logical cores)``."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} logical cores)"


def commit() -> str | None:
    """The checkout's commit (``-dirty`` when tracked files changed since), None outside a git checkout."""
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return described.stdout.strip()
