"""pitchlab.models.bayes: structure with sampling mocked, exact kernel against PyMC, exact collapse, seeded fits,
save/load and the config hash, predictions, the gate, and (slow) parameter recovery and a repeated-simulation bias check."""

import warnings

import numpy as np
import pandas as pd
import pytest

from pitchlab.core import ConfigError, NotFoundError, ValidationError
from pitchlab.features import build_features, time_split
from pitchlab.models import bayes as B
from pitchlab.models.bayes import (
    DIAGNOSTIC_TARGETS,
    QUICK_SAMPLER,
    RECOVERY_CONFIG,
    HazardModel,
    collapse,
    compare_fits,
    default_model_config,
    history_from_truth,
    truth_table,
)
from pitchlab.synth import HazardParams, make_cohort

# slow: samples PyMC models; `make test` (--runslow) runs it, `make test-quick` does not
pytestmark = pytest.mark.slow

warnings.filterwarnings("ignore", category=FutureWarning)


@pytest.fixture(scope="module")
def feats():
    c = make_cohort(n_teams=3, athletes_per_team=10, seasons=1, seed=5, hazard=HazardParams(alpha=-5.8))
    return build_features(c.tables(), horizon=7)


@pytest.fixture(scope="module")
def quick(feats):
    m = HazardModel(sampler_config={**QUICK_SAMPLER, "random_seed": 3})
    m.fit(feats)
    return m


def _kernel_vs_pymc(m, feats, seed=0):
    """Log-density differences and gradients of the compiled kernel and of PyMC's model at random points."""
    X, idx, y, info = B._design(feats, m.model_config)
    m.info = info
    cells = collapse(X, idx, y)
    pmm = m.build_model(*cells)
    flat = m._flat(*cells)
    args = tuple(flat[k] for k in B._KARGS)
    lp, dlp = pmm.compile_logp(), pmm.compile_dlogp()

    def point(th):
        p = m._unflatten(th, flat)
        return {v.name: np.log(p[v.name[:-6]]) if v.name.endswith("_log__") else p[v.name] for v in pmm.value_vars}

    pos = {"intercept": [0], "beta": list(range(1, 1 + flat["K"]))}
    for i, l in enumerate(flat["levels"]):
        if flat["sslot"][i] >= 0:
            pos[f"sigma_{l}_log__"] = [flat["sslot"][i]]
        pos[f"z_{l}"] = list(range(flat["offs"][i], flat["offs"][i] + flat["sizes"][i]))
    rng = np.random.default_rng(seed)
    ths = rng.normal(0, 0.4, (3, flat["ndim"]))
    ths[:, 0] = [-6.0, -6.5, -5.5]
    out = []
    for th in ths:
        l, g = B._hazard_logp(th, *args)
        gp, pt, o = dlp(point(th)), point(th), 0
        gpm = np.zeros(flat["ndim"])
        for v in pmm.value_vars:
            k = int(np.size(pt[v.name]))
            gpm[pos[v.name]] = gp[o : o + k]
            o += k
        out.append((l, float(lp(point(th))), g, gpm))
    return out


@pytest.mark.parametrize(
    "cfg",
    [
        {},
        {"link": "cloglog"},
        {"terms": {"acwr": {"spline": True}}, "covariates": ["acwr", "chronic", "wellness", "rest_day"]},
        {
            "levels": ["team", "athlete"],
            "priors": {
                "sigma_team": {"dist": "Exponential", "lam": 3.0},
                "sigma_athlete": {"dist": "HalfStudentT", "nu": 3.0, "sigma": 0.5},
            },
        },
        {"levels": ["athlete"], "priors": {"sigma_athlete": {"dist": "Fixed", "value": 1.5}}},
        {"levels": []},
    ],
)
def test_kernel_is_the_pymc_density(feats, cfg):
    res = _kernel_vs_pymc(HazardModel(cfg), feats)
    (l0, p0, g0, h0), (l1, p1, g1, h1), _ = res
    assert abs((l0 - l1) - (p0 - p1)) < 1e-6 * max(1, abs(p0 - p1))
    for _, _, g, h in res:
        np.testing.assert_allclose(g, h, rtol=1e-7, atol=1e-7)
        assert np.isfinite(g).all()


