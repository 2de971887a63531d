"""pitchlab.evaluate: metrics against scikit-learn on random data (ties, weights), bootstrap by athlete, decision
curves, and the comparison on a shared split."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st
from sklearn import metrics as skm

from pitchlab.core import ConfigError, ValidationError
from pitchlab.evaluate import (
    METRICS,
    Evaluation,
    bootstrap_metrics,
    brier,
    calibration_table,
    ece,
    evaluate,
    log_loss,
    net_benefit,
    pr_auc,
    precision_at_k,
    roc_auc,
)


@st.composite
def scored(draw):
    n = draw(st.integers(5, 300))
    seed = draw(st.integers(0, 10**6))
    rng = np.random.default_rng(seed)
    levels = draw(st.sampled_from([3, 20, 1000]))  # few distinct scores (ties, like the ACWR rule) or many
    p = rng.integers(1, levels, n) / levels
    y = (rng.random(n) < p).astype(float)
    y[0], y[1] = 0.0, 1.0
    w = rng.integers(0, 4, n).astype(float)
    w[0] = w[1] = 1.0
    return y, p, w


@settings(max_examples=60, deadline=None)
@given(scored())
def test_metrics_match_sklearn(data):
    y, p, w = data
    assert roc_auc(y, p, w) == pytest.approx(skm.roc_auc_score(y, p, sample_weight=w), abs=1e-12)
    assert pr_auc(y, p, w) == pytest.approx(skm.average_precision_score(y, p, sample_weight=w), abs=1e-12)
    assert brier(y, p, w) == pytest.approx(skm.brier_score_loss(y, p, sample_weight=w), abs=1e-12)
    assert log_loss(y, p, w) == pytest.approx(skm.log_loss(y, p, sample_weight=w), abs=1e-9)
    assert roc_auc(y, p) == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)


def test_calibration_and_ece():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 0.2, 200_000)
    y = (rng.random(p.size) < p).astype(float)
    assert ece(y, p) < 0.003
    assert ece(y, np.clip(p * 2, 0, 1)) > 0.08
    t = calibration_table(y, p, n_bins=5)
    assert len(t) == 5 and t["weight"].sum() == p.size
    np.testing.assert_allclose(t["observed"], t["predicted"], atol=0.005)


def test_precision_and_net_benefit():
    y = np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 1.0])
    p = np.array([0.9, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.8])
    assert precision_at_k(y, p, 0.2) == 1.0
    assert precision_at_k(y, p, 0.5) == pytest.approx(2 / 5)
    nb = net_benefit(y, p, [0.05, 0.5])
    assert nb[1] == pytest.approx(0.2)  # acting on the two injuries only
    assert nb[0] == pytest.approx(0.2 - 0.8 * 0.05 / 0.95)  # acting on everyone
    assert net_benefit(y, y, [0.3])[0] == pytest.approx(y.mean())


def test_bootstrap_resamples_athletes():
    rng = np.random.default_rng(1)
    n_ath, per = 40, 200
    g = np.repeat(np.arange(n_ath), per)
    frail = rng.normal(0, 1, n_ath)[g]
    p = 1 / (1 + np.exp(-(-3 + frail)))
    y = (rng.random(p.size) < p).astype(float)
    b = bootstrap_metrics(y, p, g, n_boot=300, seed=0)
    assert list(b.columns) == list(METRICS)
    # resampling days instead of athletes would understate the spread of the Brier score
    b_days = bootstrap_metrics(y, p, np.arange(p.size), n_boot=300, seed=0)
    assert b["brier"].std() > 1.5 * b_days["brier"].std()
    pd.testing.assert_frame_equal(bootstrap_metrics(y, p, g, n_boot=10, seed=0), b.head(10))


class Fixed:
    """A model whose risk is a column of the rows (fitting does nothing), to test the plumbing."""

    def __init__(self, col):
        self.col, self.fitted = col, False

    def fit(self, df):
        self.fitted = True
        return self

    def predict_proba(self, df):
        return df[self.col].to_numpy()


def _split():
    from pitchlab.features import Split

    rng = np.random.default_rng(3)
    rows = []
    for part, start in (("train", "2024-01-01"), ("test", "2024-07-01")):
        n = 3000
        d = pd.DataFrame(
            {
                "athlete_id": rng.choice([f"a{i}" for i in range(30)], n),
                "date": pd.Timestamp(start) + pd.to_timedelta(rng.integers(0, 150, n), unit="D"),
                "good": rng.uniform(0, 0.1, n),
            }
        )
        d["label"] = (rng.random(n) < d["good"]).astype(float)
        d["noise"] = rng.uniform(0, 0.1, n)
        rows.append(d)
    return Split(train=rows[0], test=rows[1], test_start=pd.Timestamp("2024-07-01"), horizon=7, purged=0)


def test_evaluate_same_split_for_all():
    sp = _split()
    models = {"good": Fixed("good"), "noise": Fixed("noise"), "array": sp.test["good"].to_numpy() * 0.5}
    ev = evaluate(models, sp, n_boot=100, seed=1)
    assert isinstance(ev, Evaluation) and all(m.fitted for m in list(models.values())[:2])
    t = ev.table
    assert t.loc["good", "auc"] > 0.65 and abs(t.loc["noise", "auc"] - 0.5) < 0.1
    assert t.loc["good", "auc"] == pytest.approx(t.loc["array", "auc"])  # a rescaled score ranks the same
    assert t.loc["array", "ece"] > t.loc["good", "ece"]  # but is mis-calibrated
    for m in ("auc", "pr_auc", "brier", "log_loss"):  # ECE is biased upwards by noise, and so is its bootstrap
        assert ((t[f"{m}_lo"] <= t[m] + 1e-12) & (t[m] <= t[f"{m}_hi"] + 1e-12)).all(), m
    m = ev.metrics("good", baseline="noise")
    assert (
        m["auc"] == t.loc["good", "auc"]
        and m["baseline_auc"] == t.loc["noise", "auc"]
        and m["n_test_rows"] == len(sp.test)
    )
    d = ev.difference("good", "noise")
    assert d["lo"] > 0
    dc = ev.decision_curve()
    assert {"good", "noise", "treat all", "treat none"} <= set(dc.columns)
    assert ev.calibration(5).loc["good"].shape[0] == 5
    assert "auc" in ev.summary().columns
    import matplotlib

    matplotlib.use("Agg")
    assert ev.plot_calibration() is not None and ev.plot_decision_curve() is not None


def test_evaluate_errors():
    sp = _split()
    with pytest.raises(ConfigError, match="Split"):
        evaluate({"m": Fixed("good")}, sp.test)
    with pytest.raises(ValidationError, match="no positive"):
        evaluate({"m": Fixed("good")}, sp.test.assign(label=0.0), fit=False)
    with pytest.raises(ValidationError, match="returned"):
        evaluate({"m": np.zeros(3)}, sp)
