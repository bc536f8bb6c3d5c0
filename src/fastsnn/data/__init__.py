"""Data sets and their offline sources.

    info = dataset_info("cifar10")                     # channels, classes, size, mean/std
    print(fetch_dataset("mnist"))                      # what `fastsnn data mnist` runs
    train_set = load_dataset("mnist", train=True, augment=True)
    image, label = train_set[0]                        # float32 [1, 28, 28], int
    own = load_dataset("folder:~/pets", train=True)    # ~/pets/{train,val}/<class>/<image>, see folder_info

Files live under :func:`default_data_root` (``$FASTSNN_DATA`` or
``~/.cache/fastsnn``) unless ``root`` is given. Every user-facing problem
raises :class:`fastsnn.errors.DataError`. Each data set registers itself
(:func:`register_dataset`) in the module of its loader; importing this package
imports them all.
"""

from fastsnn.data import (  # noqa: F401 - each module registers its data sets
    detection_sets,
    fashion_mnist,
    mnist,
    scene_boxes,
    scenes,
    segmentation_sets,
    torchvision_sets,
    trees,
)
from fastsnn.data.folder import folder_info, load_folder
from fastsnn.data.info import DatasetInfo
from fastsnn.data.registry import dataset_info, fetch_dataset, list_datasets, load_dataset, register_dataset
from fastsnn.data.root import default_data_root

__all__ = [
    "DatasetInfo",
    "dataset_info",
    "default_data_root",
    "fetch_dataset",
    "folder_info",
    "list_datasets",
    "load_dataset",
    "load_folder",
    "register_dataset",
]