def test_collapse_is_exact(feats):
    m = HazardModel()
    X, idx, y, m.info = B._design(feats, m.model_config)
    Xc, ic, yc, nc = collapse(X, idx, y)
    assert nc.sum() == len(y) and yc.sum() == y.sum() and len(yc) < len(y) / 2
    fr, fc = m._flat(X, idx, y, np.ones(len(y))), m._flat(Xc, ic, yc, nc)
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 0.3, (2, fr["ndim"]))
    a[0], b[0] = -6, -6.4
    (ra, ga), (rb, gb) = (B._hazard_logp(t, *(fr[k] for k in B._KARGS)) for t in (a, b))
    (ca, ha), (cb, hb) = (B._hazard_logp(t, *(fc[k] for k in B._KARGS)) for t in (a, b))
    assert abs((ra - rb) - (ca - cb)) < 1e-8
    np.testing.assert_allclose(ga, ha, rtol=1e-9, atol=1e-9)


def test_gradient_finite_at_initial_point(feats):
    m = HazardModel()
    X, idx, y, m.info = B._design(feats, m.model_config)
    pmm = m.build_model(*collapse(X, idx, y))
    ip = pmm.initial_point()
    assert np.isfinite(pmm.compile_logp()(ip))
    assert np.isfinite(pmm.compile_dlogp()(ip)).all()
    assert set(pmm.named_vars) >= {"intercept", "beta", "sigma_athlete", "z_athlete", "u_athlete", "hazard", "y"}


def test_structure_with_sampling_mocked(feats, tmp_path):
    """The PyMC path (pm.sample mocked to draw from the prior): names, dims, predict and save/load work."""
    from pymc.testing import mock_sample_setup_and_teardown

    gen = mock_sample_setup_and_teardown()
    next(gen)
    try:
        m = HazardModel(sampler_config=dict(backend="pymc", draws=20, chains=1, random_seed=0))
        idata = m.fit(feats)
    finally:
        next(gen, None)
    post = idata.posterior
    assert list(post["beta"].coords["covariate"].values) == m.info["covariates"]
    assert post["z_athlete"].sizes["athlete"] == feats["athlete_id"].nunique()
    assert "hazard" not in post
    pr = m.predict(feats.head(30))
    assert pr["risk"].between(0, 1).all() and (pr["risk_lo"] <= pr["risk_hi"]).all()
    back = HazardModel.load(m.save(tmp_path / "m.nc"))
    np.testing.assert_allclose(back.predict(feats.head(30))["risk"], pr["risk"])


def test_seeded_fit_is_reproducible_and_sensible(feats, quick):
    again = HazardModel(sampler_config={**QUICK_SAMPLER, "random_seed": 3})
    again.fit(feats)
    np.testing.assert_array_equal(again.idata.posterior["beta"].values, quick.idata.posterior["beta"].values)
    acwr = quick.idata.posterior["beta"].sel(covariate="acwr")
    assert float((acwr > 0).mean()) > 0.8  # the true ACWR effect is +1 per unit
    d = quick.fit_summary()
    assert d["chains"] == 2 and d["draws"] == 200 and d["n_cells"] < d["n_rows"]
    # nutpie's threads call the kernel from C; the Python route samples the very same chains
    assert quick._kernel_route == "C"
    py = HazardModel(sampler_config={**QUICK_SAMPLER, "random_seed": 3, "c_kernel": False})
    py.fit(feats)
    assert py._kernel_route == "python"
    np.testing.assert_array_equal(py.idata.posterior["beta"].values, quick.idata.posterior["beta"].values)
    assert d["seconds_total"] < 120


