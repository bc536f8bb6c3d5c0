"""Free memory of a device, read from the driver (CUDA) or the kernel (CPU)."""

from pathlib import Path

import torch


def available_bytes(
    device: torch.device, *, meminfo: Path = Path("/proc/meminfo"), cgroup: Path = Path("/sys/fs/cgroup")
) -> int | None:
    """Free memory of ``device`` in bytes, or None if unknown.

    CUDA: ``mem_get_info``. CPU: ``MemAvailable`` of ``meminfo``, capped by the cgroup (v2) limit
    ``cgroup/memory.max`` minus ``cgroup/memory.current`` when one is set.
    """
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type != "cpu":
        return None
    found = []
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            found.append(int(limit) - int((cgroup / "memory.current").read_text()))
    except (OSError, ValueError):
        pass
    return min(found) if found else None
