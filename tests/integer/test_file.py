"""The integer network's file: save / load round trip, refusals, and `fastsnn export` / `evaluate` on a trained run."""

import json

import numpy as np
import pytest
import torch

from fastsnn import convert
from fastsnn.cli import main
from fastsnn.data import load_dataset
from fastsnn.errors import CheckpointError
from fastsnn.integer import integerize, is_integer_file, load, reference, save
from helpers import random_qann, write_tiny_fashion_mnist


@pytest.fixture(scope="module")
def network():
    snn = convert(random_qann("resnet8", 2, bits=2, size=12))
    return integerize(snn, input_shape=(1, 12, 12), about={"note": "test"})


def test_a_saved_network_loads_back_identical(network, tmp_path):
    path = save(network, tmp_path / "net.isnn.safetensors")
    loaded = load(path)
    assert loaded.graph == network.graph and loaded.graph["about"] == {"note": "test"}
    assert loaded.tensors().keys() == network.tensors().keys()
    assert all(torch.equal(loaded.tensors()[k], t) for k, t in network.tensors().items())
    images = torch.randn(5, 1, 12, 12)
    assert torch.equal(loaded(images), network(images))
    assert np.array_equal(reference.simulate(path, images.numpy()), network(images).numpy())
    assert is_integer_file(path) and is_integer_file(path.rename(tmp_path / "renamed.safetensors"))


def test_a_network_that_breaks_the_format_is_never_written_and_what_was_there_stays(network, tmp_path):
    path = save(network, tmp_path / "net.isnn.safetensors")
    before = path.read_bytes()
    network.graph["ops"][1]["bound"] = 2**31  # beyond int32: the format refuses it
    try:
        with pytest.raises(ValueError, match="bound"):
            save(network, path)
    finally:
        network.graph["ops"][1]["bound"] = 1
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["net.isnn.safetensors"]


def test_a_damaged_file_is_refused_naming_it(network, tmp_path):
    path = save(network, tmp_path / "net.isnn.safetensors")
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x40  # a bit of the last tensor
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=f"^{path}: digest mismatch"):
        load(path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A float + 2-bit resnet20 trained by the CLI on a tiny Fashion-MNIST in its real format."""
    tmp = tmp_path_factory.mktemp("export")
    root = write_tiny_fashion_mnist(tmp / "data")
    out = tmp / "run"
    argv = ["train", "--model", "resnet20", "--dataset", "fashion-mnist", "--data-root", str(root), "--bits", "2"]
    argv += ["--no-progressive", "--float-epochs", "1", "--epochs", "1", "--batch-size", "32", "--out", str(out)]
    assert main([*argv, "--quiet"]) == 0
    return root, out


def test_export_then_evaluate_and_the_reference_agree_on_the_test_set(trained, tmp_path, capsys):
    root, out = trained
    exported = tmp_path / "q2.isnn.safetensors"
    assert main(["export", str(out / "q2.safetensors"), "--out", str(exported), "--weight-bits", "6"]) == 0
    assert f"{exported}: integer SNN" in capsys.readouterr().out
    report = tmp_path / "results.json"
    argv = ["evaluate", str(out / "q2.safetensors"), str(exported), "--data-root", str(root), "--quiet"]
    assert main([*argv, "--json", str(report)]) == 0
    rows = {row["model"]: row for row in json.loads(report.read_text())["rows"]}
    integer = rows["integer SNN signed (6-bit weights)"]
    assert integer["T"] == 3 and integer["agreement"] is not None
    net = load(exported)
    assert net.graph["about"]["training"]["dataset"] == "fashion-mnist" and net.graph["weight_bits"] == 6
    test_set = load_dataset("fashion-mnist", train=False, root=root)
    images = torch.stack([image for image, _ in test_set])
    labels = torch.tensor([label for _, label in test_set])
    outputs = net(images)
    assert np.array_equal(reference.simulate(exported, images.numpy()), outputs.numpy())
    assert integer["accuracy"] == pytest.approx((outputs.argmax(1) == labels).float().mean().item())


def test_a_failed_export_writes_nothing(trained, tmp_path, capsys):
    _, out = trained
    target = tmp_path / "float.isnn.safetensors"
    assert main(["export", str(out / "float.safetensors"), "--out", str(target)]) == 2
    assert "holds a float ANN" in capsys.readouterr().err and not target.exists()
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(out / "q2.safetensors"), "--out", str(target), "--weight-bits", "1"])
    assert exit_info.value.code == 2 and "--weight-bits" in capsys.readouterr().err and not target.exists()


def test_commands_that_need_a_float_network_refuse_an_exported_file_naming_it(trained, tmp_path, capsys):
    root, out = trained
    exported = tmp_path / "q2.isnn.safetensors"
    assert main(["export", str(out / "q2.safetensors"), "--out", str(exported)]) == 0
    capsys.readouterr()
    tuned = tmp_path / "tuned.safetensors"
    assert main(["finetune", str(exported), "--out", str(tuned), "--data-root", str(root)]) == 2
    assert f"{exported} is an exported integer network" in capsys.readouterr().err
    assert main(["analyze", str(out / "q2.safetensors"), str(exported), "--data-root", str(root)]) == 2
    assert "checkpoints include an exported integer network" in capsys.readouterr().err
    assert not tuned.exists()