def test_diagnostics_are_the_five_gate_numbers(quick):
    d = quick.diagnostics()
    assert sorted(d) == sorted(["max_rhat", "min_ess_bulk", "min_ess_tail", "divergences", "min_bfmi"])
    assert d["divergences"] >= 0 and d["max_rhat"] >= 1.0 and 0 < d["min_ess_bulk"] < 400
    assert not hasattr(B, "GATE") and not hasattr(HazardModel, "passes_gate")
    misses = B._shortfalls(d, DIAGNOSTIC_TARGETS)  # 400 draws cannot give 400 effective draws for every parameter
    assert any("bulk ESS" in m for m in misses)


def test_sampling_lengthens_chains_until_the_targets_hold(feats):
    """Targets no quick fit can meet: with `extend=1` (fixed-length chains) the fit samples afresh with longer chains
    (or, after a divergence, smaller steps), then stops at max_rounds with a notice."""
    m = HazardModel(sampler_config=dict(draws=100, tune=150, chains=2, random_seed=4, max_rounds=2, extend=1))
    m.fit(feats)
    s = m.fit_summary()
    r0, r1 = s["rounds"]
    assert (r0["chains"], r0["draws"], r1["chains"]) == (2, 100, 2)
    assert 150 <= r1["draws"] <= 400 or r1["target_accept"] > r0["target_accept"], s["rounds"]
    assert m.idata.posterior.sizes["draw"] == r1["draws"]
    assert any("short of its targets" in n for n in s["notices"])


def test_chains_go_on_until_the_targets_hold(feats):
    """With `extend` (the default) the chains of a round go on while the targets fail: targets no run can meet take
    every round to draws x extend (new chains each round, not longer ones); targets the first draws already meet stop it at the first check; in between, it stops at the
    first check (every `check_every` draws) whose first k draws of every chain meet the targets."""
    base = dict(draws=100, tune=150, chains=2, random_seed=4, max_rounds=1, extend=3, check_every=100)
    never = dict(max_rhat=1.0, min_ess_bulk=10**6, min_ess_tail=10**6, divergences=10**6, min_bfmi=0.0)
    m = HazardModel(sampler_config={**base, "targets": never, "max_rounds": 2})
    m.fit(feats)
    # short after going on to 300 draws: the second round starts new chains of the same settings, not longer ones
    assert m.idata.posterior.sizes["draw"] == 300 and [r["draws"] for r in m.fit_summary()["rounds"]] == [300, 300]
    easy = dict(max_rhat=2.0, min_ess_bulk=1, min_ess_tail=1, divergences=10**6, min_bfmi=0.0)
    m = HazardModel(sampler_config={**base, "targets": easy})
    m.fit(feats)
    assert m.idata.posterior.sizes["draw"] == 100 and not np.isnan(m.idata.posterior["beta"].values).any()
    some = dict(max_rhat=1.01, min_ess_bulk=150, min_ess_tail=150, divergences=10**6, min_bfmi=0.0)
    m = HazardModel(sampler_config={**base, "targets": some})
    m.fit(feats)
    n = m.idata.posterior.sizes["draw"]
    assert n in (100, 200, 300) and not np.isnan(m.idata.posterior["beta"].values).any()
    if n < 300:  # it stopped early: the draws it kept meet the targets, and the check before did not
        assert B._shortfalls(m.diagnostics(), {**DIAGNOSTIC_TARGETS, **some}) == []
    if n > 100:
        assert B._shortfalls(B._diagnose(m.idata.isel(draw=slice(0, n - 100))), {**DIAGNOSTIC_TARGETS, **some})


