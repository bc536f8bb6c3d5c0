import json

import pytest
import torch

from fastsnn import convert
from fastsnn.analysis import row
from fastsnn.cli import main
from fastsnn.workflows.checkpoint import load_checkpoint
from helpers import write_tiny_fashion_mnist


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A float + 2-bit resnet20 trained by the CLI on a tiny Fashion-MNIST in its real format."""
    tmp = tmp_path_factory.mktemp("cli")
    root = write_tiny_fashion_mnist(tmp / "data")
    out = tmp / "run"
    code = main(
        [
            "train",
            "--model",
            "resnet20",
            "--dataset",
            "fashion-mnist",
            "--data-root",
            str(root),
            "--bits",
            "2",
            "--no-progressive",
            "--float-epochs",
            "1",
            "--epochs",
            "1",
            "--batch-size",
            "32",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    return root, out


def test_evaluate_prints_table_and_writes_json(trained, tmp_path, capsys):
    root, out = trained
    report = tmp_path / "results.json"
    code = main(
        [
            "evaluate",
            str(out / "q2.safetensors"),
            str(out / "float.safetensors"),
            "--data-root",
            str(root),
            "-T",
            "3",
            "7",
            "--json",
            str(report),
            "--quiet",
        ]
    )
    assert code == 0
    results = json.loads(report.read_text())
    assert results["dataset"] == "fashion-mnist" and results["samples"] == 128
    assert [(r["model"], r["T"]) for r in results["rows"]] == [
        ("float ANN", None),
        ("QANN", None),
        ("SNN unsigned", 3),
        ("SNN signed", 3),
        ("SNN unsigned", 7),
        ("SNN signed", 7),
    ]
    printed = capsys.readouterr().out
    assert "QANN" in printed and f"{100 * row(results, 'QANN')['accuracy']:.2f}" in printed and "float ANN" in printed


def test_convert_writes_a_spiking_checkpoint_equal_to_the_api(trained, tmp_path, capsys):
    _, out = trained
    target = tmp_path / "snn.safetensors"
    assert main(["convert", str(out / "q2.safetensors"), "--out", str(target), "-T", "7", "--unsigned"]) == 0
    assert "T=7" in capsys.readouterr().out
    snn = load_checkpoint(target).build_model()
    expected = convert(load_checkpoint(out / "q2.safetensors").build_model(), signed=False, T=7)
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        assert snn.T == 7 and torch.equal(snn(x), expected(x))


def test_the_checkpoints_form_a_pipe_train_convert_finetune_evaluate(trained, tmp_path, capsys):
    """train -> convert -> finetune (the SNN checkpoint) -> evaluate (the tuned SNN checkpoint alone)."""
    root, out = trained
    qann, snn, tuned = out / "q2.safetensors", tmp_path / "snn.safetensors", tmp_path / "tuned.safetensors"
    assert main(["convert", str(qann), "--out", str(snn)]) == 0
    argv = ["finetune", str(snn), "--out", str(tuned), "--data-root", str(root), "--held-out", "64", "--steps", "2"]
    assert main([*argv, "--objective", "bptt", "--calibrate", "--end-to-end-steps", "2", "--criterion", "mse"]
                + ["--json", str(tmp_path / "layers.json"), "--quiet"]) == 0  # fmt: skip
    layers = json.loads((tmp_path / "layers.json").read_text())
    printed = capsys.readouterr().out
    kept = sum(layer["kept"] for layer in layers)
    assert f"({kept} of {len(layers)} corrections kept)" in printed
    assert printed.count(" kept\n") + printed.count(" reverted\n") == len(layers), "one table line per correction"
    checkpoint = load_checkpoint(tuned)
    assert checkpoint.spec.snn == {"T": 3, "signed": True}
    assert checkpoint.training["converted_from"] == str(qann)
    settings = checkpoint.training["finetune"]
    assert settings["objective"] == "bptt" and settings["layers"] == layers
    assert (settings["calibrate"], settings["end_to_end_steps"], settings["criterion"]) == (True, 2, "mse")
    assert settings["split"] == {"held_out": 64, "seed": 0} and settings["data"]["dataset"] == "fashion-mnist"
    assert {"layer-wise", "calibration", "end-to-end"} <= {layer["correction"] for layer in layers}
    assert all(layer["criterion_before"] == -layer["output_error_before"] for layer in layers), "criterion mse"
    assert all(layer["agreement_before"] is not None for layer in layers), "agreement: the diagnostic beside it"
    reference = checkpoint.build_reference()
    for name, tensor in load_checkpoint(qann).build_model().state_dict().items():
        assert torch.equal(reference.state_dict()[name], tensor), f"the tuned SNN carries its QANN's {name}"

    report = tmp_path / "alone.json"
    assert main(["evaluate", str(tuned), "--data-root", str(root), "--json", str(report), "--quiet"]) == 0
    alone = json.loads(report.read_text())
    assert [(r["model"], r["T"]) for r in alone["rows"]] == [("QANN", None), ("SNN signed + fine-tuned (bptt)", 3)]
    assert alone["checkpoints"] == [str(tuned)] and alone["dataset"] == "fashion-mnist"
    with_qann = tmp_path / "with-qann.json"
    assert main(["evaluate", str(qann), str(tuned), "--data-root", str(root), "--json", str(with_qann), "--quiet"]) == 0
    rows = {(r["model"], r["T"]): r for r in json.loads(with_qann.read_text())["rows"]}
    for entry in alone["rows"]:
        assert entry == rows[(entry["model"], entry["T"])], "the carried QANN is the QANN checkpoint"
    assert main(["finetune", str(snn), "--out", str(tmp_path / "x.safetensors"), "-T", "7", "--quiet"]) == 2
    assert "-T/--time-steps applies when a QANN is converted" in capsys.readouterr().err


def test_evaluate_and_analyze_compare_any_checkpoints_with_baselines(trained, tmp_path, capsys):
    root, out = trained
    qann, tuned = out / "q2.safetensors", tmp_path / "tuned.safetensors"
    argv = ["finetune", str(qann), "--out", str(tuned), "--data-root", str(root), "--held-out", "64", "--steps", "1"]
    assert main([*argv, "--objective", "bptt", "--end-to-end-steps", "2", "--quiet"]) == 0

    report = tmp_path / "results.json"
    code = main(
        [
            "evaluate",
            str(qann),
            str(out / "float.safetensors"),
            str(tuned),
            "--rate-norm",
            "max",
            "99.9",
            "--rate-norm-T",
            "3",
            "12",
            "--data-root",
            str(root),
            "--json",
            str(report),
            "--quiet",
        ]
    )
    assert code == 0
    rows = [(r["model"], r["T"]) for r in json.loads(report.read_text())["rows"]]
    assert rows[-5:] == [
        ("SNN signed + fine-tuned (bptt)", 3),
        ("rate-norm max", 3),
        ("rate-norm max", 12),
        ("rate-norm 99.9%", 3),
        ("rate-norm 99.9%", 12),
    ]

    analysis = tmp_path / "analysis"
    code = main(
        [
            "analyze",
            str(qann),
            str(out / "float.safetensors"),
            str(tuned),
            "--data-root",
            str(root),
            "--limit",
            "32",
            "--out",
            str(analysis),
        ]
    )
    assert code == 0
    errors = json.loads((analysis / "conversion_errors.json").read_text())
    assert (
        set(errors["accumulating"]) == {"unsigned", "signed", "signed + fine-tuned (bptt)"} and errors["samples"] == 32
    )
    assert errors["accumulating"]["signed"][0] < 1e-4 and len(errors["quantization"]) == len(errors["layers"])
    assert (analysis / "conversion_errors.png").read_bytes()[:4] == b"\x89PNG"
    activity = json.loads((analysis / "activity.json").read_text())
    assert list(activity) == ["QANN", "unsigned", "signed", "signed + fine-tuned (bptt)"]
    assert activity["QANN"]["T"] == 1 and activity["QANN"]["total"]["sops"] == 0
    for name in ("unsigned", "signed"):
        total = activity[name]["total"]
        assert activity[name]["T"] == 3 and activity[name]["images"] == 32 and 0 < total["firing_rate"] <= 1
        assert total["sops"] > 0 and total["ann_macs"] == activity["QANN"]["total"]["ann_macs"]
    assert activity["unsigned"]["total"]["spikes_neg"] == 0, "only signed neurons emit negative spikes"
    assert (analysis / "activity.png").read_bytes()[:4] == b"\x89PNG"


def test_commands_refuse_to_overwrite_their_input_and_need_a_float_model_for_baselines(trained, capsys):
    root, out = trained
    qann = str(out / "q2.safetensors")
    before = (out / "q2.safetensors").read_bytes()
    assert main(["finetune", qann, "--out", qann, "--data-root", str(root), "--quiet"]) == 2
    assert "would destroy" in capsys.readouterr().err
    assert (out / "q2.safetensors").read_bytes() == before
    assert main(["evaluate", qann, "--rate-norm", "max", "--data-root", str(root), "--quiet"]) == 2
    assert "--rate-norm baselines convert the float ANN" in capsys.readouterr().err
    assert main(["analyze", str(out / "float.safetensors"), "--data-root", str(root)]) == 2
    assert "checkpoints name no QANN and no SNN checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, culprit",
    [
        (["evaluate", "missing.safetensors"], "missing.safetensors"),
        (["train", "--model", "vgg99", "--dataset", "fashion-mnist", "--quiet"], "vgg99"),
        (["data", "imagenet", "--root", "/nonexistent-root"], "imagenet"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, culprit, capsys):
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and culprit in error and "Traceback" not in error


@pytest.mark.parametrize(
    "argv, option, accepted",
    [
        (["train", "--bits", "9"], "--bits", "1..8"),
        (["train", "--bits", "floating"], "--bits", "not an integer"),
        (["train", "--bits", "two"], "--bits", "not an integer"),
        (["demo", "--width", "-1"], "--width", "(0, 8]"),
        (["train", "--batch-size", "0"], "--batch-size", ">= 1"),
        (["evaluate", "x.safetensors", "-T", "0"], "-T/--time-steps", ">= 1"),
        (["convert", "x.safetensors", "--out", "y.safetensors", "-T", "-3"], "-T/--time-steps", ">= 1"),
        (["finetune", "x.safetensors", "--out", "y.safetensors", "--steps", "-1"], "--steps", ">= 0"),
        (["finetune", "x.safetensors", "--out", "y.safetensors", "--objective", "sgd"], "--objective", "ste"),
        (["evaluate", "x.safetensors", "--rate-norm", "101"], "--rate-norm", "(0, 100]"),
        (["analyze", "x.safetensors", "--limit", "0"], "--limit", ">= 1"),
    ],
)
def test_out_of_range_options_are_refused_before_any_work(argv, option, accepted, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert option in error and accepted in error
    assert list(tmp_path.iterdir()) == [], "nothing is written"


def test_demo_trains_finetunes_and_compares_with_the_baselines(tmp_path, capsys):
    root = write_tiny_fashion_mnist(tmp_path / "data")
    out = tmp_path / "demo"
    code = main(
        [
            "demo",
            "--dataset",
            "fashion-mnist",
            "--data-root",
            str(root),
            "--model",
            "vgg11",
            "--width",
            "0.125",
            "--no-progressive",
            "--float-epochs",
            "1",
            "--final-epochs",
            "1",
            "--finetune-steps",
            "3",
            "--held-out",
            "100",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    rows = {(r["model"], r["T"]) for r in results["rows"]}
    assert {("SNN signed + fine-tuned (ste)", 3), ("rate-norm max", 48), ("rate-norm 99.9%", 3)} <= rows
    assert (out / "q2-snn-finetuned.safetensors").is_file()
    assert "rate-norm max" in capsys.readouterr().out


def test_an_error_naming_a_path_with_control_characters_stays_on_one_line(trained, capsys):
    _, out = trained
    assert main(["evaluate", str(out / "q2.safetensors"), "--data-root", "bad\x1eroot\nx", "--quiet"]) == 2
    error = capsys.readouterr().err
    assert len(error.splitlines()) == 1 and "bad\\x1eroot\\nx" in error
