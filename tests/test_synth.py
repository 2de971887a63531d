"""The synthetic cohort: determinism, contracts, integrity, and that the data follow the truth returned with them."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from pitchlab.core import ConfigError
from pitchlab.schema import ENTITIES, SCHEMAS, validate
from pitchlab.synth import (
    PHASES,
    SCENARIOS,
    SPORTS,
    Cohort,
    HazardParams,
    _ewma_acwr,
    cycle_phase,
    demo_cohort,
    make_cohort,
    severity_from_days,
)


@pytest.fixture(scope="module")
def demo():
    return demo_cohort(seed=0)


@pytest.fixture(scope="module")
def demos():
    "Demo cohorts of a few seeds, for checks that need more injuries than one draw gives."
    return {s: demo_cohort(seed=s) for s in range(5)}


def _assert_same(a: Cohort, b: Cohort):
    for k in Cohort.TABLES:
        pd.testing.assert_frame_equal(getattr(a, k), getattr(b, k))
    pd.testing.assert_frame_equal(a.truth.daily, b.truth.daily)
    pd.testing.assert_frame_equal(a.truth.athletes, b.truth.athletes)
    pd.testing.assert_frame_equal(a.truth.injuries, b.truth.injuries)


def _injured_days(c: Cohort) -> pd.DataFrame:
    "(athlete_id, date) of every day an athlete was out: onset+1 .. onset+days_lost."
    inj = c.injuries
    rows = [
        (a, o + pd.Timedelta(days=k))
        for a, o, n in zip(inj.athlete_id, inj.onset_date, inj.days_lost)
        for k in range(1, int(n) + 1)
    ]
    return pd.DataFrame(rows, columns=["athlete_id", "date"])


# --- determinism ------------------------------------------------------------------------------------------------


def test_same_seed_identical_tables():
    kw = dict(n_teams=3, athletes_per_team=8, seasons=1, seed=11)
    _assert_same(make_cohort(**kw), make_cohort(**kw))


def test_demo_is_deterministic(demo):
    _assert_same(demo, demo_cohort(seed=0))


def test_different_seed_different_tables(demo, demos):
    other = demos[1]
    assert not demo.sessions.equals(other.sessions)
    assert not demo.injuries.equals(other.injuries)
    assert not demo.truth.athletes.z_athlete.equals(other.truth.athletes.z_athlete)


# --- contracts and keys ----------------------------------------------------------------------------------------


def test_tables_follow_contracts(demo):
    assert set(demo.tables()) == {"teams", "athletes", "sessions", "pitches", "wellness", "cycle_logs", "injuries"}
    for k, df in demo.tables().items():
        assert list(df.columns) == ENTITIES[k].columns, k
        SCHEMAS[k].validate(df)
        valid, rejects = validate(k, df)
        assert len(rejects) == 0, (k, rejects.head())
        assert len(valid) == len(df)


def test_dates_are_midnight_ns_and_ids_str(demo):
    for k, df in demo.tables().items():
        for f in ENTITIES[k].fields:
            if f.kind == "date":
                assert df[f.name].dtype == "datetime64[ns]", (k, f.name)
                assert (df[f.name].dropna() == df[f.name].dropna().dt.normalize()).all(), (k, f.name)
            if f.name.endswith("_id") and f.name in df:
                assert pd.api.types.is_string_dtype(df[f.name]), (k, f.name)


@pytest.mark.parametrize("table", Cohort.TABLES)
def test_natural_keys_unique(demo, table):
    df = getattr(demo, table)
    key = list(ENTITIES[table].key)
    assert len(df) > 0
    assert not df.duplicated(key).any()
    assert df[key].notna().all().all()


def test_referential_integrity(demo):
    ath = set(demo.athletes.athlete_id)
    assert set(demo.athletes.team_id) <= set(demo.teams.team_id)
    assert set(demo.teams.team_id) == set(demo.athletes.team_id)
    for k in ("sessions", "pitches", "wellness", "cycle_logs", "injuries"):
        assert set(getattr(demo, k).athlete_id) <= ath, k
    assert set(demo.truth.daily.athlete_id) == ath
    assert set(demo.truth.injuries.injury_id) == set(demo.injuries.injury_id)
    roles = demo.athletes.set_index("athlete_id").role
    assert set(roles[demo.pitches.athlete_id.unique()]) == {"pitcher"}
    sexes = demo.athletes.set_index("athlete_id").sex
    assert set(sexes[demo.cycle_logs.athlete_id.unique()]) == {"F"}
    assert set(demo.athletes.groupby("sport").sex.agg(lambda s: "".join(sorted(set(s))))) == {"F", "M"}


def test_source_ids_deterministic_and_readable(demo):
    s = demo.sessions
    assert (s.source == "synthetic").all()
    assert (s.source_id.str.slice(0, -2) == s.athlete_id + "-" + s.date.dt.strftime("%Y%m%d")).all()
    assert s.source_id.str[-1].isin(["1", "2"]).all()


# --- sessions, injuries -----------------------------------------------------------------------------------------


def test_no_sessions_while_injured(demo):
    out = _injured_days(demo)
    assert len(out) > 0
    hit = demo.sessions.merge(out, on=["athlete_id", "date"])
    assert len(hit) == 0, hit.head()
    daily = demo.truth.daily.merge(out, on=["athlete_id", "date"])
    assert not daily.at_risk.any()
    assert daily.hazard.isna().all()


def test_injury_dates_and_severity_consistent(demo):
    inj = demo.injuries
    assert (inj.return_date == inj.onset_date + pd.to_timedelta(inj.days_lost.astype(int) + 1, unit="D")).all()
    assert (severity_from_days(inj.days_lost.astype(int)) == inj.severity.to_numpy()).all()
    assert inj.days_lost.min() >= 1
    # an athlete is never injured again before returning
    for _, g in inj.sort_values("onset_date").groupby("athlete_id"):
        assert (g.onset_date.iloc[1:].to_numpy() >= g.return_date.iloc[:-1].to_numpy()).all()


def test_sessions_realistic(demo):
    s = demo.sessions
    assert s.rpe.between(1, 10).all() and (s.rpe == s.rpe.round()).all()
    assert np.allclose(s.load, s.rpe * s.duration_min)
    assert s.duration_min.between(10, 450).all()
    per_day = s.groupby(["athlete_id", "date"]).size()
    assert per_day.max() == 2 and 0.01 < (per_day == 2).mean() < 0.1  # occasional doubles
    cr = s[s.sport == "cricket"]
    assert (cr.balls_bowled.dropna() % 6 == 0).all()
    assert np.allclose(cr.overs.dropna(), cr.balls_bowled.dropna() / 6)
    assert s.loc[s.sport != "cricket", ["balls_bowled", "balls_faced"]].isna().all().all()
    assert s.loc[s.sport != "baseball", "pitches"].isna().all()
    fb = s[(s.sport == "football") & (s.session_type == "match")]
    assert 7000 < fb.distance_m.median() < 12000


def test_rest_days_and_offseason(demo):
    d = demo.truth.daily
    week = (d.date - d.date.min()).dt.days // 7
    ins = d[(d.season_phase == "in-season") & d.at_risk]
    rest = (ins.day_type == "rest").groupby([ins.team_id, ins.athlete_id, week[ins.index]]).mean().mul(7)
    by_team = rest.groupby(level=0).mean()
    assert by_team.between(1, 2.5).all(), by_team
    brk = d[d.season_phase == "break"]
    assert (brk.day_type == "rest").all() and (brk.load == 0).all()


def test_pitch_counts_and_rotation(demo):
    s = demo.sessions.join(demo.athletes.set_index("athlete_id")[["position"]], on="athlete_id")
    app = s[s.pitches.notna()]
    assert (app.session_type == "match").all()
    assert app.loc[app.position == "SP", "pitches"].between(70, 105).all()
    assert app.loc[app.position == "RP", "pitches"].between(10, 30).all()
    per_day = demo.pitches.groupby(["athlete_id", "game_date"]).size()
    assert (app.set_index(["athlete_id", "date"]).pitches.loc[per_day.index].to_numpy() == per_day.to_numpy()).all()
    assert len(per_day) == len(app)
    gaps = app[app.position == "SP"].sort_values("date").groupby("athlete_id").date.diff().dt.days.dropna()
    assert gaps.min() >= 4 and gaps.between(4, 6).mean() > 0.85
    # relievers never pitch three days running
    rp = app[app.position == "RP"].sort_values("date")
    for _, g in rp.groupby("athlete_id"):
        day = g.date.to_numpy()
        if len(day) > 2:
            assert not ((day[2:] - day[:-2]) == np.timedelta64(2, "D")).any()
    # one starter per game, first in the game's order
    first = demo.pitches.sort_values(["game_pk", "at_bat_number", "pitch_number"]).groupby("game_pk").athlete_id.first()
    pos = demo.athletes.set_index("athlete_id").position
    assert (pos[first].to_numpy() == "SP").mean() > 0.97


def test_pitch_values_realistic(demo):
    p = demo.pitches
    ff = p[p.pitch_type == "FF"].groupby("athlete_id")[["release_speed", "release_spin_rate"]].mean()
    assert 89 < ff.release_speed.mean() < 95 and 1.2 < ff.release_speed.std() < 4.5
    assert ff.release_spin_rate.between(2150, 2550).all()
    assert set(p.pitch_type.dropna()) == {"FF", "SL", "CH", "CU"}
    assert p.release_speed.between(65, 102).all()
    assert p.inning.between(1, 20).all()
    assert (
        p.groupby(["game_pk", "at_bat_number"]).pitch_number.agg(
            lambda x: (np.sort(x) == np.arange(1, len(x) + 1)).all()
        )
    ).all()
    assert (p.groupby(["game_pk", "at_bat_number"]).athlete_id.nunique() == 1).all()


def _sag(c: Cohort, days=14):
    "Per arm injury with FF pitches in the `days` before onset: mean speed minus the pitcher's speed outside the ramp."
    p = c.pitches[c.pitches.pitch_type == "FF"]
    arm = c.truth.injuries[c.truth.injuries.sag]
    ramp = pd.Series(False, index=p.index)
    wins = []
    for _, j in arm.iterrows():
        lag = (j.onset_date - p.game_date).dt.days
        mine = p.athlete_id == j.athlete_id
        ramp |= mine & lag.between(0, c.truth.params.sag_days - 1)
        wins.append((j.athlete_id, mine & lag.between(0, days - 1)))
    base = p[~ramp].groupby("athlete_id").release_speed.mean()
    return np.array([p.loc[m, "release_speed"].mean() - base[a] for a, m in wins if m.any()])


def test_velocity_sags_before_arm_injuries(demos):
    diffs = np.concatenate([_sag(c) for c in demos.values()])
    assert len(diffs) >= 8
    assert (diffs < 0).mean() > 0.9
    assert -1.5 < diffs.mean() < -0.5  # linear ramp to -1.5 mph: about -1.0 on average over the last 14 days


def test_pitcher_speed_is_truth_baseline_without_sag():
    c = make_cohort(n_teams=2, athletes_per_team=20, seasons=1, seed=4, hazard=HazardParams(sag_mph=0.0, sag_rpm=0.0))
    p = c.pitches[c.pitches.pitch_type == "FF"]
    base = p.groupby("athlete_id").release_speed.mean()
    assert np.allclose(base, c.truth.athletes.set_index("athlete_id").speed_mph[base.index], atol=0.6)


def test_pitches_only_for_pitchers_and_cycles_only_for_women():
    c = make_cohort(n_teams=3, athletes_per_team=6, seasons=1, seed=2)
    pos = c.athletes.set_index("athlete_id")
    assert (pos.loc[c.pitches.athlete_id.unique(), "role"] == "pitcher").all()
    assert (pos.loc[c.cycle_logs.athlete_id.unique(), "sex"] == "F").all()
    assert c.truth.daily.loc[c.truth.daily.athlete_id.map(pos.sex) == "M", "phase"].isna().all()


# --- cycle and wellness -----------------------------------------------------------------------------------------


def test_cycle_logs(demo):
    cl = demo.cycle_logs
    assert cl.phase.isin(PHASES).all() and cl.cycle_day.between(1, 35).all()
    t = demo.truth.athletes.dropna(subset=["cycle_length"])
    assert t.cycle_length.between(24, 35).all()
    d = demo.truth.daily.dropna(subset=["cycle_day"])
    lengths = d.groupby("athlete_id").cycle_day.apply(lambda x: x[x.shift(-1) == 1].median())
    assert np.allclose(lengths, t.set_index("athlete_id").cycle_length[lengths.index], atol=1.5)
    true_phase = d.set_index(["athlete_id", "date"]).phase
    assert (
        cl.set_index(["athlete_id", "date"]).phase == true_phase.loc[cl.set_index(["athlete_id", "date"]).index]
    ).all()
    female_days = demo.athletes.sex.eq("F").sum() * demo.truth.daily.date.nunique()
    assert 0.5 < len(cl) / female_days < 0.97  # some missed logs
    assert cl.symptoms.notna().groupby(cl.phase).mean()["menstrual"] > 0.4


def test_cycle_phase_convention():
    assert list(cycle_phase([1, 5, 6, 12, 13, 14, 15, 16, 28], 28)) == [
        "menstrual",
        "menstrual",
        "follicular",
        "follicular",
        "ovulatory",
        "ovulatory",
        "ovulatory",
        "luteal",
        "luteal",
    ]
    assert list(cycle_phase([9, 10, 11, 12], 24)) == ["ovulatory"] * 3 + ["luteal"]


def test_wellness(demo):
    w = demo.wellness
    n_days = demo.truth.daily.date.nunique() * len(demo.athletes)
    assert 0.6 < len(w) / n_days < 0.95  # unreported days have no row
    for item in ("sleep_quality", "soreness", "fatigue", "mood", "stress"):
        assert w[item].dropna().between(1, 5).all()
        assert 0 < w[item].isna().mean() < 0.05
    assert 40 < w.hrv_rmssd.median() < 110 and w.resting_hr.dropna().between(30, 100).all()
    assert 0.1 < w.hrv_rmssd.isna().mean() < 0.35  # athletes without a wearable
    # HRV and fatigue drop after high acute load (yesterday's ACWR)
    d = demo.truth.daily.set_index(["athlete_id", "date"])
    j = w.join(d[["acwr_ewma"]], on=["athlete_id", "date"])
    j["log_hrv_dev"] = np.log(j.hrv_rmssd) - np.log(j.hrv_rmssd).groupby(j.athlete_id).transform("mean")
    assert j[["log_hrv_dev", "acwr_ewma"]].corr().iloc[0, 1] < -0.1
    assert j[["fatigue", "acwr_ewma"]].astype(float).corr().iloc[0, 1] < -0.1


# --- the truth --------------------------------------------------------------------------------------------------


def test_truth_eta_and_hazard_reconstruct(demo):
    t, hp = demo.truth, demo.truth.params
    d = t.daily
    eta = _eta_without_acwr_and_return(t) + hp.beta_acwr * (d.acwr_ewma - 1)  # the linear truth has no return term
    assert np.allclose(eta, d.eta)
    assert np.allclose(d.chronic_z, (d.chronic_ewma - hp.chronic_center) / hp.chronic_scale)
    r = d[d.at_risk]
    assert np.allclose(r.hazard, 1 / (1 + np.exp(-r.eta)))
    assert np.allclose(t.teams.u_team, hp.sigma_team * t.teams.z_team)
    assert np.allclose(t.athletes.v_athlete, hp.sigma_athlete * t.athletes.z_athlete)
    assert t.intercept == hp.alpha and t.betas["acwr"] == hp.beta_acwr and t.sigmas == {"team": 0.3, "athlete": 0.5}


def test_truth_covariates_are_lagged_williams_ewma(demo):
    d = demo.truth.daily
    for aid in demo.athletes.athlete_id.iloc[[0, 30, 60]]:
        one = d[d.athlete_id == aid]
        acute, chronic, ratio = _ewma_acwr(one.load.to_numpy())
        assert np.allclose(one.acute_ewma.to_numpy()[1:], acute[:-1])  # day t sees the EWMA up to t-1
        assert np.allclose(one.chronic_ewma.to_numpy()[1:], chronic[:-1])
        assert np.allclose(one.acwr_ewma.to_numpy()[1:], ratio[:-1])
        assert one.acwr_ewma.iloc[0] == 1.0  # day 0: both EWMAs are the seed
    # the daily load is the sessions' load
    s = demo.sessions.groupby(["athlete_id", "date"]).load.sum()
    dl = d.set_index(["athlete_id", "date"]).load
    assert np.allclose(dl.loc[s.index], s) and (dl.drop(s.index) == 0).all()
    prev = d.groupby("athlete_id").prev_injury
    assert (prev.diff().fillna(0) >= 0).all()  # once injured, always "previously injured"


def test_ewma_matches_williams_worked_example():
    a, c, r = _ewma_acwr([30] * 21 + [50] * 7)
    assert np.allclose(a[21:], [35.0, 38.75, 41.5625, 43.6719, 45.2539, 46.4404, 47.3303], atol=1e-4)
    assert round(r[-1], 4) == 1.2497
    assert round(_ewma_acwr([50] * 28 + [100] * 7)[2][-1], 2) == 1.34


def test_truth_hazard_reproduces_injury_count(demos):
    zs = []
    for seed, c in demos.items():
        d = c.truth.daily
        n = int(d.injury.sum())
        assert n == int((~c.injuries.contact.astype(bool)).sum())
        expected = d.loc[d.at_risk, "hazard"].sum()
        var = (d.loc[d.at_risk, "hazard"] * (1 - d.loc[d.at_risk, "hazard"])).sum()
        z = (n - expected) / np.sqrt(var)
        assert abs(z) < 4, (seed, n, expected)
        zs.append(z)
        assert 40 <= n <= 120, (seed, n)  # realistic count for 75 athletes over two seasons
    assert abs(np.sum(zs) / np.sqrt(len(zs))) < 3.5, zs


def test_injuries_happen_on_days_at_risk(demo):
    d = demo.truth.daily
    on = d[d.injury | d.contact_injury]
    assert on.at_risk.all()
    assert not (d.injury & d.contact_injury).any()
    ti = demo.truth.injuries.merge(
        d[d.injury | d.contact_injury], left_on=["athlete_id", "onset_date"], right_on=["athlete_id", "date"]
    )
    assert len(ti) == len(demo.injuries)
    nc = ti[~ti.contact]
    assert np.allclose(nc.hazard_x, nc.hazard_y)
    # contact injuries only on days with a session
    assert (d.loc[d.contact_injury, "day_type"] != "rest").all()


def test_hazard_parameters_drive_injuries():
    kw = dict(n_teams=3, athletes_per_team=10, seasons=1, seed=7)
    low, high = make_cohort(**kw), make_cohort(**kw, hazard=HazardParams(alpha=-5.5))
    assert high.truth.daily.injury.sum() > 2 * max(low.truth.daily.injury.sum(), 1)
    none = make_cohort(**kw, hazard=HazardParams(alpha=-30.0, contact_session=0.0, contact_match=0.0))
    assert len(none.injuries) == 0 and len(none.sessions) > 0
    assert none.truth.daily.at_risk.all()


def test_contact_injuries_flagged(demos):
    inj = pd.concat([c.injuries for c in demos.values()])
    contact = inj[inj.contact.astype(bool)]
    assert 5 <= len(contact) < 0.5 * len(inj)
    assert set(contact.body_region) <= {"hand", "head", "thigh", "ankle", "knee"}


def _with_effects(c: Cohort) -> pd.DataFrame:
    "The truth's daily rows with the athlete's team + athlete effect as column u."
    d = c.truth.daily
    return d.assign(
        u=d.team_id.map(c.truth.teams.set_index("team_id").u_team)
        + d.athlete_id.map(c.truth.athletes.set_index("athlete_id").v_athlete)
    )


@pytest.mark.slow  # `make test` runs it, `make test-quick` does not
def test_hazard_coefficients_recovered_by_logistic_regression(demos):
    "Pooled over 12 seeds, a logistic fit with the true random and phase effects as offset recovers the betas (the sport-specific ones too) within 3.5 SE."
    cohorts = list(demos.values()) + [demo_cohort(seed=s) for s in range(5, 12)]
    d = pd.concat([_with_effects(c) for c in cohorts])
    d = d[d.at_risk]
    hp = HazardParams()
    X = np.column_stack(
        [
            np.ones(len(d)),
            d.acwr_ewma - 1,
            d.chronic_z,
            d.prev_injury,
            d.day_type.eq("match"),
            d.day_type.eq("rest"),
            d.pitches_7d / 100,
            d.short_rest,
            d.balls_7d / 100,
            d.balls_faced_7d / 300,
        ]
    ).astype(float)
    offset = d.u.to_numpy() + d.phase.map(dict(hp.beta_phase)).fillna(0.0).to_numpy()
    y = d.injury.to_numpy().astype(float)
    b = np.zeros(X.shape[1])
    b[0] = hp.alpha
    for _ in range(50):  # Newton-Raphson
        p = 1 / (1 + np.exp(-(X @ b + offset)))
        H = X.T @ (X * (p * (1 - p))[:, None])
        step = np.linalg.solve(H, X.T @ (y - p))
        b += step
        if np.abs(step).max() < 1e-9:
            break
    se = np.sqrt(np.diag(np.linalg.inv(H)))
    truth = np.array(
        [
            hp.alpha,
            hp.beta_acwr,
            hp.beta_chronic,
            hp.beta_prev,
            hp.beta_match,
            hp.beta_rest,
            hp.beta_pitches_7d,
            hp.beta_short_rest,
            hp.beta_balls_7d,
            hp.beta_batting_7d,
        ]
    )
    assert y.sum() > 500
    # 3.5 SE: ten coefficients at once, and rare-event logistic estimates lean slightly away from zero
    assert (np.abs(b - truth) < 3.5 * se).all(), pd.DataFrame(dict(est=b, se=se, truth=truth))
    assert se[1] < 0.2  # the ACWR effect is estimable from a dozen demo cohorts


# --- sizes, arguments, properties ---------------------------------------------------------------------------


def test_demo_sizes():
    c = demo_cohort()  # speed belongs in benchmarks/, not in a wall-time assert on a shared machine
    assert len(c.teams) == 3 and len(c.athletes) == 75 and list(c.teams.sport) == list(SPORTS)
    assert c.truth.daily.date.nunique() == 728 and len(c.truth.daily) == 75 * 728
    assert c.truth.daily.date.min() == pd.Timestamp("2025-01-06")
    assert 25_000 < len(c.sessions) < 45_000 and 30_000 < len(c.pitches) < 60_000
    assert "Cohort(3 teams, 75 athletes" in repr(c)


def test_two_prefixes_share_a_store_without_key_collisions():
    a = make_cohort(n_teams=2, athletes_per_team=6, seasons=1, seed=1)
    b = make_cohort(n_teams=2, athletes_per_team=6, seasons=1, seed=1, id_prefix="pilot")
    for k in Cohort.TABLES:
        both = pd.concat([getattr(a, k), getattr(b, k)])
        assert not both.duplicated(list(ENTITIES[k].key)).any(), k
    assert (
        a.pitches.drop(columns=["athlete_id", "game_pk"])
        .reset_index(drop=True)
        .equals(b.pitches.drop(columns=["athlete_id", "game_pk"]).reset_index(drop=True))
    )  # only the ids differ


@pytest.mark.parametrize(
    "kw, fragment",
    [
        (dict(n_teams=0), "n_teams"),
        (dict(athletes_per_team=3), "athletes_per_team"),
        (dict(seasons=1.5), "seasons"),
        (dict(n_teams=True), "n_teams"),
        (dict(start="someday"), "not a date"),
        (dict(end="someday"), "not a date"),
        (dict(start="2025-01-06", end="2026-01-01"), "do not span"),
        (dict(hazard={"alpha": -6}), "HazardParams"),
        (dict(scenario="quadratic"), "unknown scenario"),
        (dict(hazard=HazardParams(acwr_shape="cubic")), "acwr_shape"),
        (dict(hazard=HazardParams(acwr_lag=(21, 7))), "acwr_lag"),
    ],
)
def test_bad_arguments_raise_config_error(kw, fragment):
    with pytest.raises(ConfigError, match=fragment) as e:
        make_cohort(**kw)
    assert e.value.hint


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_teams=st.integers(1, 5),
    athletes=st.integers(4, 9),
    seed=st.integers(0, 10_000),
    start=st.dates(min_value=pd.Timestamp("2000-01-01").date(), max_value=pd.Timestamp("2030-12-31").date()),
)
@pytest.mark.slow  # `make test` runs it, `make test-quick` does not
def test_any_small_cohort_is_valid(n_teams, athletes, seed, start):
    c = make_cohort(
        n_teams=n_teams, athletes_per_team=athletes, seasons=1, start=str(start), seed=seed, id_prefix=f"p{seed}"
    )
    assert len(c.athletes) == n_teams * athletes
    assert c.truth.daily.date.min() == pd.Timestamp(start)
    for k, df in c.tables().items():
        SCHEMAS[k].validate(df)
        assert not df.duplicated(list(ENTITIES[k].key)).any(), k
    assert c.athletes.athlete_id.str.startswith(f"p{seed}-").all()
    assert len(c.sessions.merge(_injured_days(c), on=["athlete_id", "date"])) == 0
    if n_teams < 2:
        assert len(c.pitches) == 0


# --- misspecified truths (the benchmark's scenarios) ----------------------------------------------------------------


@pytest.fixture(scope="module")
def scenarios():
    return {k: make_cohort(n_teams=3, athletes_per_team=12, seasons=2, seed=4, scenario=k) for k in SCENARIOS}


def _eta_without_acwr_and_return(t):
    "Every term of the truth's linear predictor except the ACWR and after-return terms."
    hp, d = t.params, t.daily
    u = d.team_id.map(t.teams.set_index("team_id").u_team)
    v = d.athlete_id.map(t.athletes.set_index("athlete_id").v_athlete)
    phase = d.phase.map({p: dict(hp.beta_phase)[p] for p in PHASES}).fillna(0.0)
    day = d.day_type.map({"rest": hp.beta_rest, "training": 0.0, "match": hp.beta_match})
    return (
        hp.alpha
        + u
        + v
        + hp.beta_chronic * d.chronic_z
        + hp.beta_prev * d.prev_injury
        + phase
        + day
        + hp.beta_pitches_7d * d.pitches_7d / 100
        + hp.beta_short_rest * d.short_rest
        + hp.beta_balls_7d * d.balls_7d / 100
        + hp.beta_batting_7d * d.balls_faced_7d / 300
    )


def test_scenarios_state_what_is_misspecified(scenarios):
    assert {k: c.truth.params.misspecified for k, c in scenarios.items()} == {
        "linear": set(),
        "u_acwr": {"acwr"},
        "lagged_acwr": {"acwr"},
        "return": {"prev"},
    }
    hp = scenarios["u_acwr"].truth.params
    assert (hp.acwr_shape, hp.beta_acwr_u, hp.acwr_u_min) == ("u", 1.0, 1.1)
    assert scenarios["lagged_acwr"].truth.params.acwr_lag == (7, 21)
    assert scenarios["return"].truth.params.beta_return == 1.0 and scenarios["linear"].truth.params == HazardParams()


def test_scenario_truths_are_what_they_say(scenarios):
    "Each scenario's eta is the linear truth with its ACWR / after-return term swapped, recomputed here from the covariates."
    for k, c in scenarios.items():
        t, hp = c.truth, c.truth.params
        d = t.daily.sort_values(["athlete_id", "date"])
        x = d.acwr_ewma
        if k == "u_acwr":
            want_a = 1.0 * (x.clip(0, 2.5) - 1.1) ** 2
        elif k == "lagged_acwr":  # mean ACWR of the days 7..21 back (1.0, no effect, in the first week)
            g = x.groupby(d.athlete_id)
            want_a = g.transform(lambda s: s.shift(7).rolling(15, min_periods=1).mean()).fillna(1.0) - 1
        else:
            want_a = hp.beta_acwr * (x - 1)
        assert np.allclose(d.acwr_term, want_a), k
        s = d.days_since_return
        want_r = np.where(s < 42, hp.beta_return * (1 - s.fillna(42) / 42), 0.0)
        assert np.allclose(d.return_term, want_r), k
        assert np.allclose(d.eta, _eta_without_acwr_and_return(t).loc[d.index] + want_a + want_r), k
        r = d[d.at_risk]
        assert np.allclose(r.hazard, 1 / (1 + np.exp(-r.eta)))
    # days since return count from each injury's return date
    c = scenarios["return"]
    inj = c.injuries.sort_values("onset_date").groupby("athlete_id").return_date.last()
    d = c.truth.daily
    last = d[d.date == d.date.max()].set_index("athlete_id").days_since_return
    back = inj[inj <= d.date.max()]
    assert np.allclose(last.loc[back.index], (d.date.max() - back).dt.days)
    assert (d.return_term > 0).sum() > 100 and d.return_term.max() == pytest.approx(1.0)


def test_misspecified_effects_change_the_injuries(scenarios):
    "The swapped terms act: injuries fall where the truth says risk is high (U ends, the 6 weeks after return)."
    d = scenarios["return"].truth.daily
    r = d[d.at_risk & d.prev_injury.eq(1)]
    back = r.days_since_return < 42
    assert r.loc[back, "hazard"].mean() > 1.5 * r.loc[~back, "hazard"].mean()
    u = scenarios["u_acwr"].truth.daily
    u = u[u.at_risk]
    ends = (u.acwr_ewma < 0.6) | (u.acwr_ewma > 1.6)
    assert u.loc[ends, "acwr_term"].min() > u.loc[~ends, "acwr_term"].max() - 1e-9


@pytest.mark.slow
def test_true_hazard_is_calibrated_in_each_season():
    "The generator's hazard is the compensator of its injuries in each season: O/E of the truth near 1 over seeds."
    obs, exp = np.zeros(2), np.zeros(2)
    for seed in range(8):
        c = make_cohort(n_teams=8, athletes_per_team=25, seasons=2, seed=seed)
        d = c.truth.daily[c.truth.daily.at_risk]
        s2 = d.date >= d.date.min() + pd.Timedelta(days=364)
        for k, m in enumerate([~s2, s2]):
            obs[k] += d.loc[m, "injury"].sum()
            exp[k] += d.loc[m, "hazard"].sum()
    z = (obs - exp) / np.sqrt(exp)
    assert (np.abs(z) < 3).all(), (obs, exp)
    assert exp[1] > 1.05 * exp[0]  # the expected rate rises in season 2 (more athletes carry an earlier injury)