def test_drawn_counts_the_draws_every_chain_has():
    import arviz as az

    b = np.arange(2 * 5 * 3, dtype=float).reshape(2, 5, 3)
    b[0, 4:] = np.nan  # chain 0 has 4 draws so far, chain 1 has 5
    part = az.from_dict(posterior={"beta": b})
    assert B._drawn(part) == 4 and B._drawn(None) == 0
    assert B._drawn(az.from_dict(posterior={"beta": np.zeros((2, 0, 3))})) == 0


def test_longer_chains_follow_the_shortfall():
    t = dict(min_ess_bulk=400, min_ess_tail=400)
    assert B._longer(1000, dict(min_ess_bulk=355, min_ess_tail=262), t) == 2000  # 1.25 x 400/262 = 1.91
    assert B._longer(1000, dict(min_ess_bulk=500, min_ess_tail=390), t) == 1500  # at least 1.5x
    assert B._longer(1000, dict(min_ess_bulk=20, min_ess_tail=float("nan")), t) == 4000  # at most 4x


def test_levels_and_terms_dropped_with_notices(feats, caplog):
    """Three teams cannot inform a team spread; no cycle logs, no pitches: those terms go, each with a logged notice."""
    f = feats.assign(
        cycle_phase="none", pitches_7d=0.0, pitches_1d=0.0, pitches_28d=0.0, days_rest=np.nan, speed_drop=np.nan
    )
    with caplog.at_level("WARNING", logger="pitchlab.models.bayes"):
        X, idx, y, info = B._design(f, default_model_config())
    assert list(info["levels"]) == ["athlete"]
    assert not [c for c in info["covariates"] if c.startswith(("cycle_phase", "pitches", "short_rest", "speed_drop"))]
    assert [c for c in info["covariates"] if c.startswith("sport[")] == ["sport[baseball]", "sport[cricket]"]
    text = caplog.text
    assert "team level dropped: 3 teams" in text and "no cycle logs" in text and "pitches_7d: no variation" in text
    assert X.shape == (len(f), len(info["covariates"])) and np.isfinite(X).all()
    # forced levels stay; a user's wider ACWR grid keeps low ACWR days apart
    _, idx2, _, info2 = B._design(f, HazardModel({"levels": ["team", "athlete"]}).model_config)
    assert list(info2["levels"]) == ["team", "athlete"] and idx2.shape[0] == 2
    low = f.assign(acwr_ewma=0.2)
    _, _, _, i3 = B._design(low, HazardModel({"terms": {"acwr": {"lower": -0.5}}}).model_config)
    assert i3["terms"]["acwr"]["clipped_low"] == 1.0 and any("acwr: 100.0% of rows below" in n for n in i3["notices"])
    _, _, _, i4 = B._design(low, default_model_config())
    assert i4["terms"]["acwr"]["clipped_low"] == 0.0


def test_contributions_add_up_to_the_linear_predictor(feats, quick):
    rows = feats.tail(4)
    c = quick.contributions(rows)
    assert list(c.columns) == ["athlete_id", "date", "term", "label", "value", "contribution"]
    owners = list(dict.fromkeys(quick.info["owners"]))
    assert len(c) == 4 * len(owners) and set(c["term"]) == set(owners)
    X, _, _, _ = B._design(rows, quick.model_config, quick.info)
    beta = quick._draws()["beta"].mean(0)
    total = c.groupby(["athlete_id", "date"], sort=False)["contribution"].sum().to_numpy()
    np.testing.assert_allclose(total, X @ beta, atol=1e-12)
    acwr = c[c["term"] == "acwr"]
    np.testing.assert_allclose(acwr["value"].astype(float), rows["acwr_ewma"].to_numpy())
    assert acwr["label"].iloc[0] == "EWMA ACWR"


