import pytest
import torch

import fastsnn.workflows.train as train_module
from fastsnn import QuantReLU
from fastsnn.errors import FastSNNError
from fastsnn.workflows.checkpoint import load_checkpoint
from fastsnn.workflows.train import TrainConfig, train_progressive
from helpers import write_tiny_fashion_mnist


def tiny_config(tmp_path, out="run", **overrides):
    root = write_tiny_fashion_mnist(tmp_path / "data", train=512)
    settings = dict(
        model="resnet20",
        dataset="fashion-mnist",
        data_root=str(root),
        width=0.25,
        bits=2,
        float_epochs=3,
        epochs=2,
        batch_size=32,
        lr=0.1,
        quant_lr=0.01,
        out_dir=str(tmp_path / out),
        progress=False,
    )
    settings.update(overrides)
    return TrainConfig(**settings)


@pytest.mark.parametrize(
    "bits, progressive, stages",
    [
        (2, True, [None, 4, 3, 2]),
        (3, True, [None, 4, 3]),
        (4, True, [None, 4]),
        (6, True, [None, 6]),
        (2, False, [None, 2]),
        (None, True, [None]),
    ],
)
def test_stages(bits, progressive, stages):
    assert TrainConfig(bits=bits, progressive=progressive).stages() == stages


def test_progressive_training_learns_and_chains_stages(tmp_path):
    # quant_lr 0.03: at 0.01 this 4-channel ResNet ends its 2-bit stage near 0.25, too close to the bar
    paths = train_progressive(tiny_config(tmp_path, quant_lr=0.03))
    assert list(paths) == ["float", "q4", "q3", "q2"]
    float_run = load_checkpoint(paths["float"]).training["history"]
    assert float_run[-1]["train_loss"] < float_run[0]["train_loss"] and float_run[-1]["test_accuracy"] > 0.5
    q4, q3, q2 = (load_checkpoint(paths[k]) for k in ("q4", "q3", "q2"))
    assert (q4.spec.bits, q3.spec.bits, q2.spec.bits) == (4, 3, 2)
    alphas = {k: v for k, v in q4.model_state.items() if k.endswith("alpha")}
    assert alphas and all(v.item() != 2.0 for v in alphas.values()), "first quantized stage starts from statistics"
    model = q2.build_model()
    assert all(m.bits == 2 for m in model.modules() if isinstance(m, QuantReLU))
    assert q2.training["history"][-1]["test_accuracy"] > 0.25, "above chance (0.1) at 2 bits"


def test_resume_after_interruption_ends_with_identical_weights(tmp_path, monkeypatch):
    config = dict(bits=3)
    reference = load_checkpoint(train_progressive(tiny_config(tmp_path, "reference", **config))["q3"]).model_state

    real_save = train_module.save_checkpoint
    saves = []

    def save_then_crash(*args, **kwargs):
        real_save(*args, **kwargs)
        saves.append(args[0])
        if len(saves) in (2, 6):  # mid float stage, and mid q3 stage
            raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "save_checkpoint", save_then_crash)
    interrupted = tiny_config(tmp_path, "interrupted", **config)
    for _ in range(2):
        with pytest.raises(KeyboardInterrupt):
            train_progressive(interrupted)
    resumed = load_checkpoint(train_progressive(interrupted)["q3"]).model_state
    assert len(saves) == 3 + 2 + 2, "every epoch ran exactly once"
    assert resumed.keys() == reference.keys()
    for key in reference:
        assert torch.equal(resumed[key], reference[key]), key


def test_checkpoint_of_another_model_in_the_output_folder_is_refused(tmp_path):
    train_progressive(tiny_config(tmp_path, bits=None, float_epochs=1))
    with pytest.raises(FastSNNError, match="different model"):
        train_progressive(tiny_config(tmp_path, bits=None, float_epochs=1, width=0.5))


def test_diverging_loss_stops_with_a_clear_error(tmp_path):
    with pytest.raises(FastSNNError, match="loss became"):
        train_progressive(tiny_config(tmp_path, bits=None, float_epochs=1, lr=1e12))


def test_last_stage_can_train_longer():
    config = TrainConfig(bits=2, float_epochs=3, epochs=1, final_epochs=5)
    assert [train_module._stage_epochs(config, i) for i in range(4)] == [3, 1, 1, 5]
    assert train_module._stage_epochs(TrainConfig(bits=2, epochs=2), 3) == 2
