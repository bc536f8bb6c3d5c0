"""``--save-predictions``: pictures of what the networks predict, side by side, for a person to look at."""

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from ..data.segmentation_sets import voc_palette
from ..model_context import device_of, eval_mode
from ..tasks import Task
from ..tasks.segmentation import IGNORE_INDEX


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
    ``[N, H, W]`` and each model's decoded prediction, side by side, classes in the VOC palette."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    predicted = {}
    with eval_mode(*models.values()):
        for label, model in models.items():
            predicted[label] = task.decode(model(images.to(device_of(model)))).cpu()
    palette = voc_palette()
    palette[IGNORE_INDEX] = 255  # ignored pixels drawn white
    pixels = images * torch.tensor(std).view(1, -1, 1, 1) + torch.tensor(mean).view(1, -1, 1, 1)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for index in range(images.shape[0]):
        panels = {
            "image": pixels[index].clamp(0, 1).permute(1, 2, 0).squeeze(-1),
            "ground truth": palette[targets[index].long()],
        }
        panels |= {label: palette[prediction[index]] for label, prediction in predicted.items()}
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
