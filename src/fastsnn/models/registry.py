"""Registry of model builders: ``register_model``, ``create_model``, ``list_models``.

A builder is a keyword-only function ``name(*, num_classes, in_channels, ...)``
that returns a fresh ``nn.Module``; it is registered under its ``__name__``.
Names with a prefix, ``"torchvision:<name>"`` and ``"timm:<name>"``, are classifiers of those libraries
(:mod:`fastsnn.models.zoo`), accepted wherever a registered name is, but not listed.
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable
from typing import TypeVar

from torch import nn

from fastsnn.errors import OptionError
from fastsnn.models.zoo import SOURCES, build_zoo_model, check_zoo_name, is_zoo_name

__all__ = ["register_model", "create_model", "list_models", "model_options", "model_task"]

Builder = TypeVar("Builder", bound=Callable[..., nn.Module])

_MODELS: dict[str, Callable[..., nn.Module]] = {}
_TASKS: dict[str, str] = {}  # model name -> the task its output serves (see fastsnn.tasks)


def register_model(fn: Builder | None = None, *, task: str = "classification"):
    """Register ``fn`` as a model builder under ``fn.__name__`` for ``task``; return ``fn`` unchanged.

    Use as ``@register_model`` (classification) or ``@register_model(task="segmentation")``.
    Raises ``ValueError`` if the name is already registered and ``TypeError`` if
    ``fn`` cannot take ``num_classes`` and ``in_channels`` as keywords.
    """
    if fn is None:
        return lambda builder: register_model(builder, task=task)
    if not callable(fn):
        raise TypeError(f"register_model expects a function, got {type(fn).__name__}")
    name = fn.__name__
    if name in _MODELS:
        raise ValueError(f"a model named {name!r} is already registered")
    accepted = _accepted_options(fn)
    if accepted is not None:
        missing = [opt for opt in ("num_classes", "in_channels") if opt not in accepted]
        if missing:
            raise TypeError(f"model builder {name!r} must accept keyword(s) {', '.join(missing)}")
    _MODELS[name] = fn
    _TASKS[name] = task
    return fn


def list_models() -> list[str]:
    """Return the names of all registered models, sorted (not the ``torchvision:`` / ``timm:`` names)."""
    return sorted(_MODELS)


def model_task(name: str) -> str:
    """The task of model ``name`` (``"classification"``, ``"segmentation"``, ...)."""
    return _entry(name)[1]


def model_options(name: str) -> set[str] | None:
    """The keyword options model ``name`` accepts besides ``num_classes`` and ``in_channels``
    (None if its builder takes ``**kwargs``)."""
    accepted = _accepted_options(_entry(name)[0])
    return None if accepted is None else accepted - {"num_classes", "in_channels"}


def create_model(name: str, num_classes: int = 10, in_channels: int = 3, **kwargs) -> nn.Module:
    """Build model ``name``: ``[B, in_channels, H, W]`` to ``[B, num_classes]`` (classifiers, among them
    ``"torchvision:<name>"`` and ``"timm:<name>"``), ``[B, num_classes, H, W]`` (segmentation) or
    ``[B, A * (5 + num_classes), H / 32, W / 32]`` (detection: the YOLOv2 builders, ``A`` anchors).

    Extra keyword arguments are the builder's options (e.g. ``width``, ``stem``).
    Raises :class:`~fastsnn.errors.OptionError` for an unknown name or an option the
    builder does not accept, naming the culprit and the accepted values.
    """
    builder = _entry(name)[0]
    accepted = _accepted_options(builder)
    if accepted is not None:
        unknown = sorted(set(kwargs) - accepted)
        if unknown:
            raise OptionError(
                unknown[0], f"is not an option of model {name!r} (unknown: {', '.join(map(repr, unknown))}); "
                f"{name} accepts: {', '.join(sorted(accepted))}"
            )  # fmt: skip
    return builder(num_classes=num_classes, in_channels=in_channels, **kwargs)


def _entry(name: str) -> tuple[Callable[..., nn.Module], str]:
    """The builder of model ``name`` and its task; OptionError naming the closest known name otherwise."""
    if is_zoo_name(name):
        check_zoo_name(name)
        return functools.partial(build_zoo_model, name), "classification"
    builder = _MODELS.get(name) if isinstance(name, str) else None
    if builder is None:
        known = list_models()
        close = difflib.get_close_matches(str(name), known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        zoo = " or ".join(f"{source}:<name>" for source in SOURCES)
        raise OptionError(
            "model", f"{name!r} is not known{hint}; known models: {', '.join(known) or '(none)'}, or a classifier {zoo}"
        )
    return builder, _TASKS[name]


def _accepted_options(fn: Callable) -> set[str] | None:
    """Keyword names ``fn`` accepts, or ``None`` if it takes ``**kwargs``."""
    params = inspect.signature(fn).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {
        p.name for p in params if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    }
