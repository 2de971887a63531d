"""pitchlab.load against plain pandas on random cohorts (hypothesis), the published worked examples, and bad input."""

import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings, strategies as st

from pitchlab.core import ConfigError, ValidationError
from pitchlab.load import (
    METRICS,
    QC,
    calendar,
    daily_metrics,
    ewma_lambda,
    example_sessions,
    explain_qc,
    kernel_threads,
    normalized_power,
    power_summary,
    project_pmc,
    random_denominator_test,
    to_frame,
    tss,
    wellness_z,
)

_HYP = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def HYP(test):
    "The property checks against pandas (50 cohorts each) are slow: `make test` (--runslow) runs them, test-quick does not."
    return pytest.mark.slow(_HYP(test))


# ----------------------------------------------------------------------------------------------- pandas reference
def pandas_reference(
    sessions,
    reported=None,
    acute=7,
    chronic=28,
    ewma="williams",
    ddof=1,
    min_days=1,
    max_missing=0.25,
    ctl_days=42,
    atl_days=7,
    ctl0=0.0,
    atl0=0.0,
    tsb="next_day",
):
    "The metric set of `daily_metrics` written plainly with pandas, athlete by athlete (long table out)."
    lam_a, lam_c = ewma_lambda(acute, ewma), ewma_lambda(chronic, ewma)
    k_ctl, k_atl = 1 - math.exp(-1 / ctl_days), 1 - math.exp(-1 / atl_days)
    out = []
    ids = list(dict.fromkeys(list(sessions["athlete_id"]) + ([] if reported is None else list(reported["athlete_id"]))))
    for aid in ids:
        g = sessions[sessions["athlete_id"] == aid]
        daily = g.groupby("date")["load"].sum(min_count=1)
        rep_days = set(daily.index) | (
            set() if reported is None else set(reported.loc[reported["athlete_id"] == aid, "date"])
        )
        idx = pd.date_range(min(rep_days), max(rep_days))
        s = daily.reindex(idx).fillna(0.0)
        s[daily.reindex(idx).isna() & idx.isin(daily.index)] = np.nan  # a session of unknown load
        if reported is not None:
            s[~idx.isin(list(rep_days))] = np.nan
        h = pd.Series(np.arange(1, len(s) + 1), index=idx)

        def window(w):
            r = s.rolling(w, min_periods=1)
            return r.mean(), r.count(), np.minimum(w, h)

        am, ca, na = window(acute)
        cm, cc, nc = window(chronic)
        a_ok = (ca > 0) & (na - ca <= max_missing * na)
        c_ok = (cc > 0) & (nc - cc <= max_missing * nc)
        hist = h >= min_days
        ur = s.shift(acute).rolling(chronic - acute, min_periods=1)
        um, cu, nu = ur.mean(), ur.count(), np.minimum(chronic, h) - acute
        u_ok = (nu > 0) & (cu > 0) & (nu - cu <= max_missing * nu)
        d = pd.DataFrame(index=idx)
        d["load"] = s
        d["acute_load"] = am.where(a_ok)
        d["chronic_load"] = cm.where(c_ok & hist)
        d["chronic_uncoupled"] = um.where(u_ok & hist)
        d["acwr_rolling"] = d["acute_load"] / d["chronic_load"].where(d["chronic_load"] > 0)
        d["acwr_uncoupled"] = d["acute_load"] / d["chronic_uncoupled"].where(d["chronic_uncoupled"] > 0)
        d["ewma_acute"] = s.ewm(alpha=lam_a, adjust=False, ignore_na=True).mean().where(a_ok)
        d["ewma_chronic"] = s.ewm(alpha=lam_c, adjust=False, ignore_na=True).mean().where(c_ok & hist)
        d["acwr_ewma"] = d["ewma_acute"] / d["ewma_chronic"].where(d["ewma_chronic"] > 0)
        wm, cw, nw = window(7)
        w_ok = (cw > 0) & (nw - cw <= max_missing * nw)
        wsum = s.rolling(7, min_periods=1).sum()
        d["weekly_load"] = wsum.where(cw == nw, wm * nw).where(w_ok)
        sd = s.rolling(7, min_periods=1).apply(
            lambda v: np.std(v[~np.isnan(v)], ddof=ddof) if (~np.isnan(v)).sum() > ddof else np.nan, raw=True
        )
        const = s.rolling(7, min_periods=1).max() == s.rolling(7, min_periods=1).min()
        d["monotony"] = (wm / sd).where(w_ok & (h >= 7) & (cw - ddof > 0) & ~const)
        d["strain"] = d["weekly_load"] * d["monotony"]
        prev = d["weekly_load"].shift(7)
        d["week_change_pct"] = ((d["weekly_load"] - prev) / prev.where(prev > 0) * 100).where(h >= 14)
        for name, k, seed in (("ctl", k_ctl, ctl0), ("atl", k_atl, atl0)):
            seeded = pd.concat([pd.Series([seed]), s.reset_index(drop=True)], ignore_index=True)
            d[name] = seeded.ewm(alpha=k, adjust=False, ignore_na=True).mean().iloc[1:].to_numpy()
        same = d["ctl"] - d["atl"]
        d["tsb"] = same if tsb == "same_day" else same.shift(1).fillna(ctl0 - atl0)
        d["ramp_rate"] = d["ctl"] - d["ctl"].shift(7)
        out.append(d.assign(athlete_id=aid).rename_axis("date").reset_index())
    return pd.concat(out, ignore_index=True)


