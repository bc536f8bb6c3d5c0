"""Give every ReLU call site its own module, so that each can become its own quantized activation, and
every functional max-pool a module, so that it can become a spiking max-pool.

``quantize`` replaces ReLU *modules*. Two kinds of call site escape that: a ReLU module called at
several places (torchvision's ``BasicBlock`` calls ``self.relu`` twice, and all its calls would share
one clip α), and functional ReLUs in ``forward()`` (``F.relu``, ``torch.relu``, ``x.relu()``, the
in-place ``F.relu_`` / ``torch.relu_`` / ``x.relu_()`` / ``inplace=True``, ``F.relu6`` and
``F.hardtanh(x, 0, 6)``). :func:`separate_call_sites` traces the model with torch.fx (the
tracer of :mod:`fastsnn.graph_checks`, which stops at fastsnn's own modules) and returns a
``torch.fx.GraphModule`` in which each such site calls a module of its own. Paths:

- the first call of a shared module keeps the module's path, e.g. ``layer1.0.relu``;
- a later call takes another path under which the same module is registered in the module whose
  ``forward`` makes the call (``nn.Sequential(fc, relu, fc, relu)``: ``1`` and ``3``), else a new path
  in that module, numbered from 1: ``layer1.0.relu_1``, ``layer1.0.relu_2``, …; its module is a copy
  of the shared one (a shared ``QuantReLU`` copies its α and bits);
- a functional call gets a new ``nn.ReLU()`` (``nn.ReLU6()`` for ``relu6`` / ``hardtanh(x, 0, 6)``) in
  the module whose ``forward`` makes the call (``node.meta["nn_module_stack"]``): ``relu_fn``, then
  ``relu_fn1``, ``relu_fn2``, … (``relu6_fn``, ``relu6_fn1``, … for ReLU6), e.g. ``layer2.1.relu_fn``;
  at the top level just ``relu_fn``.

A functional max-pool (``F.max_pool2d`` / ``torch.max_pool2d``, as in torchvision's Inception blocks) becomes
an ``nn.MaxPool2d`` of the same arguments at ``max_pool_fn``, ``max_pool_fn1``, … in the calling module.

The model is traced in eval mode, the mode its spiking network runs in: a ``forward`` that branches on
``self.training`` (GoogLeNet's and Inception's auxiliary heads) keeps its eval branch, in training too.

Names already used by the model are skipped. In-place calls become non-in-place modules, and later
uses of the value they overwrote read the module's output instead, so the graph computes what the
eager model did (except that the caller's input tensor is no longer modified).

Every parameter and buffer keeps its ``state_dict`` key: fx copies the modules ``forward()`` uses
under their qualified names, and whatever it leaves out (an unused submodule or buffer) is put back
at its path, so checkpoints stay readable. The GraphModule shares submodules with ``model``
(callers deep-copy first). A model with nothing to separate is returned itself, keeping its class.

If torch.fx cannot trace ``model`` (e.g. data-dependent control flow), the model is returned
unchanged with a warning naming the module whose ``forward`` stopped the trace and the error.
"""

import copy
import itertools
import warnings
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import fx, nn

from ..graph_checks import _Tracer
from ..model_context import eval_mode
from .activation import QuantReLU

_RELU_MODULES = (nn.ReLU, nn.ReLU6, QuantReLU)  # a module of these types called twice is separated
_RELU_FUNCTIONS = {F.relu: nn.ReLU, torch.relu: nn.ReLU, torch.relu_: nn.ReLU, F.relu6: nn.ReLU6}
_MAX_POOL_FUNCTIONS = {F.max_pool2d, torch.max_pool2d}
_MAX_POOL_ARGUMENTS = (  # F.max_pool2d's arguments after the input, with their defaults
    ("kernel_size", None), ("stride", None), ("padding", 0), ("dilation", 1), ("ceil_mode", False),
    ("return_indices", False),
)  # fmt: skip
_BASE_NAMES = {nn.ReLU: "relu", nn.ReLU6: "relu6", nn.MaxPool2d: "max_pool"}  # of a functional call's module
_RELU_METHODS = {"relu": nn.ReLU, "relu_": nn.ReLU}
_IN_PLACE = {torch.relu_, "relu_"}


def separate_call_sites(model: nn.Module) -> nn.Module:
    """``model``, or a ``torch.fx.GraphModule`` in which every ReLU call site calls its own module.

    See the module docstring for which sites are separated and the paths their modules get.
    Warns (and returns ``model``) when torch.fx cannot trace it.
    """
    separated, blocker = trace_and_separate(model)
    if blocker is not None:
        warn_not_separated(blocker, stacklevel=3)
    return separated


def trace_and_separate(model: nn.Module) -> tuple[nn.Module, str | None]:
    """:func:`separate_call_sites` without the warning: also returns where and why tracing
    failed (``"layer2 (Gate): TraceError: …"``), or None when it did not."""
    tracer = _Tracer()
    try:
        with eval_mode(model):
            graph = tracer.trace(model)
    except Exception as error:  # noqa: BLE001 - any failure only means the sites stay as they are
        # an exception leaves the modules being traced on the tracer's stack, innermost last
        path, module_type = next(reversed(tracer.module_stack.values()), ("", type(model)))
        reason = (str(error).strip().splitlines() or [""])[0]
        return model, f"{path or 'the model'} ({module_type.__name__}): {type(error).__name__}: {reason}"
    called: set[str] = set()
    sites = [(node, module) for node in graph.nodes if (module := _own_module(node, model, called)) is not None]
    if not sites:
        return model, None
    graph_module = fx.GraphModule(model, graph)
    taken = {path for path, _ in model.named_modules(remove_duplicate=False)} | set(model.state_dict())
    taken |= {node.target for node in graph.nodes if node.op == "get_attr"}
    for node, module in sites:
        _call_own_module(graph_module, model, node, module, taken)
    graph_module.graph.lint()
    graph_module.recompile()
    _put_back_unused_state(model, graph_module)
    return graph_module, None


