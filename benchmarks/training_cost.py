"""Cost of quantization-aware training against float training, measured in one run.

One SGD step (forward, backward, update) on a batch, float ANN vs its b-bit QANN (and with
per-channel 4-bit weights), as a ratio: the QANN's epoch costs this multiple of a float epoch.

    python benchmarks/training_cost.py                 # records results/training_cost_cpu.json
    python benchmarks/training_cost.py --device cuda
"""

import argparse
from pathlib import Path

import torch
from torch.utils import benchmark

import fastsnn
from fastsnn.models import create_model
from harness import environment, write_json

CASES = [("vgg11", 0.25, 1, 28), ("resnet20", 1.0, 3, 32)]


def step_seconds(model, x, labels, min_run_time):
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), labels).backward()
        optimizer.step()

    return benchmark.Timer(stmt="step()", globals={"step": step}).blocked_autorange(min_run_time=min_run_time).median


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--bits", type=int, default=2)
    parser.add_argument("--min-run-time", type=float, default=2.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    device = torch.device(args.device)
    rows = []
    print(f"{'model':10} {'float ms':>9} {'QANN ms':>9} {'QANN/float':>11} {'QANN+W4/float':>14}")
    for name, width, channels, size in CASES:
        ann = create_model(name, num_classes=10, in_channels=channels, width=width).to(device).train()
        qann = fastsnn.quantize(ann, args.bits).train()
        qann_w4 = fastsnn.quantize(ann, args.bits, weight_bits=4).train()
        x = torch.randn(args.batch, channels, size, size, device=device)
        labels = torch.randint(0, 10, (args.batch,), device=device)
        times = {
            key: step_seconds(model, x, labels, args.min_run_time)
            for key, model in (("float", ann), ("qann", qann), ("qann_w4", qann_w4))
        }
        row = {
            "model": name,
            "width": width,
            "batch": args.batch,
            "bits": args.bits,
            **{f"{key}_ms": 1e3 * value for key, value in times.items()},
            "qann_vs_float": times["qann"] / times["float"],
            "qann_w4_vs_float": times["qann_w4"] / times["float"],
        }
        rows.append(row)
        print(
            f"{name:10} {row['float_ms']:>9.1f} {row['qann_ms']:>9.1f} {row['qann_vs_float']:>11.2f} "
            f"{row['qann_w4_vs_float']:>14.2f}"
        )
    out = args.out or Path(__file__).parent / "results" / f"training_cost_{device.type}.json"
    write_json(out, {"environment": environment(device), "rows": rows})
    print(f"recorded in {out}")


if __name__ == "__main__":
    main()
