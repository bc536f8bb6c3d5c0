"""The integer spiking network: its file format and a pure-NumPy reference simulator (the specification).

This file states every operation a hardware implementation must perform. It needs only the standard library, numpy
and safetensors, and may be copied on its own.

File (format "fastsnn-integer-snn", version 1): a safetensors file whose metadata holds "fastsnn.integer", the
  graph (a JSON object, kept as the exact string that was written), and "fastsnn.integer.sha256", the hex SHA-256 of
  the graph string (utf-8) followed, for each tensor in sorted name order, by: name, 0, its numpy dtype name (int8,
  int16, int32, float32), 0, json.dumps(shape list), 0, its raw C-order little-endian bytes: a flipped byte is refused.
Graph, a JSON object with exactly these fields: {"format": "fastsnn-integer-snn", "version": 1, "T": 1..255,
  "weight_bits": 2..16, "ops": [op, ...] in execution order, "outputs": [names of output ops, at least one],
  "output_structure": "tensor" (one output) | "tuple" | "list", "about": {free-form, not interpreted}}.
op, with exactly these fields: {"name": unique str, "op": kind, "inputs": [names of earlier ops], "shape": per-sample
  shape of the result (ints > 0, no time or batch dim), "timed": bool, "bound": largest |value| of the result
  (0..2**31-1), "attrs": {...}}. The tensors of op NAME are stored as "NAME.FIELD": exactly those the kinds require.

Values: every result is an integer array [S, B, *shape], S = T if timed else 1 (static: the same at every step,
computed from the image alone); a result is timed if any input is (neuron: always; input, output: never), and a
static operand of a timed one is repeated over the T steps. Arithmetic is exact: every bound and membrane bound is
<= 2**31 - 1, so int32 suffices (this reference uses int64 and refuses a run beyond a bound the file states).
"Channel" is the first per-sample dimension. W is int8 if weight_bits <= 8 else int16, |W| <= 2**(weight_bits-1) - 1.

Kinds (tensors, int32 but for W and the output's scale; attrs):
  input     no inputs, first op, the only one (attrs bits 2..16, scale > 0): from float32 images x [B, *shape],
            X = clip(floor(x / scale + 0.5), -Q, Q), Q = 2**(bits-1) - 1, computed in float32; static.
  conv2d    [C, H, W] (weight W [O, C/groups, kh, kw], bias [O]; stride, padding, dilation pairs, groups):
            Y = conv(X, W) + bias with zero padding, [O, H', W'], H' = floor((H + 2p - d(kh-1) - 1)/s) + 1.
  linear    [I] (weight W [O, I], bias [O]): Y = X @ W^T + bias.
  scale     [C, ...] (factor [C], bias [C]): Y[c] = factor[c] * X[c] + bias[c].
  add       two inputs of equal shape: Y = A + B; timed if either is.
  neuron    [C, ...] (threshold [C], even, >= 2; signed bool, membrane_bound): integrate-and-fire with soft reset.
            Per element, with Θ of its channel: V = Θ/2, n = 0; for t = 1..T: V += I(t); s = +1 if V >= Θ, else -1
            if signed and V < 0 and n > 0, else 0; V -= s*Θ; n += s. The result is the spikes s [T, B, ...] (timed);
            every |V| reached is <= membrane_bound.
  max_pool  timed [C, H, W] (kernel, stride, padding, dilation pairs, ceil_mode): Y(t) = P(t) - P(t-1) with the
            counts C(t) = X(1) + ... + X(t), P(t) = maxpool(C(t)), P(0) = 0. Padding never wins (it is -infinity);
            the output size is torch.nn.MaxPool2d's (with ceil_mode, a last window must start inside the input or
            the left padding), and every window must hold an input element.
  sum_pool  [C, H, W] (kernel, stride, padding pairs, ceil_mode; multiplier [H', W'] >= 1): an average pool whose
            divisors the consumer holds, Y[h, w] = multiplier[h, w] * (sum over the zero-padded window at h, w): the
            multipliers bring windows cut by padding or ceil mode to one divisor. Output size: torch.nn.AvgPool2d's.
  upsample_bilinear  [C, H, W] (factor r): torch's bilinear upsampling (align_corners=False) by r, times (2r)^2,
            which makes every weight whole. Along an axis of n inputs, with u = max(2i + 1 - r, 0), output i reads
            j0 = floor(u / (2r)) with weight 2r - f and j1 = min(j0 + 1, n - 1) with weight f = u - 2r*j0.
  flatten   [...] -> [prod(shape)], C order.
  pixel_unshuffle  [C, H, W] (factor r divides H and W): Y[c*r*r + i*r + j, h, w] = X[c, h*r + i, w*r + j].
  concat    two or more inputs, equal shapes but for the channel: joined along channels, in input order.
  output    [C, ...] (scale [C] float32, finite): float32 [B, *shape], out[c] = float32(sum over S of X[c]) *
            scale[c] (exact integer sum, rounded once, one float32 multiplication; scale holds the 1/T). Static;
            its bound covers that sum.
A file that disagrees with the above is refused (one line "<path>: <what is wrong>"): damage, an unknown version or
kind, wrong or missing fields, attrs, tensors (name, dtype, shape, range), bounds above 2**31 - 1, recorded shapes
or timed flags that the kinds do not give.
"""

