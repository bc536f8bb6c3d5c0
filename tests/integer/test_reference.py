"""The NumPy reference of integer SNN files: every op exactly as torch / fastsnn computes it, refusals, no torch."""

import ast
import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.numpy import save_file
from safetensors.torch import save_file as torch_save_file
from torch import nn

import fastsnn.integer.reference as reference
from fastsnn.integer.reference import DIGEST_KEY, GRAPH_KEY, MAX_INT32, IntegerFileError, digest, simulate
from fastsnn.neuron import SpikingMaxPool, if_scan

SEEDS = range(4)


def node(name: str, kind: str, inputs: list, shape, *, timed: bool = False, **attrs) -> dict:
    """One op of a hand-built graph; its bound is the loosest valid one."""
    return dict(name=name, op=kind, inputs=inputs, shape=list(shape), timed=timed, bound=MAX_INT32, attrs=attrs)


def image_op(shape, *, bits: int = 8, scale: float = 1.0) -> dict:
    return node("x", "input", [], shape, bits=bits, scale=scale)


def neuron_op(name: str, source: dict, *, signed: bool) -> dict:
    return node(name, "neuron", [source["name"]], source["shape"], timed=True, signed=signed, membrane_bound=MAX_INT32)


def graph_of(ops: list, *, T: int = 3, weight_bits: int = 8, outputs=None) -> dict:
    """A graph of ``ops``; an output op "out" of the last one is added unless ``outputs`` are given."""
    if outputs is None:
        ops, outputs = [*ops, node("out", "output", [ops[-1]["name"]], ops[-1]["shape"])], ["out"]
    return dict(
        format="fastsnn-integer-snn", version=1, T=T, weight_bits=weight_bits, ops=ops, outputs=outputs,
        output_structure="tensor" if len(outputs) == 1 else "tuple", about={"test": True},
    )  # fmt: skip


def write(path: Path, ops: list, tensors: dict, *, T: int = 3, weight_bits: int = 8, outputs=None) -> Path:
    """Writes a file of ``ops`` (an output op of scale 1 is added after the last one unless ``outputs`` are given)."""
    if outputs is None:
        tensors = {**tensors, "out.scale": np.ones(ops[-1]["shape"][0], np.float32)}
    text = json.dumps(graph_of(ops, T=T, weight_bits=weight_bits, outputs=outputs))
    save_file(tensors, path, metadata={GRAPH_KEY: text, DIGEST_KEY: digest(text, tensors)})
    return path


def integers(rng: np.random.Generator, shape, most: int, dtype=np.int64) -> np.ndarray:
    return rng.integers(-most, most + 1, size=shape).astype(dtype)


def values_of(tmp_path: Path, ops: list, tensors: dict, images: np.ndarray, **graph) -> dict:
    """Integer results of every op, as torch float64 tensors ``[S, B, *shape]``."""
    _, values = simulate(write(tmp_path / "net.safetensors", ops, tensors, **graph), images, record=True)
    assert all(value.dtype == np.int64 for value in values.values())
    return {name: torch.from_numpy(value).double() for name, value in values.items()}


def integer_images(rng: np.random.Generator, shape, batch: int = 2, most: int = 127) -> np.ndarray:
    """Whole-number images: with scale 1 the input op passes them unchanged."""
    return integers(rng, (batch, *shape), most, np.float32)


