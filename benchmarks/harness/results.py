"""A benchmark's results JSON: resumed only under the settings its runs were measured with, extended run by
run, each write atomic (a crash leaves the previous file or the new one, never half of one)."""

import argparse
import contextlib
import json
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path

from fastsnn.atomic_file import write_json

ABSENT = "(absent)"  # a setting the results file does not record


def settings_of(args: argparse.Namespace) -> dict:
    """A command line's settings as JSON values (paths as text)."""
    return {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()}


def read_results(path: Path) -> dict:
    """The results JSON at ``path``; SystemExit naming it if it is missing or not one."""
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise SystemExit(f"{path}: cannot read a results JSON ({error})") from None
    if not isinstance(results, dict) or not {"settings", "runs"} <= results.keys():
        raise SystemExit(f"{path}: not a benchmark results JSON (no 'settings' and 'runs')")
    return results


def render(json_path: Path, markdown: Path, plots: Path, table: Callable[[dict], str], draw: Callable) -> None:
    """Write the Markdown ``table`` of the results at ``json_path`` to ``markdown`` (and print it), and ``draw``
    their plots into ``plots``."""
    results = read_results(json_path)
    text = table(results)
    markdown.parent.mkdir(parents=True, exist_ok=True)
    markdown.write_text(text + "\n")
    print(text)
    draw(results, plots)


def changed_settings(previous: dict, settings: dict, ignored: Collection[str]) -> list[str]:
    """``key: old → new`` for each setting outside ``ignored`` whose value differs from ``previous``."""
    return [
        f"{key}: {previous.get(key, ABSENT)!r} → {value!r}"
        for key, value in settings.items()
        if key not in ignored and previous.get(key, ABSENT) != value
    ]


class ResultsFile:
    """The JSON at ``path``: ``{"settings", "environment", "runs": [...], "wall_seconds"}``, plus
    ``"supplements"`` (settings, environment and wall time of each later invocation that added to it).

    The runs already in ``path`` are kept when ``settings`` equal those they were measured with, apart from
    the ``ignored`` keys (where results go, which runs are asked for); otherwise SystemExit names the settings
    that differ, and nothing is mixed. ``fresh`` starts an empty record (``path`` is replaced at the first save).
    """

    def __init__(self, path: Path, settings: dict, environment: dict, *, ignored: Collection[str], fresh: bool = False):
        self.path = Path(path)
        self.session = {"settings": settings, "environment": environment, "wall_seconds": 0.0}
        self.resumed = self.path.exists() and not fresh
        if not self.resumed:
            self.results = {"settings": settings, "environment": environment, "runs": [], "wall_seconds": 0.0}
            return
        self.results = read_results(self.path)
        changed = changed_settings(self.results["settings"], settings, ignored)
        if changed:
            raise SystemExit(
                f"{self.path} holds runs measured with other settings ({'; '.join(changed)}); not mixing them: "
                "pass --fresh to measure every run again, or another --json"
            )

    @property
    def runs(self) -> list[dict]:
        return self.results["runs"]

    @contextlib.contextmanager
    def measuring(self) -> Iterator[list[dict]]:
        """Time the block, which adds to (or extends) :attr:`runs`; then count its wall time and save.

        If the block raises, nothing is saved: the file keeps what the previous blocks measured.
        """
        started = time.perf_counter()
        yield self.runs
        seconds = time.perf_counter() - started
        self.results["wall_seconds"] += seconds
        if self.resumed and self.session["wall_seconds"] == 0.0:
            self.results.setdefault("supplements", []).append(self.session)
        self.session["wall_seconds"] += seconds
        self.save()

    def save(self) -> None:
        write_json(self.path, self.results)
