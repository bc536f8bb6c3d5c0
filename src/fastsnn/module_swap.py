"""Replace modules inside a model by path, the one mechanism behind quantize() and convert()."""

from collections.abc import Callable

from torch import nn


def swap_modules_(model: nn.Module, replacement: Callable[[str, nn.Module], nn.Module | None]) -> int:
    """Replace, in place, every submodule for which ``replacement(path, module)`` returns a module.

    A module object reachable from several places (e.g. one ReLU reused twice) is asked once and
    replaced by the same new object everywhere, so sharing is preserved. Returns how many distinct
    modules were replaced.
    """
    new_for: dict[int, nn.Module | None] = {}
    for parent_path, parent in list(model.named_modules()):
        # parent._modules, not named_children(): the latter skips a module's second slot
        for child_name, child in list(parent._modules.items()):
            if child is None:
                continue
            if id(child) not in new_for:
                new_for[id(child)] = replacement(f"{parent_path}.{child_name}" if parent_path else child_name, child)
            if new_for[id(child)] is not None:
                setattr(parent, child_name, new_for[id(child)])
    return sum(new is not None for new in new_for.values())
