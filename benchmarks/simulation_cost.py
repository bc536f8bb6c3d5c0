"""Cost of SNN simulation against the QANN it came from, measured in one run.

For each model and T: the time of one SNN forward on a batch of B images, as a ratio to
T × (QANN forward on B images) — the goal is close to 1, i.e. simulation costs no more than T dense
passes — and to one QANN forward on T·B images (the same dense work in one call). On CUDA also the
peak memory of the SNN forward as a ratio to the QANN's at T·B.

    python benchmarks/simulation_cost.py                   # CPU, records results/simulation_cost_cpu.json
    python benchmarks/simulation_cost.py --device cuda

Timings use torch.utils.benchmark (warm-up, CUDA synchronisation, adaptive repeats); absolute
times vary between machines, so compare the ratios, which come from the same run.
"""

import argparse
import json
import platform
from pathlib import Path

import torch
from torch.utils import benchmark

import fastsnn
from fastsnn.models import create_model

CASES = [("vgg11", 0.25, 1, 28), ("resnet20", 1.0, 3, 32), ("vgg16", 0.5, 3, 32)]


def median_seconds(fn, min_run_time: float) -> float:
    return benchmark.Timer(stmt="fn()", globals={"fn": fn}).blocked_autorange(min_run_time=min_run_time).median


def peak_memory(fn, device) -> int | None:
    if device.type != "cuda":
        return None
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated()


@torch.no_grad()
def measure(name, width, channels, size, T, batch, device, min_run_time):
    bits = {3: 2, 7: 3, 15: 4}[T]
    qann = (
        fastsnn.quantize(create_model(name, num_classes=10, in_channels=channels, width=width), bits).to(device).eval()
    )
    snn = fastsnn.convert(qann, signed=True)
    unsigned = fastsnn.convert(qann, signed=False)
    x = torch.randn(batch, channels, size, size, device=device)
    x_folded = torch.randn(T * batch, channels, size, size, device=device)
    qann_time = median_seconds(lambda: qann(x), min_run_time)
    folded_time = median_seconds(lambda: qann(x_folded), min_run_time)
    snn_time = median_seconds(lambda: snn(x), min_run_time)
    unsigned_time = median_seconds(lambda: unsigned(x), min_run_time)
    snn_memory, folded_memory = peak_memory(lambda: snn(x), device), peak_memory(lambda: qann(x_folded), device)
    return {
        "model": name,
        "width": width,
        "input": [channels, size, size],
        "T": T,
        "batch": batch,
        "qann_ms": 1e3 * qann_time,
        "snn_signed_ms": 1e3 * snn_time,
        "snn_unsigned_ms": 1e3 * unsigned_time,
        "signed_vs_T_qann": snn_time / (T * qann_time),
        "unsigned_vs_T_qann": unsigned_time / (T * qann_time),
        "signed_vs_qann_on_TxB": snn_time / folded_time,
        "peak_memory_vs_qann_on_TxB": snn_memory / folded_memory if snn_memory else None,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--time-steps", type=int, nargs="+", default=[3, 7, 15])
    parser.add_argument("--min-run-time", type=float, default=1.0, help="seconds of repeats per timing")
    parser.add_argument("--out", type=Path, help="JSON file (default benchmarks/results/simulation_cost_<device>.json)")
    args = parser.parse_args()
    device = torch.device(args.device)
    rows = []
    header = (
        f"{'model':10} {'T':>3} {'QANN ms':>9} {'SNN ms':>9} {'SNN/(T·QANN)':>13} {'unsigned/(T·QANN)':>18} "
        f"{'SNN/QANN(T·B)':>14} {'mem SNN/QANN(T·B)':>18}"
    )
    print(header)
    for name, width, channels, size in CASES:
        for T in args.time_steps:
            row = measure(name, width, channels, size, T, args.batch, device, args.min_run_time)
            rows.append(row)
            memory = f"{row['peak_memory_vs_qann_on_TxB']:.2f}" if row["peak_memory_vs_qann_on_TxB"] else "n/a"
            print(
                f"{name:10} {T:>3} {row['qann_ms']:>9.2f} {row['snn_signed_ms']:>9.2f} "
                f"{row['signed_vs_T_qann']:>13.2f} {row['unsigned_vs_T_qann']:>18.2f} "
                f"{row['signed_vs_qann_on_TxB']:>14.2f} {memory:>18}"
            )
    environment = {
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "batch": args.batch,
    }
    out = args.out or Path(__file__).parent / "results" / f"simulation_cost_{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"environment": environment, "rows": rows}, indent=2) + "\n")
    print(f"recorded in {out}")


if __name__ == "__main__":
    main()