# ---- the reference runs without torch ----
def test_runs_in_a_python_without_torch(tmp_path):
    rng = np.random.default_rng(0)
    x = image_op([3, 4, 4])
    conv = node("conv", "conv2d", ["x"], [2, 4, 4], stride=[1, 1], padding=[1, 1], dilation=[1, 1], groups=1)
    tensors = {"conv.weight": integers(rng, (2, 3, 3, 3), 127, np.int8), "conv.bias": np.zeros(2, np.int32)}
    path = write(tmp_path / "net.safetensors", [x, conv], tensors)
    images = integer_images(rng, [3, 4, 4])
    np.save(tmp_path / "images.npy", images)
    script = f"""
import importlib.abc, importlib.util, sys
import numpy as np
attempts = []
class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "fastsnn"):
            attempts.append(name)
            raise ImportError(name)
sys.meta_path.insert(0, NoTorch())
spec = importlib.util.spec_from_file_location("reference", {str(Path(reference.__file__))!r})
module = importlib.util.module_from_spec(spec)
sys.modules["reference"] = module
spec.loader.exec_module(module)
out = module.simulate({str(path)!r}, np.load({str(tmp_path / "images.npy")!r}))
np.save({str(tmp_path / "out.npy")!r}, out)
assert not attempts and "torch" not in sys.modules, attempts
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), simulate(path, images))
    tree = ast.parse(Path(reference.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "." for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported and not any(name.split(".")[0] in ("torch", "fastsnn", "") for name in imported), imported


# ---- each op against torch, exactly ----
@pytest.mark.parametrize("scale", [0.5, 0.25])
def test_input_rounds_half_up_and_clips_at_q(tmp_path, scale):
    quotients = np.array([2.5, -2.5, 0.4, -0.6, 7.0, 7.5, 40.0, -7.5, -40.0], np.float32)  # bits 4: Q = 7
    images = (quotients * np.float32(scale))[None, :]
    out, values = simulate(
        write(tmp_path / "net.safetensors", [image_op([9], bits=4, scale=scale)], {}), images, record=True
    )
    expected = [3, -2, 0, -1, 7, 7, 7, -7, -7]
    np.testing.assert_array_equal(values["x"], np.array(expected)[None, None])
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.array(expected, np.float32)[None])


@pytest.mark.parametrize("weight_bits", [4, 8, 12])
@pytest.mark.parametrize("seed", SEEDS)
def test_conv2d_is_torch_conv2d(tmp_path, seed, weight_bits):
    rng = np.random.default_rng(seed)
    groups, (kh, kw) = int(rng.choice([1, 2])), rng.integers(1, 4, 2)
    stride, padding, dilation = ([int(v) for v in rng.integers(low, high, 2)] for low, high in [(1, 3), (0, 3), (1, 3)])
    C, K, H, W = 2 * groups, 3 * groups, int(rng.integers(6, 10)), int(rng.integers(6, 10))
    dtype, most = (np.int8 if weight_bits <= 8 else np.int16), 2 ** (weight_bits - 1) - 1
    weight, bias = integers(rng, (K, C // groups, kh, kw), most, dtype), integers(rng, (K,), 1000, np.int32)
    images = integer_images(rng, [C, H, W])
    expected = F.conv2d(
        torch.from_numpy(images).double(), torch.from_numpy(weight).double(), torch.from_numpy(bias).double(),
        stride=stride, padding=padding, dilation=dilation, groups=groups,
    )  # fmt: skip
    conv = node(
        "conv", "conv2d", ["x"], expected.shape[1:], stride=stride, padding=padding, dilation=dilation, groups=groups
    )
    values = values_of(
        tmp_path,
        [image_op([C, H, W]), conv],
        {"conv.weight": weight, "conv.bias": bias},
        images,
        weight_bits=weight_bits,
    )
    assert torch.equal(values["conv"][0], expected)


@pytest.mark.parametrize("seed", SEEDS)
def test_flatten_and_linear_are_torch_flatten_and_linear(tmp_path, seed):
    rng = np.random.default_rng(seed)
    shape, K = [int(n) for n in rng.integers(1, 5, 3)], int(rng.integers(1, 8))
    weight, bias = integers(rng, (K, int(np.prod(shape))), 127, np.int8), integers(rng, (K,), 1000, np.int32)
    images = integer_images(rng, shape, batch=3)
    ops = [image_op(shape), node("flat", "flatten", ["x"], [int(np.prod(shape))]), node("fc", "linear", ["flat"], [K])]
    values = values_of(tmp_path, ops, {"fc.weight": weight, "fc.bias": bias}, images)
    x = torch.from_numpy(images).double()
    assert torch.equal(values["flat"][0], x.flatten(1))
    assert torch.equal(
        values["fc"][0], F.linear(x.flatten(1), torch.from_numpy(weight).double(), torch.from_numpy(bias).double())
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_scale_multiplies_and_shifts_each_channel(tmp_path, seed):
    rng = np.random.default_rng(seed)
    shape = [3, 4, 5]
    factor, bias = integers(rng, (3,), 50, np.int32), integers(rng, (3,), 1000, np.int32)
    images = integer_images(rng, shape)
    values = values_of(
        tmp_path, [image_op(shape), node("bn", "scale", ["x"], shape)], {"bn.factor": factor, "bn.bias": bias}, images
    )
    f, b = (torch.from_numpy(v).double()[:, None, None] for v in (factor, bias))
    assert torch.equal(values["bn"][0], torch.from_numpy(images).double() * f + b)


def thresholds(rng: np.random.Generator, channels: int, most: int = 40) -> np.ndarray:
    """Even thresholds in 2..2*most."""
    return (2 * rng.integers(1, most + 1, channels)).astype(np.int32)


@pytest.mark.parametrize("T", [3, 7, 15])
@pytest.mark.parametrize("signed", [False, True])
def test_neuron_is_if_scan_for_a_static_and_a_timed_input(tmp_path, T, signed):
    retracted = 0
    for seed in SEEDS:
        rng = np.random.default_rng(seed + 100 * T)
        shape = [4, 3, 3]
        x = image_op(shape)
        first, bn = neuron_op("n1", x, signed=signed), node("bn", "scale", ["n1"], shape, timed=True)
        second = neuron_op("n2", bn, signed=signed)
        tensors = {
            "n1.threshold": thresholds(rng, 4), "n2.threshold": thresholds(rng, 4),
            "bn.factor": integers(rng, (4,), 60, np.int32), "bn.bias": integers(rng, (4,), 30, np.int32),
        }  # fmt: skip
        values = values_of(tmp_path, [x, first, bn, second], tensors, integer_images(rng, shape, most=60), T=T)
        for name, current in [("n1", values["x"].expand(T, -1, -1, -1, -1)), ("n2", values["bn"])]:
            theta = torch.from_numpy(tensors[f"{name}.threshold"]).double()[:, None, None]
            assert torch.equal(values[name], if_scan(current, theta, signed=signed))
        assert values["n1"].abs().sum() > 0 and values["n2"].abs().sum() > 0
        retracted += int((values["n2"] < 0).sum())
    assert (retracted > 0) == signed


def spiking_input(rng: np.random.Generator, shape, *, signed: bool) -> tuple[list, dict, np.ndarray]:
    """ops input -> neuron -> scale -> neuron "n" (timed spikes, their counts never below 0), tensors, images."""
    C = shape[0]
    ops = [image_op(shape)]
    ops.append(neuron_op("n0", ops[-1], signed=False))
    ops.append(node("bn", "scale", ["n0"], shape, timed=True))
    ops.append(neuron_op("n", ops[-1], signed=signed))
    tensors = {
        "n0.threshold": thresholds(rng, C, 8), "n.threshold": thresholds(rng, C, 5),
        "bn.factor": rng.integers(4, 13, C).astype(np.int32), "bn.bias": rng.integers(-4, 0, C).astype(np.int32),
    }  # fmt: skip  # a current that rises while n0 spikes and falls while it does not: "n" takes spikes back
    return ops, tensors, integer_images(rng, shape, most=20)


POOLS = [  # kernel, stride, padding, dilation, ceil_mode
    ([2, 2], [2, 2], [0, 0], [1, 1], False),
    ([3, 3], [2, 2], [1, 1], [1, 1], True),
    ([3, 2], [1, 2], [1, 0], [1, 1], True),
    ([2, 2], [1, 1], [0, 0], [2, 2], False),
    ([3, 3], [2, 2], [1, 1], [2, 1], True),
    ([2, 3], [3, 2], [1, 1], [1, 2], True),
    ([2, 2], [2, 2], [1, 1], [1, 1], True),  # odd sizes: ceil gives a window that starts in the right padding
]


@pytest.mark.parametrize("T", [3, 7])
@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("pool", POOLS)
def test_max_pool_is_spiking_max_pool(tmp_path, pool, signed, T):
    kernel, stride, padding, dilation, ceil_mode = pool
    torch_pool = nn.MaxPool2d(kernel, stride, padding, dilation, ceil_mode=ceil_mode)
    retracted = 0
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        shape = [3, 5 + seed, 9 - seed]  # odd and even sizes
        ops, tensors, images = spiking_input(rng, shape, signed=signed)
        out_shape = torch_pool(torch.zeros(1, *shape)).shape[1:]
        attrs = dict(kernel=kernel, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
        ops.append(node("pool", "max_pool", ["n"], out_shape, timed=True, **attrs))
        values = values_of(tmp_path, ops, tensors, images, T=T)
        spikes = values["n"]
        assert (spikes.cumsum(0) >= 0).all()
        retracted += int((spikes < 0).sum())
        expected = SpikingMaxPool(torch_pool, T)(spikes.flatten(0, 1)).reshape(T, *spikes.shape[1:2], *out_shape)
        assert torch.equal(values["pool"], expected)
    assert (retracted > 0) == signed


def sum_pool_expected(x: torch.Tensor, multiplier: np.ndarray, kernel, stride, padding, ceil_mode) -> torch.Tensor:
    """The torch equivalent of sum_pool: an average pool without divisor, times the multipliers."""
    summed = F.avg_pool2d(x, kernel, stride, padding, ceil_mode, divisor_override=1)
    return summed * torch.from_numpy(multiplier).to(x.dtype)


@pytest.mark.parametrize("ceil_mode", [False, True])
def test_sum_pool_is_avg_pool_without_divisor_times_the_multipliers(tmp_path, ceil_mode):
    grown = 0  # cases where ceil mode adds a window
    for seed in range(8):
        rng = np.random.default_rng(seed)
        kernel = [int(k) for k in rng.integers(1, 4, 2)]
        stride, padding = [int(s) for s in rng.integers(1, 4, 2)], [int(rng.integers(0, k // 2 + 1)) for k in kernel]
        shape = [2, int(rng.integers(4, 10)), int(rng.integers(4, 10))]
        images = integer_images(rng, shape)
        x = torch.from_numpy(images).double()
        out_shape = F.avg_pool2d(x, kernel, stride, padding, ceil_mode).shape[1:]
        multiplier = rng.integers(1, 5, out_shape[1:]).astype(np.int32)
        expected = sum_pool_expected(x, multiplier, kernel, stride, padding, ceil_mode)
        attrs = dict(kernel=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode)
        ops = [image_op(shape), node("pool", "sum_pool", ["x"], out_shape, **attrs)]
        assert torch.equal(values_of(tmp_path, ops, {"pool.multiplier": multiplier}, images)["pool"][0], expected)
        grown += out_shape != F.avg_pool2d(x, kernel, stride, padding).shape[1:]
    assert (grown > 0) == ceil_mode


def check_pool(kind: str, shape, n: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool):
    """reference.check of a [1, n, n] input pooled by ``kind`` into the recorded ``shape`` (one window on both axes)."""
    window = dict(kernel=[kernel] * 2, stride=[stride] * 2, padding=[padding] * 2, ceil_mode=ceil_mode)
    ops, tensors = [image_op([1, n, n])], {"out.scale": np.ones(1, np.float32)}
    if kind == "max_pool":
        ops.append(neuron_op("n", ops[0], signed=False))
        ops.append(node("pool", kind, ["n"], shape, timed=True, dilation=[dilation] * 2, **window))
        tensors["n.threshold"] = np.full(1, 2, np.int32)
    else:
        ops.append(node("pool", kind, ["x"], shape, **window))
        tensors["pool.multiplier"] = np.ones(shape[1:], np.int32)
    reference.check(graph_of(ops), tensors)


def test_a_1x1_input_pooled_2x2_stride_2_in_ceil_mode_gives_1x1_as_in_torch(tmp_path):
    rng = np.random.default_rng(0)
    shape, multiplier, T = [3, 1, 1], np.array([[3]], np.int32), 5
    ops, tensors, images = spiking_input(rng, shape, signed=True)
    window = dict(kernel=[2, 2], stride=[2, 2], padding=[0, 0])
    ops.append(node("max", "max_pool", ["n"], shape, timed=True, dilation=[1, 1], ceil_mode=True, **window))
    ops.append(node("sum", "sum_pool", ["x"], shape, ceil_mode=True, **window))
    values = values_of(tmp_path, ops, {**tensors, "sum.multiplier": multiplier}, images, T=T)
    spikes, torch_pool = values["n"], nn.MaxPool2d(2, 2, ceil_mode=True)
    assert spikes.abs().sum() > 0
    expected = SpikingMaxPool(torch_pool, T)(spikes.flatten(0, 1)).reshape(spikes.shape)
    assert torch.equal(values["max"], expected) and torch.equal(values["max"], spikes)
    assert torch.equal(values["sum"][0], sum_pool_expected(values["x"][0], multiplier, 2, 2, 0, True))
    for kind in ("max_pool", "sum_pool"):  # without ceil mode no window fits, in torch as here
        with pytest.raises(ValueError, match="the window does not fit an input of size 1"):
            check_pool(kind, [1, 1, 1], 1, 2, 2, 0, 1, False)
    with pytest.raises(RuntimeError):
        F.avg_pool2d(torch.zeros(1, 1, 1, 1), 2, 2)


@pytest.mark.parametrize("kind", ["max_pool", "sum_pool"])
def test_pooled_sizes_are_torchs_for_every_small_window(kind):
    """Output sizes and refusals as torch's, over small inputs, windows, strides, paddings, dilations, ceil modes."""
    sizes = 0
    for n, kernel, stride, dilation, ceil_mode in itertools.product(range(1, 7), [1, 2, 3], [1, 2, 3], [1, 2], [0, 1]):
        if kind == "sum_pool" and dilation > 1:
            continue
        for padding in range(kernel // 2 + 1):  # torch: at most half the kernel
            window = (n, kernel, stride, padding, dilation, bool(ceil_mode))
            x = torch.arange(1.0, n * n + 1).reshape(1, 1, n, n)
            try:
                if kind == "max_pool":
                    expected = F.max_pool2d(x, kernel, stride, padding, dilation, bool(ceil_mode))
                else:
                    expected = F.avg_pool2d(x, kernel, stride, padding, bool(ceil_mode))
            except RuntimeError:  # torch: no window fits
                with pytest.raises(ValueError, match="the window does not fit an input of size"):
                    check_pool(kind, [1, 1, 1], *window)
                continue
            if kind == "max_pool" and (expected == -torch.inf).any():  # a window of padding only: refused
                with pytest.raises(ValueError, match="a window holds padding only"):
                    check_pool(kind, list(expected.shape[1:]), *window)
            else:
                check_pool(kind, list(expected.shape[1:]), *window)  # refused if the reference gives another shape
                sizes += 1
    assert sizes > 150


@pytest.mark.parametrize("factor", [1, 2, 3, 4, 8])
def test_upsample_bilinear_is_torch_interpolate_times_4r2(tmp_path, factor):
    for seed, shape in enumerate([[2, 3, 4], [1, 5, 2], [2, 1, 1]]):  # odd and even sizes
        rng = np.random.default_rng(seed)
        ops, tensors, images = spiking_input(rng, shape, signed=True)
        up_shape = [shape[0], shape[1] * factor, shape[2] * factor]
        ops += [
            node("up_static", "upsample_bilinear", ["x"], up_shape, factor=factor),
            node("up_timed", "upsample_bilinear", ["n"], up_shape, timed=True, factor=factor),
        ]
        ops.append(node("cat", "concat", ["up_static", "up_timed"], [2 * shape[0], *up_shape[1:]], timed=True))
        values = values_of(tmp_path, ops, tensors, images, T=5)
        for source, name in [("x", "up_static"), ("n", "up_timed")]:
            x = values[source].flatten(0, 1)
            upsampled = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False) * (2 * factor) ** 2
            assert (upsampled - upsampled.round()).abs().max() < 1e-6
            assert torch.equal(values[name], upsampled.round().reshape(values[name].shape))
        assert values["n"].abs().sum() > 0