def test_predict_new_athletes_and_horizons(feats, quick):
    rows = feats.tail(5)
    p7, p21 = quick.predict(rows, horizon=7), quick.predict(rows, horizon=21)
    assert (p21["risk"] > p7["risk"]).all()
    np.testing.assert_allclose(p7["hazard"], p21["hazard"])
    new = quick.predict(rows.assign(athlete_id="newcomer", team_id="new-team"), horizon=7)
    # a newcomer's effect is drawn from the population (sigma x N(0, 1)): with 34 training events the seen athletes'
    # effects are barely updated, so the newcomer is about as uncertain as a typical seen athlete on the same days
    seen = [quick.predict(rows.assign(athlete_id=a), horizon=7) for a in feats["athlete_id"].unique()[:10]]
    typical = np.median([(p["risk_hi"] - p["risk_lo"]).to_numpy() for p in seen], axis=0)
    ratio = (new["risk_hi"] - new["risk_lo"]).to_numpy() / typical
    assert ((ratio > 0.7) & (ratio < 1.3)).all(), ratio
    other = quick.predict(rows.assign(athlete_id="another-newcomer", team_id="new-team"), horizon=7)
    np.testing.assert_allclose(other["risk"], new["risk"])  # unseen athletes: the same population draws
    np.testing.assert_allclose(quick.predict_proba(rows), p7["risk"])


def test_save_load_hash_mismatch(quick, tmp_path):
    path = quick.save(tmp_path / "fit.nc")
    back = HazardModel.load(path)
    assert back.config_hash == quick.config_hash and back.fit_summary()["draws"] == 200
    with pytest.raises(ConfigError, match="differs in: covariates"):
        HazardModel.load(path, model_config={"covariates": ["acwr"]})
    assert HazardModel.load(path, model_config={}).config_hash == quick.config_hash
    # a folder works too (the registry saves models into folders)
    folder = tmp_path / "model"
    folder.mkdir()
    quick.save(folder)
    assert HazardModel.load(folder).config_hash == quick.config_hash
    import arviz as az

    bad = az.from_netcdf(str(path))
    bad.attrs["config_hash"] = "0" * 16
    bad.to_netcdf(str(tmp_path / "bad.nc"))
    with pytest.raises(ConfigError, match="config hash 0000"):
        HazardModel.load(tmp_path / "bad.nc")
    with pytest.raises(NotFoundError):
        HazardModel.load(tmp_path / "missing.nc")


def test_config_errors(feats):
    with pytest.raises(ConfigError, match="link"):
        HazardModel(dict(link="probit"))
    with pytest.raises(ConfigError, match="no entry"):
        HazardModel(dict(covariates=["acwr", "moon_phase"])).fit(feats)
    with pytest.raises(ConfigError, match="unknown group level"):
        HazardModel(dict(levels=["club"])).fit(feats)
    with pytest.raises(ValidationError, match="event"):
        HazardModel().fit(feats.drop(columns="event"))
    with pytest.raises(ValidationError, match="no athlete-day at risk"):
        HazardModel().fit(feats.head(0))
    with pytest.raises(NotFoundError):
        HazardModel().predict(feats)
    with pytest.raises(ConfigError, match="must be Normal"):
        m = HazardModel(dict(priors=dict(beta=dict(dist="StudentT", nu=3, mu=0, sigma=1))))
        X, idx, y, m.info = B._design(feats, m.model_config)
        m._flat(X, idx, y, np.ones(len(y)))
    d = default_model_config()
    d["priors"]["intercept"]["mu"] = 99
    assert default_model_config()["priors"]["intercept"]["mu"] == -6.5


def test_advi_is_close_but_never_passes(feats, quick):
    a = HazardModel(sampler_config=dict(backend="advi", advi_iterations=8000, random_seed=2))
    a.fit(feats)
    assert a.diagnostics()["divergences"] == -1 and np.isnan(a.diagnostics()["max_rhat"])
    c = compare_fits(quick, a)
    assert c.loc["beta[acwr]", "diff_in_sd"] ** 2 < 1.0
    assert (c["sd_ratio"] < 1.5).all()


