"""Detection end to end through the same path as classification: train, convert, fine-tune, evaluate."""

import json

import pytest
import torch

from fastsnn.analysis import row
from fastsnn.cli import main
from fastsnn.tasks.detection import MAX_DETECTIONS, REFERENCE_SCORE
from fastsnn.workflows import sources
from fastsnn.workflows.checkpoint import load_checkpoint
from helpers import compared_models, held_out_agreements, write_tiny_fashion_mnist

SCENES = ["--dataset", "fashion-scenes-det", "--train-limit", "128", "--test-limit", "24"]


@torch.no_grad()
def detections_and_targets(model, task, loader):
    """``model``'s decoded detections ``[N, MAX_DETECTIONS, 6]`` (eval mode) and ``loader``'s targets ``[N, M, 5]``."""
    model.eval()
    detections, targets = zip(*((task.decode(model(images)), boxes) for images, boxes in loader), strict=True)
    return torch.cat(detections), torch.cat(targets)


def coco_map(detections, targets):
    """``{"mAP@0.5", "mAP@[.5:.95]"}`` of detections ``[N, D, 6]`` rows ``(x1, y1, x2, y2, score, label)``
    against targets ``[N, M, 5]`` rows ``(label, x1, y1, x2, y2)`` (padding: score or label < 0), by torchmetrics'
    COCO protocol, all detections counted."""
    from torchmetrics.detection import MeanAveragePrecision

    metric = MeanAveragePrecision(backend="faster_coco_eval", max_detection_thresholds=[1, 10, MAX_DETECTIONS])
    for found, truth in zip(detections, targets, strict=True):
        found, truth = found[found[:, 4] >= 0], truth[truth[:, 0] >= 0]
        predicted = {"boxes": found[:, :4], "scores": found[:, 4], "labels": found[:, 5].long()}
        metric.update([predicted], [{"boxes": truth[:, 1:], "labels": truth[:, 0].long()}])
    result = metric.compute()
    return {"mAP@0.5": float(result["map_50"]), "mAP@[.5:.95]": float(result["map"])}


