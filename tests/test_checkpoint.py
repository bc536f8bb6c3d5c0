import dataclasses

import pytest
import torch

from fastsnn import convert
from fastsnn.errors import CheckpointError
from fastsnn.workflows.checkpoint import load_checkpoint, restore_optimizer, save_checkpoint
from fastsnn.workflows.model_spec import ModelSpec

SPEC = ModelSpec(name="resnet20", num_classes=10, in_channels=1, options={"width": 0.25}, bits=2, weight_bits=4)


def trained_a_little(spec=SPEC):
    model = spec.build()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for _ in range(2):
        model(torch.randn(4, 1, 28, 28)).sum().backward()
        optimizer.step()
    return model.eval(), optimizer


def test_round_trip_gives_identical_outputs_and_optimizer_state(tmp_path):
    model, optimizer = trained_a_little()
    rng_at_save = torch.get_rng_state()
    path = save_checkpoint(
        tmp_path / "q2.safetensors", model, SPEC, optimizer=optimizer, training={"epoch": 3}, save_rng=True
    )
    checkpoint = load_checkpoint(path)
    assert checkpoint.spec == SPEC and checkpoint.training["epoch"] == 3
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(checkpoint.build_model().eval()(x), model(x))
    fresh = torch.optim.SGD(checkpoint.build_model().parameters(), lr=0.5, momentum=0.0)
    restore_optimizer(fresh, checkpoint)
    assert fresh.param_groups[0]["lr"] == 0.01 and fresh.param_groups[0]["momentum"] == 0.9
    fresh_parameters = [p for group in fresh.param_groups for p in group["params"]]
    saved_parameters = [p for group in optimizer.param_groups for p in group["params"]]
    assert len(fresh.state) == len(optimizer.state) > 0
    for new, old in zip(fresh_parameters, saved_parameters, strict=True):
        assert torch.equal(fresh.state[new]["momentum_buffer"], optimizer.state[old]["momentum_buffer"])
    assert torch.equal(checkpoint.rng_state, rng_at_save)


def test_spiking_network_round_trip(tmp_path):
    qann, _ = trained_a_little()
    snn = convert(qann, signed=True, T=7)
    spec = dataclasses.replace(SPEC, snn={"T": 7, "signed": True})
    rebuilt = load_checkpoint(save_checkpoint(tmp_path / "snn.safetensors", snn, spec)).build_model()
    assert rebuilt.T == 7
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(rebuilt(x), snn(x))


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    model, _ = trained_a_little()
    path = save_checkpoint(tmp_path / "q2.safetensors", model, SPEC, training={"epoch": 1})
    before = path.read_bytes()

    def crash(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("fastsnn.workflows.checkpoint.save_file", crash)
    with pytest.raises(OSError):
        save_checkpoint(path, model, SPEC, training={"epoch": 2})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["q2.safetensors"], "no temporary file is left behind"


def test_bad_files_are_refused_clearly(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.safetensors")
    pickled = tmp_path / "model.pt"
    torch.save({"a": torch.zeros(1)}, pickled)
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(pickled)
    model, _ = trained_a_little()
    good = save_checkpoint(tmp_path / "good.safetensors", model, SPEC).read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="truncated.safetensors"):
        load_checkpoint(truncated)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="garbage.safetensors"):
        load_checkpoint(garbage)


def test_architecture_mismatch_names_the_tensor_and_shapes(tmp_path):
    model, _ = trained_a_little()
    path = save_checkpoint(tmp_path / "q2.safetensors", model, SPEC)
    checkpoint = load_checkpoint(path)
    checkpoint.spec = dataclasses.replace(SPEC, options={"width": 0.5})
    with pytest.raises(
        CheckpointError,
        match=r"tensor 'fc.parametrizations.weight.original' has shape \(10, 16\) "
        r"but model resnet20 expects \(10, 32\)",
    ):
        checkpoint.build_model()
    checkpoint.spec = dataclasses.replace(SPEC, bits=None)
    with pytest.raises(CheckpointError, match="unexpected tensors"):
        checkpoint.build_model()
