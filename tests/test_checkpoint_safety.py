"""Checkpoints that must not load: pickles without opt-in, corrupt files, wrong metadata, other models."""

import dataclasses
import json

import pytest
import torch
from safetensors.torch import save_file

from fastsnn.cli import main
from fastsnn.errors import CheckpointError
from fastsnn.workflows.checkpoint import FORMAT, import_weights, load_checkpoint, save_checkpoint
from fastsnn.workflows.model_spec import ModelSpec

SPEC = ModelSpec(name="resnet20", num_classes=10, in_channels=1, options={"width": 0.25}, bits=2)


@pytest.fixture(scope="module")
def model():
    return SPEC.build().eval()


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickle_is_refused_with_the_reason_and_the_opt_in(tmp_path, model):
    path = tmp_path / "weights.pth"
    torch.save(model.state_dict(), path)
    for load in (load_checkpoint, lambda p: import_weights(p, SPEC)):
        with pytest.raises(CheckpointError, match="arbitrary code.*--allow-pickle"):
            load(path)
    disguised = tmp_path / "weights.safetensors"  # a torch.save archive under a safe name
    disguised.write_bytes(path.read_bytes())
    with pytest.raises(CheckpointError, match="pickle-based"):
        load_checkpoint(disguised)


@pytest.mark.parametrize("wrap", [lambda s: s, lambda s: {"model": s, "epoch": 3}, lambda s: {"state_dict": s}])
def test_opted_in_pickle_is_read_weights_only_and_checked(tmp_path, model, wrap):
    path = tmp_path / "weights.pt"
    torch.save(wrap(model.state_dict()), path)
    rebuilt = import_weights(path, SPEC, allow_pickle=True).build_model().eval()
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(rebuilt(x), model(x))


def test_opted_in_pickle_with_code_is_still_refused(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.zeros(1)}, "payload": _Evil()}, path)
    with pytest.raises(CheckpointError, match="weights only"):
        import_weights(path, SPEC, allow_pickle=True)
    assert "pwned" not in capsys.readouterr().out


def test_import_names_the_mismatching_tensor_and_both_shapes(tmp_path, model):
    state = dict(model.state_dict())
    key = next(k for k in state if k.endswith("weight") and state[k].dim() == 4)
    state[key] = torch.zeros(3, *state[key].shape[1:])
    path = tmp_path / "weights.safetensors"
    save_file(state, path)
    expected = tuple(model.state_dict()[key].shape)
    with pytest.raises(CheckpointError, match=rf"{key}.*\(3, .*expects \({expected[0]}, "):
        import_weights(path, SPEC)


def test_cli_import_writes_a_checkpoint_only_with_the_opt_in(tmp_path, model, capsys):
    path = tmp_path / "weights.pt"
    torch.save(model.state_dict(), path)
    out = tmp_path / "q2.safetensors"
    argv = [
        "import",
        str(path),
        "--model",
        "resnet20",
        "--dataset",
        "fashion-mnist",
        "--bits",
        "2",
        "--width",
        "0.25",
        "--out",
        str(out),
    ]
    assert main(argv) == 2
    assert "--allow-pickle" in capsys.readouterr().err and not out.exists()
    assert main([*argv, "--allow-pickle"]) == 0
    assert load_checkpoint(out).spec == dataclasses.replace(SPEC, options={"width": 0.25, "stem": "cifar"})


def _rewrite(path, tmp_path, *, metadata=None, tensors=None):
    from safetensors import safe_open

    with safe_open(path, framework="pt") as reader:
        meta = {**reader.metadata(), **(metadata or {})}
        state = {k: reader.get_tensor(k) for k in reader.keys()}
    state.update(tensors or {})
    target = tmp_path / "edited.safetensors"
    save_file(state, target, metadata=meta)
    return target


@pytest.mark.parametrize(
    "edit",
    [
        {"metadata": {"format": "something-else"}},
        {"metadata": {"spec": "{not json"}},
        {"metadata": {"spec": json.dumps({**dataclasses.asdict(SPEC), "bits": 42})}},
        {"metadata": {"spec": json.dumps({**dataclasses.asdict(SPEC), "num_classes": "10"})}},
        {"metadata": {"spec": json.dumps({**dataclasses.asdict(SPEC), "evil": 1})}},
        {"metadata": {"spec": json.dumps({**dataclasses.asdict(SPEC), "snn": {"T": 0, "signed": True}})}},
        {"metadata": {"training": "[1, 2]"}},
        {"tensors": {"optimizer.x.momentum_buffer": torch.zeros(1)}},
        {"tensors": {"stray": torch.zeros(1)}},
        {"tensors": {"rng.torch": torch.zeros(3)}},
    ],
)
def test_invalid_metadata_is_one_clear_error(tmp_path, model, edit):
    good = save_checkpoint(tmp_path / "good.safetensors", model, SPEC)
    with pytest.raises(CheckpointError, match="edited.safetensors") as error:
        load_checkpoint(_rewrite(good, tmp_path, **edit))
    assert "\n" not in str(error.value)


def test_wrong_dtype_is_named(tmp_path, model):
    good = save_checkpoint(tmp_path / "good.safetensors", model, SPEC)
    key = next(k for k in model.state_dict() if k.endswith("num_batches_tracked"))
    edited = _rewrite(good, tmp_path, tensors={f"model.{key}": torch.zeros((), dtype=torch.float32)})
    with pytest.raises(CheckpointError, match=f"{key}.*dtype"):
        load_checkpoint(edited).build_model()


@pytest.mark.parametrize("damage", ["truncate", "flip_header", "empty", "garbage"])
def test_corrupt_checkpoint_is_one_line_from_the_cli(tmp_path, model, damage, capsys):
    good = save_checkpoint(tmp_path / "good.safetensors", model, SPEC).read_bytes()
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(
        {
            "truncate": good[: len(good) - 100],
            "flip_header": good[:8] + b"\xff" * 16 + good[24:],
            "empty": b"",
            "garbage": b"\x00" * 7,
        }[damage]
    )
    out = tmp_path / "snn.safetensors"
    assert main(["convert", str(bad), "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "bad.safetensors" in error and "Traceback" not in error
    assert not out.exists()


def test_metadata_format_constant_is_recorded(tmp_path, model):
    from safetensors import safe_open

    path = save_checkpoint(tmp_path / "c.safetensors", model, SPEC)
    with safe_open(path, framework="pt") as reader:
        assert reader.metadata()["format"] == FORMAT
