"""The library stays apart from the application: importing it loads neither data, checkpoints nor torchvision."""

import subprocess
import sys
from pathlib import Path

import pytest

SOURCE = Path(__file__).parents[1] / "src" / "fastsnn"


@pytest.mark.parametrize(
    "package",
    [
        "fastsnn",
        "fastsnn.quant",
        "fastsnn.convert",
        "fastsnn.finetune",
        "fastsnn.analysis",
        "fastsnn.models",
        "fastsnn.neuron",
    ],
)
def test_library_imports_without_the_application_layer(package):
    application = ("torchvision", "fastsnn.data", "fastsnn.workflows")
    probe = f"import sys, {package}; print(sorted(m for m in sys.modules if m.startswith({application!r})))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]", f"import {package} loads {loaded}"


def test_no_source_file_is_over_400_lines():
    long = {
        str(path.relative_to(SOURCE)): n
        for path in SOURCE.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > 400
    }
    assert not long, long