@pytest.mark.parametrize("factor", [1, 2, 3])
def test_pixel_unshuffle_is_torch_pixel_unshuffle(tmp_path, factor):
    rng = np.random.default_rng(factor)
    shape = [2, 2 * factor, 3 * factor]
    images = integer_images(rng, shape)
    expected = F.pixel_unshuffle(torch.from_numpy(images).double(), factor)
    ops = [image_op(shape), node("shuffle", "pixel_unshuffle", ["x"], expected.shape[1:], factor=factor)]
    assert torch.equal(values_of(tmp_path, ops, {}, images)["shuffle"][0], expected)


@pytest.mark.parametrize("seed", SEEDS)
def test_concat_and_add_repeat_a_static_input_over_time(tmp_path, seed):
    rng = np.random.default_rng(seed)
    T, shape = 5, [2, 3, 4]
    ops, tensors, images = spiking_input(rng, shape, signed=True)
    ops.append(node("cat", "concat", ["n", "x", "n"], [6, 3, 4], timed=True))
    ops.append(node("sum", "add", ["x", "n"], shape, timed=True))
    ops.append(node("static", "concat", ["x", "x"], [4, 3, 4]))  # static inputs only: a static result
    values = values_of(tmp_path, ops, tensors, images, T=T)
    x, n = values["x"].expand(T, -1, -1, -1, -1), values["n"]
    assert n.abs().sum() > 0
    assert torch.equal(values["cat"], torch.cat([n, x, n], dim=2))
    assert torch.equal(values["sum"], x + n)
    assert torch.equal(values["static"], torch.cat([values["x"]] * 2, dim=2))


