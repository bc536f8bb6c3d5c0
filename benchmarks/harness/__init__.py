"""What the benchmark scripts share: the environment record, the results file (resume, atomic writes) and
the SpikingJelly peer (import, conversion, simulation)."""

from .environment import environment
from .results import ResultsFile, read_results, render, settings_of, write_json
from .spikingjelly_runner import RECIPES, SpikingJelly, find_spikingjelly, require_spikingjelly

__all__ = [
    "RECIPES",
    "ResultsFile",
    "SpikingJelly",
    "environment",
    "find_spikingjelly",
    "read_results",
    "render",
    "require_spikingjelly",
    "settings_of",
    "write_json",
]
