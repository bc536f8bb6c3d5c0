import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from fastsnn import convert, quantize
from fastsnn.analysis import accuracy, compare_models, evaluate_conversion, format_results, row


def test_one_pass_evaluation_matches_separate_measurements():
    qann = quantize(
        nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4)), 2, alpha=1.0
    ).eval()
    images, labels = torch.randn(300, 6), torch.randint(0, 4, (300,))
    loader = DataLoader(TensorDataset(images, labels), batch_size=64)
    results = evaluate_conversion(qann, loader, [3, 15], progress=False)
    assert results["samples"] == 300
    assert [(r["model"], r["T"]) for r in results["rows"]] == [
        ("QANN", None),
        ("SNN unsigned", 3),
        ("SNN signed", 3),
        ("SNN unsigned", 15),
        ("SNN signed", 15),
    ]
    assert row(results, "QANN")["accuracy"] == accuracy(qann, loader)
    for T in (3, 15):
        snn = convert(qann, signed=True, T=T)
        assert row(results, "SNN signed", T)["accuracy"] == accuracy(snn, loader)
        with torch.no_grad():
            same = (snn(images).argmax(1) == qann(images).argmax(1)).sum().item() / 300
        assert row(results, "SNN signed", T)["agreement"] == same
    table = format_results(results)
    assert "SNN signed" in table and f"{100 * row(results, 'QANN')['accuracy']:.2f}" in table


def test_single_spiking_layer_agrees_with_its_qann_everywhere():
    """One spiking layer with direct input is exact at T = 2^b − 1, so the agreement must be 100 %."""
    qann = quantize(nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 5)), 3, alpha=1.5).eval()
    loader = DataLoader(TensorDataset(torch.randn(500, 6), torch.randint(0, 5, (500,))), batch_size=100)
    results = evaluate_conversion(qann, loader, [7], float_model=nn.Sequential(nn.Linear(6, 5)), progress=False)
    snn_rows = [r for r in results["rows"] if r["T"] is not None]
    assert all(r["agreement"] == 1.0 and r["accuracy"] == row(results, "QANN")["accuracy"] for r in snn_rows)
    assert row(results, "float ANN")["agreement"] is None


def test_compare_models_counts_agreement_with_the_chosen_reference():
    always_zero, always_one = nn.Linear(3, 2), nn.Linear(3, 2)
    for module, winner in ((always_zero, 0), (always_one, 1)):
        nn.init.zeros_(module.weight)
        module.bias.data = torch.tensor([1.0, 0.0]) if winner == 0 else torch.tensor([0.0, 1.0])
    labels = torch.tensor([0, 0, 0, 1])
    loader = DataLoader(TensorDataset(torch.randn(4, 3), labels), batch_size=3)
    results = compare_models(
        {("zero", None): always_zero, ("one", 5): always_one}, loader, reference=("zero", None), progress=False
    )
    assert row(results, "zero")["accuracy"] == 0.75 and row(results, "one", 5)["accuracy"] == 0.25
    assert row(results, "one", 5)["agreement"] == 0.0