def assert_matches_reference(ds, ref, metrics=METRICS, rtol=1e-9):
    got = to_frame(ds, ["load", *metrics]).merge(
        ref, on=["athlete_id", "date"], suffixes=("", "_ref"), how="outer", indicator=True
    )
    assert (got["_merge"] == "both").all(), "the calendars differ"
    for m in ("load", *metrics):
        a, b = got[m].to_numpy(float), got[m + "_ref"].to_numpy(float)
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=f"{m}: NaN pattern differs")
        ok = ~np.isnan(a)
        np.testing.assert_allclose(
            a[ok], b[ok], rtol=rtol, atol=1e-9 * max(1.0, np.abs(b[ok]).max(initial=0)), err_msg=m
        )


# ----------------------------------------------------------------------------------------------- random cohorts
@st.composite
def cohorts(draw, with_reported=False):
    n = draw(st.integers(1, 4))
    rows, rep_rows = [], []
    t0 = pd.Timestamp("2024-03-01")
    for a in range(n):
        start = draw(st.integers(0, 12))  # athletes who start mid-season
        length = draw(st.integers(1, 70))  # single-day athletes included
        for k in range(length):
            day = t0 + pd.Timedelta(days=start + k)
            unreported = with_reported and 0 < k < length - 1 and draw(st.booleans()) and draw(st.booleans())
            if unreported:
                continue
            rep_rows.append((f"A{a}", day))
            n_sess = draw(st.sampled_from([0, 0, 1, 1, 1, 2])) if 0 < k < length - 1 else 1
            for _ in range(n_sess):
                rows.append((f"A{a}", day, float(draw(st.sampled_from([0.0, 30.0, 50.0, 120.5, 300.0, 480.0, 750.0])))))
    sessions = pd.DataFrame(rows, columns=["athlete_id", "date", "load"])
    reported = pd.DataFrame(rep_rows, columns=["athlete_id", "date"]) if with_reported else None
    return sessions, reported


@HYP
@given(cohorts())
def test_kernel_matches_pandas(cohort):
    sessions, _ = cohort
    assert_matches_reference(daily_metrics(sessions), pandas_reference(sessions))


@HYP
@given(
    cohorts(with_reported=True),
    st.sampled_from([0, 1]),
    st.sampled_from(["williams", "goldencheetah"]),
    st.sampled_from([1, 28]),
    st.sampled_from([0.0, 0.25, 0.5]),
)
def test_kernel_matches_pandas_with_unreported_days(cohort, ddof, ewma, min_days, max_missing):
    sessions, reported = cohort
    opts = dict(ddof=ddof, ewma=ewma, min_days=min_days, max_missing=max_missing)
    ds = daily_metrics(sessions, reported=reported, **opts)
    assert_matches_reference(ds, pandas_reference(sessions, reported, **opts))
    # every unreported day inside a span is flagged, and only those
    long = to_frame(ds, ["reported", "qc"])
    unrep = (long["qc"].to_numpy() & QC.UNREPORTED) > 0
    np.testing.assert_array_equal(unrep, ~long["reported"].to_numpy(bool))


