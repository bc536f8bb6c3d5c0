"""Bias calibration removes a known per-channel error in closed form; the end-to-end phase reduces an
error injected into a small trained network."""

import torch
from torch import nn

from fastsnn import QuantReLU, SpikingNetwork, convert, quantize
from fastsnn.analysis import conversion_errors, recorded_outputs
from fastsnn.finetune import END_TO_END, finetune
from fastsnn.finetune.calibration import calibrate_layer
from fastsnn.quant import relu_percentiles
from helpers import labelled, loader_of


def test_calibration_removes_a_constant_per_channel_error_to_float_precision():
    """Layer 1 at T = 7 sees a constant current z in [0.3, 0.65] (inside the clip range [0, 1] with
    room for the error); its SNN bias is off by whole quantization steps δ_c = k_c / 7, so every rate
    is off by exactly δ_c. One round of calibration must find δ and remove it."""
    generator = torch.Generator().manual_seed(0)
    first = nn.Linear(3, 4)
    with torch.no_grad():
        first.weight.copy_(0.1 * torch.rand(4, 3, generator=generator))
        first.bias.copy_(0.3 + 0.05 * torch.rand(4, generator=generator))
    qann = nn.Sequential(first, QuantReLU(3, 1.0), nn.Linear(4, 2)).eval()
    snn = convert(qann)
    original = snn.body.get_submodule("0").bias.detach().clone()
    error = torch.tensor([-2.0, -1.0, 1.0, 2.0]) / 7
    with torch.no_grad():
        snn.body.get_submodule("0").bias += error
    images = [torch.rand(64, 3, generator=generator) for _ in range(2)]

    def rates_and_targets():
        with torch.no_grad(), recorded_outputs({"rate": snn.body.get_submodule("1")}) as rate:
            snn(images[0])
        with torch.no_grad(), recorded_outputs({"q": qann.get_submodule("1")}) as q:
            qann(images[0])
        return rate["rate"], q["q"]

    rate, q = rates_and_targets()
    torch.testing.assert_close(rate - q, error.expand_as(q), atol=1e-6, rtol=0)
    parameters = dict(snn.body.get_submodule("0").named_parameters(prefix="0"))
    assert calibrate_layer(snn, qann, "1", parameters, images, rounds=1) == ["0.bias"]
    torch.testing.assert_close(snn.body.get_submodule("0").bias.detach(), original, atol=1e-6, rtol=0)
    rate, q = rates_and_targets()
    torch.testing.assert_close(rate, q, atol=1e-6, rtol=0)


def trained_qann(generator: torch.Generator) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A 2-bit MLP (4 → 16 → 16 → 3) trained for 300 steps to classify random points by a random
    linear teacher; returns it, 2048 training points and their labels."""
    points = torch.randn(2048, 4, generator=generator)
    labels = (points @ torch.randn(4, 3, generator=generator)).argmax(1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(300):
        batch = slice(64 * (step % 32), 64 * (step % 32 + 1))
        loss = nn.functional.cross_entropy(model(points[batch]), labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return quantize(model.eval(), 2, alpha=relu_percentiles(model, [points], 99.0)).eval(), points, labels


def injected_error(qann: nn.Module, share: float = 1 / 3) -> SpikingNetwork:
    """The signed SNN of ``qann`` whose second spiking layer gets ``share`` of a threshold too much current."""
    snn = convert(qann)
    with torch.no_grad():
        snn.body.get_submodule("2").bias += snn.body.get_submodule("3").threshold * share
    return snn


def test_end_to_end_phase_reduces_an_injected_systematic_error():
    generator = torch.Generator().manual_seed(1)
    qann, points, _ = trained_qann(generator)
    snn = injected_error(qann)
    held_out = loader_of(points[-512:], 256)
    before = conversion_errors(qann, {"snn": snn}, held_out).output["snn"]
    reports = []
    tuned = finetune(
        snn,
        qann,
        loader_of(points[:-512], 64, shuffle=True),
        held_out=held_out,
        steps_per_layer=0,
        end_to_end_steps=200,
        end_to_end_lr=3e-3,
        end_to_end_loss="qann",
        criterion="mse",
        progress=False,
        on_layer=reports.append,
    )
    after = conversion_errors(qann, {"snn": tuned}, held_out)
    assert [(r.layer, r.kept) for r in reports] == [(END_TO_END, True)]
    assert set(reports[0].parameters) == {"2.weight", "2.bias", "4.weight", "4.bias"}, (
        "the exact first layer is not trained"
    )
    assert after.output["snn"] < 0.5 * before, (before, after.output["snn"])
    assert all(torch.equal(p, q) for p, q in zip(tuned.body[0].parameters(), snn.body[0].parameters(), strict=True))
    assert after.accumulating["snn"][0] < 1e-6, "the first spiking layer stays exact (to float rounding of the rate)"


def test_end_to_end_on_the_task_loss_raises_held_out_accuracy_and_is_kept_only_beyond_noise():
    """Trained on the labels alone (no QANN target), the phase recovers accuracy lost to an injected error;
    the report's figures are the held-out accuracies measured independently; the exact first layer and
    the caller's SNN are untouched."""
    generator = torch.Generator().manual_seed(2)
    qann, points, labels = trained_qann(generator)
    snn = injected_error(qann, share=1.0)
    original = [p.detach().clone() for p in snn.parameters()]
    held_out = labelled(points[-512:], labels[-512:], 256)

    def accuracy(model) -> float:
        with torch.no_grad():
            return (model(points[-512:]).argmax(1) == labels[-512:]).double().mean().item()

    reports = []
    tuned = finetune(
        snn,
        qann,
        labelled(points[:-512], labels[:-512], 64, shuffle=True),
        held_out=held_out,
        steps_per_layer=0,
        end_to_end_steps=150,
        end_to_end_lr=3e-3,
        end_to_end_loss="task",
        progress=False,
        on_layer=reports.append,
    )
    (report,) = reports
    assert report.kept and report.correction == "end-to-end"
    assert (report.criterion_before, report.criterion_after) == (accuracy(snn), accuracy(tuned))
    assert report.criterion_after > report.criterion_before + 0.1
    assert report.wins > report.losses and report.p_value <= 0.05
    assert all(torch.equal(p, q) for p, q in zip(snn.parameters(), original, strict=True)), "the caller's SNN"
    assert all(torch.equal(p, q) for p, q in zip(tuned.body[0].parameters(), snn.body[0].parameters(), strict=True))


def test_a_phase_that_cannot_beat_noise_leaves_the_weights_untouched():
    """At a significance no gain can reach, every correction is reverted: the tuned SNN equals the input."""
    generator = torch.Generator().manual_seed(3)
    qann, points, labels = trained_qann(generator)
    snn = injected_error(qann)
    reports = []
    tuned = finetune(
        snn,
        qann,
        labelled(points[:-256], labels[:-256], 64, shuffle=True),
        held_out=labelled(points[-256:], labels[-256:], 128),
        steps_per_layer=20,
        lr=1e-2,
        end_to_end_steps=50,
        end_to_end_lr=3e-3,
        significance=1e-300,
        progress=False,
        on_layer=reports.append,
    )
    assert {r.correction for r in reports} == {"layer-wise", "end-to-end"}
    assert not any(r.kept for r in reports)
    assert any(r.criterion_after != r.criterion_before for r in reports), "the corrections did change something"
    assert all(torch.equal(p, q) for p, q in zip(tuned.parameters(), snn.parameters(), strict=True))