def test_outputs_are_the_float32_scaled_sums_in_the_recorded_structure(tmp_path):
    rng = np.random.default_rng(0)
    T, shape = 7, [3, 2, 2]
    ops, tensors, images = spiking_input(rng, shape, signed=False)
    ops += [node("static", "output", ["x"], shape), node("rate", "output", ["n"], shape)]
    scales = {name: rng.uniform(0.01, 2.0, 3).astype(np.float32) for name in ("static", "rate")}
    tensors |= {f"{name}.scale": scale for name, scale in scales.items()}
    path = write(tmp_path / "net.safetensors", ops, tensors, T=T, outputs=["static", "rate"])
    (static, rate), values = simulate(path, images, record=True)
    for out, name in [(static, "x"), (rate, "n")]:
        total = torch.from_numpy(values[name]).sum(0).float()
        scale = torch.from_numpy(scales["static" if name == "x" else "rate"])[:, None, None]
        assert out.dtype == np.float32 and torch.equal(torch.from_numpy(out), total * scale)


# ---- refusals ----
def small_network(rng: np.random.Generator) -> tuple[list, dict]:
    """input [2, 5, 5] -> conv -> neuron -> max_pool -> sum_pool -> flatten -> linear -> output."""
    ops = [
        image_op([2, 5, 5]),
        node("conv", "conv2d", ["x"], [4, 5, 5], stride=[1, 1], padding=[1, 1], dilation=[1, 1], groups=1),
        node("n", "neuron", ["conv"], [4, 5, 5], timed=True, signed=True, membrane_bound=MAX_INT32),
        node("pool", "max_pool", ["n"], [4, 2, 2], timed=True, kernel=[2, 2], stride=[2, 2], padding=[0, 0],
             dilation=[1, 1], ceil_mode=False),
        node("avg", "sum_pool", ["pool"], [4, 2, 2], timed=True, kernel=[2, 2], stride=[2, 2], padding=[1, 1],
             ceil_mode=False),
        node("flat", "flatten", ["avg"], [16], timed=True),
        node("fc", "linear", ["flat"], [3], timed=True),
    ]  # fmt: skip
    tensors = {
        "conv.weight": integers(rng, (4, 2, 3, 3), 127, np.int8), "conv.bias": integers(rng, (4,), 99, np.int32),
        "n.threshold": thresholds(rng, 4), "avg.multiplier": rng.integers(1, 5, (2, 2)).astype(np.int32),
        "fc.weight": integers(rng, (3, 16), 127, np.int8), "fc.bias": integers(rng, (3,), 99, np.int32),
    }  # fmt: skip
    return ops, tensors