def confident(detections):
    """Detections ``[N, D, 6]`` of score >= REFERENCE_SCORE as targets ``[N, D, 5]`` (the others: padding)."""
    kept = detections[..., 4:5] >= REFERENCE_SCORE
    return torch.where(kept, torch.cat((detections[..., 5:], detections[..., :4]), dim=-1), -1.0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A float + 2-bit tiny_yolov2 (width 0.125) trained by the CLI on box scenes of a tiny Fashion-MNIST (without
    distillation: after one epoch a distilled QANN detects nothing above the agreement's score, which leaves the
    box agreement these tests compare undefined)."""
    tmp = tmp_path_factory.mktemp("detection")
    root = write_tiny_fashion_mnist(tmp / "data", train=128, test=64)
    out = tmp / "run"
    argv = ["train", "--model", "tiny_yolov2", "--width", "0.125", "--data-root", str(root), *SCENES]
    argv += ["--bits", "2", "--no-progressive", "--float-epochs", "1", "--epochs", "1", "--batch-size", "16"]
    assert main([*argv, "--distill", "0", "--out", str(out), "--quiet"]) == 0
    return root, out


def test_training_records_map_and_the_k_means_anchors_of_the_training_boxes(trained):
    root, out = trained
    checkpoint = load_checkpoint(out / "q2.safetensors")
    history = checkpoint.training["history"]
    loader = sources.test_loader("fashion-scenes-det", root, batch_size=256, limit=24)  # --test-limit 24
    expected = coco_map(*detections_and_targets(checkpoint.build_model(), checkpoint.spec.task, loader))
    assert history[-1]["test_mAP@0.5"] == pytest.approx(expected["mAP@0.5"], abs=1e-6)
    assert history[-1]["test_mAP@[.5:.95]"] == pytest.approx(expected["mAP@[.5:.95]"], abs=1e-6)
    anchors = torch.tensor(checkpoint.spec.options["anchors"])
    assert anchors.shape == (5, 2) and bool((anchors > 0).all())
    # items are 20..40 px squares (0.6..1.3 cells): the anchors cluster their tight boxes, none larger
    assert bool((anchors <= 40 / 32 + 1e-6).all()) and bool((anchors.prod(1).diff() >= 0).all())
    assert load_checkpoint(out / "float.safetensors").spec.options["anchors"] == checkpoint.spec.options["anchors"]


def test_evaluate_reports_map_box_agreement_baselines_and_pictures(trained, tmp_path, capsys):
    root, out = trained
    report, pictures = tmp_path / "results.json", tmp_path / "pictures"
    argv = ["evaluate", str(out / "q2.safetensors"), str(out / "float.safetensors")]
    argv += ["--data-root", str(root), "--limit", "12", "--batch-size", "6", "--rate-norm", "max", "--rate-norm-T", "3"]
    argv += ["--activity", "4"]
    assert main([*argv, "--json", str(report), "--save-predictions", str(pictures), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "mAP@0.5 %" in printed and "mAP@[.5:.95] %" in printed and "agreement over boxes" in printed
    assert "SNN / ANN" in printed
    results = json.loads(report.read_text())
    assert results["task"] == "detection" and results["samples"] == 12
    assert results["anchors"] == load_checkpoint(out / "q2.safetensors").spec.options["anchors"]
    assert [(r["model"], r["T"]) for r in results["rows"]] == [
        ("float ANN", None), ("QANN", None), ("SNN unsigned", 3), ("SNN signed", 3), ("rate-norm max", 3)
    ]  # fmt: skip
    checkpoint = load_checkpoint(out / "q2.safetensors")
    recomputed = compared_models(out)
    loader = sources.test_loader("fashion-scenes-det", root, batch_size=6, limit=12)  # --limit 12 --batch-size 6
    found = {key: detections_and_targets(model, checkpoint.spec.task, loader) for key, model in recomputed.items()}
    qann_detections = found[("QANN", None)][0]
    for (name, T), (detections, targets) in found.items():
        entry = row(results, name, T)
        expected = coco_map(detections, targets)
        assert entry["mAP@0.5"] == pytest.approx(expected["mAP@0.5"], abs=1e-6), name
        assert entry["mAP@[.5:.95]"] == pytest.approx(expected["mAP@[.5:.95]"], abs=1e-6), name
        if T is None:
            assert entry["agreement"] is None, name
        else:  # mAP@0.5 against the QANN's confident detections
            agreement = coco_map(detections, confident(qann_detections))["mAP@0.5"]
            assert entry["agreement"] == pytest.approx(agreement, abs=1e-6), name
    activity = {(entry["model"], entry["T"]): entry for entry in results["activity"]}
    assert list(activity) == [(r["model"], r["T"]) for r in results["rows"][1:]], "every model but the float ANN"
    assert activity[("QANN", None)]["total"]["sops"] == 0 and activity[("QANN", None)]["total"]["macs"] > 0
    for (_, T), entry in activity.items():
        total, energy = entry["total"], entry["energy"]
        assert entry["images"] == 4 and total["ann_macs"] == activity[("QANN", None)]["total"]["ann_macs"]
        assert energy["snn_pj"] == pytest.approx(4.6 * total["macs"] + 0.9 * total["sops"])
        assert energy["ratio"] == pytest.approx(energy["snn_pj"] / (4.6 * total["ann_macs"]))
        if T is not None:
            assert 0 <= total["firing_rate"] <= 1 and total["macs"] < total["ann_macs"]
    drawn = sorted(pictures.glob("*.png"))
    assert len(drawn) == 8 and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in drawn)


def test_finetune_runs_unchanged_on_a_detection_snn(trained, tmp_path, capsys):
    root, out = trained
    tuned = tmp_path / "snn.safetensors"
    argv = ["finetune", str(out / "q2.safetensors"), "--out", str(tuned), "--data-root", str(root)]
    argv += ["--steps", "2", "--end-to-end-steps", "2", "--held-out", "16", "--limit", "32", "--batch-size", "8"]
    assert main([*argv, "--quiet"]) == 0
    layers = load_checkpoint(tuned).training["finetune"]["layers"]
    # the reports carry box agreement on the held-out images: the untuned SNN's first, the saved SNN's last
    untuned_agreement, tuned_agreement = held_out_agreements(out / "q2.safetensors", tuned, root, held_out=16)
    assert layers and layers[0]["agreement_before"] == pytest.approx(untuned_agreement, abs=1e-12)
    kept = [r for r in layers if r["kept"]]
    assert tuned_agreement == pytest.approx(kept[-1]["agreement_after"] if kept else untuned_agreement, abs=1e-12)
    argv = ["evaluate", str(out / "q2.safetensors"), str(tuned), "--data-root", str(root)]
    assert main([*argv, "--limit", "6", "--quiet", "--json", str(tmp_path / "r.json")]) == 0
    results = json.loads((tmp_path / "r.json").read_text())
    checkpoint = load_checkpoint(tuned)
    loader = sources.test_loader("fashion-scenes-det", root, batch_size=500, limit=6)  # --limit 6
    expected = coco_map(*detections_and_targets(checkpoint.build_model(), checkpoint.spec.task, loader))
    assert row(results, "SNN signed + fine-tuned (ste)", 3)["mAP@0.5"] == pytest.approx(expected["mAP@0.5"], abs=1e-6)


def test_demo_of_the_detection_task_uses_its_own_defaults(tmp_path, capsys):
    root = write_tiny_fashion_mnist(tmp_path / "data", train=128, test=64)
    out = tmp_path / "demo"
    argv = ["demo", "--task", "detection", "--data-root", str(root), "--width", "0.125", "--no-progressive"]
    argv += ["--float-epochs", "1", "--final-epochs", "1", "--train-limit", "64", "--test-limit", "8"]
    argv += ["--finetune-steps", "2", "--end-to-end-steps", "2", "--held-out", "16"]
    assert main([*argv, "--out", str(out), "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["task"] == "detection" and results["dataset"] == "fashion-scenes-det"
    assert load_checkpoint(out / "q2.safetensors").spec.name == "tiny_yolov2"
    rows = {(r["model"], r["T"]) for r in results["rows"]}
    assert {("SNN signed + fine-tuned (ste)", 3), ("rate-norm max", 48), ("rate-norm 99.9%", 3)} <= rows
    assert "mAP@0.5 %" in capsys.readouterr().out