def test_evaluate_interface(feats, quick):
    """The model plugs into pitchlab.evaluate like any baseline."""
    from pitchlab.evaluate import evaluate

    sp = time_split(feats, test_start="2025-08-01")
    ev = evaluate({"bayes": HazardModel(sampler_config={**QUICK_SAMPLER, "random_seed": 1})}, sp, n_boot=20)
    assert 0.3 < ev.table.loc["bayes", "auc"] < 1


# ---------------------------------------------------------------- slow: recovery and repeated simulation
@pytest.mark.slow
def test_parameter_recovery_demo_size():
    """Demo size (3 squads of 25, two seasons): the true fixed effects, sport contrasts and the athletes' SD inside their
    94% HDIs (at most one of about twenty missed, as expected at 94%), diagnostic targets met. A fixed seed, not a test
    of calibration: that is tests/test_sbc.py."""
    from pitchlab.synth import demo_cohort

    c = demo_cohort(seed=2)
    f = build_features({**c.tables(), "injuries": history_from_truth(c)}, horizon=7)
    m = HazardModel(RECOVERY_CONFIG, dict(random_seed=11))
    m.fit(f)
    tt = truth_table(c, m)
    assert B._shortfalls(m.diagnostics(), DIAGNOSTIC_TARGETS) == [], m.diagnostics()
    # at 94% about one of twenty true values falls outside by chance, whichever it is (with the sport-specific hazard
    # of this session, seed 2 puts match_day just outside); the effect the board is built on and the athletes' spread
    # must be among those recovered
    assert len(tt) >= 15 and (~tt["inside"]).sum() <= 1, tt
    assert tt.loc[["acwr", "sigma_athlete"], "inside"].all(), tt


@pytest.mark.slow
def test_sport_specific_effects_recovered():
    """Two squads each of cricket, baseball and football over two seasons, with a higher base rate for events: the true
    pitch-count, short-rest, balls-bowled and batting effects of the synthetic hazard lie inside their 94% HDIs, and the
    model's sport-specific terms (zero for everybody else) are estimated on their own athletes."""
    c = make_cohort(n_teams=6, athletes_per_team=25, seasons=2, seed=21, hazard=HazardParams(alpha=-6.6))
    f = build_features({**c.tables(), "injuries": history_from_truth(c)}, horizon=7)
    m = HazardModel(RECOVERY_CONFIG, dict(random_seed=5))
    m.fit(f)
    tt = truth_table(c, m)
    sport = tt.loc[["pitches_7d", "short_rest", "balls_7d", "batting_7d"]]
    assert sport["inside"].all(), tt
    assert B._shortfalls(m.diagnostics(), DIAGNOSTIC_TARGETS) == [], m.diagnostics()
    assert tt.loc["acwr", "inside"], tt


@pytest.mark.slow
def test_repeated_simulation_shows_no_systematic_bias():
    """Eight cohorts from the same truth: the posterior means scatter around the truth (no systematic bias) and the
    94% intervals cover it most of the time. Not full simulation-based calibration (the truth is fixed, not drawn from
    the prior), and with eight seeds it detects only gross bias (about half a posterior SD or more)."""
    rows = []
    for seed in range(8):
        c = make_cohort(n_teams=3, athletes_per_team=25, seasons=1, seed=100 + seed, hazard=HazardParams(alpha=-6.3))
        f = build_features({**c.tables(), "injuries": history_from_truth(c)}, horizon=7)
        m = HazardModel(RECOVERY_CONFIG, dict(draws=500, tune=500, chains=2, random_seed=seed))
        m.fit(f)
        tt = truth_table(c, m)
        sd = (tt["hdi_hi"] - tt["hdi_lo"]) / (2 * 1.88)
        rows.append(((tt["mean"] - tt["truth"]) / sd).rename(seed))
        rows[-1]["covered"] = tt["inside"].mean()
    z = pd.DataFrame(rows)
    cov = z.pop("covered")
    main = ["acwr", "chronic", "match_day", "rest_day", "prev_injury", "intercept"]
    assert (z[main].mean().abs() < 3 / np.sqrt(len(z))).all(), z[main].mean()
    assert cov.mean() > 0.8, cov