def edit(graph_edit=None, tensor_edit=None):
    return graph_edit or (lambda graph: None), tensor_edit or (lambda tensors: None)


def set_op(target: str, /, **fields):
    """An edit of the graph that sets fields of the op named ``target``."""
    return lambda graph: next(op for op in graph["ops"] if op["name"] == target).update(fields)


EDITS = {  # what is edited -> (edit of graph / tensors, words the message must hold)
    "multiplier below 1": (
        edit(tensor_edit=lambda t: t["avg.multiplier"].__setitem__((1, 0), 0)),
        "tensor avg.multiplier has values below 1",
    ),
    "multiplier of the wrong shape": (
        edit(tensor_edit=lambda t: t.update({"avg.multiplier": np.ones((2, 3), np.int32)})),
        "tensor avg.multiplier has shape [2, 3], expected [2, 2]",
    ),
    "multiplier of the wrong dtype": (
        edit(tensor_edit=lambda t: t.update({"avg.multiplier": np.ones((2, 2), np.int64)})),
        "tensor avg.multiplier has dtype int64, expected int32",
    ),
    "missing tensor": (edit(tensor_edit=lambda t: t.pop("conv.bias")), "missing tensor conv.bias"),
    "extra tensor": (edit(tensor_edit=lambda t: t.update(junk=np.zeros(1, np.int32))), "unexpected tensors ['junk']"),
    "wrong dtype": (
        edit(tensor_edit=lambda t: t.update({"conv.weight": t["conv.weight"].astype(np.int16)})),
        "conv.weight has dtype int16, expected int8",
    ),
    "wrong shape": (
        edit(tensor_edit=lambda t: t.update({"fc.bias": np.zeros(4, np.int32)})),
        "fc.bias has shape [4], expected [3]",
    ),
    "weight out of range": (
        edit(tensor_edit=lambda t: t["conv.weight"].__setitem__((0, 0, 0, 0), -128)),
        "conv.weight has values outside ±127",
    ),
    "odd threshold": (edit(tensor_edit=lambda t: t["n.threshold"].__setitem__(1, 7)), "n.threshold"),
    "threshold 0": (edit(tensor_edit=lambda t: t["n.threshold"].__setitem__(1, 0)), "n.threshold"),
    "bound above int32": (
        edit(set_op("conv", bound=MAX_INT32 + 1)),
        "op #1 'conv': 'bound' must be an int in 0..2147483647, got 2147483648",
    ),
    "membrane bound above int32": (
        edit(lambda g: g["ops"][2]["attrs"].update(membrane_bound=2**31)),
        "'membrane_bound' must be an int in 0..2147483647",
    ),
    "unknown version": (
        edit(lambda g: g.update(version=2)),
        "format 'fastsnn-integer-snn' version 2 is not supported (only 'fastsnn-integer-snn' version 1)",
    ),
    "version not an int": (edit(lambda g: g.update(version=True)), "version True is not supported"),
    "unknown format": (edit(lambda g: g.update(format="onnx")), "format 'onnx' version 1 is not supported"),
    "unknown kind": (edit(set_op("flat", op="softmax")), "'op' must be a known kind (input, conv2d,"),
    "unknown kind named": (edit(set_op("flat", op="softmax")), "got 'softmax'"),
    "recorded shape": (edit(set_op("conv", shape=[4, 4, 4])), "'conv' (conv2d) records the shape [4, 4, 4]"),
    "timed flag": (edit(set_op("conv", timed=True)), "'conv' (conv2d) records timed True"),
    "later input": (edit(set_op("conv", inputs=["n"])), "'conv' (conv2d): its input 'n' names no earlier op"),
    "duplicate name": (edit(set_op("flat", name="pool")), "op 'pool' (flatten) has a duplicate name"),
    "input count": (edit(set_op("flat", inputs=["pool", "avg"])), "(flatten) has 2 inputs, expected 1 to 1"),
    "outputs naming another op": (
        edit(lambda g: g.update(outputs=["fc"])),
        "outputs names 'fc', which is no output op",
    ),
    "outputs naming an op twice": (
        edit(lambda g: g.update(outputs=["out", "out"], output_structure="list")),
        "outputs names an op twice",
    ),
    "missing attr": (
        edit(lambda g: g["ops"][1]["attrs"].pop("groups")),
        "'conv' (conv2d) attrs must be an object with exactly the keys ['dilation', 'groups', 'padding', 'stride']",
    ),
    "missing ceil_mode": (
        edit(lambda g: g["ops"][4]["attrs"].pop("ceil_mode")),
        "'avg' (sum_pool) attrs must be an object with exactly the keys",
    ),
    "missing field": (edit(lambda g: g["ops"][4].pop("timed")), "op #4 'avg' must be an object with exactly the keys"),
    "pool of padding only": (
        edit(lambda g: g["ops"][3]["attrs"].update(kernel=[1, 1], padding=[1, 1])),
        "'pool' (max_pool): a window holds padding only",
    ),
    "attr of the wrong type": (edit(lambda g: g["ops"][2]["attrs"].update(signed=1)), "'signed' must be true or false"),
}


