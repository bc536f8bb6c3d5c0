"""``--save-predictions``: pictures of what the networks predict, side by side, for a person to look at."""

import functools
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn
from torchvision.utils import draw_bounding_boxes

from ..data.segmentation_sets import voc_palette
from ..model_context import device_of, eval_mode
from ..tasks import Task
from ..tasks.boxes import objects_of
from ..tasks.detection import REFERENCE_SCORE, detections_of
from ..tasks.segmentation import IGNORE_INDEX

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
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    predicted = {}
    with eval_mode(*models.values()):
        for label, model in models.items():
            predicted[label] = task.decode(model(images.to(device_of(model)))).cpu()
    pixels = (images * torch.tensor(std).view(1, -1, 1, 1) + torch.tensor(mean).view(1, -1, 1, 1)).clamp(0, 1)
    draw = _draw_boxes if task.name == "detection" else _draw_mask
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for index in range(images.shape[0]):
        image = pixels[index]
        panels = {"image": image.permute(1, 2, 0).squeeze(-1), "ground truth": draw(image, targets[index], True)}
        panels |= {label: draw(image, prediction[index], False) for label, prediction in predicted.items()}
        figure, axes = plt.subplots(1, len(panels), figsize=(2.4 * len(panels), 2.6))
        for axis, (title, panel) in zip(axes, panels.items(), strict=True):
            axis.imshow(panel.numpy(), cmap="gray" if panel.dim() == 2 else None, interpolation="nearest")
            axis.set_title(title, fontsize=8)
            axis.axis("off")
        figure.tight_layout()
        path = folder / f"prediction_{index:03d}.png"
        figure.savefig(path, dpi=100)
        plt.close(figure)
        written.append(path)
    return written


def _draw_mask(image: torch.Tensor, mask: torch.Tensor, is_target: bool) -> torch.Tensor:
    """A class mask ``[H, W]`` as VOC colours ``[H, W, 3]`` uint8 (ignored pixels white)."""
    return _mask_palette()[mask.long()]


@functools.cache
def _mask_palette() -> torch.Tensor:
    """The VOC palette ``[256, 3]`` with :data:`IGNORE_INDEX` white, built once (it is only read)."""
    palette = voc_palette()
    palette[IGNORE_INDEX] = 255
    return palette


def _draw_boxes(image: torch.Tensor, boxes: torch.Tensor, is_target: bool) -> torch.Tensor:
    """``image [C, H, W]`` in [0, 1] with padded target boxes ``[M, 5]`` or detections ``[K, 6]`` drawn:
    ``[H, W, 3]`` uint8."""
    if is_target:
        found, labels = objects_of(boxes)
    else:
        detections = detections_of(boxes)
        confident = detections["scores"] >= REFERENCE_SCORE
        found, labels = detections["boxes"][confident], detections["labels"][confident]
    pixels = (image.expand(3, -1, -1) * 255).round().to(torch.uint8)
    if found.shape[0]:
        colours = [BOX_COLOURS[int(label) % len(BOX_COLOURS)] for label in labels]
        pixels = draw_bounding_boxes(pixels, found, colors=colours, width=1)
    return pixels.permute(1, 2, 0)
