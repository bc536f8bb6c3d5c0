"""The library stays apart from the application: importing it loads neither data, checkpoints nor torchvision."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from fastsnn.models import list_models

SOURCE = Path(__file__).parents[1] / "src" / "fastsnn"


@pytest.mark.parametrize(
    "package",
    [
        "fastsnn",
        "fastsnn.quant",
        "fastsnn.convert",
        "fastsnn.finetune",
        "fastsnn.analysis",
        "fastsnn.integer",
        "fastsnn.models",
        "fastsnn.neuron",
        "fastsnn.tasks",
    ],
)
def test_library_imports_without_the_application_layer(package):
    application = ("torchvision", "fastsnn.data", "fastsnn.workflows")
    probe = f"import sys, {package}; print(sorted(m for m in sys.modules if m.startswith({application!r})))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]", f"import {package} loads {loaded}"


def test_a_bare_import_exposes_the_library_subpackages_without_the_application_layer():
    application = ("torchvision", "fastsnn.data", "fastsnn.workflows")
    probe = f"""
import sys, fastsnn
assert {{"analysis", "integer", "models", "tasks"}} <= set(dir(fastsnn))
model = fastsnn.models.create_model("resnet8", num_classes=3, in_channels=1)
task = fastsnn.tasks.create_task("detection", num_classes=3)
assert callable(fastsnn.analysis.activity)
print(fastsnn.models.list_models(), sorted(m for m in sys.modules if m.startswith({application!r})))
"""
    printed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert printed == f"{list_models()} []"


def test_no_source_file_is_over_400_lines():
    long = {
        str(path.relative_to(SOURCE)): n
        for path in SOURCE.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > 400
    }
    assert not long, long


def test_no_function_of_the_application_layer_is_over_60_lines():
    """The command line and the workflows only wire the library together: no long functions there."""
    long = {}
    for package in ("cli", "workflows"):
        for path in (SOURCE / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.FunctionDef) and (n := node.end_lineno - node.lineno + 1) > 60:
                    long[f"{path.relative_to(SOURCE)}:{node.name}"] = n
    assert not long, long


def test_no_library_or_workflow_function_switches_the_matplotlib_backend():
    """Plots are Figure objects: a caller's process (a notebook's inline backend) keeps its backend."""
    callers = [str(path.relative_to(SOURCE)) for path in SOURCE.rglob("*.py") if "matplotlib.use(" in path.read_text()]
    assert not callers, callers