def warn_not_separated(blocker: str, stacklevel: int) -> None:
    """Warn that tracing stopped at ``blocker`` (from :func:`trace_and_separate`)."""
    warnings.warn(
        f"torch.fx could not trace {blocker}; shared or functional ReLUs in forward() were not separated "
        "(a reused ReLU module keeps one quantizer, F.relu stays functional)",
        stacklevel=stacklevel,
    )


def _own_module(node: fx.Node, model: nn.Module, called: set[str]) -> nn.Module | None:
    """The module the call site ``node`` gets, or None if it needs none; ``called`` collects the
    module paths called so far, in graph order."""
    if node.op == "call_module":
        repeat = node.target in called
        called.add(node.target)
        module = model.get_submodule(node.target)
        return copy.deepcopy(module) if repeat and type(module) in _RELU_MODULES else None
    if node.op == "call_function" and node.target in _MAX_POOL_FUNCTIONS:
        options = {name: _argument(node, 1 + i, name, default) for i, (name, default) in enumerate(_MAX_POOL_ARGUMENTS)}
        return nn.MaxPool2d(**options)
    if node.op == "call_method":
        kind = _RELU_METHODS.get(node.target)
    elif node.op == "call_function" and node.target is F.hardtanh:
        clips_at_six = _argument(node, 1, "min_val", -1.0) == 0 and _argument(node, 2, "max_val", 1.0) == 6
        kind = nn.ReLU6 if clips_at_six else None
    else:
        kind = _RELU_FUNCTIONS.get(node.target) if node.op == "call_function" else None
    return None if kind is None else kind()


def _call_own_module(
    graph_module: fx.GraphModule, model: nn.Module, node: fx.Node, module: nn.Module, taken: set[str]
) -> None:
    """Register ``module`` at a free path next to the call ``node`` and make the call use it."""
    caller = _calling_module_path(node)
    if node.op == "call_module":
        name = node.target.rpartition(".")[2]
        path = _alias(model, node.target, caller, graph_module) or _free_path(
            caller, (f"{name}_{k}" for k in itertools.count(1)), taken
        )
        graph_module.add_submodule(path, module)
        node.target = path
        return
    base = _BASE_NAMES[type(module)]
    path = _free_path(caller, itertools.chain([f"{base}_fn"], (f"{base}_fn{k}" for k in itertools.count(1))), taken)
    graph_module.add_submodule(path, module)
    value = node.args[0]
    with graph_module.graph.inserting_after(node):
        call = graph_module.graph.call_module(path, (value,))
    call.meta = dict(node.meta)
    node.replace_all_uses_with(call)
    in_place = node.target in _IN_PLACE or (
        node.target not in _MAX_POOL_FUNCTIONS
        and _argument(node, 3 if node.target is F.hardtanh else 1, "inplace", False)
    )
    if in_place:
        for later in _later_nodes(call):  # they read the overwritten value in eager mode
            later.replace_input_with(value, call)
    graph_module.graph.erase_node(node)


def _alias(model: nn.Module, target: str, caller: str, graph_module: fx.GraphModule) -> str | None:
    """Another path of the module at ``target``, registered directly in ``caller`` and not yet in use."""
    shared = model.get_submodule(target)
    for path, module in model.named_modules(remove_duplicate=False):
        if module is shared and path.rpartition(".")[0] == caller and not _has_submodule(graph_module, path):
            return path
    return None


def _has_submodule(module: nn.Module, path: str) -> bool:
    try:
        module.get_submodule(path)
    except AttributeError:
        return False
    return True


def _free_path(parent: str, names: Iterator[str], taken: set[str]) -> str:
    """The first ``parent.name`` not in ``taken``, which it joins."""
    for name in names:
        path = f"{parent}.{name}" if parent else name
        if path not in taken:
            taken.add(path)
            return path
    raise AssertionError("unreachable: names is endless")


def _calling_module_path(node: fx.Node) -> str:
    """Path of the module whose ``forward`` makes the call of ``node`` ("" for the model's own)."""
    stack = list((node.meta.get("nn_module_stack") or {}).values())
    if node.op == "call_module":
        stack = stack[:-1]  # the last entry is the called module itself
    return stack[-1][0] if stack else ""


def _argument(node: fx.Node, index: int, name: str, default):
    """Argument ``name`` of a call, passed by position (at ``index``) or keyword."""
    return node.args[index] if len(node.args) > index else node.kwargs.get(name, default)


def _later_nodes(node: fx.Node) -> Iterator[fx.Node]:
    while node.next.op != "root":
        node = node.next
        yield node


def _put_back_unused_state(model: nn.Module, graph_module: fx.GraphModule) -> None:
    """Attach every parameter / buffer of ``model`` that fx did not copy at its own path."""
    present = graph_module.state_dict().keys()
    for key, tensor in model.state_dict(keep_vars=True).items():
        if key in present:
            continue
        owner_path, _, name = key.rpartition(".")
        owner = model.get_submodule(owner_path)
        if not _has_submodule(graph_module, owner_path):
            graph_module.add_submodule(owner_path, owner)  # brings the owner's other entries along
            continue
        copied_owner = graph_module.get_submodule(owner_path)
        if copied_owner is owner:
            continue
        if isinstance(tensor, nn.Parameter):
            copied_owner.register_parameter(name, tensor)
        else:
            copied_owner.register_buffer(name, tensor)