@HYP
@given(cohorts(), st.integers(0, 10_000))
def test_order_of_rows_does_not_matter(cohort, seed):
    sessions, _ = cohort
    shuffled = sessions.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    a, b = daily_metrics(sessions), daily_metrics(shuffled)
    a, b = a.sel(athlete_id=sorted(a.athlete_id.values)), b.sel(athlete_id=sorted(b.athlete_id.values))
    xr.testing.assert_allclose(a[list(METRICS)], b[list(METRICS)], rtol=1e-12)


@HYP
@given(cohorts())
def test_coupled_ratio_ceiling(cohort):
    "Coupling caps the rolling ACWR at chronic/acute = 4 (Lolli et al. 2019)."
    ds = daily_metrics(cohort[0])
    assert float(ds["acwr_rolling"].max(skipna=True).fillna(0)) <= 4.0 + 1e-12


@HYP
@given(cohorts(), st.sampled_from([0.0, 15.0]), st.sampled_from([0.0, 40.0]))
def test_seeded_pmc_and_same_day_tsb_match_pandas(cohort, ctl0, atl0):
    sessions, _ = cohort
    ds = daily_metrics(sessions, ctl0=ctl0, atl0=atl0, tsb="same_day")
    ref = pandas_reference(sessions, ctl0=ctl0, atl0=atl0, tsb="same_day")
    assert_matches_reference(ds, ref, metrics=("ctl", "atl", "tsb", "ramp_rate"))


@HYP
@given(
    cohorts(with_reported=True),
    st.sampled_from([(1, 2), (2, 4), (3, 5), (5, 6), (7, 21), (10, 40)]),
    st.sampled_from([0, 1]),
    st.sampled_from([1, 10]),
)
def test_any_window_lengths_match_pandas(cohort, windows, ddof, min_days):
    "Windows shorter than the 7-day week (monotony, strain) and longer than the default ones."
    sessions, reported = cohort
    acute, chronic = windows
    opts = dict(acute=acute, chronic=chronic, ddof=ddof, min_days=min_days)
    assert_matches_reference(
        daily_metrics(sessions, reported=reported, **opts), pandas_reference(sessions, reported, **opts)
    )


@HYP
@given(cohorts(with_reported=True), st.integers(2, 5))
def test_threads_give_the_same_numbers_bit_for_bit(cohort, threads):
    sessions, reported = cohort
    one = daily_metrics(sessions, reported=reported, threads=1)
    many = daily_metrics(sessions, reported=reported, threads=threads)
    for m in (*METRICS, "qc"):
        np.testing.assert_array_equal(one[m].values, many[m].values, err_msg=m)


@pytest.mark.parametrize("threads", [1, 2])
def test_long_seasons_with_layoffs_match_pandas(threads):
    "Spans far past the chronic window (the kernel's steady loop), with a 40-day layoff, a late starter, gaps."
    s = example_sessions(n_athletes=6, n_days=300, seed=3)
    layoff = (s["athlete_id"] == "P002") & s["date"].between("2024-04-01", "2024-05-10")
    s.loc[layoff, "load"] = 0.0
    s = s[~((s["athlete_id"] == "P004") & (s["date"] < "2024-06-01"))]
    rep = s[["athlete_id", "date"]].drop_duplicates()
    rep = rep[~((rep["athlete_id"] == "P005") & rep["date"].dt.day.isin([3, 4, 17]))]
    for reported in (None, rep):
        ds = daily_metrics(s, reported=reported, threads=threads)
        assert_matches_reference(ds, pandas_reference(s, reported))
    d = daily_metrics(s, threads=threads).sel(athlete_id="P002", date="2024-05-10")
    assert float(d["chronic_load"]) == 0.0 and QC.ZERO_CHRONIC in QC(int(d["qc"]))  # exactly 0 after 28 rest days


def test_kernel_threads():
    assert kernel_threads(40, 400, threads=3) == 3
    assert kernel_threads(2, 400, threads=8) == 2  # at most one per athlete
    assert kernel_threads(4, 100) == 1  # a small block stays on the calling thread
    import os

    assert kernel_threads(2000, 730) == min(len(os.sched_getaffinity(0)), 1000)
    with pytest.raises(ConfigError, match="threads must be >= 1"):
        daily_metrics(one_athlete([1.0, 2.0]), threads=0)


