"""Is there an exact integer path faster than float32 convolution for the integer SNN on CPU? Measured, one run.

A spiking layer multiplies spikes in {-1, 0, 1} by int8 weights, so ``torch._int_mm`` (int8 x int8 -> int32, exact)
applies once the convolution is a matrix product: 3x3 convolutions through ``F.unfold`` (im2col), 1x1
convolutions through a channels-last view. For each layer shape (time steps folded into the batch, as the
network runs them): the float32 convolution that :class:`fastsnn.integer.IntegerNetwork` uses (exact while sums
stay below 2^24), the int8 route end to end, and its matrix product alone, each checked equal to the float one.

    python benchmarks/int8_conv.py        # records benchmarks/results/int8_conv_cpu.json
"""

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils import benchmark

from harness import environment, write_json

# (rows T*B, in channels, size, out channels, kernel): VGG-11 x0.25 and YOLO / DeepLab layers at T = 3, B = 100
SHAPES = [(300, 32, 14, 32, 3), (300, 64, 7, 64, 3), (300, 128, 4, 128, 3), (300, 64, 8, 256, 1), (300, 256, 4, 64, 1)]


def median_ms(fn, min_run_time: float) -> float:
    return 1e3 * benchmark.Timer(stmt="fn()", globals={"fn": fn}).blocked_autorange(min_run_time=min_run_time).median


def measure(rows: int, channels: int, size: int, out: int, kernel: int, min_run_time: float) -> dict:
    spikes = torch.randint(-1, 2, (rows, channels, size, size)).float()
    weight = torch.randint(-127, 128, (out, channels, kernel, kernel)).float()
    matrix = weight.to(torch.int8).reshape(out, -1).t().contiguous()  # [C*k*k, O]
    padding = kernel // 2

    def columns() -> torch.Tensor:  # [rows*H*W, C*k*k] int8
        if kernel == 1:
            return spikes.to(torch.int8).permute(0, 2, 3, 1).reshape(-1, channels)
        return (
            F.unfold(spikes, kernel, padding=padding).to(torch.int8).transpose(1, 2).reshape(-1, channels * kernel**2)
        )

    def int8_route() -> torch.Tensor:
        products = torch._int_mm(columns(), matrix)  # [rows*H*W, O] int32
        return products.reshape(rows, size, size, out).permute(0, 3, 1, 2)

    ready = columns().contiguous()
    float32 = F.conv2d(spikes, weight, padding=padding)
    ms = {
        "float32_conv": median_ms(lambda: F.conv2d(spikes, weight, padding=padding), min_run_time),
        "int8_route": median_ms(int8_route, min_run_time),
        "int8_matmul_only": median_ms(lambda: torch._int_mm(ready, matrix), min_run_time),
    }
    return {
        "rows": rows,
        "in_channels": channels,
        "size": size,
        "out_channels": out,
        "kernel": kernel,
        "exact": bool(torch.equal(int8_route().float(), float32)),
        "ms": ms,
        "int8_route_vs_float32": ms["int8_route"] / ms["float32_conv"],
        "matmul_only_vs_float32": ms["int8_matmul_only"] / ms["float32_conv"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-run-time", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "int8_conv_cpu.json")
    args = parser.parse_args()
    print(f"{'layer':>28} {'exact':>6} {'fp32 ms':>8} {'int8 ms':>8} {'ratio':>6} {'matmul only':>12}")
    rows = []
    for shape in SHAPES:
        rows.append(measure(*shape, args.min_run_time))
        row = rows[-1]
        print(
            f"{str(shape):>28} {row['exact']!s:>6} {row['ms']['float32_conv']:>8.1f} {row['ms']['int8_route']:>8.1f} "
            f"{row['int8_route_vs_float32']:>6.2f} {row['matmul_only_vs_float32']:>12.2f}"
        )
    write_json(args.out, {"environment": environment(torch.device("cpu")), "rows": rows})
    print(f"recorded in {args.out}")


if __name__ == "__main__":
    main()
