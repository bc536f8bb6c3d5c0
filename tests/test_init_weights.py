"""``fastsnn train --init``: the float stage (or, with no float epochs, the quantized stages) starts from the
user's float weights, checked against the model before anything is trained or written."""

import dataclasses
import re

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import fastsnn.workflows.train as train_module
from fastsnn import quantize
from fastsnn.cli import main
from fastsnn.errors import CheckpointError, OptionError
from fastsnn.workflows.checkpoint import load_checkpoint, save_checkpoint
from fastsnn.workflows.train import TrainConfig, train_progressive
from helpers import write_tiny_fashion_mnist


def tiny_config(tmp_path, **overrides) -> TrainConfig:
    root = tmp_path / "data"
    if not root.exists():
        write_tiny_fashion_mnist(root, train=64, test=16)
    settings = dict(
        model="resnet8", dataset="fashion-mnist", data_root=str(root), width=0.25, bits=4, float_epochs=0, epochs=1,
        batch_size=32, out_dir=str(tmp_path / "run"), progress=False,
    )  # fmt: skip
    return TrainConfig(**(settings | overrides))


@pytest.fixture
def stage_starts(monkeypatch):
    """``(bits, state dict)`` of the model every ``fit`` call starts from, in stage order (then ``fit`` runs)."""
    starts = []
    real_fit = train_module.fit

    def recording_fit(model, spec, *args, **kwargs):
        starts.append((spec.bits, {key: value.detach().clone() for key, value in model.state_dict().items()}))
        return real_fit(model, spec, *args, **kwargs)

    monkeypatch.setattr(train_module, "fit", recording_fit)
    return starts


def float_weights(config: TrainConfig, seed: int) -> tuple[nn.Module, dict]:
    """A float model of ``config`` with random weights and BatchNorm statistics (drawn from ``seed``)."""
    torch.manual_seed(seed)
    model = config.spec().build()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return model, {key: value.clone() for key, value in model.state_dict().items()}


def assert_holds(state: dict, expected: dict) -> None:
    assert expected.keys() <= state.keys()
    for key, value in expected.items():
        assert torch.equal(state[key], value), key


@pytest.mark.parametrize(
    "model, saved_as, float_epochs, bits",
    [
        ("resnet8", "state dict", 0, 4),
        ("resnet8", "checkpoint", 0, 4),
        ("torchvision:resnet18", "state dict", 1, None),
    ],
)
def test_training_starts_from_the_init_weights(tmp_path, stage_starts, model, saved_as, float_epochs, bits):
    config = tiny_config(tmp_path, model=model, float_epochs=float_epochs, bits=bits)
    weights, state = float_weights(config, seed=7)
    path = tmp_path / "init.safetensors"
    if saved_as == "checkpoint":
        save_checkpoint(path, weights, config.spec(), training={"epoch": 3})
    else:
        save_file(state, path)
    _, untouched = float_weights(config, seed=config.seed)  # where training starts without --init
    assert any(not torch.equal(untouched[key], state[key]) for key in state)

    paths = train_progressive(dataclasses.replace(config, init=str(path)))
    assert [bits for bits, _ in stage_starts] == config.stages()
    for _, start in stage_starts[: 1 if float_epochs else 2]:  # float stage, and the quantized stage it skipped to
        assert_holds(start, state)
    last = load_checkpoint(paths[train_module.stage_name(config.stages()[-1])])
    assert last.training["history"][-1]["epoch"] == 1, "the stage after the start was trained"


def test_a_file_of_another_model_is_refused_naming_the_tensor_before_training(tmp_path, stage_starts):
    config = tiny_config(tmp_path)
    other = dataclasses.replace(config, width=0.5)
    _, state = float_weights(other, seed=1)
    path = tmp_path / "other.safetensors"
    save_file(state, path)
    with pytest.raises(CheckpointError) as error:
        train_progressive(dataclasses.replace(config, init=str(path)))
    message = str(error.value)
    found = re.search(r"tensor '([^']+)' has shape (\([^)]*\)) but model resnet8 expects (\([^)]*\))", message)
    assert found and str(path) in message, message
    key, theirs, ours = found.groups()
    assert theirs == str(tuple(state[key].shape)) != ours == str(tuple(config.spec().build().state_dict()[key].shape))
    assert stage_starts == [] and not (tmp_path / "run").exists(), "nothing trained or written"


def test_a_quantized_checkpoint_and_a_pickle_are_refused(tmp_path, stage_starts):
    config = tiny_config(tmp_path)
    weights, _ = float_weights(config, seed=1)
    qann = save_checkpoint(tmp_path / "q4.safetensors", quantize(weights, 4), config.spec().with_bits(4))
    with pytest.raises(CheckpointError, match=r"q4.safetensors.*unexpected tensors \[.*alpha"):
        train_progressive(dataclasses.replace(config, init=str(qann)))
    pickled = tmp_path / "init.pt"
    torch.save(weights.state_dict(), pickled)
    with pytest.raises(CheckpointError, match="fastsnn import .*--allow-pickle"):
        train_progressive(dataclasses.replace(config, init=str(pickled)))
    assert stage_starts == [] and not (tmp_path / "run").exists()


def test_a_missing_file_is_refused_naming_the_option(tmp_path, capsys):
    missing = tmp_path / "missing.safetensors"
    with pytest.raises(OptionError, match="missing.safetensors") as error:
        train_progressive(tiny_config(tmp_path, init=str(missing)))
    assert error.value.option == "init"
    out = tmp_path / "cli-run"
    assert main(["train", "--init", str(missing), "--out", str(out), "--quiet"]) == 2
    assert f"--init {missing} does not exist" in capsys.readouterr().err and not out.exists()
