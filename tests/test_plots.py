"""Plots: the library returns matplotlib Figures with the measured lines, the workflows save them as PNGs, and
nothing touches matplotlib's global state (its backend, pyplot)."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import torch
from matplotlib.image import imread
from torch import nn

from fastsnn.analysis import ActivityReport, ConversionErrors, LayerActivity, plot_conversion_errors
from fastsnn.analysis.activity_plot import plot_activity
from fastsnn.data.segmentation_sets import voc_palette
from fastsnn.tasks import Segmentation
from fastsnn.tasks.detection import REFERENCE_SCORE
from fastsnn.tasks.segmentation import IGNORE_INDEX
from fastsnn.workflows.analyze import save_analysis
from fastsnn.workflows.predictions import BOX_COLOURS, _confident, _draw_boxes, _draw_mask, save_predictions

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ERRORS = ConversionErrors(
    layers=["features.1", "features.4", "classifier.1"],
    samples=7,
    quantization=[0.01, 0.02, 0.03],
    accumulating={"unsigned": [0.0, 0.4, 0.9], "signed": [0.0, 0.1, 0.2], "fine-tuned": [0.0, 0.05, 0.1]},
    output={"unsigned": 1.5, "signed": 0.3, "fine-tuned": 0.1},
)


def layer(name: str, kind: str, *, firing_rate: float | None = None, sops: float = 0, macs: float = 0):
    return LayerActivity(name, kind, None, 8, 0.0, 0.0, firing_rate, sops, macs, macs + sops)


REPORTS = {
    "QANN": ActivityReport([layer("0", "conv", macs=900), layer("3", "linear", macs=40)], images=4, T=1),
    "signed": ActivityReport(
        [
            layer("0", "conv", macs=900),
            layer("1", "neuron", firing_rate=0.25),
            layer("3", "linear", sops=12),
            layer("4", "neuron", firing_rate=0.5),
        ],
        images=4,
        T=3,
    ),
}


def ydata(line) -> list:
    return [float(y) for y in line.get_ydata()]


def test_conversion_error_figure_draws_the_quantization_error_then_one_line_per_variant():
    figure = plot_conversion_errors(ERRORS, title="mnist vgg11")
    (axes,) = figure.axes
    lines = axes.get_lines()
    assert [line.get_label() for line in lines] == [
        "quantization (float ANN vs QANN)",
        "SNN unsigned vs QANN",
        "SNN signed vs QANN",
        "SNN fine-tuned vs QANN",
    ]
    assert [ydata(line) for line in lines] == [ERRORS.quantization, *ERRORS.accumulating.values()]
    assert all(list(line.get_xdata()) == [1, 2, 3] for line in lines)
    assert [label.get_text() for label in axes.get_xticklabels()] == ERRORS.layers
    assert axes.get_title() == "mnist vgg11"
    without_float = plot_conversion_errors(dataclasses.replace(ERRORS, quantization=None)).axes[0]
    assert [ydata(line) for line in without_float.get_lines()] == list(ERRORS.accumulating.values())
    assert "7 images" in without_float.get_title()


def test_activity_figure_draws_firing_rates_of_spiking_layers_and_operations_of_synaptic_ones():
    rates, operations = plot_activity(REPORTS).axes
    (signed,) = rates.get_lines()  # the QANN has no spiking layer
    assert signed.get_label() == "signed" and list(signed.get_xdata()) == ["1", "4"]
    assert ydata(signed) == [0.25, 0.5]
    assert [line.get_label() for line in operations.get_lines()] == ["QANN (T=1)", "signed (T=3)"]
    assert [ydata(line) for line in operations.get_lines()] == [[900, 40], [900, 12]]
    assert operations.get_yscale() == "log"


def test_analysis_writes_its_records_and_pictures(tmp_path):
    written = save_analysis(ERRORS, tmp_path / "analysis", reports=REPORTS, title="run")
    names = ["conversion_errors.json", "conversion_errors.png", "activity.json", "activity.png"]
    assert written == [tmp_path / "analysis" / name for name in names]
    assert ConversionErrors(**json.loads(written[0].read_text())) == ERRORS
    assert json.loads(written[2].read_text())["signed"]["T"] == 3
    for picture, figure in ((written[1], plot_conversion_errors(ERRORS)), (written[3], plot_activity(REPORTS))):
        assert picture.read_bytes()[:8] == PNG_SIGNATURE
        width, height = figure.get_size_inches() * 120  # saved at 120 dpi
        assert imread(picture).shape[:2] == (round(height), round(width))
    assert sorted(path.name for path in (tmp_path / "analysis").iterdir()) == sorted(names), "no temporary left"


def test_predictions_put_the_image_its_target_and_each_model_side_by_side(tmp_path):
    images, masks = torch.randn(2, 3, 8, 8), torch.randint(0, 3, (2, 8, 8))
    models = {"QANN": nn.Conv2d(3, 3, 1), "SNN signed": nn.Conv2d(3, 3, 1)}
    written = save_predictions(models, images, masks, Segmentation(3), tmp_path, mean=(0.5,) * 3, std=(0.25,) * 3)
    assert written == [tmp_path / "prediction_000.png", tmp_path / "prediction_001.png"]
    for picture in written:
        assert picture.read_bytes()[:8] == PNG_SIGNATURE
        assert imread(picture).shape[:2] == (260, 4 * 240), "four 2.4 x 2.6 inch panels at 100 dpi"


def test_masks_are_drawn_in_voc_colours_with_ignored_pixels_white():
    mask = torch.tensor([[0, 1], [IGNORE_INDEX, 20]])
    palette = voc_palette()
    expected = torch.stack([torch.stack([palette[0], palette[1]]), torch.stack([torch.full((3,), 255), palette[20]])])
    assert torch.equal(_draw_mask(mask), expected.to(torch.uint8))


def test_boxes_are_drawn_in_their_class_colour_and_only_confident_detections_are_drawn():
    detections = torch.tensor(
        [
            [1.0, 1.0, 6.0, 6.0, REFERENCE_SCORE, 1.0],
            [2.0, 2.0, 4.0, 4.0, REFERENCE_SCORE / 2, 2.0],
            [-1.0, -1.0, -1.0, -1.0, -1.0, -1.0],  # padding
        ]
    )
    boxes, labels = _confident(detections)
    assert boxes.tolist() == [[1.0, 1.0, 6.0, 6.0]] and labels.tolist() == [1]
    drawn = _draw_boxes(torch.zeros(1, 8, 8), boxes, labels)  # a black grey-scale image
    assert drawn.shape == (8, 8, 3) and drawn.dtype == torch.uint8
    assert BOX_COLOURS[1] == "red" and drawn[1, 3].tolist() == [255, 0, 0] and drawn[6, 3].tolist() == [255, 0, 0]
    assert drawn[3, 3].tolist() == [0, 0, 0] and drawn[0, 0].tolist() == [0, 0, 0], "inside and outside untouched"


def test_drawing_leaves_matplotlib_backend_and_pyplot_alone(tmp_path):
    """In a fresh process on a non-Agg backend, with ``matplotlib.use`` refusing: every picture is drawn and
    saved, the backend is unchanged and pyplot never imported (a notebook keeps its inline plots)."""
    probe = f"""
import sys
import matplotlib
matplotlib.rcParams["backend"] = "svg"
def refuse(*args, **kwargs):
    raise AssertionError("matplotlib.use was called")
matplotlib.use = refuse
sys.path.insert(0, {str(Path(__file__).parent)!r})
import test_plots
from pathlib import Path
test_plots.test_analysis_writes_its_records_and_pictures(Path({str(tmp_path / "analysis")!r}))
test_plots.test_predictions_put_the_image_its_target_and_each_model_side_by_side(Path({str(tmp_path)!r}))
print(matplotlib.rcParams["backend"], "matplotlib.pyplot" in sys.modules)
"""
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["svg", "False"]
