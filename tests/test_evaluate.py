import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from fastsnn import quantize
from fastsnn.evaluate import accuracy, evaluate_conversion, format_results


def test_one_pass_evaluation_matches_separate_measurements():
    qann = quantize(nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4)), 2, alpha=1.0).eval()
    images, labels = torch.randn(300, 6), torch.randint(0, 4, (300,))
    loader = DataLoader(TensorDataset(images, labels), batch_size=64)
    results = evaluate_conversion(qann, loader, [3, 15], progress=False)
    assert results["samples"] == 300 and results["float"] is None
    assert results["qann"] == accuracy(qann, loader)
    assert [(r["T"], r["signed"]) for r in results["snn"]] == [(3, False), (3, True), (15, False), (15, True)]
    for row in results["snn"]:
        assert 0 <= row["accuracy"] <= 1 and 0 <= row["agreement"] <= 1
    table = format_results(results)
    assert "SNN signed" in table and f"{100 * results['qann']:.2f}" in table


def test_single_spiking_layer_agrees_with_its_qann_everywhere():
    """One spiking layer with direct input is exact at T = 2^b − 1, so the agreement must be 100 %."""
    qann = quantize(nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 5)), 3, alpha=1.5).eval()
    loader = DataLoader(TensorDataset(torch.randn(500, 6), torch.randint(0, 5, (500,))), batch_size=100)
    results = evaluate_conversion(qann, loader, [7], float_model=nn.Sequential(nn.Linear(6, 5)), progress=False)
    assert all(row["agreement"] == 1.0 and row["accuracy"] == results["qann"] for row in results["snn"])
    assert results["float"] is not None
