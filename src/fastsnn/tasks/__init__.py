"""Vision tasks: each owns its loss, the decoding of the network's output, its metrics and agreement.

Training, evaluation, fine-tuning and the CLI are task-generic: they ask a :class:`Task` for what
differs between classification, segmentation and detection::

    task = create_task("segmentation", num_classes=11)
    options = task.prepare(train_set, dataset_info(name))   # model options from the training set ({} here)
    loss = task.loss(model(images), masks)
    meter = task.meter()
    meter.update(task.decode(model(images)), masks)
    meter.compute()        # {"mIoU": ..., "pixel accuracy": ...}
"""

from .base import Meter, Task
from .classification import Classification
from .detection import Detection
from .segmentation import Segmentation

TASKS: dict[str, type[Task]] = {
    "classification": Classification,
    "segmentation": Segmentation,
    "detection": Detection,
}


def create_task(name: str, *, num_classes: int, **options) -> Task:
    """The task called ``name`` (one of :data:`TASKS`) for ``num_classes`` classes; ``options`` are the
    task's own (detection: ``anchors``)."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    return TASKS[name](num_classes, **options)


__all__ = ["TASKS", "Classification", "Detection", "Meter", "Segmentation", "Task", "create_task"]
