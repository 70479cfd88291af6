"""wsi_meanpool: the pooled-feature ridge Cox / logistic baseline, checked against
scikit-survival and scikit-learn, and trained through the real fold step with its penalty
chosen on the inner validation split."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.util import Surv

from histodistill.models.base import Inputs, ModelDims
from histodistill.models.meanpool import WsiMeanPool, breslow_increments
from histodistill.training.fold import train_fold
from histodistill.training.loop import TrainParams
from histodistill.training.tuning import TuneParams


def _cohort(n: int, p: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p)) + 1.5
    lp = x[:, 0] - 0.5 * x[:, 1]
    t = np.round(rng.exponential(10, n) * np.exp(-lp + 1), 0) + 1  # rounded: tied times
    e = rng.random(n) < 0.7
    return x, t, e


def test_breslow_increments_match_scikit_survival_with_ties():
    x, t, e = _cohort(80, 3)
    cox = CoxPHSurvivalAnalysis(alpha=0.1, ties="breslow").fit(x, Surv.from_arrays(e, t))
    ends = np.array([5.0, 10.0, 20.0, t.max()])
    got = np.cumsum(breslow_increments(x @ cox.coef_, t, e, ends))
    np.testing.assert_allclose(got, cox.cum_baseline_hazard_(ends), rtol=1e-10)


@pytest.mark.parametrize("p", [4, 60])  # fewer and more pooled dimensions than patients
def test_fit_equals_a_direct_ridge_cox_fit_and_its_survival_is_s0_to_the_exp_lp(p):
    x, t, e = _cohort(40, p)
    ends = np.array([4.0, 12.0, t.max()])
    model = WsiMeanPool(ModelDims(p, 0, len(ends), 8), penalty=3.0)
    model.fit_pooled(x, t, e, None, ends)
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    ref = CoxPHSurvivalAnalysis(alpha=3.0, ties="breslow", n_iter=200)
    ref.fit(z, Surv.from_arrays(e, t))
    np.testing.assert_allclose(model.coef.numpy(), ref.coef_, atol=1e-6)
    # one patient's bag whose mean is x[0]: S_j = S0(e_j) ** exp(lp), from the logits
    bag = torch.as_tensor(np.stack([x[0] - 1.0, x[0] + 1.0]), dtype=torch.float32)
    hazard = torch.sigmoid(model(Inputs(bag, None)).logits.double())
    lp0 = float(z[0] @ ref.coef_)
    expected = np.exp(-ref.cum_baseline_hazard_(ends) * np.exp(lp0))
    np.testing.assert_allclose(torch.cumprod(1 - hazard, 0).numpy(), expected, rtol=1e-4,
                               atol=1e-9)


def test_binary_outcome_is_a_penalised_logistic_regression():
    from sklearn.linear_model import LogisticRegression

    x, _, _ = _cohort(60, 5, seed=3)
    y = (x[:, 0] + np.random.default_rng(1).normal(size=60) > 1.5).astype(int)
    model = WsiMeanPool(ModelDims(5, 0, 1, 8), penalty=2.0, outcome="binary")
    model.fit_pooled(x, np.ones(60), np.ones(60), y, np.array([1.0]))
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    ref = LogisticRegression(C=0.5, max_iter=1000).fit(z, y)
    logit = model(Inputs(torch.as_tensor(x[:1], dtype=torch.float32), None)).logits
    assert float(logit) == pytest.approx(float(ref.decision_function(z[:1])[0]), abs=1e-4)


def test_mean_max_pooling_reads_the_bag_maximum():
    model = WsiMeanPool(ModelDims(2, 0, 2, 8), pooling="mean_max")
    bag = torch.tensor([[0.0, 1.0], [2.0, -1.0], [1.0, 3.0]])
    assert model.pooled(bag).tolist() == [1.0, 1.0, 2.0, 3.0]


def test_penalty_is_chosen_on_the_inner_validation_split(tiny_pipeline, tmp_path):
    p = tiny_pipeline
    params = TrainParams(n_bins=2, max_patches=16)
    # 10.0 is the configured value: candidate 0, never drawn again
    tune = TuneParams(budget=3, space={"wsi_meanpool": {"penalty": [0.01, 1000.0, 10.0]},
                                       "common": {"lr": [1.0]}})  # common: gradient models only
    train_fold("wsi_meanpool", 1, p["folds"], p["clinical"], p["samples"], p["features"], None,
               tmp_path, params, tune=tune)
    meta = json.loads((tmp_path / "meta.json").read_text())
    trials = meta["tuning"]["trials"]
    assert trials[0]["params"] == {}  # the configured values (penalty 10) come first
    assert sorted(t["params"]["penalty"] for t in trials[1:]) == [0.01, 1000.0]
    scores = [-np.inf if t["val_score"] is None else t["val_score"] for t in trials]
    assert meta["tuning"]["chosen"] == int(np.argmax(scores))
    chosen = trials[meta["tuning"]["chosen"]]["params"]
    assert meta["train_params"]["penalty"] == chosen.get("penalty", 10.0)
    assert meta["bag_agreement"]["max_patches"] == 16
    # the risk ranks patients as the pooled linear predictor does
    preds = pd.read_csv(tmp_path / "predictions.tsv", sep="\t")
    assert preds["risk"].notna().all() and preds["risk"].nunique() > 1
