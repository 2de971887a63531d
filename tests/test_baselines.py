"""pitchlab.models.baselines on data with a known answer: the ACWR rule's zones, GLM recovery of a simulated
coefficient, GEE standard errors under clustering, calibration of the scikit-learn models, permutation importance,
and errors."""

import numpy as np
import pandas as pd
import pytest

from pitchlab.core import ConfigError, NotFoundError, ValidationError
from pitchlab.models.baselines import ACWRRule, GLMBaseline, ModelMatrix, SklearnBaseline


def simulated(n_ath=60, n_days=400, beta=0.8, frailty=1.0, seed=0, horizon=1):
    """Athlete-days with a logistic outcome: x1 matters (beta per SD), x2 does not; athletes share a frailty."""
    rng = np.random.default_rng(seed)
    a = np.repeat(np.arange(n_ath), n_days)
    x1, x2 = rng.normal(size=a.size), rng.normal(size=a.size)
    u = rng.normal(0, frailty, n_ath)[a]
    p = 1 / (1 + np.exp(-(-3.5 + beta * x1 + u)))
    df = pd.DataFrame(
        {
            "athlete_id": pd.Series(a).map(lambda i: f"a{i:03d}"),
            "date": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.tile(np.arange(n_days), n_ath), unit="D"),
            "x1": x1,
            "x2": x2,
            "acwr_ewma": 1 + 0.3 * x1,
            "phase": rng.choice(["a", "b"], a.size),
            "label": (rng.random(a.size) < p).astype(float),
            "p_true": p,
        }
    )
    df.attrs["horizon"] = horizon
    return df


def test_acwr_rule_zones_and_rates():
    df = pd.DataFrame({"acwr_ewma": [0.5, 0.7, 1.0, 1.2, 1.6, 2.0, np.nan], "label": [0, 1, 0, 0, 1, 1, 0.0]})
    r = ACWRRule(high=1.5, low=0.8).fit(df)
    np.testing.assert_array_equal(r.zone(df), [0, 0, 1, 1, 2, 2, 1])
    np.testing.assert_array_equal(r.flag(df), [False] * 4 + [True] * 2 + [False])
    overall = (3 + 0.5) / 8
    np.testing.assert_allclose(r.rates, [(1 + overall) / 3, (0 + overall) / 4, (2 + overall) / 3])
    assert r.predict_proba(df)[4] == r.rates[2]
    r2 = ACWRRule(high=1.1, column="acwr_ewma").fit(df)
    assert r2.flag(df).sum() == 3
    with pytest.raises(ConfigError):
        ACWRRule(high=0.5, low=0.8)
    with pytest.raises(NotFoundError):
        ACWRRule().predict_proba(df)


def test_model_matrix_uses_training_statistics_only():
    tr = pd.DataFrame({"x": [1.0, 2, 3, np.nan] * 10, "c": ["u", "u", "v", "w"] * 10})
    mm = ModelMatrix(["x", "c"], clip=0.0, min_count=5).fit(tr)
    assert mm.names == ["x", "x_missing", "c[v]", "c[w]"]
    te = pd.DataFrame({"x": [100.0, np.nan], "c": ["zzz", "v"]})
    X = mm.transform(te)
    assert X[0, 0] == pytest.approx((3 - 2) / np.std([1, 2, 3]))  # clipped to the training maximum
    np.testing.assert_array_equal(X[1], [0, 1, 1, 0])
    np.testing.assert_array_equal(X[0, 2:], [0, 0])  # an unseen level is the reference
    with pytest.raises(ValidationError, match="lack column"):
        ModelMatrix(["nope"]).fit(tr)


