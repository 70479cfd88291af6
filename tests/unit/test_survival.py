"""Discrete-time survival: the likelihood against a direct computation, bins, distillation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from histodistill.errors import InputError
from histodistill.models.survival import (
    bin_cuts,
    binary_kl,
    discretise,
    nll_loss,
    risk_score,
    survival_curve,
)


def reference_nll(logits, y, event, alpha):
    """MCAT's NLLSurvLoss written out in probabilities."""
    h = 1 / (1 + np.exp(-logits))
    s = np.cumprod(1 - h, axis=1)
    s_pad = np.concatenate([np.ones((len(h), 1)), s], axis=1)
    rows = np.arange(len(h))
    c = 1 - event
    uncensored = -(1 - c) * (np.log(s_pad[rows, y]) + np.log(h[rows, y]))
    censored = -c * np.log(s_pad[rows, y + 1])
    nll = censored + uncensored
    return ((1 - alpha) * nll + alpha * uncensored).mean()


@pytest.mark.parametrize("alpha", [0.0, 0.4])
def test_nll_matches_direct_computation(alpha):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(32, 4))
    y = rng.integers(0, 4, 32)
    event = rng.integers(0, 2, 32)
    ours = nll_loss(torch.tensor(logits), torch.tensor(y), torch.tensor(event), alpha)
    assert ours.item() == pytest.approx(reference_nll(logits, y, event, alpha), rel=1e-10)


def test_risk_is_minus_sum_of_survival_and_monotone_in_hazard():
    low, high = torch.full((1, 4), -2.0), torch.full((1, 4), 1.0)
    assert risk_score(high) > risk_score(low)
    s = survival_curve(torch.tensor([[0.0, 0.0]]))
    assert torch.allclose(s, torch.tensor([[0.5, 0.25]]))
    assert risk_score(torch.tensor([[0.0, 0.0]])).item() == pytest.approx(-0.75)


def test_bins_from_uncensored_times_only():
    times = np.array([1, 2, 3, 4, 5, 6, 7, 8, 100, 200.0])
    events = np.array([1, 1, 1, 1, 1, 1, 1, 1, 0, 0])
    cuts = bin_cuts(times, events, 4)
    np.testing.assert_allclose(cuts, np.quantile(times[:8], [0.25, 0.5, 0.75]))
    assert discretise(np.array([0.5, 2.75, 4.5, 1000]), cuts).tolist() == [0, 1, 2, 3]
    with pytest.raises(InputError, match="only 2 events"):
        bin_cuts(times[:3], np.array([1, 1, 0]), 4)


def test_binary_kl_is_zero_only_when_equal():
    t = torch.tensor([[0.3, -1.0, 2.0]])
    assert binary_kl(t, t, 2.0).item() == pytest.approx(0.0, abs=1e-7)
    assert binary_kl(t + 0.5, t, 2.0).item() > 0
