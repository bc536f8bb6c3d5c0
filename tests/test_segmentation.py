"""Segmentation end to end through the same path as classification: train, convert, fine-tune, evaluate."""

import json

import pytest
import torch

from fastsnn import convert, finetune, quantize
from fastsnn.analysis import conversion_errors, row
from fastsnn.cli import main
from fastsnn.models import create_model
from fastsnn.workflows.checkpoint import load_checkpoint
from helpers import loader_of, write_tiny_fashion_mnist

SCENES = ["--dataset", "fashion-scenes", "--train-limit", "128", "--test-limit", "24"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A float + 2-bit deeplab_vgg9 (width 0.125) trained by the CLI on scenes of a tiny Fashion-MNIST."""
    tmp = tmp_path_factory.mktemp("segmentation")
    root = write_tiny_fashion_mnist(tmp / "data", train=128, test=64)
    out = tmp / "run"
    argv = ["train", "--model", "deeplab_vgg9", "--width", "0.125", "--data-root", str(root), *SCENES]
    argv += ["--bits", "2", "--no-progressive", "--float-epochs", "1", "--epochs", "1", "--batch-size", "16"]
    assert main([*argv, "--out", str(out), "--quiet"]) == 0
    return root, out


def test_training_records_segmentation_metrics(trained):
    _, out = trained
    history = load_checkpoint(out / "q2.safetensors").training["history"]
    assert {"test_mIoU", "test_pixel_accuracy"} <= history[-1].keys()
    assert 0 <= history[-1]["test_mIoU"] <= history[-1]["test_pixel_accuracy"] <= 1


def test_evaluate_reports_miou_pixel_agreement_baselines_and_pictures(trained, tmp_path, capsys):
    root, out = trained
    report, pictures = tmp_path / "results.json", tmp_path / "pictures"
    argv = ["evaluate", str(out / "q2.safetensors"), "--float-checkpoint", str(out / "float.safetensors")]
    argv += ["--data-root", str(root), "--limit", "12", "--batch-size", "6", "--rate-norm", "max", "--rate-norm-T", "3"]
    assert main([*argv, "--json", str(report), "--save-predictions", str(pictures), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "mIoU %" in printed and "pixel accuracy %" in printed and "agreement over pixels" in printed
    results = json.loads(report.read_text())
    assert results["task"] == "segmentation" and results["samples"] == 12
    assert [(r["model"], r["T"]) for r in results["rows"]] == [
        ("float ANN", None), ("QANN", None), ("SNN unsigned", 3), ("SNN signed", 3), ("rate-norm max", 3)
    ]  # fmt: skip
    for entry in results["rows"]:
        assert 0 <= entry["mIoU"] <= 1 and 0 <= entry["pixel accuracy"] <= 1
        assert (entry["agreement"] is None) == (entry["T"] is None)
    assert row(results, "SNN signed", 3)["agreement"] > 0.5, "most pixels are background, which both predict"
    drawn = sorted(pictures.glob("*.png"))
    assert len(drawn) == 8 and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in drawn)


def test_finetune_runs_unchanged_on_a_segmentation_snn(trained, tmp_path, capsys):
    root, out = trained
    tuned = tmp_path / "snn.safetensors"
    argv = ["finetune", str(out / "q2.safetensors"), "--out", str(tuned), "--data-root", str(root)]
    assert main([*argv, "--steps", "2", "--held-out", "16", "--limit", "32", "--batch-size", "8", "--quiet"]) == 0
    layers = load_checkpoint(tuned).training["finetune"]["layers"]
    assert layers and all(r["kept"] == (r["output_error_after"] < r["output_error_before"]) for r in layers)
    argv = ["evaluate", str(out / "q2.safetensors"), "--finetuned", str(tuned), "--data-root", str(root)]
    assert main([*argv, "--limit", "6", "--quiet"]) == 0
    assert "SNN signed + fine-tuned (ste)" in capsys.readouterr().out


def test_finetune_api_on_a_random_deeplab_never_worsens_the_held_out_error():
    torch.manual_seed(0)
    model = create_model("deeplab_vgg9", num_classes=11, in_channels=1, width=0.125).eval()
    qann = quantize(model, 2, alpha=1.0).eval()
    snn = convert(qann)
    held_out = loader_of(torch.rand(8, 1, 32, 32), 4)
    before = conversion_errors(qann, {"snn": snn}, held_out).output["snn"]
    reports = []
    tuned = finetune(snn, qann, loader_of(torch.rand(16, 1, 32, 32), 8), held_out=held_out, steps_per_layer=2,
                     lr=1e-2, progress=False, on_layer=reports.append)  # fmt: skip
    assert conversion_errors(qann, {"snn": tuned}, held_out).output["snn"] <= before
    assert [r.layer for r in reports] == [path for path, _ in snn.neurons()][1:], "every layer but the exact first"


@pytest.mark.parametrize(
    "argv, names",
    [
        (["train", "--model", "vgg11", "--dataset", "mnist-scenes"], ["vgg11", "classification", "segmentation"]),
        (["train", "--model", "deeplab_vgg9", "--dataset", "mnist"], ["deeplab_vgg9", "segmentation"]),
    ],
)
def test_a_model_and_data_set_of_different_tasks_are_refused(argv, names, capsys, tmp_path):
    assert main([*argv, "--out", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err
    assert all(name in error for name in names) and len(error.strip().splitlines()) == 1


def test_demo_of_the_segmentation_task_uses_its_own_defaults(tmp_path, capsys):
    root = write_tiny_fashion_mnist(tmp_path / "data", train=128, test=64)
    out = tmp_path / "demo"
    argv = ["demo", "--task", "segmentation", "--data-root", str(root), "--width", "0.125", "--no-progressive"]
    argv += ["--float-epochs", "1", "--final-epochs", "1", "--train-limit", "64", "--test-limit", "8"]
    assert main([*argv, "--finetune-steps", "2", "--held-out", "16", "--out", str(out), "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["task"] == "segmentation" and results["dataset"] == "fashion-scenes"
    assert load_checkpoint(out / "q2.safetensors").spec.name == "deeplab_vgg9"
    rows = {(r["model"], r["T"]) for r in results["rows"]}
    assert {("SNN signed + fine-tuned (ste)", 3), ("rate-norm max", 48), ("rate-norm 99.9%", 3)} <= rows
    assert "mIoU %" in capsys.readouterr().out
