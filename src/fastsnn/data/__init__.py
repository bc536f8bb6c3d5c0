"""Data sets and their offline sources.

    info = dataset_info("cifar10")                     # channels, classes, size, mean/std
    print(fetch_dataset("mnist"))                      # what `fastsnn data mnist` runs
    train_set = load_dataset("mnist", train=True, augment=True)
    image, label = train_set[0]                        # float32 [1, 28, 28], int

Files live under :func:`default_data_root` (``$FASTSNN_DATA`` or
``~/.cache/fastsnn``) unless ``root`` is given. Every user-facing problem
raises :class:`fastsnn.errors.DataError`.
"""

from fastsnn.data.info import DatasetInfo, dataset_info, list_datasets
from fastsnn.data.registry import fetch_dataset, load_dataset
from fastsnn.data.root import default_data_root

__all__ = [
    "DatasetInfo",
    "dataset_info",
    "default_data_root",
    "fetch_dataset",
    "list_datasets",
    "load_dataset",
]
