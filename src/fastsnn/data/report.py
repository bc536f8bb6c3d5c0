"""The short human report that :func:`fastsnn.data.fetch_dataset` returns."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DataReport:
    """Where a verified data set is and how many samples each split holds."""

    name: str
    source: str
    train: int
    test: int
    note: str = ""

    def __str__(self) -> str:
        lines = [
            f"{self.name}: {self.train} train / {self.test} test samples",
            f"  from {self.source}",
        ]
        if self.note:
            lines.append(f"  {self.note}")
        return "\n".join(lines)
