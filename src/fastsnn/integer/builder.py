"""Writes the integer graph: op records in execution order and their integer tensors (the file format's content)."""

import torch

from ..errors import ConversionError
from .folding import Current, IntegerValue, rounded
from .reference import FORMAT, MAX_INT32, VERSION


class GraphBuilder:
    """Collects ops (the records of :mod:`fastsnn.integer.reference`'s format) and their tensors.

    Args:
        T: time steps. weight_bits: bits of every weight (signed, symmetric).
    """

    def __init__(self, T: int, weight_bits: int):
        self.T, self.weight_bits = T, weight_bits
        self.max_weight = 2 ** (weight_bits - 1) - 1
        self.ops: list[dict] = []
        self.tensors: dict[str, torch.Tensor] = {}
        self.clipped: dict[str, int] = {}  # op name -> weights clipped to ±max_weight

    def emit(self, name: str, kind: str, inputs: list[str], shape, *, timed: bool, bound: int, attrs=None, **tensors):
        """Append one op (a free name derived from ``name``) and return its name.

        Raises:
            ConversionError: its values could exceed int32 (names the op).
        """
        if bound > MAX_INT32:
            raise ConversionError(
                f"cannot integerize {name}: its values reach {bound}, beyond int32; use fewer weight bits "
                "(or fewer input bits for the first layer)"
            )
        taken = {op["name"] for op in self.ops}
        unique = (
            name
            if name not in taken
            else next(f"{name}_{i}" for i in range(1, len(taken) + 2) if f"{name}_{i}" not in taken)
        )
        self.ops.append(
            {
                "name": unique,
                "op": kind,
                "inputs": inputs,
                "shape": [int(n) for n in shape],
                "timed": bool(timed),
                "bound": int(bound),
                "attrs": attrs or {},
            }
        )
        for field, tensor in tensors.items():
            self.tensors[f"{unique}.{field}"] = tensor
        return unique

    def current(self, current: Current, name: str, unit: torch.Tensor) -> IntegerValue:
        """Emit the ops computing ``current`` in integers of ``unit [C]`` per channel: one op per term (the bias
        with the first), summed by ``add`` ops. Returns the integer value (the last op)."""
        bias = torch.round(current.bias / unit).to(torch.int64)
        if bool((bias.abs() > MAX_INT32).any()):
            raise _too_large(name, "its bias")
        weight_dtype = torch.int8 if self.weight_bits <= 8 else torch.int16
        total = None
        for index, term in enumerate(current.terms):
            integers, clipped = rounded(term.coefficient, unit, self.max_weight)
            term_bias = bias if index == 0 else torch.zeros_like(bias)
            reach = integers.abs().reshape(len(integers), -1).sum(1) * term.source.bound + term_bias.abs()
            fields = {"bias": term_bias.to(torch.int32)}
            if term.kind == "scale":
                fields["factor"] = integers.to(torch.int32)
            else:
                fields["weight"] = integers.to(weight_dtype)
            op = self.emit(
                term.origin,
                term.kind,
                [term.source.name],
                current.shape,
                timed=term.source.timed,
                bound=int(reach.max()),
                attrs=term.attrs,
                **fields,
            )
            if clipped:
                self.clipped[op] = clipped
            term_value = IntegerValue(op, unit, current.shape, term.source.timed, int(reach.max()))
            if total is None:
                total = term_value
            else:
                bound = total.bound + term_value.bound
                sum_op = self.emit(
                    f"{name}.sum", "add", [total.name, op], current.shape, timed=current.timed, bound=bound
                )
                total = IntegerValue(sum_op, unit, current.shape, current.timed, bound)
        return total

    def graph(self, outputs: list[str], structure: str, about: dict) -> dict:
        """The graph record of the file (see :mod:`fastsnn.integer.reference`)."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "T": self.T,
            "weight_bits": self.weight_bits,
            "ops": self.ops,
            "outputs": outputs,
            "output_structure": structure,
            "about": about,
        }


def _too_large(name: str, what: str) -> ConversionError:
    return ConversionError(f"cannot integerize {name}: {what} exceeds int32 in its integer unit")