def test_glm_recovers_the_coefficient_and_gee_widens_intervals():
    df = simulated(frailty=0.8)
    glm = GLMBaseline(columns=["x1", "x2"]).fit(df)
    gee = GLMBaseline(columns=["x1", "x2"], gee=True).fit(df)
    c, g = glm.coefficients(), gee.coefficients()
    sd1 = df["x1"].std(ddof=0)
    assert (
        c.loc["x1", "lo"] < 0.8 * sd1 * 0.9 < c.loc["x1", "hi"] * 1.1
    )  # frailty attenuates the marginal slope a little
    assert c.loc["x2", "lo"] < 0 < c.loc["x2", "hi"]
    assert g.loc["const", "se"] > 1.5 * c.loc["const", "se"]  # the clustered intercept is far less certain
    p = gee.predict_proba(df.head(10))
    assert ((0 < p) & (p < 1)).all()
    with pytest.raises(ConfigError):
        GLMBaseline(columns=["x1"], gee=True, cov_struct="ar1").fit(df)
    exch = GLMBaseline(columns=["x1", "x2"], gee=True, cov_struct="exchangeable")
    try:  # converges on these short clusters, or says it did not
        exch.fit(df)
        assert np.isfinite(exch.coefficients()["coef"]).all()
    except ValidationError as e:
        assert "independence" in str(e)


@pytest.mark.parametrize(
    "kind,calibration,cv",
    [
        ("logistic", "sigmoid", "athlete"),
        ("gbm", "sigmoid", "athlete"),
        ("gbm", "isotonic", "athlete"),
        ("gbm", "isotonic", "time"),
    ],
)
@pytest.mark.slow  # fits and calibrates gradient boosting per fold
def test_sklearn_models_are_calibrated_and_explained(kind, calibration, cv):
    df = simulated(frailty=0.0, n_ath=80, seed=1)
    te = simulated(frailty=0.0, n_ath=40, seed=2)
    m = SklearnBaseline(kind=kind, columns=["x1", "x2", "phase"], calibration=calibration, calib_cv=cv).fit(df)
    p = m.predict_proba(te)
    # calibrated: the mean prediction matches the event rate, and binned predictions track the truth
    assert abs(p.mean() - te["label"].mean()) < 0.01
    bins = pd.qcut(te["p_true"], 5, labels=False)
    obs = te["label"].groupby(bins).mean().to_numpy()
    pred = pd.Series(p).groupby(bins.to_numpy()).mean().to_numpy()
    assert np.abs(obs - pred).max() < 0.02
    imp = m.explain(te, n_repeats=3)
    assert imp.index[0] == "x1" and imp.loc["x1", "importance"] > 5 * max(abs(imp.loc["x2", "importance"]), 1e-3)


def test_platt_never_inverts_a_ranking():
    from pitchlab.models.baselines import _Calibrator

    rng = np.random.default_rng(0)
    p = rng.uniform(0.01, 0.3, 5000)
    y = (rng.random(5000) < 0.31 - p).astype(int)  # higher score, fewer events
    with pytest.warns(UserWarning, match="base rate"):
        c = _Calibrator("sigmoid").fit(p, y)
    np.testing.assert_allclose(c(p), y.mean())
    up = _Calibrator("sigmoid").fit(p, (rng.random(5000) < p).astype(int))
    assert np.all(np.diff(up(np.sort(p))) >= 0)


def test_sklearn_errors():
    with pytest.raises(ConfigError):
        SklearnBaseline(kind="svm")
    with pytest.raises(ConfigError):
        SklearnBaseline(calibration="beta")
    tiny = simulated(n_ath=3, n_days=30)
    with pytest.raises(ValidationError, match="too few"):
        SklearnBaseline(columns=["x1"]).fit(tiny.assign(label=0.0))
    with pytest.raises(ValidationError, match="too few positive"):
        SklearnBaseline(columns=["x1"], calib_cv="time").fit(tiny.assign(label=0.0))
    with pytest.raises(ConfigError):
        SklearnBaseline(calib_cv="random")
    with pytest.raises(NotFoundError):
        SklearnBaseline().predict_proba(tiny)
    with pytest.raises(ValidationError, match="label"):
        GLMBaseline(columns=["x1"]).fit(tiny.drop(columns="label"))


