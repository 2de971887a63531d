"""Simulation-based calibration of the Bayesian hazard model (Talts et al. 2018, arXiv:1804.06788).

Repeat: draw every parameter from the prior (intercept, fixed effects, the athletes' spread and effects), simulate the
events of a small cohort's athlete-days from them, fit with NUTS, and take the rank of each true value among L thinned
posterior draws. If the sampler and the model agree, every rank is uniform on 0..L; a smile means intervals too narrow,
a frown too wide, a slope a bias. The uniformity test is a chi-square over 10 bins for each parameter (Bonferroni over
the parameters), plus one over all ranks pooled."""

import numpy as np
import pytest
from scipy import stats

from pitchlab.features import build_features
from pitchlab.models import bayes as B
from pitchlab.models.bayes import HazardModel
from pitchlab.synth import make_cohort

CONFIG = dict(covariates=["acwr", "match_day", "rest_day"], levels=["athlete"])
N_SIMS, THIN_TO, BINS = 60, 99, 10


def _ranks(seed: int, feats, X, idx):
    "One SBC replication: truth from the prior, events simulated on the cohort's rows, the rank of each true value."
    rng = np.random.default_rng(seed)
    pri = HazardModel(CONFIG).model_config["priors"]
    a = rng.normal(pri["intercept"]["mu"], pri["intercept"]["sigma"])
    b = rng.normal(0.0, pri["beta"]["sigma"], X.shape[1])
    s = abs(rng.normal(0.0, pri["sigma_athlete"]["sigma"]))
    z = rng.standard_normal(idx.max() + 1)
    eta = a + X @ b + s * z[idx[0]]
    f = feats.assign(event=(rng.random(len(feats)) < 1 / (1 + np.exp(-eta))).astype(int))
    m = HazardModel(CONFIG, dict(draws=400, tune=300, chains=2, random_seed=seed, targets=None))
    m.fit(f)
    post = m.idata.posterior
    keep = np.linspace(0, post.sizes["chain"] * post.sizes["draw"] - 1, THIN_TO).round().astype(int)
    draw = lambda v: post[v].values.reshape(-1, *post[v].shape[2:])[keep]
    truth = {"intercept": a, "sigma_athlete": s, **{f"beta[{c}]": b[j] for j, c in enumerate(m.info["covariates"])}}
    ranks = {"intercept": int((draw("intercept") < a).sum()), "sigma_athlete": int((draw("sigma_athlete") < s).sum())}
    bd = draw("beta")
    for j, c in enumerate(m.info["covariates"]):
        ranks[f"beta[{c}]"] = int((bd[:, j] < b[j]).sum())
    return ranks, truth, f["event"].sum()


@pytest.mark.slow
def test_simulation_based_calibration_ranks_are_uniform():
    c = make_cohort(n_teams=1, athletes_per_team=20, seasons=1, seed=3)
    feats = build_features(c.tables(), horizon=7)
    X, idx, _, info = B._design(feats, HazardModel(CONFIG).model_config)
    assert info["covariates"] == ["acwr", "match_day", "rest_day"]
    rows = [_ranks(1000 + k, feats, X, idx) for k in range(N_SIMS)]
    ranks = {p: np.array([r[0][p] for r in rows]) for p in rows[0][0]}
    assert set(ranks) == {"intercept", "sigma_athlete", "beta[acwr]", "beta[match_day]", "beta[rest_day]"}
    p_values = {}
    for p, r in ranks.items():
        assert r.min() >= 0 and r.max() <= THIN_TO
        counts = np.bincount(np.minimum(r * BINS // (THIN_TO + 1), BINS - 1), minlength=BINS)
        p_values[p] = stats.chisquare(counts).pvalue
    assert min(p_values.values()) > 0.01 / len(p_values), p_values  # Bonferroni at 1%
    pooled = np.concatenate(list(ranks.values()))
    counts = np.bincount(np.minimum(pooled * BINS // (THIN_TO + 1), BINS - 1), minlength=BINS)
    assert stats.chisquare(counts).pvalue > 0.01, counts
    # the intervals are neither too narrow nor too wide: the share of central 90% ranks is near 0.9
    central = np.mean((pooled >= 5) & (pooled <= THIN_TO - 5))
    assert 0.8 < central < 0.97, central