# ----------------------------------------------------------------------------------------------- reference numbers
def one_athlete(loads, start="2024-01-01"):
    return pd.DataFrame({"athlete_id": "1", "date": pd.date_range(start, periods=len(loads)), "load": loads})


def test_williams_worked_example_athlete_1():
    d = daily_metrics(one_athlete([30.0] * 21 + [50.0] * 7)).isel(athlete_id=0)
    np.testing.assert_allclose(
        d["ewma_acute"].values[21:], [35.0, 38.75, 41.5625, 43.6719, 45.2539, 46.4404, 47.3303], atol=5e-5
    )
    np.testing.assert_array_equal(
        np.round(d["acwr_rolling"].values[21:], 2), [1.06, 1.13, 1.19, 1.25, 1.31, 1.37, 1.43]
    )
    assert round(float(d["acwr_ewma"][-1]), 4) == 1.2497
    assert round(float(d["acwr_uncoupled"][-1]), 2) == 1.67
    assert round(float(d["acwr_rolling"][-1]), 2) == 1.43


def test_williams_2017_three_athletes_from_the_shipped_data():
    from pathlib import Path

    from pitchlab.core import project_root

    wl = pd.read_csv(project_root(Path(__file__).parent) / "data/samples/williams2017/training_load.csv")
    s = pd.DataFrame(
        {
            "athlete_id": wl["athlete"].astype(str),
            "date": pd.Timestamp("2024-01-01") + pd.to_timedelta(wl["day"] - 1, unit="D"),
            "load": wl["load"].astype(float),
        }
    )
    last = daily_metrics(s).isel(date=-1)
    assert list(last["athlete_id"].values) == ["1", "2", "3"]
    assert np.round(last["acwr_ewma"].values, 4).tolist() == [1.2497, 1.4062, 1.5507]
    assert np.round(last["acwr_rolling"].values, 2).tolist() == [1.43, 1.43, 1.43]


def test_acwr_package_worked_example():
    d = daily_metrics(one_athlete([50.0] * 28 + [100.0] * 7)).isel(athlete_id=0, date=-1)
    assert round(float(d["acwr_rolling"]), 2) == 1.60
    assert round(float(d["acwr_uncoupled"]), 2) == 2.00
    assert round(float(d["acwr_ewma"]), 2) == 1.34


def test_smoothing_conventions():
    assert ewma_lambda(7) == 0.25
    assert math.isclose(ewma_lambda(42, "goldencheetah"), 1 - math.exp(-1 / 42))
    assert ewma_lambda(7, "trainingpeaks") == 1 / 7
    assert math.isclose(ewma_lambda(14, "athlytics"), 1 - 2 ** (-1 / 14))
    with pytest.raises(ConfigError):
        ewma_lambda(7, "excel")


def test_pmc_recursion_and_next_day_tsb():
    loads = [100.0, 0.0, 80.0, 120.0]
    d = daily_metrics(one_athlete(loads), ctl0=20.0, atl0=10.0).isel(athlete_id=0)
    a, b = math.exp(-1 / 42), math.exp(-1 / 7)
    ctl, atl, tsb = [], [], []
    c, t_ = 20.0, 10.0
    for x in loads:
        tsb.append(c - t_)
        c, t_ = x * (1 - a) + c * a, x * (1 - b) + t_ * b
        ctl.append(c)
        atl.append(t_)
    np.testing.assert_allclose(d["ctl"].values, ctl, rtol=1e-12)
    np.testing.assert_allclose(d["atl"].values, atl, rtol=1e-12)
    np.testing.assert_allclose(d["tsb"].values, tsb, rtol=1e-12)


def test_projection_continues_the_recursion():
    full = daily_metrics(one_athlete([200.0] * 30 + [350.0, 0, 0, 420.0, 0, 0]))
    head = daily_metrics(one_athlete([200.0] * 30))
    plan = pd.DataFrame(
        {"athlete_id": "1", "date": pd.to_datetime(["2024-01-31", "2024-02-03"]), "load": [350.0, 420.0]}
    )
    p = project_pmc(head, plan, end="2024-02-05")
    for v in ("ctl", "atl", "tsb"):
        np.testing.assert_allclose(p[v].values[0], full[v].values[0, 30:], rtol=1e-12)
    with pytest.raises(ValidationError, match="already in the metrics"):
        project_pmc(head, plan.assign(date=pd.to_datetime(["2024-01-15", "2024-02-03"])))