import hashlib
import json
import math
import os
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from safetensors import SafetensorError, safe_open

FORMAT = "fastsnn-integer-snn"
VERSION = 1
GRAPH_KEY = "fastsnn.integer"
DIGEST_KEY = "fastsnn.integer.sha256"
MAX_INT32 = 2**31 - 1


class IntegerFileError(ValueError):
    """An invalid integer network file; the message is one line, "<path>: <what is wrong>"."""


@dataclass(frozen=True)
class IntegerModel:
    """A checked file: the graph (parsed JSON) and the tensors by their stored names."""

    graph: dict
    tensors: dict[str, np.ndarray]


def digest(graph_text: str, tensors: dict[str, np.ndarray]) -> str:
    """Hex SHA-256 over the graph string and every tensor's name, dtype, shape and bytes (sorted by name)."""
    sha = hashlib.sha256(graph_text.encode())
    for name in sorted(tensors):
        array = np.asarray(tensors[name])
        sha.update(b"\0".join([name.encode(), array.dtype.name.encode(), json.dumps(list(array.shape)).encode(), b""]))
        sha.update(np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes())  # little-endian
    return sha.hexdigest()


# ---- the fields of the graph, of an op and of its attrs: name -> (what it must be, test) ----
def _is_int(value, low=0, high=MAX_INT32) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _int(low: int, high: int = MAX_INT32):
    return f"an int in {low}..{high}", lambda v: _is_int(v, low, high)


def _list(what: str, valid, least: int = 1, most: int = MAX_INT32):
    return what, lambda v: isinstance(v, list) and least <= len(v) <= most and all(valid(item) for item in v)


def _pair(low: int):
    return _list(f"a list of 2 ints >= {low}", lambda i: _is_int(i, low), 2, 2)


NAME = "a non-empty string", lambda v: isinstance(v, str) and v != ""
BOOL = "true or false", lambda v: isinstance(v, bool)
OBJECT = "an object", lambda v: isinstance(v, dict)
SCALE = "a finite number > 0", lambda v: _is_int(v, 1) or (isinstance(v, float) and math.isfinite(v) and v > 0)
WINDOW = {"kernel": _pair(1), "stride": _pair(1), "padding": _pair(0)}
ATTRS = {  # every kind, with its attrs
    "input": {"bits": _int(2, 16), "scale": SCALE},
    "conv2d": {"stride": _pair(1), "padding": _pair(0), "dilation": _pair(1), "groups": _int(1)},
    "neuron": {"signed": BOOL, "membrane_bound": _int(0)},
    "max_pool": {**WINDOW, "dilation": _pair(1), "ceil_mode": BOOL},
    "sum_pool": {**WINDOW, "ceil_mode": BOOL},
    "upsample_bilinear": {"factor": _int(1)},
    "pixel_unshuffle": {"factor": _int(1)},
    **{kind: {} for kind in ("linear", "scale", "add", "flatten", "concat", "output")},
}
GRAPH_FIELDS = {
    "format": (repr(FORMAT), lambda v: v == FORMAT),
    "version": (str(VERSION), lambda v: _is_int(v, VERSION, VERSION)),
    "T": _int(1, 255),
    "weight_bits": _int(2, 16),
    "ops": _list("a non-empty list", lambda op: True),
    "outputs": _list("a non-empty list of names", NAME[1]),
    "output_structure": ('"tensor", "tuple" or "list"', lambda v: v in ("tensor", "tuple", "list")),
    "about": OBJECT,
}
OP_FIELDS = {
    "name": NAME,
    "op": (f"a known kind ({', '.join(ATTRS)})", lambda v: isinstance(v, str) and v in ATTRS),
    "inputs": _list("a list of names", NAME[1], least=0),
    "shape": _list("a non-empty list of ints > 0", lambda n: _is_int(n, 1)),
    "timed": BOOL,
    "bound": _int(0),
    "attrs": OBJECT,
}
INPUT_COUNTS = {"input": (0, 0), "add": (2, 2), "concat": (2, math.inf)}  # (least, most); every other kind: one
TENSORS = {  # kind -> field -> dtype ("weight": int8 or int16 by weight_bits)
    "conv2d": {"weight": "weight", "bias": "int32"},
    "linear": {"weight": "weight", "bias": "int32"},
    "scale": {"factor": "int32", "bias": "int32"},
    "neuron": {"threshold": "int32"},
    "sum_pool": {"multiplier": "int32"},
    "output": {"scale": "float32"},
}


