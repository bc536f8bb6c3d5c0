"""Data sets by name: ``register_dataset``, ``dataset_info``, ``list_datasets``, ``load_dataset``, ``fetch_dataset``.

A data set is declared once, next to its loader, with its :class:`DatasetInfo` and its fetcher::

    MNIST = DatasetInfo("mnist", 1, 10, 28, (0.1307,), (0.3081,))

    @register_dataset(MNIST, fetch=fetch_mnist)
    def load_mnist(root: Path, *, train: bool, augment: bool = False) -> Dataset: ...

or, for a loader shared by several sets, with one call: ``register_dataset(info, load=partial(load_scenes,
"mnist"), fetch=fetch_mnist)``. A loader is ``load(root, *, train, augment) -> Dataset``, a fetcher
``fetch(root, *, download) -> report`` (its ``str`` is what :func:`fetch_dataset` returns).
Importing :mod:`fastsnn.data` registers every data set of the package.

Besides the registered names, ``folder:PATH`` names the user's own images in ``ImageFolder`` layout
(:mod:`fastsnn.data.folder`): its info is measured from the folder, and the data root plays no part.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import Dataset

from fastsnn.data.folder import FOLDER_PREFIX, fetch_folder, folder_info, folder_path, load_folder
from fastsnn.data.info import DatasetInfo
from fastsnn.data.root import resolve_root
from fastsnn.data.transforms import refuse_test_augment
from fastsnn.errors import DataError

Loader = Callable[..., Dataset]  # load(root: Path, *, train: bool, augment: bool) -> Dataset
Fetcher = Callable[..., object]  # fetch(root: Path, *, download: bool) -> report


@dataclass(frozen=True)
class RegisteredDataset:
    """One data set: its static facts, how to load a split, how to locate and verify its files."""

    info: DatasetInfo
    load: Loader
    fetch: Fetcher


_DATASETS: dict[str, RegisteredDataset] = {}


def register_dataset(info: DatasetInfo, *, fetch: Fetcher, load: Loader | None = None):
    """Register data set ``info.name`` with its loader and fetcher; returns the loader unchanged.

    Use as ``@register_dataset(info, fetch=fetch_x)`` on the loader, or call it with ``load=``.
    Raises ``ValueError`` if the name is already registered and ``TypeError`` if ``info`` is not a
    :class:`DatasetInfo` or the loader or the fetcher is not callable.
    """
    if not isinstance(info, DatasetInfo):
        raise TypeError(f"register_dataset expects a DatasetInfo, got {type(info).__name__}")
    if load is None:
        return lambda loader: register_dataset(info, fetch=fetch, load=loader)
    for role, function in (("loader", load), ("fetcher", fetch)):
        if not callable(function):
            raise TypeError(f"the {role} of data set {info.name!r} must be callable, got {type(function).__name__}")
    if info.name in _DATASETS:
        raise ValueError(f"a data set named {info.name!r} is already registered")
    _DATASETS[info.name] = RegisteredDataset(info, load, fetch)
    return load


def list_datasets() -> list[str]:
    """The registered data sets, sorted: names accepted by :func:`dataset_info`, :func:`load_dataset` and
    :func:`fetch_dataset`, as is ``folder:PATH`` (the user's images)."""
    return sorted(_DATASETS)


def registered_dataset(name: str) -> RegisteredDataset:
    """The registration of data set ``name`` (for ``folder:PATH``, made from the measured folder); raises
    :class:`DataError` for an unknown name or a folder that cannot be used."""
    if isinstance(name, str) and name.startswith(FOLDER_PREFIX):
        return _folder_dataset(folder_path(name))
    if not isinstance(name, str) or name not in _DATASETS:
        raise DataError(
            f"Unknown data set {name!r}; choose one of: {', '.join(list_datasets())}, or folder:PATH for your own "
            "images (PATH/train/<class>/<image> and PATH/val/<class>/<image>)."
        )
    return _DATASETS[name]


def _folder_dataset(path: Path) -> RegisteredDataset:
    """The image folder ``path`` as a registration: its measured info, a loader and a fetcher ignoring the root."""
    info = folder_info(path)
    return RegisteredDataset(
        info,
        load=lambda _root, *, train, augment=False: load_folder(path, train=train, augment=augment, info=info),
        fetch=lambda _root, *, download: fetch_folder(path),
    )


def dataset_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of data set ``name``; raises :class:`DataError` for an unknown name."""
    return registered_dataset(name).info


def load_dataset(name: str, *, train: bool, root: str | Path | None = None, augment: bool = False) -> Dataset:
    """One split of data set ``name``; items ``(image float32 [C, H, W], label int)``, for a segmentation
    set ``(image float32 [C, H, W], mask int64 [H, W])``, for a detection set ``(image float32 [C, H, W],
    boxes float32 [MAX_OBJECTS, 5])`` (:mod:`fastsnn.tasks.boxes`).

    Images are normalised with ``dataset_info(name).mean/std``. ``augment``
    (training split only) adds the data set's random crops/flips. ``root``
    defaults to :func:`default_data_root`. Nothing is downloaded here; run
    :func:`fetch_dataset` first.
    """
    dataset = registered_dataset(name)
    refuse_test_augment(name, train=train, augment=augment)
    return dataset.load(resolve_root(root), train=train, augment=augment)


def fetch_dataset(name: str, *, root: str | Path | None = None, download: bool = True) -> str:
    """Locate (for MNIST and the tree images, download if allowed), verify and count data set ``name``
    (for ``folder:PATH``, read and measure every image there); returns a short report.

    Raises :class:`DataError` saying what to do when the data set cannot be had.
    """
    return str(registered_dataset(name).fetch(resolve_root(root), download=download))