def test_monotony_population_vs_sample_sd():
    week = [300.0, 400.0, 0.0, 350.0, 500.0, 200.0, 0.0]
    s = daily_metrics(one_athlete(week), ddof=1).isel(athlete_id=0, date=-1)
    p = daily_metrics(one_athlete(week), ddof=0).isel(athlete_id=0, date=-1)
    assert math.isclose(float(s["monotony"]), np.mean(week) / np.std(week, ddof=1))
    assert math.isclose(float(p["monotony"]) / float(s["monotony"]), math.sqrt(7 / 6))  # about 8% apart
    assert math.isclose(float(s["strain"]), sum(week) * float(s["monotony"]))


def test_seven_rest_days_give_nan_monotony_with_reason_not_rounding_noise():
    loads = [733.3, 911.1, 123.7, 650.9, 402.2, 880.8, 515.5] * 3 + [0.0] * 7 + [0.1] * 7
    d = daily_metrics(one_athlete(loads)).isel(athlete_id=0)
    for t in (27, 34):  # seven rest days; seven identical days
        assert np.isnan(float(d["monotony"][t])) and np.isnan(float(d["strain"][t]))
        assert QC.CONSTANT_WEEK in QC(int(d["qc"][t]))
    assert float(d["weekly_load"][27]) == 0.0 and float(d["acute_load"][27]) == 0.0
    assert np.isnan(float(d["week_change_pct"][34])) and "ZERO_PREV_WEEK" in explain_qc(int(d["qc"][34]))


def test_long_rest_gives_exact_zero_chronic_and_nan_ratio():
    d = daily_metrics(one_athlete([987.65, 123.45, 555.55] * 10 + [0.0] * 40)).isel(athlete_id=0, date=-1)
    assert float(d["chronic_load"]) == 0.0 and np.isnan(float(d["acwr_rolling"]))
    assert QC.ZERO_CHRONIC in QC(int(d["qc"]))


def test_too_many_unreported_days_are_flagged_not_computed():
    s = one_athlete([300.0] * 40)
    gone = [30, 31, 33, 34]
    rep = s.drop(index=gone)[["athlete_id", "date"]]
    d = daily_metrics(s.drop(index=gone), reported=rep).isel(athlete_id=0)
    assert np.isnan(float(d["acwr_rolling"][34])) and QC.ACUTE_MISSING in QC(int(d["qc"][34]))
    assert np.isnan(float(d["load"][31])) and not bool(d["reported"][31])
    assert float(d["acwr_rolling"][29]) == 1.0  # before the gap
    # one unreported day in a week is tolerated: averaged over the reported days
    d1 = daily_metrics(s.drop(index=[35]), reported=s.drop(index=[35])[["athlete_id", "date"]]).isel(athlete_id=0)
    assert float(d1["acute_load"][37]) == 300.0 and float(d1["weekly_load"][37]) == 2100.0


# ----------------------------------------------------------------------------------------------- bad input
def test_negative_load_is_an_error():
    with pytest.raises(ValidationError, match="load must be >= 0"):
        daily_metrics(one_athlete([100.0, -5.0, 50.0]))


def test_missing_or_timezone_dates_are_errors():
    s = one_athlete([100.0, 50.0])
    with pytest.raises(ValidationError, match="missing"):
        daily_metrics(s.assign(date=[pd.Timestamp("2024-01-01"), pd.NaT]))
    with pytest.raises(ValidationError, match="timezone"):
        daily_metrics(s.assign(date=s["date"].dt.tz_localize("Europe/London")))


