"""Vision tasks: each owns its loss, the decoding of the network's output, its metrics and agreement.

Training, evaluation, fine-tuning and the CLI are task-generic: they ask a :class:`Task` for what
differs between classification and segmentation (and detection next)::

    task = create_task("segmentation", num_classes=11)
    loss = task.loss(model(images), masks)
    meter = task.meter()
    meter.update(task.decode(model(images)), masks)
    meter.compute()        # {"mIoU": ..., "pixel accuracy": ...}
"""

from .base import Meter, Task
from .classification import Classification
from .segmentation import Segmentation

TASKS: dict[str, type[Task]] = {"classification": Classification, "segmentation": Segmentation}


def create_task(name: str, *, num_classes: int) -> Task:
    """The task called ``name`` (one of :data:`TASKS`) for ``num_classes`` classes."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    return TASKS[name](num_classes)


__all__ = ["TASKS", "Classification", "Meter", "Segmentation", "Task", "create_task"]
