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
    GATE,
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
    assert set(pmm.named_vars) >= {"intercept", "beta", "sigma_team", "z_athlete", "u_athlete", "hazard", "y"}


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
    d = quick.diagnostics()
    assert d["chains"] == 2 and d["draws"] == 200 and d["n_cells"] < d["n_rows"]
    # nutpie's threads call the kernel from C; the Python route samples the very same chains
    assert quick._kernel_route == "C"
    py = HazardModel(sampler_config={**QUICK_SAMPLER, "random_seed": 3, "c_kernel": False})
    py.fit(feats)
    assert py._kernel_route == "python"
    np.testing.assert_array_equal(py.idata.posterior["beta"].values, quick.idata.posterior["beta"].values)
    assert d["seconds_total"] < 120


def test_gate(quick):
    assert quick.passes_gate() is False  # 400 draws cannot give 400 effective draws for every parameter
    lax = dict(max_rhat=1.2, min_ess_bulk=20, min_ess_tail=20, max_divergences=10**6, min_bfmi=0.0)
    assert quick.passes_gate(lax) is True
    rep = quick.gate_report()
    assert list(rep.index) == ["max_rhat", "min_ess_bulk", "min_ess_tail", "divergences", "min_bfmi"]
    assert rep.loc["min_ess_bulk", "threshold"] == GATE["min_ess_bulk"]


def test_predict_new_athletes_and_horizons(feats, quick):
    rows = feats.tail(5)
    p7, p21 = quick.predict(rows, horizon=7), quick.predict(rows, horizon=21)
    assert (p21["risk"] > p7["risk"]).all()
    np.testing.assert_allclose(p7["hazard"], p21["hazard"])
    new = quick.predict(rows.assign(athlete_id="newcomer", team_id="new-team"), horizon=7)
    assert ((new["risk_hi"] - new["risk_lo"]) > (p7["risk_hi"] - p7["risk_lo"])).all()
    np.testing.assert_allclose(quick.predict_proba(rows), p7["risk"])


def test_save_load_hash_mismatch(quick, tmp_path):
    path = quick.save(tmp_path / "fit.nc")
    back = HazardModel.load(path)
    assert back.config_hash == quick.config_hash and back.diagnostics()["draws"] == 200
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
    assert a.passes_gate() is False
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
    """Demo size (3 squads of 25, two seasons): every true fixed effect and group SD inside its 94% HDI, gate passed.
    A fixed seed: with 11 parameters at 94%, about half of all cohorts would miss one (seeds 0-6 missed 3 of 77)."""
    from pitchlab.synth import demo_cohort

    c = demo_cohort(seed=2)
    f = build_features({**c.tables(), "injuries": history_from_truth(c)}, horizon=7)
    m = HazardModel(RECOVERY_CONFIG, dict(random_seed=11))
    m.fit(f)
    tt = truth_table(c, m)
    assert m.passes_gate(), m.gate_report()
    assert len(tt) == 11
    assert tt["inside"].all(), tt


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
