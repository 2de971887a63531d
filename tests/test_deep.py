"""pitchlab.models.deep: windows, class weights, planted-signal learning, determinism, .keras save/reload, bad input."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from pitchlab.core import ConfigError, NotFoundError, ValidationError
from pitchlab.evaluate import roc_auc
from pitchlab.features import FEATURE_VERSION
from pitchlab.models.deep import (
    SequenceRisk,
    SessionQuality,
    class_weights,
    fit_scaler,
    sequence_windows,
    session_quality_table,
    standardise,
)

pytestmark = pytest.mark.slow  # trains Keras models: `make test` runs it, `make test-quick` does not


# ---------------------------------------------------------------- helpers


def planted(n_athletes=30, n_days=200, seed=0, drop=0.05):
    """Athlete-days where the label depends strongly on the 5-day mean of `x` (rare: about 4%); `z` is noise."""
    rng = np.random.default_rng(seed)
    a = np.repeat([f"p{i:02d}" for i in range(n_athletes)], n_days)
    d = np.tile(pd.date_range("2025-01-01", periods=n_days).to_numpy(), n_athletes)
    x = rng.normal(0, 1, (n_athletes, n_days))
    m5 = pd.DataFrame(x.T).rolling(5, min_periods=1).mean().to_numpy().T
    y = (m5 > 0.8).astype(float)
    df = pd.DataFrame(dict(athlete_id=a, date=d, x=x.ravel(), z=rng.normal(0, 1, x.size), label=y.ravel()))
    df = df[rng.random(len(df)) > drop].reset_index(drop=True)  # a few missing days: gaps in the calendar
    df.attrs["feature_version"] = FEATURE_VERSION
    return df


FAST = dict(features=["x", "z"], epochs=10, units=8, seed=0)


@pytest.fixture(scope="module")
def data():
    df = planted()
    cut = pd.Timestamp("2025-05-20")
    return df, df[df["date"] < cut].reset_index(drop=True), df[df["date"] >= cut].reset_index(drop=True)


@pytest.fixture(scope="module")
def fitted(data):
    df, train, test = data
    return SequenceRisk(FAST).fit(train)


# ---------------------------------------------------------------- import cost and noise


def test_module_import_does_not_import_tensorflow():
    code = "import sys, pitchlab.models.deep; print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_import_keras_is_quiet():
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    code = "from pitchlab.models.deep import import_keras; tf, keras = import_keras(); print(keras.backend.backend())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "tensorflow"
    assert out.stderr.strip() == "", out.stderr


# ---------------------------------------------------------------- class weights


@settings(max_examples=40, deadline=None)
@given(n0=st.integers(1, 500), n1=st.integers(1, 50))
def test_balanced_weights_match_scikit_learn(n0, n1):
    from sklearn.utils.class_weight import compute_class_weight

    y = np.r_[np.zeros(n0), np.ones(n1)]
    w = class_weights(y)
    ref = compute_class_weight("balanced", classes=np.array([0.0, 1.0]), y=y)
    np.testing.assert_allclose([w[0], w[1]], ref, rtol=1e-12)
    assert w[0] * n0 == pytest.approx(w[1] * n1)  # each class carries half of the total weight
    assert w[0] * n0 + w[1] * n1 == pytest.approx(n0 + n1)


def test_class_weights_options_and_errors():
    y = np.r_[np.zeros(9), np.ones(1), np.nan]
    assert class_weights(y, None) == {0: 1.0, 1: 1.0}
    assert class_weights(y, {0: 1, 1: 4}) == {0: 1.0, 1: 4.0}
    assert class_weights(y, {"0": 2, "1": 3}) == {0: 2.0, 1: 3.0}  # as read back from JSON
    with pytest.raises(ValidationError, match="0 positive"):
        class_weights(np.zeros(5))
    with pytest.raises(ValidationError, match="must be 0 or 1"):
        class_weights([0, 1, 2])
    with pytest.raises(ConfigError, match="class_weight must be"):
        class_weights(y, "auto")
    with pytest.raises(ConfigError, match="positive"):
        class_weights(y, {0: 1, 1: 0})


def test_fit_stores_balanced_weights_and_prior_shift(fitted, data):
    _, train, _ = data
    n1 = train["label"].sum()
    n0 = len(train) - n1
    w = fitted.state["class_weight"]
    assert w[0] == pytest.approx(len(train) / (2 * n0)) and w[1] == pytest.approx(len(train) / (2 * n1))
    assert fitted.state["logit_shift"] == pytest.approx(np.log(n0 / n1))


def test_prior_correction_returns_the_unweighted_scale(fitted, data):
    _, train, test = data
    p = fitted.predict_proba(test)
    fitted.model_config["prior_correction"] = False
    try:
        raw = fitted.predict_proba(test)
    finally:
        fitted.model_config["prior_correction"] = True
    logit = lambda q: np.log(q / (1 - q))
    np.testing.assert_allclose(logit(p), logit(raw) - fitted.state["logit_shift"], atol=1e-6)
    prevalence = test["label"].mean()
    assert raw.mean() > 4 * prevalence  # the weighted network over-predicts a rare class ...
    assert 0.5 * prevalence < p.mean() < 2 * prevalence  # ... the corrected risk is on the data's scale


# ---------------------------------------------------------------- windows


def _toy(days, athlete="a", start="2025-03-01"):
    d = pd.Timestamp(start) + pd.to_timedelta(np.asarray(days), unit="D")
    return pd.DataFrame(dict(athlete_id=athlete, date=d, x=np.arange(len(days), dtype=float) + 1.0))


def test_short_history_is_left_padded_with_the_mask():
    f = _toy(range(10))
    m, s = fit_scaler(f[["x"]].to_numpy())
    W = sequence_windows(f, ["x"], m, s, window=28)
    assert W.shape == (10, 28, 3)
    last = W[-1]
    assert (last[:18, 2] == 0).all() and (last[18:, 2] == 1).all()  # day present
    assert (last[:18, 1] == 1).all() and (last[18:, 1] == 0).all()  # missing flag
    assert (last[:18, 0] == 0).all()
    np.testing.assert_allclose(last[18:, 0], (f["x"].to_numpy() - m[0]) / s[0], rtol=1e-6)
    first = W[0]
    assert first[:27, 2].sum() == 0 and first[27, 2] == 1


def test_gaps_and_missing_values_are_flagged():
    f = _toy([0, 1, 4, 5])
    f.loc[1, "x"] = np.nan
    m, s = fit_scaler(f[["x"]].to_numpy())
    w = sequence_windows(f, ["x"], m, s, window=6)[-1]
    assert w[:, 2].tolist() == [1, 1, 0, 0, 1, 1]  # days 2 and 3 have no row
    assert w[:, 1].tolist() == [0, 1, 1, 1, 0, 0]  # day 1 has a row with x missing
    assert w[1, 0] == 0 and w[1, 2] == 1


def test_clipping_and_constant_columns():
    X = np.array([[1.0, 5.0], [1.0, 5.0], [1.0, 1e6]])
    m, s = fit_scaler(X[:2])
    assert s.tolist() == [1.0, 1.0]  # constant columns keep SD 1 (no division by zero)
    Z = standardise(X, m, s, clip=3.0)
    assert Z[2, 1] == 3.0 and Z.dtype == np.float32


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 60), st.floats(-5, 5)), min_size=1, max_size=60
    ),
    st.integers(1, 30),
)
def test_windows_do_not_depend_on_row_order_or_on_splitting(rows, window):
    f = (
        pd.DataFrame(rows, columns=["athlete_id", "day", "x"])
        .drop_duplicates(["athlete_id", "day"])
        .reset_index(drop=True)
    )
    f["date"] = pd.Timestamp("2025-01-01") + pd.to_timedelta(f["day"], unit="D")
    m, s = fit_scaler(f[["x"]].to_numpy())
    W = sequence_windows(f, ["x"], m, s, window=window)
    # the last day of each window is the row itself
    np.testing.assert_allclose(W[:, -1, 0], np.clip((f["x"] - m[0]) / s[0], -5, 5), rtol=1e-5, atol=1e-6)
    assert (W[:, -1, 2] == 1).all()
    # shuffled rows: the same windows, in the new order
    perm = np.random.default_rng(0).permutation(len(f))
    np.testing.assert_array_equal(sequence_windows(f.iloc[perm], ["x"], m, s, window=window), W[perm])
    # one row at a time, with the rest as context: the same windows
    half = f.index[::2]
    np.testing.assert_array_equal(
        sequence_windows(f.loc[half], ["x"], m, s, window=window, context=f.drop(index=half)), W[::2]
    )


def test_context_after_a_day_never_enters_its_window():
    f = _toy(range(40))
    m, s = fit_scaler(f[["x"]].to_numpy())
    early, late = f.iloc[:30], f.iloc[30:].assign(x=1e3)
    a = sequence_windows(early, ["x"], m, s, context=f)
    b = sequence_windows(early, ["x"], m, s, context=pd.concat([early, late]))
    np.testing.assert_array_equal(a, b)


def test_bad_window_input():
    f = _toy(range(3))
    m, s = fit_scaler(f[["x"]].to_numpy())
    with pytest.raises(ValidationError, match=r"\['y', 'w'\]"):
        sequence_windows(f, ["x", "y", "w"], m, s)
    with pytest.raises(ValidationError, match="repeat an athlete-day"):
        sequence_windows(pd.concat([f, f.iloc[:1]]), ["x"], m, s)
    with pytest.raises(ValidationError, match="no valid date"):
        sequence_windows(f.assign(date=[pd.NaT, *f["date"][1:]]), ["x"], m, s)
    with pytest.raises(ConfigError, match="window"):
        sequence_windows(f, ["x"], m, s, window=0)
    with pytest.raises(ValidationError, match="not numeric"):
        sequence_windows(f.assign(x="high"), ["x"], m, s)


# ---------------------------------------------------------------- learning, determinism, save/reload


def test_learns_a_planted_signal(fitted, data):
    _, train, test = data
    p = fitted.predict(test)
    assert p.index.equals(test.index) and list(p.columns) == ["risk"]
    auc = roc_auc(test["label"], p["risk"])
    assert auc > 0.8, auc
    assert ((p["risk"] > 0) & (p["risk"] < 1)).all()


def test_tcn_learns_the_planted_signal_too(data):
    _, train, test = data
    m = SequenceRisk({**FAST, "kind": "tcn"}).fit(train)
    assert roc_auc(test["label"], m.predict_proba(test)) > 0.8


def test_same_seed_same_predictions_other_seed_other_predictions(fitted, data):
    _, train, test = data
    again = SequenceRisk(FAST).fit(train)
    np.testing.assert_array_equal(again.predict_proba(test), fitted.predict_proba(test))
    other = SequenceRisk({**FAST, "seed": 1}).fit(train)
    assert not np.allclose(other.predict_proba(test), fitted.predict_proba(test))
    # fitting another model did not disturb the first one
    np.testing.assert_array_equal(again.predict_proba(test), fitted.predict_proba(test))


def test_save_and_reload_give_equal_predictions(fitted, data, tmp_path):
    df, _, test = data
    fitted.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.keras"]
    meta = json.loads((tmp_path / "config.json").read_text())
    assert meta["cls"] == "SequenceRisk" and meta["model_config"]["features"] == ["x", "z"]
    assert len(meta["state"]["means"]) == 2 and meta["versions"]["keras"].startswith("3.")
    back = SequenceRisk.load(tmp_path)
    np.testing.assert_allclose(
        back.predict(test, context=df)["risk"], fitted.predict(test, context=df)["risk"], rtol=0, atol=1e-6
    )
    assert back.state["class_weight"] == pytest.approx(list(fitted.state["class_weight"]))
    assert back.history["loss"] == pytest.approx(fitted.history["loss"])


def test_validation_frac_holds_out_the_latest_days(data):
    _, train, _ = data
    m = SequenceRisk({**FAST, "epochs": 2, "validation_frac": 0.25}).fit(train)
    assert set(m.history) >= {"loss", "val_loss", "auc", "val_auc"} and len(m.history["val_loss"]) == 2
    assert m.state["n_train"] + m.state["n_validation"] == len(train)
    assert m.state["n_validation"] == pytest.approx(0.25 * len(train), rel=0.05)


# ---------------------------------------------------------------- bad input


def test_missing_feature_columns_are_named(fitted, data):
    _, train, test = data
    with pytest.raises(ValidationError, match=r"lacks column\(s\) \['x'\]"):
        fitted.predict(test.drop(columns=["x"]))
    with pytest.raises(ValidationError, match=r"\['z', 'label'\]"):
        SequenceRisk(FAST).fit(train.drop(columns=["z", "label"]))
    with pytest.raises(ValidationError, match=r"\['acwr_ewma'"):
        SequenceRisk().fit(train)


def test_other_bad_input(fitted, data, tmp_path):
    _, train, test = data
    with pytest.raises(ConfigError, match=r"unknown model_config key\(s\) \['epoch'\]"):
        SequenceRisk({"epoch": 3})
    with pytest.raises(ConfigError, match="kind must be"):
        SequenceRisk({**FAST, "kind": "gru"}).fit(train)
    with pytest.raises(NotFoundError, match="not fitted"):
        SequenceRisk(FAST).predict(test)
    with pytest.raises(NotFoundError, match="not fitted"):
        SequenceRisk(FAST).save(tmp_path)
    with pytest.raises(NotFoundError, match="does not exist"):
        SequenceRisk.load(tmp_path / "nothing")
    with pytest.raises(ValidationError, match="no row has a label"):
        SequenceRisk(FAST).fit(train.assign(label=np.nan))
    with pytest.raises(ValidationError, match="0 positive"):
        SequenceRisk(FAST).fit(train.assign(label=0.0))
    old = test.copy()
    old.attrs["feature_version"] = "0.1"
    with pytest.raises(ValidationError, match="feature version"):
        fitted.predict(old)
    fitted.save(tmp_path / "seq")
    with pytest.raises(ValidationError, match="holds a SequenceRisk"):
        SessionQuality.load(tmp_path / "seq")


# ---------------------------------------------------------------- session quality


def _quality_tables():
    """Two athletes, sessions on four days, wellness every morning; athlete b has no form on 2025-01-05."""
    days = pd.to_datetime(["2025-01-01", "2025-01-02", "2025-01-03", "2025-01-04"])
    sess = pd.DataFrame(
        dict(
            athlete_id=["a"] * 4 + ["b"] * 4,
            date=list(days) * 2,
            session_type="training",
            duration_min=60.0,
            rpe=[5, 5, 5, 9, 4, 4, 6, 4],
            source_id=[f"s{i}" for i in range(8)],
        )
    )
    wd = pd.date_range("2025-01-01", "2025-01-05")
    well = pd.DataFrame(
        dict(
            athlete_id=["a"] * 5 + ["b"] * 4,
            date=list(wd) + list(wd[:4]),
            soreness=[4, 4, 4, 4, 2, 3, 3, 3, 3],
            fatigue=[4, 4, 4, 4, 2, 3, 3, 3, 3],
            sleep_quality=[4, 4, 4, 4, 5, 3, 3, 3, 3],
            mood=3,
            stress=3,
            sleep_hours=8.0,
        )
    )
    feats = pd.DataFrame(
        dict(
            athlete_id=["a"] * 4 + ["b"] * 4,
            date=list(days) * 2,
            acwr_ewma=1.0,
            ewma_acute=300.0,
            ewma_chronic=300.0,
            monotony=1.2,
            tsb=0.0,
            wellness_z=0.0,
            soreness_z=0.0,
            fatigue_z=0.0,
            hrv_rmssd_z=np.nan,
            resting_hr_z=np.nan,
            prev_injury=0.0,
        )
    )
    return dict(sessions=sess, wellness=well), feats


def test_session_quality_definition_by_hand():
    tables, feats = _quality_tables()
    q = session_quality_table(tables, features=feats, min_history=3)
    a = q[q["athlete_id"] == "a"].set_index("date")
    # days 1-3: expected RPE unknown (fewer than 3 earlier sessions) -> no penalty; next morning 4, 4, 4 -> 4
    assert a["quality"].iloc[:3].tolist() == [4.0, 4.0, 4.0]
    # day 4: expected RPE = median(5, 5, 5) = 5, RPE 9 -> 0.5 x (4 - 1) = 1.5 off a next morning of (2 + 2 + 5) / 3 = 3
    assert a["rpe_expected"].iloc[3] == 5 and a["rpe_dev"].iloc[3] == 4
    assert a["recovery_next"].iloc[3] == pytest.approx(3.0)
    assert a["quality"].iloc[3] == pytest.approx(1.5)
    b = q[q["athlete_id"] == "b"].set_index("date")
    assert np.isnan(b["quality"].iloc[3])  # no form the next morning: no score
    assert b["rpe_expected"].iloc[3] == 4 and b["rpe_dev"].iloc[3] == 0  # median(4, 4, 6)
    assert (b["today_soreness"].iloc[:3] == 3).all() and b["load"].iloc[2] == 360
    assert q.attrs["quality_definition"]["rpe_penalty"] == 0.5
    assert q["quality"].dropna().between(1, 5).all()


def test_session_quality_bad_input():
    tables, feats = _quality_tables()
    with pytest.raises(ValidationError, match="wellness"):
        session_quality_table({"sessions": tables["sessions"]}, features=feats)
    with pytest.raises(ValidationError, match=r"\['rpe'\]"):
        session_quality_table({**tables, "sessions": tables["sessions"].drop(columns=["rpe"])}, features=feats)
    with pytest.raises(ValidationError, match=r"\['tsb'\]"):
        session_quality_table(tables, features=feats.drop(columns=["tsb"]))


def _quality_frame(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    u, v = rng.normal(0, 1, n), rng.normal(0, 1, n)
    q = np.clip(3 + 1.2 * np.tanh(u) - 0.4 * v**2 + rng.normal(0, 0.15, n), 1, 5)
    return pd.DataFrame(
        dict(
            date=pd.Timestamp("2025-01-01") + pd.to_timedelta(np.arange(n) // 10, unit="D"),
            u=u,
            v=v,
            noise=rng.normal(0, 1, n),
            quality=q,
        )
    )


def test_session_quality_learns_and_round_trips(tmp_path):
    f = _quality_frame()
    train, test = f.iloc[:2400], f.iloc[2400:].set_index(pd.Index(np.arange(600) * 3 + 7))
    m = SessionQuality(dict(features=["u", "v", "noise"], epochs=25)).fit(train)
    p = m.predict(test)
    assert p.index.equals(test.index) and list(p.columns) == ["quality"]
    assert p["quality"].between(1, 5).all()
    mae = np.mean(np.abs(p["quality"] - test["quality"]))
    assert mae < 0.5 * np.mean(np.abs(test["quality"] - train["quality"].mean())), mae
    m.save(tmp_path)
    back = SessionQuality.load(tmp_path)
    np.testing.assert_allclose(back.predict(test)["quality"], p["quality"], rtol=0, atol=1e-6)
    again = SessionQuality(dict(features=["u", "v", "noise"], epochs=25)).fit(train)
    np.testing.assert_array_equal(again.predict(test)["quality"], p["quality"])


def test_session_quality_refuses_targets_off_the_scale():
    f = _quality_frame(200)
    with pytest.raises(ValidationError, match="1-5"):
        SessionQuality(dict(features=["u"])).fit(f.assign(quality=f["quality"] * 2))
    with pytest.raises(ValidationError, match=r"\['u'\]"):
        SessionQuality(dict(features=["u"])).fit(f.drop(columns=["u"]))
    with pytest.raises(ConfigError, match="loss must be"):
        SessionQuality(dict(features=["u"], loss="mae", epochs=1)).fit(f)


# ---------------------------------------------------------------- with the registry


@pytest.mark.slow
def test_registry_round_trip(fitted, data, tmp_path):
    from pitchlab.registry import Registry

    df, _, test = data
    reg = Registry(uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=tmp_path / "artifacts")
    out = reg.log_model(
        "deep_risk_test", fitted, metrics={"auc": 0.9}, params=fitted.model_config, feature_version=FEATURE_VERSION
    )
    back = reg.load("deep_risk_test", out["version"])
    assert type(back).__name__ == "SequenceRisk"
    np.testing.assert_allclose(
        back.predict(test, context=df)["risk"], fitted.predict(test, context=df)["risk"], rtol=0, atol=1e-6
    )