# ---------------------------------------------------------------- slow: the defaults on a cohort pitchlab.synth did not draw
def _independent_cohort(seed: int, n_athletes: int = 240, n_teams: int = 4, days: int = 730):
    """A researcher's cohort from a generator written here, not `pitchlab.synth`: weekly microcycles with noise, spikes
    and off-seasons, EWMA ACWR (Williams 2017) up to yesterday, an athlete frailty and a logistic daily hazard;
    injured athletes sit out 5-40 days. Returns the contract tables."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2024-01-01", periods=days, freq="D")
    week = np.array([1.0, 0.8, 1.2, 0.0, 1.0, 1.4, 0.0])
    season = np.where((np.arange(days) % 365) < 300, 1.0, 0.3)
    base = rng.lognormal(np.log(400), 0.25, n_athletes)
    frail = rng.normal(0, 0.5, n_athletes)
    la, lc = 2 / 8, 2 / 29
    out = np.full(n_athletes, -1)
    acute = chronic = None
    rows, inj = [], []
    for d in range(days):
        spike = 1 + 0.8 * (rng.random(n_athletes) < 0.03)
        load = base * week[d % 7] * season[d] * spike * rng.lognormal(0, 0.2, n_athletes)
        load[out >= d] = 0.0
        if acute is None:
            acute, chronic = load.copy(), load.copy()
        acwr = np.divide(acute, chronic, out=np.ones(n_athletes), where=chronic > 0)
        eta = -6.6 + 0.8 * (acwr - 1) - 0.2 * (chronic - 300) / 150 + frail
        hit = (out < d) & (rng.random(n_athletes) < 1 / (1 + np.exp(-eta)))
        for a in np.flatnonzero(hit):
            lost = int(rng.integers(5, 41))
            inj.append(dict(athlete_id=f"ind{a:03d}", onset_date=dates[d], days_lost=lost, contact=False))
            out[a] = d + lost
        on = load > 0
        rows.append(
            pd.DataFrame(
                {"athlete_id": [f"ind{a:03d}" for a in np.flatnonzero(on)], "date": dates[d], "load": load[on]}
            )
        )
        acute, chronic = la * load + (1 - la) * acute, lc * load + (1 - lc) * chronic
    athletes = pd.DataFrame(
        {
            "athlete_id": [f"ind{a:03d}" for a in range(n_athletes)],
            "team_id": [f"club{a % n_teams}" for a in range(n_athletes)],
            "sport": "rugby",
        }
    )
    return {"sessions": pd.concat(rows, ignore_index=True), "athletes": athletes, "injuries": pd.DataFrame(inj)}


@pytest.mark.slow
def test_defaults_meet_the_targets_on_an_independent_cohort():
    """Five seeds of a 240-athlete, two-season cohort from the generator above, fitted at the defaults: every fit meets
    the diagnostic targets the promotion gate checks (R-hat <= 1.01, ESS >= 400, no divergence, E-BFMI >= 0.3), the
    four-team level is dropped with a notice, and there are no cycle-phase or pitching terms to sample from priors."""
    for seed in range(5):
        f = build_features(_independent_cohort(seed), horizon=7)
        m = HazardModel(sampler_config=dict(random_seed=seed))
        m.fit(f)
        d, s = m.diagnostics(), m.fit_summary()
        assert B._shortfalls(d, DIAGNOSTIC_TARGETS) == [], (seed, d, s["rounds"])
        assert list(m.info["levels"]) == ["athlete"], m.info["levels"]
        assert not [c for c in m.info["covariates"] if c.startswith(("cycle_phase", "pitches", "balls", "sport"))]
        assert any("team level dropped: 4 teams" in n for n in s["notices"])