# ---- validation ----
def _require(condition, message: str) -> None:
    """Refuses (ValueError(message)) what breaks a rule of the format."""
    if not condition:
        raise ValueError(message)


def _check_fields(value, fields: dict, where: str) -> None:
    """``value`` must be an object with exactly the keys of ``fields``, each passing its test."""
    keys = sorted(value) if isinstance(value, dict) else value
    _require(keys == sorted(fields), f"{where} must be an object with exactly the keys {sorted(fields)}, got {keys!r}")
    for key, (what, valid) in fields.items():
        _require(valid(value[key]), f"{where}: {key!r} must be {what}, got {value[key]!r}")


def _wrong_shape(name: str, field: str, array: np.ndarray, expected) -> str:
    return f"tensor {name}.{field} has shape {list(array.shape)}, expected {expected}"


def _shape(op: dict, ins: list, t: dict) -> tuple:
    """The per-sample shape of the result that the kind gives from its input shapes ``ins`` and tensors ``t``."""
    kind, a, x = op["op"], op["attrs"], (ins or [tuple(op["shape"])])[0]  # input: the recorded shape
    if kind in ("input", "scale", "neuron", "output", "flatten"):
        return (math.prod(x),) if kind == "flatten" else x
    if kind in ("add", "concat"):  # add: equal shapes; concat: equal but for the channel, joined along it
        first = int(kind == "concat")
        _require(all(s[first:] == x[first:] for s in ins), f"joins inputs of shapes {[list(s) for s in ins]}")
        return x if kind == "add" else (sum(s[0] for s in ins), *x[1:])
    what, ndim = ("[I]", 1) if kind == "linear" else ("[C, H, W]", 3)
    _require(len(x) == ndim, f"expects a {what} input, got shape {list(x)}")
    if kind == "linear":
        weight, i = t["weight"], x[0]
        _require(weight.ndim == 2 and weight.shape[1] == i, _wrong_shape(op["name"], "weight", weight, f"[O, {i}]"))
        return weight.shape[:1]
    (c, h, w), r = x, a.get("factor")
    if kind == "upsample_bilinear":
        return (c, h * r, w * r)
    if kind == "pixel_unshuffle":
        _require(h % r == 0 and w % r == 0, f"factor {r} does not divide the input size {h}x{w}")
        return (c * r * r, h // r, w // r)
    kernel, ceil, out = a.get("kernel"), a.get("ceil_mode", False), []
    if kind == "conv2d":
        weight, g = t["weight"], a["groups"]
        fits = c % g == 0 and weight.ndim == 4 and weight.shape[1] == c // g and weight.shape[0] % g == 0
        _require(fits, _wrong_shape(op["name"], "weight", weight, f"[O, {c // g}, kh, kw] (O divisible by groups {g})"))
        c, kernel = weight.shape[0], weight.shape[2:]
    for n, k, s, p, d in zip((h, w), kernel, a["stride"], a["padding"], a.get("dilation", [1, 1]), strict=True):
        span = n + 2 * p - d * (k - 1) - 1  # the output size as torch computes it
        o = (-(-span // s) if ceil else span // s) + 1
        o -= 1 if ceil and (o - 1) * s >= n + p else 0  # the last window must start inside the input or left padding
        _require(o >= 1, f"the window does not fit an input of size {n}")
        empty = [i for i in range(o) if not any(0 <= i * s - p + j * d < n for j in range(k))]  # padding only
        _require(kind != "max_pool" or not empty, "a window holds padding only (its maximum would be -infinity)")
        out.append(o)
    return (c, *out)


def _check_op(op, index: int, known: dict, tensors: dict, weight_bits: int) -> dict:
    """Checks one op against the earlier ones (``known``: name -> (shape, timed)); returns its tensors by field."""
    _check_fields(op, OP_FIELDS, f"op #{index}" + (f" {op['name']!r}" if isinstance(op, dict) and "name" in op else ""))
    name, kind, inputs = op["name"], op["op"], op["inputs"]
    at, (least, most) = f"op {name!r} ({kind})", INPUT_COUNTS.get(kind, (1, 1))
    _require(name not in known, f"{at} has a duplicate name")
    _require((kind == "input") == (index == 0), f"{at}: the first op, and only it, must be the input op")
    _require(least <= len(inputs) <= most, f"{at} has {len(inputs)} inputs, expected {least} to {most}")
    for source in inputs:
        _require(source in known, f"{at}: its input {source!r} names no earlier op")
    _check_fields(op["attrs"], ATTRS[kind], f"{at} attrs")
    t = {}
    for field, dtype in TENSORS.get(kind, {}).items():
        dtype = ("int8" if weight_bits <= 8 else "int16") if dtype == "weight" else dtype
        _require(f"{name}.{field}" in tensors, f"missing tensor {name}.{field}")
        t[field] = array = np.asarray(tensors[f"{name}.{field}"])
        _require(array.dtype.name == dtype, f"tensor {name}.{field} has dtype {array.dtype.name}, expected {dtype}")
    try:
        inferred = tuple(_shape(op, [known[source][0] for source in inputs], t))
    except ValueError as error:
        raise ValueError(f"{at}: {error}") from None
    _require(inferred == tuple(op["shape"]), f"{at} records the shape {op['shape']}, its inputs give {list(inferred)}")
    largest = 2 ** (weight_bits - 1) - 1
    for field, array in t.items():  # weights: checked by _shape; the multiplier: [H', W'] of the result; others: [C]
        expected = list(inferred[1:] if field == "multiplier" else inferred[:1])
        _require(field == "weight" or list(array.shape) == expected, _wrong_shape(name, field, array, expected))
    for field, outside, what in [  # the values a tensor must not hold
        ("weight", lambda v: np.abs(v.astype(np.int64)) > largest, f"outside ±{largest} (weight_bits {weight_bits})"),
        ("threshold", lambda v: (v < 2) | (v % 2 != 0), "that are odd or below 2"),
        ("multiplier", lambda v: v < 1, "below 1"),
        ("scale", lambda v: ~np.isfinite(v), "that are not finite"),
    ]:
        _require(field not in t or not outside(t[field]).any(), f"tensor {name}.{field} has values {what}")
    _require(kind != "max_pool" or known[inputs[0]][1], f"{at} needs a timed input (spikes)")
    timed = kind == "neuron" or (kind != "output" and any(known[source][1] for source in inputs))
    _require(op["timed"] is timed, f"{at} records timed {op['timed']!r}, its inputs give {timed}")
    known[name] = inferred, timed
    return t


def check(graph: dict, tensors: dict[str, np.ndarray]) -> None:
    """Validates a graph and its tensors as the module docstring states; ValueError(one-line reason) if invalid."""
    _require(isinstance(graph, dict), f"the graph must be an object, got {type(graph).__name__}")
    found = f"format {graph.get('format')!r} version {graph.get('version')!r}"  # repr: true or 1.0 is not 1
    supported = f"{FORMAT!r} version {VERSION!r}"
    _require(found == f"format {supported}", f"{found} is not supported (only {supported})")
    _check_fields(graph, GRAPH_FIELDS, "the graph")
    known, expected = {}, set()
    for index, op in enumerate(graph["ops"]):
        expected |= {f"{op['name']}.{field}" for field in _check_op(op, index, known, tensors, graph["weight_bits"])}
    _require(set(tensors) <= expected, f"unexpected tensors {sorted(set(tensors) - expected)} (no op requires them)")
    kinds, outputs = {op["name"]: op["op"] for op in graph["ops"]}, graph["outputs"]
    for name in outputs:
        _require(kinds.get(name) == "output", f"outputs names {name!r}, which is no output op")
    _require(len(set(outputs)) == len(outputs), f"outputs names an op twice: {outputs}")
    _require(len(outputs) == 1 or graph["output_structure"] != "tensor", "output_structure 'tensor' needs 1 output")


def read(path) -> IntegerModel:
    """Reads and checks a file; IntegerFileError("<path>: <what is wrong>") if it is invalid."""
    try:
        try:
            with safe_open(path, "np") as file:
                metadata, tensors = file.metadata() or {}, {key: file.get_tensor(key) for key in file.keys()}
        except (OSError, SafetensorError, TypeError) as error:  # TypeError: a dtype numpy lacks (bfloat16)
            raise ValueError(f"cannot be read as a safetensors file ({error})") from None
        text, stated = metadata.get(GRAPH_KEY), metadata.get(DIGEST_KEY)
        _require(text and stated, f"metadata lacks {GRAPH_KEY!r} or {DIGEST_KEY!r}; is this an integer SNN file?")
        _require(digest(text, tensors) == stated, "digest mismatch: the file is damaged or edited")
        graph = json.loads(text)
        check(graph, tensors)
    except ValueError as error:
        what = f"the graph is not JSON ({error})" if isinstance(error, json.JSONDecodeError) else error
        raise IntegerFileError(f"{path}: {' '.join(str(what).split())}") from None
    return IntegerModel(graph, tensors)


# ---- simulation: kind -> (op, input values, tensors by field, T) -> integer result [S, B, *shape], int64 ----
def _quantize(op, xs, t, T):
    """The input op: float32 images [B, *shape] -> X [1, B, *shape], rounding half up, clipped at ±Q."""
    images, shape, q = np.asarray(xs[0], dtype=np.float32), op["shape"], 2 ** (op["attrs"]["bits"] - 1) - 1
    _require(images.shape[1:] == tuple(shape), f"images have shape {list(images.shape)}, expected [B, *{shape}]")
    _require(not np.isnan(images).any(), "images contain NaN")
    return np.clip(np.floor(images / np.float32(op["attrs"]["scale"]) + np.float32(0.5)), -q, q).astype(np.int64)[None]


def _windows(x: np.ndarray, op: dict, kernel, fill: int = 0) -> np.ndarray:
    """[S, B, C, H, W] -> its windows [S, B, C, H', W', kh, kw] at the op's stride, padding and dilation (H', W' of
    its shape), padded with ``fill`` (on the right as far as the last window needs)."""
    a, out = op["attrs"], op["shape"][1:]
    stride, padding, dilation = a["stride"], a["padding"], a.get("dilation", [1, 1])
    sizes = zip(x.shape[3:], out, kernel, stride, padding, dilation, strict=True)
    pads = [(p, max(p, (o - 1) * s + d * (k - 1) + 1 - n - p)) for n, o, k, s, p, d in sizes]
    spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    x = sliding_window_view(np.pad(x, [(0, 0)] * 3 + pads, constant_values=fill), spans, axis=(3, 4))
    return x[..., :: stride[0], :: stride[1], :: dilation[0], :: dilation[1]][:, :, :, : out[0], : out[1]]


def _channels(v: np.ndarray, ndim: int) -> np.ndarray:
    """A per-channel vector [C] as int64, shaped to broadcast over [S, B, C, ...] of ``ndim`` dims."""
    return v.astype(np.int64).reshape(-1, *[1] * (ndim - 3))


def _conv2d(op, xs, t, T):
    weight, g = t["weight"].astype(np.int64), op["attrs"]["groups"]
    windows = np.split(_windows(xs[0], op, weight.shape[2:]), g, axis=2)  # per group: [S, B, C/g, H', W', kh, kw]
    groups = [np.tensordot(x, w, ([2, 5, 6], [1, 2, 3])) for x, w in zip(windows, np.split(weight, g), strict=True)]
    return np.moveaxis(np.concatenate(groups, axis=4), 4, 2) + _channels(t["bias"], 5)  # groups: [S, B, H', W', O/g]


def _neuron(op, xs, t, T):
    x, theta, a = xs[0], _channels(t["threshold"], xs[0].ndim), op["attrs"]
    v, n, spikes, reached = np.broadcast_to(theta // 2, x.shape[1:]), 0, [], [theta.max() // 2]
    for step in range(T):
        v = v + x[step % len(x)]  # a static input (S = 1) is the same current at every step
        s = (v >= theta).astype(np.int64) - (a["signed"] & (v < 0) & (n > 0))
        reached += [np.abs(v).max(), np.abs(v - s * theta).max()]  # |V| before and after the reset
        v, n = v - s * theta, n + s
        spikes.append(s)
    reached, bound = max(reached), a["membrane_bound"]
    _require(reached <= bound, f"op {op['name']!r}: |membrane| reaches {reached}, above its bound {bound}")
    return np.stack(spikes)


def _max_pool(op, xs, t, T):
    counts = np.cumsum(xs[0], axis=0)  # C(t)
    pooled = _windows(counts, op, op["attrs"]["kernel"], fill=np.iinfo(np.int64).min).max(axis=(5, 6))  # P(t)
    return np.diff(pooled, axis=0, prepend=0)


def _upsample_bilinear(op, xs, t, T):
    r = op["attrs"]["factor"]
    rows, cols = (np.zeros((n * r, n), np.int64) for n in xs[0].shape[3:])  # integer weights [n*r, n] of each axis
    for weights, n in zip((rows, cols), xs[0].shape[3:], strict=True):  # n inputs, n*r outputs (see the docstring)
        for i in range(n * r):
            j0, f = divmod(max(2 * i + 1 - r, 0), 2 * r)
            weights[i, j0] += 2 * r - f
            weights[i, min(j0 + 1, n - 1)] += f
    return np.einsum("ih,sbchw,jw->sbcij", rows, xs[0], cols)


def _pixel_unshuffle(op, xs, t, T):  # [S, B, C, H, W] -> [S, B, C, H/r, i, W/r, j] -> [S, B, C, i, j, H/r, W/r]
    (s, b, c, h, w), r = xs[0].shape, op["attrs"]["factor"]
    return xs[0].reshape(s, b, c, h // r, r, w // r, r).transpose(0, 1, 2, 4, 6, 3, 5).reshape(s, b, *op["shape"])


RUN = {
    "input": _quantize,
    "conv2d": _conv2d,
    "linear": lambda op, xs, t, T: xs[0] @ t["weight"].astype(np.int64).T + t["bias"].astype(np.int64),
    "scale": lambda op, xs, t, T: xs[0] * _channels(t["factor"], xs[0].ndim) + _channels(t["bias"], xs[0].ndim),
    "add": lambda op, xs, t, T: xs[0] + xs[1],
    "neuron": _neuron,
    "max_pool": _max_pool,
    "sum_pool": lambda op, xs, t, T: _windows(xs[0], op, op["attrs"]["kernel"]).sum(axis=(5, 6)) * t["multiplier"],
    "upsample_bilinear": _upsample_bilinear,
    "flatten": lambda op, xs, t, T: xs[0].reshape(*xs[0].shape[:2], -1),
    "pixel_unshuffle": _pixel_unshuffle,
    "concat": lambda op, xs, t, T: np.concatenate([np.repeat(x, max(map(len, xs)) // len(x), 0) for x in xs], 2),
    "output": lambda op, xs, t, T: xs[0].sum(axis=0, keepdims=True),  # the float32 output: in simulate
}


def simulate(model: IntegerModel | str | os.PathLike, images: np.ndarray, *, record: bool = False):
    """Runs the network on float32 images ``[B, *input shape]``: the output (a float32 array ``[B, ...]`` for
    "tensor", else a tuple or list of them), with ``record`` ``(outputs, values)``, ``values[op name]`` the op's
    integer result ``[S, B, *shape]``. ValueError for images of another shape or a value above its op's bound."""
    if isinstance(model, IntegerModel):
        check(model.graph, model.tensors)
    else:
        model = read(model)
    graph, tensors, values = model.graph, model.tensors, {}
    for op in graph["ops"]:
        name, kind = op["name"], op["op"]
        xs = [values[source] for source in op["inputs"]] if op["inputs"] else [images]  # the input op reads images
        t = {field: tensors[f"{name}.{field}"] for field in TENSORS.get(kind, {})}
        values[name] = RUN[kind](op, xs, t, graph["T"])
        reached = np.abs(values[name]).max(initial=0)
        _require(reached <= op["bound"], f"op {name!r}: |value| reaches {reached}, above its bound {op['bound']}")
    outputs = [  # out[c] = float32(sum over S of X[c]) * scale[c]; values[output op] holds the sums [1, B, ...]
        values[name][0].astype(np.float32) * tensors[f"{name}.scale"].reshape(-1, *[1] * (values[name].ndim - 3))
        for name in graph["outputs"]
    ]
    outputs = {"tensor": lambda o: o[0], "tuple": tuple, "list": list}[graph["output_structure"]](outputs)
    return (outputs, values) if record else outputs