def test_exact_duplicate_sessions_raise_but_distinct_sessions_are_summed():
    s = pd.DataFrame(
        {
            "athlete_id": "1",
            "date": pd.to_datetime(["2024-01-01"] * 2 + ["2024-01-02"]),
            "load": [100.0, 100.0, 50.0],
            "source": "form",
            "source_id": ["x1", "x1", "x2"],
        }
    )
    with pytest.raises(ValidationError, match="duplicates"):
        daily_metrics(s)
    ok = daily_metrics(s.assign(source_id=["x1", "x3", "x2"]))
    assert float(ok["load"][0, 0]) == 200.0
    assert float(daily_metrics(s.drop(columns=["source", "source_id"]))["load"][0, 0]) == 200.0  # documented


def test_missing_columns_and_bad_options():
    with pytest.raises(ValidationError, match="lacks column"):
        daily_metrics(pd.DataFrame({"athlete_id": ["1"], "load": [3.0]}))
    with pytest.raises(ValidationError, match="`load` column"):
        daily_metrics(pd.DataFrame({"athlete_id": ["1"], "date": [pd.Timestamp("2024-01-01")]}))
    with pytest.raises(ConfigError):
        daily_metrics(one_athlete([1.0]), acute=28, chronic=7)
    with pytest.raises(ConfigError):
        daily_metrics(one_athlete([1.0]), ddof=2)
    with pytest.raises(ConfigError):
        daily_metrics(one_athlete([1.0]), max_missing=1.5)


def test_srpe_filled_from_rpe_and_duration():
    s = pd.DataFrame(
        {
            "athlete_id": "1",
            "date": pd.to_datetime(["2024-01-01", "2024-01-02"]),
            "rpe": [6, 7],
            "duration_min": [60, 30],
            "load": [np.nan, 100.0],
        }
    )
    np.testing.assert_array_equal(calendar(s)["load"].values[0], [360.0, 100.0])
    with pytest.raises(ValidationError, match="CR-10"):
        calendar(s.assign(rpe=[15, 7]))


def test_single_day_athlete_is_documented_not_a_nan_storm():
    s = pd.concat(
        [
            one_athlete([100.0] * 20),
            pd.DataFrame({"athlete_id": ["solo"], "date": [pd.Timestamp("2024-01-10")], "load": [250.0]}),
        ]
    )
    ds = daily_metrics(s)
    solo = ds.sel(athlete_id="solo")
    assert (
        int(np.isfinite(solo["acwr_rolling"]).sum()) == 1 and float(solo["acwr_rolling"].sel(date="2024-01-10")) == 1.0
    )
    assert explain_qc(int(solo["qc"].sel(date="2024-01-10"))) == ["WARMUP"]
    assert int(np.isfinite(ds.sel(athlete_id="1")["acwr_rolling"]).sum()) == 20  # the other athlete is untouched


