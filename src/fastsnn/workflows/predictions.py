"""``--save-predictions``: pictures of what the networks predict, side by side, for a person to look at."""

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn
from torchvision.utils import draw_bounding_boxes

from ..atomic_file import atomic_path
from ..data.segmentation_sets import voc_palette
from ..model_context import device_of, eval_mode
from ..tasks import Task
from ..tasks.boxes import objects_of
from ..tasks.detection import REFERENCE_SCORE, detections_of
from ..tasks.segmentation import IGNORE_INDEX

if TYPE_CHECKING:
    from matplotlib.figure import Figure

BOX_COLOURS = ("lime", "red", "cyan", "yellow", "magenta", "orange", "white", "blue", "pink", "brown")


@torch.no_grad()
def save_predictions(
    models: Mapping[str, nn.Module],
    images: torch.Tensor,
    targets: torch.Tensor,
    task: Task,
    folder: str | Path,
    *,
    mean: tuple[float, ...],
    std: tuple[float, ...],
) -> list[Path]:
    """One PNG per image of ``images [N, C, H, W]`` (normalised with ``mean``/``std``): the image, its target
    and each model's decoded prediction, side by side. Segmentation: masks ``[N, H, W]`` in the VOC palette;
    detection: boxes drawn on the image (detections of score >= REFERENCE_SCORE), one colour per class."""
    predicted = {}
    with eval_mode(*models.values()):
        for label, model in models.items():
            predicted[label] = task.decode(model(images.to(device_of(model)))).cpu()
    pixels = (images * torch.tensor(std).view(1, -1, 1, 1) + torch.tensor(mean).view(1, -1, 1, 1)).clamp(0, 1)
    detection = task.name == "detection"
    folder = Path(folder)
    written = []
    for index in range(images.shape[0]):
        image = pixels[index]
        drawn = {"ground truth": (targets[index], objects_of)}  # objects_of / _confident: boxes and labels to draw
        drawn |= {label: (prediction[index], _confident) for label, prediction in predicted.items()}
        panels = {"image": image.permute(1, 2, 0).squeeze(-1)}
        for title, (labelled, objects) in drawn.items():
            panels[title] = _draw_boxes(image, *objects(labelled)) if detection else _draw_mask(labelled)
        path = folder / f"prediction_{index:03d}.png"
        with atomic_path(path) as temporary:
            _side_by_side(panels).savefig(temporary, format="png", dpi=100)
        written.append(path)
    return written


def _side_by_side(panels: Mapping[str, torch.Tensor]) -> "Figure":
    """A figure of one titled picture per panel (``[H, W]`` grey in [0, 1] or ``[H, W, 3]`` colour), left to right."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(2.4 * len(panels), 2.6))
    for axis, (title, panel) in zip(figure.subplots(1, len(panels), squeeze=False)[0], panels.items(), strict=True):
        axis.imshow(panel.numpy(), cmap="gray" if panel.dim() == 2 else None, interpolation="nearest")
        axis.set_title(title, fontsize=8)
        axis.axis("off")
    figure.tight_layout()
    return figure


def _draw_mask(mask: torch.Tensor) -> torch.Tensor:
    """A class mask ``[H, W]`` as VOC colours ``[H, W, 3]`` uint8 (ignored pixels white)."""
    return _mask_palette()[mask.long()]


@functools.cache
def _mask_palette() -> torch.Tensor:
    """The VOC palette ``[256, 3]`` with :data:`IGNORE_INDEX` white, built once (it is only read)."""
    palette = voc_palette()
    palette[IGNORE_INDEX] = 255
    return palette


def _confident(detections: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The boxes ``[n, 4]`` and labels ``[n]`` of padded detections ``[K, 6]`` scored >= REFERENCE_SCORE."""
    found = detections_of(detections)
    confident = found["scores"] >= REFERENCE_SCORE
    return found["boxes"][confident], found["labels"][confident]


def _draw_boxes(image: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``image [C, H, W]`` in [0, 1] with ``boxes [n, 4]`` (x1, y1, x2, y2 pixels) drawn, coloured by
    ``labels [n]``: ``[H, W, 3]`` uint8."""
    pixels = (image.expand(3, -1, -1) * 255).round().to(torch.uint8)
    if boxes.shape[0]:
        colours = [BOX_COLOURS[int(label) % len(BOX_COLOURS)] for label in labels]
        pixels = draw_bounding_boxes(pixels, boxes, colors=colours, width=1)
    return pixels.permute(1, 2, 0)
