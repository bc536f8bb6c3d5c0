"""Segmentation end to end through the same path as classification: train, convert, fine-tune, evaluate."""

import json

import pytest
import torch

from fastsnn import convert, finetune
from fastsnn.analysis import conversion_errors, row
from fastsnn.cli import main
from fastsnn.tasks import create_task
from fastsnn.tasks.segmentation import IGNORE_INDEX
from fastsnn.workflows import sources
from fastsnn.workflows.checkpoint import load_checkpoint
from helpers import compared_models, held_out_agreements, loader_of, random_qann, write_tiny_fashion_mnist

SCENES = ["--dataset", "fashion-scenes", "--train-limit", "128", "--test-limit", "24"]


@torch.no_grad()
def predicted_masks(model, loader):
    """Predicted classes ``[N, H, W]`` of ``model`` (eval mode) and the masks ``[N, H, W]`` of ``loader``'s images."""
    model.eval()
    predictions, masks = zip(*((model(images).argmax(1), targets) for images, targets in loader), strict=True)
    return torch.cat(predictions), torch.cat(masks)


def miou_and_pixel_accuracy(predictions, masks, num_classes):
    """Counted by hand: VOC mIoU (the mean over classes present in the predictions or the masks of
    TP / (TP + FP + FN), over all pixels at once) and pixel accuracy; pixels labelled 255 count in neither."""
    valid = masks != IGNORE_INDEX
    predicted, actual = predictions[valid], masks[valid]
    ious = []
    for label in range(num_classes):
        union = int(((predicted == label) | (actual == label)).sum())
        if union:
            ious.append(int(((predicted == label) & (actual == label)).sum()) / union)
    return sum(ious) / len(ious), int((predicted == actual).sum()) / actual.numel()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A float + 2-bit deeplab_vgg9 (width 0.125) trained by the CLI on scenes of a tiny Fashion-MNIST."""
    tmp = tmp_path_factory.mktemp("segmentation")
    root = write_tiny_fashion_mnist(tmp / "data", train=128, test=64)
    out = tmp / "run"
    argv = ["train", "--model", "deeplab_vgg9", "--width", "0.125", "--data-root", str(root), *SCENES]
    argv += ["--bits", "2", "--no-progressive", "--float-epochs", "4", "--epochs", "2", "--batch-size", "16"]
    assert main([*argv, "--out", str(out), "--quiet"]) == 0
    return root, out


def test_training_records_segmentation_metrics(trained):
    root, out = trained
    checkpoint = load_checkpoint(out / "q2.safetensors")
    history = checkpoint.training["history"]
    assert {"test_mIoU", "test_pixel_accuracy"} <= history[-1].keys()
    loader = sources.test_loader("fashion-scenes", root, batch_size=256, limit=24)  # --test-limit 24
    predictions, masks = predicted_masks(checkpoint.build_model(), loader)
    miou, pixel_accuracy = miou_and_pixel_accuracy(predictions, masks, checkpoint.spec.num_classes)
    assert history[-1]["test_mIoU"] == pytest.approx(miou, abs=1e-6)
    assert history[-1]["test_pixel_accuracy"] == pytest.approx(pixel_accuracy, abs=1e-12)


def test_evaluate_reports_miou_pixel_agreement_baselines_and_pictures(trained, tmp_path, capsys):
    root, out = trained
    report, pictures = tmp_path / "results.json", tmp_path / "pictures"
    argv = ["evaluate", str(out / "q2.safetensors"), str(out / "float.safetensors")]
    argv += ["--data-root", str(root), "--limit", "12", "--batch-size", "6", "--rate-norm", "max", "--rate-norm-T", "3"]
    assert main([*argv, "--json", str(report), "--save-predictions", str(pictures), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "mIoU %" in printed and "pixel accuracy %" in printed and "agreement over pixels" in printed
    results = json.loads(report.read_text())
    assert results["task"] == "segmentation" and results["samples"] == 12
    assert [(r["model"], r["T"]) for r in results["rows"]] == [
        ("float ANN", None), ("QANN", None), ("SNN unsigned", 3), ("SNN signed", 3), ("rate-norm max", 3)
    ]  # fmt: skip
    checkpoint = load_checkpoint(out / "q2.safetensors")
    recomputed = compared_models(out)
    loader = sources.test_loader("fashion-scenes", root, batch_size=6, limit=12)  # --limit 12 --batch-size 6
    predictions = {key: predicted_masks(model, loader) for key, model in recomputed.items()}
    qann_predicted = predictions[("QANN", None)][0]
    for (name, T), (predicted, masks) in predictions.items():
        entry = row(results, name, T)
        miou, pixel_accuracy = miou_and_pixel_accuracy(predicted, masks, checkpoint.spec.num_classes)
        assert entry["mIoU"] == pytest.approx(miou, abs=1e-6), name
        assert entry["pixel accuracy"] == pytest.approx(pixel_accuracy, abs=1e-12), name
        if T is None:
            assert entry["agreement"] is None, name
        else:  # over all pixels
            agreement = int((predicted == qann_predicted).sum()) / predicted.numel()
            assert entry["agreement"] == pytest.approx(agreement, abs=1e-12), name
    assert row(results, "SNN unsigned", 3)["agreement"] < 1, "an SNN that differs from its QANN, or this tests nothing"
    drawn = sorted(pictures.glob("*.png"))
    assert len(drawn) == 8 and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in drawn)


def test_finetune_runs_unchanged_on_a_segmentation_snn(trained, tmp_path, capsys):
    root, out = trained
    tuned = tmp_path / "snn.safetensors"
    argv = ["finetune", str(out / "q2.safetensors"), "--out", str(tuned), "--data-root", str(root)]
    argv += ["--steps", "2", "--end-to-end-steps", "2", "--held-out", "16", "--limit", "32", "--batch-size", "8"]
    assert main([*argv, "--quiet"]) == 0
    layers = load_checkpoint(tuned).training["finetune"]["layers"]
    # the reports carry pixel agreement on the held-out images: the untuned SNN's first, the saved SNN's last
    # (trained long enough for the SNN to differ from its QANN on some pixels, so that this can fail)
    untuned_agreement, tuned_agreement = held_out_agreements(out / "q2.safetensors", tuned, root, held_out=16)
    assert untuned_agreement < 1, "the fixture's SNN must disagree with its QANN somewhere for this to test anything"
    assert layers and layers[0]["agreement_before"] == pytest.approx(untuned_agreement, abs=1e-12)
    kept = [r for r in layers if r["kept"]]
    assert tuned_agreement == pytest.approx(kept[-1]["agreement_after"] if kept else untuned_agreement, abs=1e-12)
    argv = ["evaluate", str(out / "q2.safetensors"), str(tuned), "--data-root", str(root)]
    assert main([*argv, "--limit", "6", "--quiet"]) == 0
    assert "SNN signed + fine-tuned (ste)" in capsys.readouterr().out


def test_finetune_api_on_a_random_deeplab_never_worsens_the_held_out_criterion():
    qann = random_qann("deeplab_vgg9", 0, size=16)  # random BN statistics and clips: the SNN is far from exact
    snn = convert(qann)
    task = create_task("segmentation", num_classes=10)
    torch.manual_seed(1)
    held_out, tuning = loader_of(torch.randn(8, 1, 16, 16), 4), loader_of(torch.randn(16, 1, 16, 16), 8)
    before = conversion_errors(qann, {"snn": snn}, held_out, task=task)
    reports = []
    tuned = finetune(snn, qann, tuning, held_out=held_out, task=task, steps_per_layer=2, lr=3e-2, progress=False,
                     end_to_end_steps=0, criterion="agreement", significance=1.0, on_layer=reports.append)  # fmt: skip
    after = conversion_errors(qann, {"snn": tuned}, held_out, task=task)
    assert after.agreement["snn"] >= before.agreement["snn"], "held-out pixel agreement with the QANN never falls"
    kept = [r for r in reports if r.kept]
    assert after.agreement["snn"] == (kept[-1].agreement_after if kept else before.agreement["snn"])
    assert after.output["snn"] == pytest.approx(kept[-1].output_error_after if kept else before.output["snn"])
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
    argv += ["--finetune-steps", "2", "--end-to-end-steps", "2", "--held-out", "16"]
    assert main([*argv, "--out", str(out), "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["task"] == "segmentation" and results["dataset"] == "fashion-scenes"
    assert load_checkpoint(out / "q2.safetensors").spec.name == "deeplab_vgg9"
    rows = {(r["model"], r["T"]) for r in results["rows"]}
    assert {("SNN signed + fine-tuned (ste)", 3), ("rate-norm max", 48), ("rate-norm 99.9%", 3)} <= rows
    assert "mIoU %" in capsys.readouterr().out
