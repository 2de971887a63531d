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


# ------------------------------------------------------------------------------- calibration, events, sample size
def test_calibration_in_the_large_and_slope_by_hand():
    from pitchlab.evaluate import calibration_slope, observed_expected, oe_interval

    # O = 2, E = 0.25 + 0.25 + 0.5 + 0.5 = 1.5
    assert observed_expected([0, 1, 0, 1], [0.25, 0.25, 0.5, 0.5]) == pytest.approx(4 / 3, abs=1e-12)
    # weights 1, 2, 0, 0: O = 2 (the second row twice), E = 0.25 + 0.5 = 0.75
    assert observed_expected([0, 1, 0, 1], [0.25, 0.25, 0.5, 0.5], w=[1, 2, 0, 0]) == pytest.approx(8 / 3)
    # 100 independent events: exp(+-1.96 / 10)
    lo, hi = oe_interval(1.5, 100)
    assert (lo, hi) == pytest.approx((1.5 * np.exp(-0.1959964), 1.5 * np.exp(0.1959964)), abs=1e-6)
    # slope by hand: two groups of predictions 0.1 and 0.5 with observed rates 0.2 and 0.5 -> a saturated logistic fit
    # logit(0.2) = a + b logit(0.1), logit(0.5) = a + b logit(0.5) = a  =>  a = 0, b = logit(0.2) / logit(0.1)
    y = np.r_[np.ones(2), np.zeros(8), np.ones(5), np.zeros(5)]
    p = np.r_[np.full(10, 0.1), np.full(10, 0.5)]
    assert calibration_slope(y, p) == pytest.approx(np.log(0.25) / np.log(1 / 9), abs=1e-8)
    assert np.isnan(calibration_slope(y, np.full(20, 0.3)))  # constant predictions carry no slope


def test_episodes_count_injuries_not_rows():
    from pitchlab.models.baselines import episodes

    days = pd.date_range("2024-01-01", periods=6)
    ath = ["a"] * 6 + ["b"] * 6
    y = [0, 1, 1, 1, 0, 0] + [1, 1, 0, 0, 1, 0]  # a: one run of 3; b: two runs
    assert episodes(ath, list(days) * 2, y) == 3
    assert episodes(ath, list(days) * 2, [0] * 12) == 0


def test_riley_sample_size_by_hand():
    from pitchlab.evaluate import riley_sample_size, sample_size_statement

    r = riley_sample_size(10, 0.01, r2_cs=0.01)
    # (i) 10 / ((0.9 - 1) ln(1 - 0.01 / 0.9)) = 8949.8 ; (iii) (1.96 / 0.05)^2 x 0.01 x 0.99 = 15.2
    assert (r["n_shrinkage"], r["n_overall_risk"]) == (8950, 16)
    assert r["n"] == max(r["n_shrinkage"], r["n_optimism"], r["n_overall_risk"])
    assert r["events"] == int(np.ceil(r["n"] * 0.01))
    with pytest.raises(ValidationError, match="no events"):
        riley_sample_size(10, 0.0)
    assert "no injury" in sample_size_statement(10, 5000, 0)
    s = sample_size_statement(11, 26365, 19, positive_rows=129)
    assert "19 injury episodes" in s and "expect optimism" in s


def test_table_has_calibration_events_and_no_fake_certainty():
    sp = _split()
    const = np.full(len(sp.test), sp.test["label"].mean())
    ev = evaluate({"good": Fixed("good"), "base rate": const}, sp, n_boot=50, seed=1)
    t = ev.table
    assert {"oe", "oe_lo", "oe_hi", "slope", "slope_lo", "slope_hi"} <= set(t.columns)
    y, p = ev.predictions["y"], ev.predictions["good"]
    assert t.loc["good", "oe"] == pytest.approx(y.sum() / p.sum())
    s = ev.summary()
    assert (s["events"] == ev.info["episodes"]).all()
    assert s.loc["base rate", "auc"] == "base rate (no signal)" and "0.500 [0.500" not in s.to_string()
    m = ev.metrics("good")
    assert m["n_test_events"] == ev.info["episodes"] and m["n_test_positive_rows"] == int(y.sum())
    assert "Sample size (Riley et al. 2020)" in ev.sample_size(n_params=2)


def test_recalibration_fixes_level_and_keeps_ranking():
    from pitchlab.evaluate import apply_recalibration, choose_recalibration, fit_recalibration, observed_expected

    rng = np.random.default_rng(5)
    pw, pt = rng.beta(1, 60, 30000), rng.beta(1, 60, 30000)
    yw, yt = (rng.random(30000) < 2 * pw).astype(float), (rng.random(30000) < 2 * pt).astype(float)
    r = fit_recalibration(yw, pw, "intercept")
    assert observed_expected(yw, apply_recalibration(pw, r)) == pytest.approx(1.0, abs=1e-6)
    ch = choose_recalibration(yw, pw, yt, pt)
    tab = ch["table"]
    assert ch["choice"] in ("intercept", "platt")
    assert abs(np.log(tab.loc[ch["choice"], "oe"])) < abs(np.log(tab.loc["none", "oe"]))
    assert tab.loc[ch["choice"], "auc"] == pytest.approx(tab.loc["none", "auc"])
    # a window whose risks rank its injuries backwards: Platt refused with a sentence, never inverted
    yb = (rng.random(30000) < 0.03 - 0.5 * pw.clip(0, 0.05)).astype(float)
    with pytest.raises(ValidationError, match="do not rank"):
        fit_recalibration(yb, pw, "platt")
    with pytest.raises(ValidationError, match="no injury"):
        fit_recalibration(np.zeros(10), np.full(10, 0.1))