@pytest.mark.slow  # `make test` runs it, `make test-quick` does not
def test_baselines_on_pitchlab_features():
    """Across modules: synthetic cohort -> features -> time split -> every baseline fits and predicts finite risks."""
    from pitchlab.features import build_features, time_split
    from pitchlab.synth import make_cohort

    f = build_features(make_cohort(n_teams=3, athletes_per_team=10, seasons=2, seed=4).tables(), horizon=14)
    sp = time_split(f, test_start="2026-01-01")
    for m in (
        ACWRRule(column="acwr_uncoupled"),
        GLMBaseline(),
        GLMBaseline(gee=True),
        SklearnBaseline(kind="logistic"),
        SklearnBaseline(kind="gbm", calibration="isotonic"),
    ):
        p = m.fit(sp.train).predict_proba(sp.test)
        assert p.shape == (len(sp.test),) and np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all(), m.name


def test_acwr_rule_bands_intervals_and_board_frame():
    df = simulated(n_ath=40, n_days=300, beta=0.8, horizon=1)
    r = ACWRRule().fit(df)
    b = r.bands()
    assert list(b["acwr_from"]) == [-np.inf, 0.8, 1.5] and (b["risk_lo"] <= b["risk"]).all()
    assert (b["risk"] <= b["risk_hi"]).all()
    assert b["rows"].sum() == len(df) and b["episodes"].sum() == pytest.approx(df["label"].sum() / r.redundancy)
    # ACWR carries the simulated effect: the top band's risk is clearly above the squad's
    assert b["tier"].iloc[-1] == "high" and b["rr"].iloc[-1] > 1.5
    last = df.groupby("athlete_id").tail(1)
    f = r.risk_frame(last)
    assert list(f.columns) == [
        "athlete_id",
        "date",
        "risk",
        "risk_lo",
        "risk_hi",
        "tier",
        "rr_team",
        "rr_self",
        "factors",
    ]
    flagged = f["tier"] != "low"
    assert flagged.any() and all(len(x) == 1 and "ACWR" in x[0] for x in f.loc[flagged, "factors"])
    with pytest.raises(ValidationError, match="no injury"):
        ACWRRule().fit(df.assign(label=0.0))


def test_acwr_rule_edges_from_references_and_data():
    df = simulated(n_ath=40, n_days=300, beta=0.8, horizon=1)
    assert ACWRRule(edges="warren_hulin").fit(df).edges == (1.42, 2.0)
    d = ACWRRule(edges="data", min_events=20).fit(df)
    assert 1 <= len(d.edges) <= 2 and (d.counts["episodes"] >= 20).all()
    assert d.rates[-1] > d.rates[0]  # the data bands order the risk as the simulation does
    with pytest.raises(ConfigError, match="unknown ACWR edges"):
        ACWRRule(edges="gabbet")
    few = df.assign(label=0.0)
    few.loc[few.index[:3], "label"] = 1.0
    with pytest.raises(ValidationError, match="too few injuries"):
        ACWRRule(edges="data").fit(few)


def _sources():
    from pathlib import Path

    import pitchlab

    return {p: p.read_text() for p in Path(pitchlab.__file__).parent.rglob("*.py") if p.name != "_modidx.py"}


def test_one_acwr_rule():
    "One ACWR rule: baselines.ACWRRule; the board's fallback adapts it and carries no band or base rate of its own."
    import re

    from pitchlab import board

    hits = [str(p) for p, s in _sources().items() if re.search(r"^class \w*Acwr\w*Rule\w*|^class ACWR\w*", s, re.M)]
    assert [h.split("pitchlab/")[-1] for h in hits] == ["models/baselines.py"]
    assert isinstance(board.RuleRisk().rule, ACWRRule) and board.AcwrRuleRisk is board.RuleRisk
    code = "\n".join(
        line.split("#")[0] for line in _sources()[next(p for p in _sources() if p.name == "board.py")].splitlines()
    )
    assert not re.search(r"\b(0\.02|1\.42|1\.66|4\.5)\b", code)  # no invented base rate, no copied band