# ----------------------------------------------------------------------------------------------- other kernels
@HYP
@given(cohorts())
def test_pitch_counts_match_pandas(cohort):
    sessions, _ = cohort
    s = sessions.assign(pitches=(sessions["load"] // 10).astype(int))
    ds = daily_metrics(s)
    long = to_frame(ds, ["pitches", "pitches_7d", "pitches_28d", "days_rest"])
    for aid, g in long.groupby("athlete_id"):
        p = g.set_index("date")["pitches"]
        np.testing.assert_allclose(g["pitches_7d"], p.rolling(7, min_periods=1).sum())
        np.testing.assert_allclose(g["pitches_28d"], p.rolling(28, min_periods=1).sum())
        day = pd.Series(np.arange(len(p)), index=p.index)
        last_app = day.where(p > 0).shift(1).ffill()
        np.testing.assert_array_equal(g["days_rest"].to_numpy(), (day - last_app - 1).to_numpy())


@HYP
@given(
    st.lists(st.one_of(st.none(), st.integers(1, 5)), min_size=1, max_size=60), st.integers(2, 10), st.integers(2, 14)
)
def test_wellness_z_matches_pandas(values, min_periods, window):
    min_periods = min(min_periods, window)
    w = pd.DataFrame(
        {
            "athlete_id": "1",
            "date": pd.date_range("2024-01-01", periods=len(values)),
            "soreness": [np.nan if v is None else float(v) for v in values],
        }
    )
    z = wellness_z(w, window=window, min_periods=min_periods)
    s = w.set_index("date")["soreness"]
    base = s.shift(1).rolling(window, min_periods=min_periods)
    sd = base.std()
    ref = ((s - base.mean()) / sd.where(sd > 1e-12)).where(s.notna())
    got = z.set_index("date")["soreness_z"].reindex(s.index)
    np.testing.assert_allclose(got.to_numpy(float), ref.to_numpy(float), rtol=1e-9, atol=1e-9)


def test_normalized_power_known_traces():
    assert math.isclose(normalized_power(np.tile([100.0, 300.0], 900)), 200.0, rel_tol=1e-12)
    step = np.r_[np.full(1800, 100.0), np.full(1800, 300.0)]
    ramp = np.r_[np.full(1771, 100.0), 100 + 200 * np.arange(1, 30) / 30, np.full(1771, 300.0)]
    assert math.isclose(normalized_power(step, np.arange(3600)), np.mean(ramp**4) ** 0.25, rel_tol=1e-12)
    # 1 Hz records with a 60 s recording gap: the gap counts as 0 W, so NP falls
    t = np.r_[np.arange(600), np.arange(660, 1260)]
    assert normalized_power(np.full(1200, 250.0), t) < 250.0
    assert math.isclose(normalized_power(np.full(1200, 250.0), t, fill=250.0), 250.0)
    s = power_summary(np.full(3600, 250.0), pd.date_range("2024-01-01", periods=3600, freq="s").values, ftp=250)
    assert math.isclose(s["tss"], 100.0) and math.isclose(tss(200.0, 250.0, 7200), 2 * 100 * 0.64)


def test_random_denominator_test_separates_a_real_chronic_effect():
    rng = np.random.default_rng(0)
    sessions = []
    for a in range(12):
        base = rng.uniform(100, 600)
        sessions.append(
            pd.DataFrame(
                {
                    "athlete_id": f"A{a}",
                    "date": pd.date_range("2024-01-01", periods=150),
                    "load": base * rng.lognormal(0, 0.5, 150),
                }
            )
        )
    ds = daily_metrics(pd.concat(sessions))
    acwr = ds["acwr_rolling"].fillna(1.0).values
    outcome = xr.DataArray((acwr > np.nanpercentile(acwr, 90)).astype(float), coords=ds["load"].coords)
    r = random_denominator_test(ds, outcome, n_permutations=30, seed=1)
    assert r["observed"] > 0.95 and r["null_mean"] < r["observed"] - 0.1 and r["p_value"] < 0.05
    assert len(r["null"]) == 30
    with pytest.raises(ValidationError, match="at least 2 athletes"):
        random_denominator_test(ds.isel(athlete_id=[0]), outcome.isel(athlete_id=[0]))


def test_normalized_power_of_the_shared_edge810_ride():
    "REFERENCES: Edge810 (FTP 315) recomputed NP 301.1 W, TSS 119.2 (device 301 / 118.7); tolerance 1 W and 3%."
    from pathlib import Path

    import fitdecode

    path = Path(__file__).resolve().parents[1] / "data" / "samples" / "fit" / "Edge810-Vector-2013-08-16-15-35-10.fit"
    t, p = [], []
    with fitdecode.FitReader(str(path)) as fr:
        for m in fr:
            if isinstance(m, fitdecode.FitDataMessage) and m.name == "record" and m.has_field("timestamp"):
                t.append(pd.Timestamp(m.get_value("timestamp")).tz_localize(None))
                p.append(m.get_value("power") if m.has_field("power") else np.nan)
    s = power_summary(np.array(p, dtype=float), pd.DatetimeIndex(t).values, ftp=315)
    assert abs(s["np"] - 301.1) <= 1.0 and abs(s["tss"] - 119.2) <= 0.03 * 119.2


def _acwr_in_child(sessions):
    return daily_metrics(sessions, threads=2)["acwr_ewma"].values


def test_threads_work_in_a_forked_child():
    "A process forked after the kernel's thread pool started (multiprocessing, servers) gets a pool of its own."
    import multiprocessing as mp

    s = example_sessions(n_athletes=8, n_days=200, seed=2)
    parent = daily_metrics(s, threads=2)["acwr_ewma"].values  # the pool's threads now run in this process
    with mp.get_context("fork").Pool(1) as pool:
        child = pool.apply_async(_acwr_in_child, (s,)).get(timeout=60)
    np.testing.assert_array_equal(child, parent)
