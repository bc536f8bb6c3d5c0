"""Cost of SNN simulation against the QANN it came from and against SpikingJelly, measured in one run.

For each model, batch B and T: the time of one signed (and unsigned) SNN forward on B images, as a ratio
to T × (QANN forward on B images), i.e. T dense passes, and to one QANN forward on T·B images (the same
dense work in one call); the time per simulated step (does it grow with T?); the integer network of the
signed SNN (``fastsnn.integer``, 8-bit weights) against it; and, when SpikingJelly
2.0.0 is installed, the same float network converted by SpikingJelly (``ann2snn.Converter``, max-rate
recipe calibrated on random images: the cost does not depend on the thresholds) simulated in its
single-step mode (a Python loop over T) and its multi-step mode, with fastsnn's speed-up over the
faster of the two. On CUDA also the peak memory of the SNN forward as a ratio to the QANN's at T·B.

    python benchmarks/simulation_cost.py                   # CPU, records results/simulation_cost_cpu.json
    python benchmarks/simulation_cost.py --device cuda

T sweeps ``--time-steps`` at batch ``--sweep-batch`` and 3, 15, 63 at the other batches. Installing
SpikingJelly: see benchmarks/spikingjelly_compare.py (``--no-spikingjelly`` skips it). Timings use
torch.utils.benchmark (warm-up, CUDA synchronisation, adaptive repeats, median); absolute times vary
between machines, so compare the ratios, which come from the same run.
"""

import argparse
from pathlib import Path

import torch
from torch.utils import benchmark
from torch.utils.data import DataLoader, TensorDataset

import fastsnn
from fastsnn.integer import integerize
from fastsnn.models import create_model
from harness import SpikingJelly, environment, find_spikingjelly, write_json

CASES = [("vgg11", 0.25, 1, 28), ("resnet20", 1.0, 3, 32), ("vgg16", 0.5, 3, 32)]
CORNER_STEPS = (3, 15, 63)  # the T measured at every batch size


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


def spikingjelly_contenders(float_model, x, T, sj: SpikingJelly, device) -> dict:
    """SpikingJelly's single-step and multi-step simulations of ``float_model`` on ``x`` for T steps."""
    calibration = DataLoader(TensorDataset(torch.randn(64, *x.shape[1:])), batch_size=32)
    single = sj.convert(float_model, "RateCoding max", calibration).to(device)
    multi = sj.multi_step_copy(single)
    return {
        "spikingjelly_single_step": lambda: sj.single_step(single, x, T),
        "spikingjelly_multi_step": lambda: sj.multi_step(multi, x, T),
    }


@torch.no_grad()
def measure(case, T, batch, device, min_run_time, sj):
    name, width, channels, size = case
    bits = {3: 2, 7: 3, 15: 4}.get(T, 2)  # the cost depends on T and the architecture, not on b
    float_model = create_model(name, num_classes=10, in_channels=channels, width=width).to(device).eval()
    qann = fastsnn.quantize(float_model, bits).eval()
    snn = fastsnn.convert(qann, signed=True, T=T)
    unsigned = fastsnn.convert(qann, signed=False, T=T)
    integer = integerize(snn, input_shape=(channels, size, size)).to(device)
    x = torch.randn(batch, channels, size, size, device=device)
    x_folded = torch.randn(T * batch, channels, size, size, device=device)
    contenders = {
        "qann": lambda: qann(x),
        "qann_on_TxB": lambda: qann(x_folded),
        "snn_signed": lambda: snn(x),
        "snn_unsigned": lambda: unsigned(x),
        "integer_snn": lambda: integer(x),
    }
    if sj is not None:
        contenders |= spikingjelly_contenders(float_model, x, T, sj, device)
    ms = {key: 1e3 * median_seconds(fn, min_run_time) for key, fn in contenders.items()}
    snn_memory, folded_memory = peak_memory(lambda: snn(x), device), peak_memory(lambda: qann(x_folded), device)
    row = {
        "model": name,
        "width": width,
        "input": [channels, size, size],
        "T": T,
        "batch": batch,
        "ms": ms,
        "snn_ms_per_step": ms["snn_signed"] / T,
        "signed_vs_T_qann": ms["snn_signed"] / (T * ms["qann"]),
        "unsigned_vs_T_qann": ms["snn_unsigned"] / (T * ms["qann"]),
        "signed_vs_qann_on_TxB": ms["snn_signed"] / ms["qann_on_TxB"],
        "integer_vs_signed": ms["integer_snn"] / ms["snn_signed"],
        "integer_wide_ops": integer.wide_ops,
        "peak_memory_vs_qann_on_TxB": snn_memory / folded_memory if snn_memory else None,
    }
    if sj is not None:
        faster = min(("spikingjelly_single_step", "spikingjelly_multi_step"), key=ms.__getitem__)
        row |= {"faster_spikingjelly_mode": faster, "speedup_vs_spikingjelly": ms[faster] / ms["snn_signed"]}
    return row


def format_row(row: dict) -> str:
    ms = row["ms"]
    sj = (
        f"{ms['spikingjelly_single_step']:>10.1f} {ms['spikingjelly_multi_step']:>10.1f} "
        f"{row['speedup_vs_spikingjelly']:>9.2f}"
        if "speedup_vs_spikingjelly" in row
        else ""
    )
    return (
        f"{row['model']:9} {row['batch']:>5} {row['T']:>3} {ms['snn_signed']:>10.1f} {row['snn_ms_per_step']:>9.1f} "
        f"{row['signed_vs_T_qann']:>8.2f} {row['unsigned_vs_T_qann']:>9.2f} {row['signed_vs_qann_on_TxB']:>9.2f} "
        f"{row['integer_vs_signed']:>8.2f} {sj}"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batches", type=int, nargs="+", default=[32, 100, 500])
    parser.add_argument("--time-steps", type=int, nargs="+", default=[3, 7, 15, 31, 63])
    parser.add_argument("--sweep-batch", type=int, default=100, help="the batch at which every T is measured")
    parser.add_argument("--models", nargs="+", default=[case[0] for case in CASES], choices=[c[0] for c in CASES])
    parser.add_argument("--min-run-time", type=float, default=1.0, help="seconds of repeats per timing")
    parser.add_argument("--no-spikingjelly", action="store_true", help="skip SpikingJelly even if installed")
    parser.add_argument("--out", type=Path, help="JSON file (default benchmarks/results/simulation_cost_<device>.json)")
    args = parser.parse_args()
    device = torch.device(args.device)
    sj = None if args.no_spikingjelly else find_spikingjelly(skipped="SpikingJelly columns")
    out = args.out or Path(__file__).parent / "results" / f"simulation_cost_{device.type}.json"
    setup = environment(device, spikingjelly=None if sj is None else sj.version)
    print(
        f"{'model':9} {'batch':>5} {'T':>3} {'SNN ms':>10} {'ms/step':>9} {'/(T·QANN)':>8} {'unsigned':>9} "
        f"{'/QANN(TB)':>9} {'int/SNN':>8} {'SJ single':>10} {'SJ multi':>10} {'speed-up':>9}"
    )
    rows = []
    for case in (case for case in CASES if case[0] in args.models):
        for batch in args.batches:
            for T in args.time_steps:
                if batch != args.sweep_batch and T not in CORNER_STEPS:
                    continue
                rows.append(measure(case, T, batch, device, args.min_run_time, sj))
                print(format_row(rows[-1]), flush=True)
                write_json(out, {"environment": setup, "rows": rows})
    print(f"recorded in {out}")


if __name__ == "__main__":
    main()
