"""Shared test helpers: exact (dyadic) arithmetic for bit-for-bit equivalence tests."""

import pytest
import torch


def dyadic(shape, generator: torch.Generator, *, low: int = -8, high: int = 9, denominator: int = 8) -> torch.Tensor:
    """Random float32 values k / denominator: sums of products of these are exact in float32."""
    return torch.randint(low, high, shape, generator=generator).float() / denominator


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
