"""Which torchvision classification models fastsnn converts as they are, and why the others not.

For every builder of ``torchvision.models.list_models(module=torchvision.models)``: build it as shipped
(``fastsnn.models.create_model("torchvision:NAME", stem="imagenet", width=1)``, no weights), quantize it to 2
bits, convert it (T = 3), and simulate one 224 px image (299 px for inception_v3); a model refused at any step
gets the first line of the refusal. Recorded per model: parameters, quantized activations (one per ReLU call
site), max-pools converted to spiking max-pools, and the outcome.

    python benchmarks/zoo_survey.py        # ~3 min on 2 cores; writes results/zoo_survey.{json,md}
"""

import argparse
import time
from pathlib import Path

import torch
import torchvision

from fastsnn import QuantReLU, convert, quantize
from fastsnn.errors import FastSNNError
from fastsnn.models import create_model
from fastsnn.neuron import SpikingMaxPool
from harness import environment, write_json

HERE = Path(__file__).parent
INPUT_SIZE = {"inception_v3": 299}  # the one builder that needs more than 224 px


def survey(name: str) -> dict:
    """Build, quantize, convert and simulate ``torchvision:name``; what happened at each step."""
    row = {"model": name, "parameters": None, "activations": None, "max_pools": None, "converts": False}
    try:
        model = create_model(f"torchvision:{name}", num_classes=10, in_channels=3, width=1.0, stem="imagenet")
        row["parameters"] = sum(p.numel() for p in model.parameters())
        qann = quantize(model, 2)
        row["activations"] = sum(isinstance(m, QuantReLU) for m in qann.modules())
        snn = convert(qann)
        row["max_pools"] = sum(isinstance(m, SpikingMaxPool) for m in snn.modules())
        size = INPUT_SIZE.get(name, 224)
        with torch.no_grad():
            output = snn(torch.randn(1, 3, size, size))
        row["converts"] = tuple(output.shape) == (1, 10)
        row["reason"] = None if row["converts"] else f"output shape {tuple(output.shape)}"
    except (FastSNNError, RuntimeError, ValueError, TypeError) as error:
        row["reason"] = " ".join(str(error).split())[:300]
    return row


def markdown(results: dict) -> str:
    lines = [
        "| model | parameters (M) | converts | quantized activations | spiking max-pools | why not |",
        "|---|---|---|---|---|---|",
    ]
    for row in results["runs"]:
        params = "–" if row["parameters"] is None else f"{row['parameters'] / 1e6:.1f}"
        lines.append(
            f"| {row['model']} | {params} | {'yes' if row['converts'] else 'no'} | {row['activations'] or '–'} "
            f"| {row['max_pools'] if row['max_pools'] is not None else '–'} | {row.get('reason') or ''} |"
        )
    converted = sum(row["converts"] for row in results["runs"])
    lines += [
        "",
        f"{converted} of {len(results['runs'])} torchvision {results['torchvision']} classification builders "
        "convert as shipped (no weights, 10 classes, quantized to 2 bits, T = 3, one image simulated). "
        f"{results['environment']['device']}, wall time {results['wall_seconds'] / 60:.1f} min.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", help="only these builders (default: all)")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "zoo_survey.json")
    parser.add_argument("--markdown", type=Path, default=HERE / "results" / "zoo_survey.md")
    args = parser.parse_args()
    started = time.perf_counter()
    names = args.models or torchvision.models.list_models(module=torchvision.models)
    runs = []
    for name in names:
        runs.append(survey(name))
        print(runs[-1], flush=True)
    results = {
        "torchvision": torchvision.__version__,
        "environment": environment("cpu"),
        "runs": runs,
        "wall_seconds": time.perf_counter() - started,
    }
    write_json(args.json, results)
    text = markdown(results)
    args.markdown.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
