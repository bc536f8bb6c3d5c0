"""The user's own network on the user's own images, end to end through the command line:
``fastsnn train --model torchvision:resnet18 --dataset folder:PATH``, then ``fastsnn evaluate`` of its SNN."""

import json
from pathlib import Path

import pytest
from PIL import Image

import fastsnn.data.fashion_mnist as fashion
import fastsnn.data.folder as folder
from fastsnn import QuantReLU, convert
from fastsnn.cli import main
from fastsnn.data import dataset_info
from fastsnn.neuron import SpikingMaxPool
from fastsnn.workflows.checkpoint import load_checkpoint
from helpers import N_TRAIN, write_folder

pytestmark = pytest.mark.skipif(
    not all((fashion.SYSTEM_DIRS[0] / (stem + ".gz")).is_file() for stem in fashion.FASHION_MNIST_FILES.values()),
    reason=f"Debian package dataset-fashion-mnist is not installed (no IDX files in {fashion.SYSTEM_DIRS[0]})",
)
forget_measured_folders = folder._measure.cache_clear  # a process measures each folder once: forget, as a new one
CLASSES = {"bag": 8, "sandal": 5, "trouser": 1}  # class folder -> Fashion-MNIST label


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A torchvision resnet18 (max-pool kept, cifar stem, width 0.25) trained float -> 2 bits by the CLI on a
    folder of real Fashion-MNIST items saved as PNG."""
    tmp = tmp_path_factory.mktemp("own")
    _, test = fashion.read_fashion_mnist(fashion.find_fashion_mnist(Path("/nonexistent")))
    items = {name: test.images[test.labels == label][:10, 0].numpy() for name, label in CLASSES.items()}
    images, out = tmp / "images", tmp / "run"
    write_folder(images, items)
    argv = ["train", "--model", "torchvision:resnet18", "--dataset", f"folder:{images}", "--bits", "2"]
    argv += ["--no-progressive", "--float-epochs", "1", "--epochs", "1", "--batch-size", "8", "--out", str(out)]
    assert main([*argv, "--quiet"]) == 0
    return images, out


def test_the_checkpoint_records_what_was_measured_from_the_folder(trained):
    images, out = trained
    q2 = load_checkpoint(out / "q2.safetensors")
    info = dataset_info(f"folder:{images}")
    assert q2.training["dataset"] == f"folder:{images.resolve()}"
    assert q2.training["dataset_info"] == json.loads(json.dumps(info.to_dict()))
    assert (info.in_channels, info.num_classes, info.image_size) == (1, len(CLASSES), 28)
    qann = q2.build_model()
    assert sum(isinstance(m, QuantReLU) for m in qann.modules()) == 17, "one clip per ReLU call site"
    assert q2.spec.in_channels == 1 and q2.spec.num_classes == len(CLASSES)


def test_evaluate_runs_the_snn_with_its_max_pool_on_the_folders_val_images(trained, tmp_path):
    images, out = trained
    report = tmp_path / "report.json"
    argv = ["evaluate", str(out / "q2.safetensors"), "-T", "3", "--json", str(report), "--quiet"]
    assert main(argv) == 0
    results = json.loads(report.read_text())
    assert results["dataset"] == f"folder:{images.resolve()}" and results["samples"] == len(CLASSES) * (10 - N_TRAIN)
    rows = {(row["model"], row["T"]): row for row in results["rows"]}
    assert set(rows) >= {("QANN", None), ("SNN signed", 3)}
    assert rows[("SNN signed", 3)]["agreement"] is not None
    qann = load_checkpoint(out / "q2.safetensors").build_model()
    assert sum(isinstance(m, SpikingMaxPool) for m in convert(qann).modules()) == 1


def test_a_folder_changed_since_training_is_refused_naming_what_changed(trained, capsys, monkeypatch):
    images, out = trained
    monkeypatch.chdir(images.parent)  # named relative to here as well: the same folder
    victim = next((images / "train" / "bag").iterdir())
    original = victim.read_bytes()
    try:
        Image.new("L", (28, 28), color=255).save(victim)
        forget_measured_folders()
        for name in (None, f"folder:{images.name}"):  # as recorded, and as typed relative to the working folder
            named = [] if name is None else ["--dataset", name]
            assert main(["evaluate", str(out / "q2.safetensors"), "-T", "3", *named, "--quiet"]) == 2
            error = capsys.readouterr().err
            assert f"data set {name or f'folder:{images.resolve()}'} is not what" in error
            assert "mean, std changed" in error
    finally:
        victim.write_bytes(original)
        forget_measured_folders()
