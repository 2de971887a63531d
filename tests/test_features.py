"""pitchlab.features across modules and against brute force: leakage (future perturbation), labels, at-risk days,
cycle phase carry-forward, splits, bad input."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

from pitchlab.core import ConfigError, ValidationError
from pitchlab.features import (
    FEATURE_VERSION,
    FEATURES,
    Split,
    assert_causal,
    assert_no_leakage,
    build_features,
    perturb_future,
    time_folds,
    time_split,
)
from pitchlab.load import example_sessions
from pitchlab.synth import make_cohort


@pytest.fixture(scope="module")
def cohort():
    return make_cohort(n_teams=3, athletes_per_team=8, seasons=1, seed=3)


@pytest.fixture(scope="module")
def feats(cohort):
    return build_features(cohort.tables(), horizon=7)


@pytest.mark.parametrize("cutoff", ["2025-03-01", "2025-06-15", "2025-11-20"])
def test_no_feature_sees_the_future(cohort, cutoff):
    n = assert_causal(cohort.tables(), cutoff, seed=7, horizon=7)
    assert n > 1000


def test_perturbation_does_change_the_future(cohort):
    """The leakage check has teeth: the perturbed tables change features after the cut-off."""
    end = cohort.truth.daily["date"].max()
    a = build_features(cohort.tables(), end=end).set_index(["athlete_id", "date"])
    b = build_features(perturb_future(cohort.tables(), "2025-06-15"), end=end).set_index(["athlete_id", "date"])
    j = a.join(b, how="inner", suffixes=("", "_p"))
    late = j.index.get_level_values("date") > pd.Timestamp("2025-06-20")
    for col in ("acwr_ewma", "wellness_z", "cycle_phase", "match_day"):
        assert (j.loc[late, col].astype(str) != j.loc[late, col + "_p"].astype(str)).any(), col


def test_a_leaky_feature_is_caught(cohort, monkeypatch):
    """A feature built with a centred rolling window (peeking 3 days ahead) must fail assert_causal."""
    import pitchlab.features as F

    real = F._shift

    def leaky(a, lag):
        out = real(a, lag)
        if lag == 1 and a.ndim == 2:
            out = np.roll(out, -3, axis=1)
        return out

    monkeypatch.setattr(F, "_shift", leaky)
    with pytest.raises(ValidationError, match="leakage"):
        assert_causal(cohort.tables(), "2025-06-15", horizon=7)


def test_columns_version_and_truth(cohort, feats):
    assert feats.attrs["feature_version"] == FEATURE_VERSION
    assert set(FEATURES) <= set(feats.columns)
    assert feats["at_risk"].all()
    nc = (~cohort.injuries["contact"].astype(bool)).sum()
    assert feats["event"].sum() == nc
    # load features are the hazard's own (lagged) covariates
    j = feats.merge(
        cohort.truth.daily[["athlete_id", "date", "acwr_ewma", "prev_injury", "day_type"]],
        on=["athlete_id", "date"],
        suffixes=("", "_t"),
    )
    ok = j["acwr_ewma"].notna()
    np.testing.assert_allclose(j.loc[ok, "acwr_ewma"], j.loc[ok, "acwr_ewma_t"], rtol=1e-9)
    assert (j["match_day"] == (j["day_type"] == "match")).all()
    assert (j["rest_day"] == (j["day_type"] == "rest")).all()


def test_at_risk_matches_truth(cohort):
    f = build_features(cohort.tables(), include_not_at_risk=True)
    j = f.merge(cohort.truth.daily[["athlete_id", "date", "at_risk"]], on=["athlete_id", "date"], suffixes=("", "_t"))
    assert (j["at_risk"] == j["at_risk_t"]).all()


def _brute_labels(onsets, contact, n_days, h):
    """Per day: any non-contact onset in [t, t+h-1]; None when the window passes the end without one."""
    out = []
    for t in range(n_days):
        hit = any(t <= o <= t + h - 1 for o, c in zip(onsets, contact) if not c)
        out.append(1.0 if hit else (np.nan if t + h - 1 >= n_days else 0.0))
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    onsets=st.lists(st.tuples(st.integers(0, 59), st.integers(0, 6), st.booleans()), max_size=4),
    h=st.sampled_from([1, 3, 7, 14]),
)
def test_labels_and_risk_against_brute_force(onsets, h):
    days = pd.date_range("2024-01-01", periods=60)
    s = pd.DataFrame({"athlete_id": "a", "date": days[::2], "load": 300.0})
    inj = pd.DataFrame(
        {
            "athlete_id": "a",
            "onset_date": [days[o] for o, _, _ in onsets],
            "days_lost": [d for _, d, _ in onsets],
            "contact": [c for _, _, c in onsets],
        }
    )
    f = build_features({"sessions": s, "injuries": inj}, horizon=h, end=days[-1], include_not_at_risk=True)
    # at risk: not strictly inside (onset, onset + days_lost + 1)
    risk = np.ones(60, bool)
    for o, d, _ in onsets:
        risk[o + 1 : o + d + 1] = False
    assert f["at_risk"].tolist() == risk.tolist()
    valid = [(o, c) for o, _, c in onsets if risk[o]]
    want = _brute_labels([o for o, _ in valid], [c for _, c in valid], 60, h)
    got = f["label"].tolist()
    assert [(np.isnan(a) and np.isnan(b)) or a == b for a, b in zip(got, want)] == [True] * 60
    assert f["event"].sum() == len({o for o, c in valid if not c})
    prev = [sum(o < t for o, _, _ in onsets) for t in range(60)]
    assert f["n_prev_injuries"].tolist() == prev


def test_cycle_phase_carry_forward_and_none():
    days = pd.date_range("2024-01-01", periods=40)
    s = pd.DataFrame({"athlete_id": ["f", "m"] * 20, "date": np.repeat(days[::2], 2), "load": 200.0})
    logs = pd.DataFrame(
        {"athlete_id": "f", "date": days[[3, 20]], "phase": ["menstrual", "luteal"], "cycle_day": [2, 19]}
    )
    f = build_features({"sessions": s, "cycle_logs": logs}, end=days[-1], cycle_carry_days=5).set_index(
        ["athlete_id", "date"]
    )
    fp = f.loc["f", "cycle_phase"]
    assert (f.loc["m", "cycle_phase"] == "none").all()
    assert (fp.iloc[:3] == "none").all()
    assert fp.iloc[3] == "menstrual" and fp.iloc[6] == "menstrual" and fp.iloc[7] == "follicular"  # day 6 of the cycle
    assert fp.iloc[9] == "unknown"  # 6 days after the log
    assert f.loc["f", "cycle_day"].iloc[7] == 6
    assert fp.iloc[20] == "luteal"


def test_split_purges_and_holds_out(feats):
    sp = time_split(feats, test_start="2025-09-01", holdout_frac=0.25, seed=1)
    assert isinstance(sp, Split)
    assert_no_leakage(sp)
    assert sp.train["date"].max() <= pd.Timestamp("2025-09-01") - pd.Timedelta(days=7)
    assert not sp.train["athlete_id"].isin(sp.holdout).any()
    assert set(sp.holdout) <= set(sp.test["athlete_id"])
    assert sp.train["label"].notna().all() and sp.test["label"].notna().all()
    assert sp.purged == int(
        ((feats["date"] >= "2025-08-26") & (feats["date"] < "2025-09-01") & feats["label"].notna()).sum()
    )
    folds = time_folds(feats, n_folds=3)
    for f in folds:
        assert_no_leakage(f)
    assert [f.test_start for f in folds] == sorted(f.test_start for f in folds)


def test_default_split_and_errors(feats):
    sp = time_split(feats)
    assert sp.test_start.weekday() == 0
    assert 0.35 < len(sp.test) / feats["label"].notna().sum() < 0.65
    bare = feats.copy()
    bare.attrs = {}
    with pytest.raises(ConfigError, match="horizon"):
        time_split(bare, test_start="2025-06-01")
    with pytest.raises(ValidationError, match="leaves"):
        time_split(feats, test_start="2030-01-01")


def test_bad_input_is_explained():
    with pytest.raises(ValidationError, match="sessions"):
        build_features({})
    with pytest.raises(ValidationError, match="lacks column"):
        build_features({"sessions": pd.DataFrame({"athlete_id": ["a"], "day": [1]})})
    s = example_sessions(2, 30)
    with pytest.raises(ConfigError, match="horizon"):
        build_features({"sessions": s}, horizon=0)
    with pytest.raises(ConfigError, match="lag"):
        build_features({"sessions": s}, lag=-1)
    with pytest.raises(ValidationError, match="spans"):
        build_features({"sessions": s}, spans=pd.DataFrame({"athlete_id": ["P001"]}))


def test_spans_and_lag():
    s = example_sessions(2, 60)
    spans = pd.DataFrame(
        {
            "athlete_id": ["P001", "P002"],
            "start": pd.to_datetime(["2024-01-01", "2024-01-10"]),
            "end": pd.to_datetime(["2024-01-31", "2024-02-29"]),
        }
    )
    f = build_features({"sessions": s}, spans=spans)
    g = f.groupby("athlete_id")["date"].agg(["min", "max"])
    assert g.loc["P001", "max"] == pd.Timestamp("2024-01-31") and g.loc["P002", "min"] == pd.Timestamp("2024-01-10")
    f0 = build_features({"sessions": s}, lag=0).set_index(["athlete_id", "date"])["acwr_ewma"]
    f1 = build_features({"sessions": s}, lag=1).set_index(["athlete_id", "date"])["acwr_ewma"]
    np.testing.assert_allclose(
        f1.groupby(level=0).shift(-1).dropna(), f0.loc[f1.groupby(level=0).shift(-1).dropna().index]
    )