def valid_file(path: Path, graph_edit=None, tensor_edit=None) -> Path:
    ops, tensors = small_network(np.random.default_rng(0))
    ops.append(node("out", "output", ["fc"], [3]))
    tensors["out.scale"] = np.ones(3, np.float32)
    graph = dict(
        format="fastsnn-integer-snn", version=1, T=3, weight_bits=8, ops=ops, outputs=["out"],
        output_structure="tensor", about={},
    )  # fmt: skip
    (graph_edit or (lambda g: None))(graph)
    (tensor_edit or (lambda t: None))(tensors)
    text = json.dumps(graph)
    save_file(tensors, path, metadata={GRAPH_KEY: text, DIGEST_KEY: digest(text, tensors)})
    return path


def refusal(path) -> str:
    with pytest.raises(IntegerFileError) as caught:
        reference.read(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    return message


def test_the_valid_file_reads_and_runs(tmp_path):
    model = reference.read(valid_file(tmp_path / "net.safetensors"))
    out = simulate(model, np.random.default_rng(0).uniform(-100, 100, (2, 2, 5, 5)).astype(np.float32))
    assert out.shape == (2, 3) and out.dtype == np.float32


@pytest.mark.parametrize("what", EDITS)
def test_an_invalid_file_is_refused_naming_the_problem(tmp_path, what):
    (graph_edit, tensor_edit), words = EDITS[what]
    path = valid_file(tmp_path / "net.safetensors", graph_edit, tensor_edit)
    assert words in refusal(path)


def flip(path: Path, offset: int) -> None:
    """Flips the low bit of one byte."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 1
    path.write_bytes(bytes(data))


def test_a_flipped_byte_is_refused(tmp_path):
    path = valid_file(tmp_path / "net.safetensors")
    flip(path, len(path.read_bytes()) - 1)  # the tensor data's last byte
    assert "digest mismatch: the file is damaged or edited" in refusal(path)
    path = valid_file(tmp_path / "net.safetensors")
    flip(path, path.read_bytes().index(b'\\"T\\": 3') + 7)  # in the graph text, still valid JSON: T 3 -> 2
    assert "digest mismatch" in refusal(path)
    path = valid_file(tmp_path / "net.safetensors")
    flip(path, 8)  # the header's opening brace becomes "z"
    assert "cannot be read as a safetensors file" in refusal(path)


def test_a_file_that_is_not_an_integer_snn_is_refused(tmp_path):
    assert "cannot be read as a safetensors file" in refusal(tmp_path / "missing.safetensors")
    (tmp_path / "text.safetensors").write_text("hello")
    assert "cannot be read as a safetensors file" in refusal(tmp_path / "text.safetensors")
    save_file({"w": np.zeros(2, np.int8)}, tmp_path / "plain.safetensors")
    assert "metadata lacks" in refusal(tmp_path / "plain.safetensors")
    torch_save_file({"w": torch.zeros(2, dtype=torch.bfloat16)}, tmp_path / "bf16.safetensors")
    assert "cannot be read as a safetensors file" in refusal(tmp_path / "bf16.safetensors")
    for text, words in [("{", "the graph is not JSON"), ("[1]", "the graph must be an object")]:
        save_file({}, tmp_path / "graph.safetensors", metadata={GRAPH_KEY: text, DIGEST_KEY: digest(text, {})})
        assert words in refusal(tmp_path / "graph.safetensors")


def test_simulate_refuses_other_image_shapes_and_values_beyond_a_bound(tmp_path):
    path = valid_file(tmp_path / "net.safetensors")
    with pytest.raises(ValueError, match=r"images have shape \[2, 5, 5\], expected \[B, \*\[2, 5, 5\]\]"):
        simulate(path, np.zeros((2, 5, 5), np.float32))
    path = valid_file(tmp_path / "bounded.safetensors", set_op("conv", bound=1))
    with pytest.raises(ValueError, match=r"'conv': \|value\| reaches \d+, above its bound 1$"):
        simulate(path, np.full((1, 2, 5, 5), 50, np.float32))


def largest_membrane(current: torch.Tensor, theta: torch.Tensor, signed: bool) -> int:
    """Largest |V| of integrate-and-fire on ``current [T, ...]``, the initial Θ/2 included, with if_scan's spikes."""
    v, spikes = (theta // 2).expand_as(current[0]), if_scan(current, theta, signed=signed)
    most = v.abs().max()
    for step in range(len(current)):
        v = v + current[step]
        most = max(most, v.abs().max())
        v = v - spikes[step] * theta
    return int(most)


@pytest.mark.parametrize("signed", [False, True])
def test_a_membrane_beyond_its_bound_is_refused_at_the_exact_bound(tmp_path, signed):
    rng = np.random.default_rng(3)
    cases = [(integer_images(rng, [2, 3, 3], most=30), thresholds(rng, 2)) for _ in range(3)]
    cases.append((np.full((1, 2, 3, 3), -1, np.float32), np.array([10, 6], np.int32)))  # V only falls from Θ/2
    for images, threshold in cases:
        ops = [image_op([2, 3, 3]), neuron_op("n", image_op([2, 3, 3]), signed=signed)]
        current = torch.from_numpy(images).double().expand(7, -1, -1, -1, -1)
        most = largest_membrane(current, torch.from_numpy(threshold).double()[:, None, None], signed)
        ops[1]["attrs"]["membrane_bound"] = most
        simulate(write(tmp_path / "net.safetensors", ops, {"n.threshold": threshold}, T=7), images)
        ops[1]["attrs"]["membrane_bound"] = most - 1
        path = write(tmp_path / "net.safetensors", ops, {"n.threshold": threshold}, T=7)
        with pytest.raises(ValueError, match=rf"'n': \|membrane\| reaches {most}, above its bound {most - 1}$"):
            simulate(path, images)
