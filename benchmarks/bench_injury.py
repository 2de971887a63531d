"""The open benchmark of injury-risk methods: every method on the same time split of the same synthetic cohorts.

Each cell of the grid (athletes x true ACWR effect x athlete frailty SD x truth) draws cohorts from `pitchlab.synth`
with two 52-week seasons: the first trains, the second tests. The truth is the models' own linear form or one of the
misspecified truths of `pitchlab.synth.SCENARIOS` (a U-shaped ACWR, an ACWR effect lagged 7-21 days, risk fading over
the 6 weeks after return from injury; full grid, at 300 athletes). The real hamstring data of `data/samples/injuries`
(Jovanovic; 6 injuries in all, 2 in its second season, from one athlete) are run through the same methods as a
descriptive row: no comparison of methods can rest on two events. Every method sees the same features (`pitchlab.features`, with
the injury history the athletes arrived with) and is scored on the same test rows:

- oracle (frailty): the true daily hazard, athlete and team effects included (no model can learn these from a
  season's few injuries: an upper bound, not a target);
- learnable oracle: the true coefficients without the athlete and team effects (what a perfect fixed-effect model
  could reach);
- ACWR rule 1.5 (`pitchlab.models.baselines.ACWRRule`) and the same rule with bands chosen on the training data
  (`ACWRRule(edges="data")`); each zone's risk is its training event rate;
- acute load alone (the numerator of the ACWR: AUC only, it is not a probability);
- the random-denominator null (`pitchlab.load.random_denominator_test`, Impellizzeri 2021): the AUC range of ACWRs
  whose chronic load belongs to another athlete;
- GLM logistic, GEE (athlete clusters, full grid only), gradient boosting (`pitchlab.models.baselines`);
- Bayesian hazard (`pitchlab.models.bayes.HazardModel`): hierarchical logit (the default), and in the full grid
  pooled logit, hierarchical cloglog and hierarchical logit with a spline ACWR;
- the Keras sequence model (`pitchlab.models.deep.SequenceRisk`, an LSTM over each athlete's last 28 days).

Columns: AUC of the 7-day label and of the day's event, the gap to the learnable oracle (oracle minus method), the
gap to the ACWR rule (method minus rule, with the share of seeds whose athlete-bootstrap 95% interval excludes 0),
O/E (observed 7-day labels / sum of predicted risks) and O/E against the frailty oracle (the oracle's summed risk over
the method's: the O/E the method would show if the test season's events were exactly what the truth expects, free of
the test season's Poisson noise; it still carries the training season's, since every model learns its base rate from
the injuries that season happened to draw: `season_oe`), the same as if the training season had drawn exactly the
injuries its truth expects (`oe_vs_oracle_luck_free` = O/E vs oracle x the training season's O/E of the truth), the
calibration slope (logistic recalibration of the label on the logit of the predicted
risk), the bias of the ACWR effect, and coverage (Bayesian models).

Coverage is the share of 94% HDIs covering the truth over EVERY fixed effect with a known truth in EVERY Bayesian fit
of the run: the coefficients of ACWR, chronic load (its truth rescaled to the model's standardisation), earlier
injury, match day, rest day, the sport-specific workload terms (pitches, short rest, balls bowled and faced; the
generator's 0 for pitches yesterday, pitches over 28 days and balls over 28 days) and the cycle phases against the
follicular phase (`pitchlab.models.bayes.truth_table`). Left out: the intercept and the spreads (the realised team and
athlete effects move them; `nbs/31_bayes.ipynb` checks their recovery), the release-speed drop (a symptom, with no
causal truth), and in a misspecified truth the term the generator says is not linear (`HazardParams.misspecified`).
The BENCH coverage pools the fits on linear truths and is printed with its Clopper-Pearson 95% interval (intervals of
one fit are not independent, so that interval is optimistic).

Run: `.venv/bin/python benchmarks/bench_injury.py --quick` (CI: 3 cells x 2 seeds and the hamstring row, under 10
minutes on 2 cores) or without `--quick` for the full grid (many hours on 2 cores; `--cells` selects a subset). The table is written as CSV with `--out`.
With `--cell-dir DIR` every finished seed of every cell is kept in DIR at once (and the null cohorts too) and a
later run with the same DIR reuses them, so the full grid can run over several sittings:
`.venv/bin/python benchmarks/bench_injury.py --cell-dir benchmarks/results/grid --no-hamstring` (nbs/36 reads the
folder itself; an `--out` inside benchmarks/results would be read a second time).
`--day-mix` reads the oracles and the hierarchical Bayes model's 7-day risk two ways on a few cohorts, with today's day
type held for the week (the models' own reading) and with the athlete's 28-day mix of match, training and rest days
(nbs/36, *Today's day type, held for a week*).
The last line is `BENCH injury bayes_gap_300=<gap> oe_300=<O/E> coverage=<share>` (medians over seeds of the default
hierarchical Bayes at 300 athletes, ACWR effect 1.0, linear truth; the bar: gap <= 0.02, O/E in [0.8, 1.25],
coverage in [0.90, 0.98]); a line before it says whether the ACWR rule stays inside the random-denominator
null in the cells with no true ACWR effect.
"""

import argparse
import itertools
import logging
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

QUICK_CELLS = [(300, 1.0, 0.5, "linear"), (75, 0.0, 0.5, "linear"), (75, 1.0, 0.5, "linear")]
# (athletes, ACWR effect, frailty SD, truth): the truth is a key of pitchlab.synth.SCENARIOS
QUICK_SEEDS = {QUICK_CELLS[0]: 4}  # seeds per quick cell (default 2): the BENCH cell gets 4, as one season's
# O/E has a seed-to-seed SD near 0.1 (the frailty oracle's own O/E ran 0.87-1.16 over six seeds)
NULL_ATHLETES = 75  # the cohorts of the random-denominator check (no ACWR effect, no chronic-load effect)
# `pitchlab.synth.make_cohort` draws 364-day seasons: the first trains every method, the second tests it
SEASON = pd.Timedelta(days=364)
NULL_PERMUTATIONS = {"quick": 50, "full": 200}  # random denominators per null cohort (the null range's resolution)
SCENARIO_CELLS = [(300, 1.0, 0.5, s) for s in ("u_acwr", "lagged_acwr", "return")]
FULL_CELLS = [
    (*c, "linear") for c in itertools.product((75, 300, 1200), (0.0, 0.5, 1.0), (0.0, 0.5, 1.0))
] + SCENARIO_CELLS
COVARIATE_OF = {"acwr": "acwr", "prev": "prev_injury"}  # HazardParams.misspecified names -> model covariates
HAMSTRING = "data/samples/injuries/jovanovic_hamstring_raw_sample.csv"


def logit(p):
    p = np.clip(p, 1e-9, 1 - 1e-9)
    return np.log(p / (1 - p))


def calibration(y, p):
    "O/E and the calibration slope (logistic regression of y on logit(p), Newton-Raphson)."
    y, p = np.asarray(y, float), np.asarray(p, float)
    oe = float(y.sum() / p.sum()) if p.sum() > 0 else float("nan")
    x = logit(p)
    if np.ptp(x) == 0:
        return oe, float("nan")
    X = np.column_stack([np.ones_like(x), x])
    b = np.array([0.0, 1.0])
    for _ in range(50):
        q = 1 / (1 + np.exp(-(X @ b)))
        H = X.T @ (X * (q * (1 - q))[:, None]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(H, X.T @ (y - q))
        b += step
        if np.abs(step).max() < 1e-8:
            break
    return oe, float(b[1])


def boot_diff(y, a, b, groups, n_boot=200, seed=0):
    "95% athlete-bootstrap interval of AUC(a) - AUC(b) on the same rows."
    from pitchlab.evaluate import roc_auc

    rng = np.random.default_rng(seed)
    codes, uniq = pd.factorize(groups)
    ia, ib = (np.unique(np.asarray(v, float), return_inverse=True)[1] for v in (a, b))  # ranks: sorted once
    out = []
    for _ in range(n_boot):  # an athlete drawn k times weighs k (the same as copying its rows k times)
        w = np.bincount(rng.integers(0, len(uniq), len(uniq)), minlength=len(uniq))[codes].astype(float)
        pos = (w * y).sum()
        if pos == 0 or pos == w.sum():
            continue
        out.append(roc_auc(y, a, w, ia) - roc_auc(y, b, w, ib))
    return np.quantile(out, [0.025, 0.975]) if out else np.array([np.nan, np.nan])


def cohort_of(n_athletes, effect, frailty, seed, scenario="linear", chronic=None):
    "The grid cell's two-season synthetic cohort (teams of 25), the same for every method and every run of a seed."
    from pitchlab.synth import HazardParams, make_cohort

    hp = HazardParams(beta_acwr=effect, sigma_athlete=frailty, **({} if chronic is None else {"beta_chronic": chronic}))
    return make_cohort(
        n_teams=max(n_athletes // 25, 1), athletes_per_team=25, seasons=2, seed=seed, hazard=hp, scenario=scenario
    )


def make_data(n_athletes, effect, frailty, seed, scenario="linear", chronic=None):
    "A two-season cohort with its features, split into the training season and the test season (`chronic`: the true chronic-load effect, default the generator's)."
    from pitchlab.features import build_features, time_split
    from pitchlab.models.bayes import history_from_truth

    c = cohort_of(n_athletes, effect, frailty, seed, scenario, chronic)
    tables = {**c.tables(), "injuries": history_from_truth(c)}
    f = build_features(tables, horizon=7)
    start = pd.Timestamp(c.truth.daily["date"].min()) + SEASON
    sp = time_split(f, test_start=start)
    return c, tables, sp


def season_oe(cohort):
    """Observed over expected injuries of the true hazard in the training and in the test season. Each season's Poisson
    luck: every model learns its base rate from the training season's realised injuries, so a training season with
    fewer injuries than its truth expects (O/E below 1) leaves every method under-predicting the test season against
    the oracle (O/E vs oracle near the inverse)."""
    d = cohort.truth.daily
    test_start = d["date"].min() + SEASON  # as make_data splits
    d = d[d["at_risk"]]
    test = d["date"] >= test_start
    return tuple(float(d.loc[m, "injury"].sum() / d.loc[m, "hazard"].sum()) for m in (~test, test))


def fixed_effect_coverage(cohort, model, prob=0.94) -> pd.DataFrame:
    "Each fixed effect of a fitted Bayesian model with a known truth: truth, posterior mean, HDI and whether it covers."
    from pitchlab.models.bayes import truth_table

    hp = cohort.truth.params
    t = truth_table(cohort, model, prob)
    drop = {"intercept", "sigma_team", "sigma_athlete"} | {COVARIATE_OF[k] for k in hp.misspecified}
    t = t[~t.index.isin(drop)].copy()
    st = model.info["terms"].get("chronic")
    if "chronic" in t.index and st:  # the model standardises chronic load its own way: the truth per its unit
        t.loc["chronic", "truth"] = hp.beta_chronic * st["scale"] / hp.chronic_scale
        t.loc["chronic", "inside"] = bool(
            t.loc["chronic", "hdi_lo"] <= t.loc["chronic", "truth"] <= t.loc["chronic", "hdi_hi"]
        )
    return t.reset_index()


def clopper_pearson(k, n, level=0.95):
    "Exact binomial interval of a share k/n."
    from scipy.stats import beta

    a = (1 - level) / 2
    lo = beta.ppf(a, k, n - k + 1) if k > 0 else 0.0
    hi = beta.ppf(1 - a, k + 1, n - k) if k < n else 1.0
    return float(lo), float(hi)


def _oracle_eta(c, test, frailty_known):
    "The true linear predictor of each test row (with or without the athlete and team effects) and its day type."
    t = c.truth
    d = t.daily[["athlete_id", "date", "eta", "day_type"]]
    j = test[["athlete_id", "date"]].merge(d, on=["athlete_id", "date"], how="left")
    eta = j["eta"].to_numpy()
    if not frailty_known:
        u = j["athlete_id"].map(t.athletes.set_index("athlete_id")["v_athlete"]).to_numpy()
        team = t.athletes.set_index("athlete_id")["team_id"]
        u = u + j["athlete_id"].map(team).map(t.teams.set_index("team_id")["u_team"]).to_numpy()
        eta = eta - u
    return eta, j["day_type"].to_numpy()


def oracle_scores(c, test, frailty_known, horizon=7):
    "7-day risk with today's true hazard held (the models' own definition), with or without the athlete and team effects."
    h = 1 / (1 + np.exp(-_oracle_eta(c, test, frailty_known)[0]))
    return h, -np.expm1(horizon * np.log1p(-h))


# the day types of the features (match_day, rest_day) and the generator's names for them (`pitchlab.synth`)
DAY_TYPES = {"match": (1.0, 0.0), "training": (0.0, 0.0), "rest": (0.0, 1.0)}
DAY_MIX_WINDOW = 28  # days of an athlete's own calendar that give its expected mix of day types


def day_type_shares(context, rows, window=DAY_MIX_WINDOW):
    """Each row's share of match, training and rest days among the athlete's days at risk in the `window` days up to
    and including it, from the features (`context`: every feature row known, so a test season's first weeks see the
    end of the training season). Columns share_match, share_training, share_rest, in the order of `rows`."""
    f = context[["athlete_id", "date", "match_day", "rest_day"]].drop_duplicates(["athlete_id", "date"])
    for k, (md, rd) in DAY_TYPES.items():
        f[f"share_{k}"] = ((f["match_day"] == md) & (f["rest_day"] == rd)).astype(float)
    cols = [f"share_{k}" for k in DAY_TYPES]
    f = f.sort_values(["athlete_id", "date"]).set_index("date")
    roll = f.groupby("athlete_id")[cols].rolling(f"{window}D").mean().reset_index()  # keyed by athlete and date
    out = rows[["athlete_id", "date"]].merge(roll, on=["athlete_id", "date"], how="left")
    return out[cols].reset_index(drop=True)


def mix_risk(hazards, shares, horizon=7):
    """Risk within `horizon` days when each day's type is drawn from the athlete's own mix: 1 - prod over day types k of
    (1 - h_k)^(horizon x share_k), `hazards` holding each row's daily hazard under each day type (other covariates held)."""
    return -np.expm1(
        horizon * sum(shares[f"share_{k}"].to_numpy() * np.log1p(-np.asarray(h)) for k, h in hazards.items())
    )


def oracle_day_mix(c, shares, test, frailty_known, horizon=7):
    "The oracle's risk within `horizon` days with today's day type replaced by the athlete's mix (`shares` from `day_type_shares`)."
    hp = c.truth.params
    effect = {"match": hp.beta_match, "training": 0.0, "rest": hp.beta_rest}
    eta, today = _oracle_eta(c, test, frailty_known)
    base = eta - pd.Series(today).map(effect).to_numpy()
    hz = {k: 1 / (1 + np.exp(-(base + e))) for k, e in effect.items()}
    return mix_risk(hz, shares, horizon)


def day_mix_cell(n_athletes, effect, frailty, seed, bayes=True, horizon=7):
    """Held day type against the athlete's mix, on one cohort's test season: AUC, O/E and calibration slope of the
    frailty oracle, the learnable oracle (AUC only) and, with `bayes`, the default hierarchical model (one fit, both
    ways of reading it: `predict` holds today's day type; the mix reads its daily hazard under each day type)."""
    from pitchlab.evaluate import roc_auc
    from pitchlab.models.bayes import HazardModel

    c, tables, sp = make_data(n_athletes, effect, frailty, seed)
    context = pd.concat([sp.train, sp.test], ignore_index=True)
    test = sp.test[sp.test["label"].notna()].reset_index(drop=True)
    y = test["label"].to_numpy(float)
    shares = day_type_shares(context, test)
    scores = {}
    for name, known in (("oracle (frailty)", True), ("learnable oracle", False)):
        scores[(name, "held")] = oracle_scores(c, test, known, horizon)[1]
        scores[(name, "mix")] = oracle_day_mix(c, shares, test, known, horizon)
    cpu = 0.0
    if bayes:
        t0 = time.process_time()
        m = HazardModel({}, dict(random_seed=seed))
        m.fit(sp.train)
        name = "Bayes hierarchical logit"
        scores[(name, "held")] = m.predict(test, horizon=horizon)["risk"].to_numpy()
        hz = {
            k: m.predict(test.assign(match_day=md, rest_day=rd), horizon=1)["hazard"].to_numpy()
            for k, (md, rd) in DAY_TYPES.items()
        }
        scores[(name, "mix")] = mix_risk(hz, shares, horizon)
        cpu = time.process_time() - t0
    rows = []
    for (name, how), p in scores.items():
        oe, slope = calibration(y, p) if name != "learnable oracle" else (np.nan, np.nan)
        rows.append(
            dict(athletes=n_athletes, acwr_effect=effect, frailty=frailty, seed=seed, method=name, day_type=how)
            | dict(auc_label=roc_auc(y, p), oe=oe, slope=slope, events_test=int(test["event"].sum()))
            | dict(cpu_s=cpu if name.startswith("Bayes") else 0.0)
        )
    return pd.DataFrame(rows)


def _scores(y, ev, risk, daily, prob):
    "AUC of the label and of the day's event, O/E and calibration slope of one method's scores."
    from pitchlab.evaluate import roc_auc

    oe, slope = calibration(y, risk) if prob else (np.nan, np.nan)
    auc = lambda t, s: roc_auc(t, s) if 0 < t.sum() < len(t) else np.nan
    return dict(
        auc_label=auc(y, risk),
        auc_daily=auc(ev, risk if daily is None else daily),
        oe=oe,
        slope=slope,
        events_test=int(ev.sum()),
    )


def sampler(draws, **kw):
    "The sampler settings of a fit: the model's defaults (`HazardModel`'s tuning and draws) unless --draws says otherwise."
    return {**kw, **({} if draws is None else dict(draws=draws, tune=draws))}


BAYES_QUICK = [("Bayes hierarchical logit", {})]
BAYES_FULL = BAYES_QUICK + [
    ("Bayes pooled logit", {"levels": []}),
    ("Bayes hierarchical cloglog", {"link": "cloglog"}),
    ("Bayes hierarchical logit, spline ACWR", {"terms": {"acwr": {"spline": True}}}),
]


def _keras(train, test, seed):
    "The Keras sequence model (28-day LSTM) fitted on the training season; the test rows see their own history."
    from pitchlab.models.deep import SequenceRisk

    m = SequenceRisk(dict(seed=seed, threads=2))
    m.fit(train)
    return m.predict_proba(test, context=pd.concat([train, test], ignore_index=True))


def run_cell(n_athletes, effect, frailty, seed, quick, draws, scenario="linear", keras=True):
    "Every method on one cohort: one row per method, and one row per fixed effect of each Bayesian fit (coverage)."
    from pitchlab.models.baselines import ACWRRule, GLMBaseline, SklearnBaseline
    from pitchlab.models.bayes import HazardModel

    c, tables, sp = make_data(n_athletes, effect, frailty, seed, scenario)
    train, test = sp.train, sp.test
    context = test
    test = test[test["label"].notna()].reset_index(drop=True)
    y, ev, groups = test["label"].to_numpy(float), test["event"].to_numpy(float), test["athlete_id"].to_numpy()
    rows, scores, cover = [], {}, []
    cell = dict(athletes=n_athletes, acwr_effect=effect, frailty=frailty, scenario=scenario, seed=seed)

    def add(name, risk, daily=None, cpu=0.0, prob=True, **extra):
        scores[name] = risk
        rows.append(
            dict(**cell, method=name, events_train=int(train["event"].sum()))
            | _scores(y, ev, risk, daily, prob)
            | dict(sum_risk=float(np.sum(risk)) if prob else np.nan, cpu_s=cpu)
            | extra
        )

    def failed(name, e):
        logging.getLogger("bench_injury").exception("%s failed on this cohort", name)
        rows.append(dict(**cell, method=name, error=str(e)))

    h, r = oracle_scores(c, test, True)
    add("oracle (frailty)", r, h)
    h, r = oracle_scores(c, test, False)
    add("learnable oracle", r, h, prob=False)
    methods = [
        ("ACWR rule 1.5", ACWRRule(high=1.5)),
        ("ACWR rule (data bands)", ACWRRule(edges="data")),
        ("GLM logistic", GLMBaseline()),
        ("gradient boosting", SklearnBaseline("gbm")),
    ] + ([] if quick else [("GEE logistic", GLMBaseline(gee=True))])
    for name, model in methods:
        t0 = time.process_time()
        try:
            model.fit(train)
            p = model.predict_proba(test)
        except Exception as e:  # noqa: BLE001  (a method that fails is a result: recorded, not fatal)
            failed(name, e)
            continue
        add(name, p, cpu=time.process_time() - t0)
    add("acute load alone", test["ewma_acute"].fillna(0).to_numpy(), prob=False)
    if keras:
        t0 = time.process_time()
        try:
            p = _keras(train, context, seed)
            add("Keras sequence (LSTM)", p, cpu=time.process_time() - t0)
        except Exception as e:  # noqa: BLE001
            failed("Keras sequence (LSTM)", e)
    for name, cfg in BAYES_QUICK if quick else BAYES_FULL:
        t0 = time.process_time()
        m = HazardModel(cfg, sampler(draws, random_seed=seed))
        m.fit(train)
        pr = m.predict(test, horizon=7)
        cpu = time.process_time() - t0
        cov = fixed_effect_coverage(c, m).assign(**cell, method=name)
        cover.append(cov)
        acwr = cov[cov["parameter"] == "acwr"]
        bias = float(acwr["mean"].iloc[0] - acwr["truth"].iloc[0]) if len(acwr) else np.nan
        add(
            name,
            pr["risk"].to_numpy(),
            pr["hazard"].to_numpy(),
            cpu,
            acwr_bias=bias,
            acwr_covered=float(acwr["inside"].iloc[0]) if len(acwr) else np.nan,
            fe_covered=int(cov["inside"].sum()),
            fe_total=len(cov),
        )
        rows[-1].update(m.diagnostics())
    out = pd.DataFrame(rows)
    out["truth_oe_train"], out["truth_oe_test"] = season_oe(c)
    ok = out["auc_label"].notna() if "auc_label" in out else pd.Series(False, index=out.index)
    rule = scores["ACWR rule 1.5"]
    lo_hi = {k: boot_diff(y, v, rule, groups, n_boot=100 if quick else 200, seed=seed) for k, v in scores.items()}
    orc = out.loc[out["method"] == "learnable oracle", "auc_label"].max()
    out["gap_oracle"] = (orc - out["auc_label"]).where(ok)
    out["gap_rule"] = (out["auc_label"] - out.loc[out["method"] == "ACWR rule 1.5", "auc_label"].iloc[0]).where(ok)
    out["gap_rule_excl0"] = [float(lo_hi[m][0] > 0 or lo_hi[m][1] < 0) if m in lo_hi else np.nan for m in out["method"]]
    out["oe_vs_oracle"] = out.loc[out["method"] == "oracle (frailty)", "sum_risk"].iloc[0] / out["sum_risk"]
    out["rd_observed"], out["rd_null_lo"], out["rd_null_hi"] = rd_check(
        tables, sp, test, NULL_PERMUTATIONS["quick" if quick else "full"], seed
    )
    return out, (pd.concat(cover, ignore_index=True) if cover else pd.DataFrame())


def rd_check(tables, sp, test, n_permutations, seed):
    "The ACWR's AUC on the test season and the 95% range of the random-denominator null (Impellizzeri 2020)."
    from pitchlab.load import daily_metrics, random_denominator_test

    s = tables["sessions"]
    ds = daily_metrics(s[s["date"] >= sp.test_start])
    rd = random_denominator_test(
        ds,
        test[["athlete_id", "date", "label"]].rename(columns={"label": "outcome"}),
        "ewma_acute",
        "ewma_chronic",
        n_permutations=n_permutations,
        seed=seed,
    )
    lo, hi = np.nanquantile(rd["null"], [0.025, 0.975])
    return rd["observed"], float(lo), float(hi)


def expected_inside(n_permutations, level=0.95, reps=200_000, seed=0):
    """Share of cohorts whose ACWR should fall inside the null's `level` range when the ACWR is exchangeable with its
    random-denominator ratios: the range's ends are quantiles of only `n_permutations` draws, so it is narrower than
    `level` (about 0.914 with 50 draws, 0.941 with 200, 0.948 with 1,000). Monte Carlo, deterministic for a seed."""
    rng, inside, chunk = np.random.default_rng(seed), 0, 10_000
    for start in range(0, reps, chunk):
        x = rng.random((min(chunk, reps - start), n_permutations + 1))
        lo, hi = np.quantile(x[:, 1:], [(1 - level) / 2, (1 + level) / 2], axis=1)
        inside += int(((x[:, 0] >= lo) & (x[:, 0] <= hi)).sum())
    return inside / reps


def null_cohorts(n, first_seed=1000, n_permutations=50):
    "Cohorts whose ACWR carries no risk at all (no ACWR effect, no chronic-load effect): is the ACWR inside the null?"
    rows = []
    for seed in range(first_seed, first_seed + n):
        c, tables, sp = make_data(NULL_ATHLETES, 0.0, 0.5, seed, chronic=0.0)
        test = sp.test[sp.test["label"].notna()].reset_index(drop=True)
        obs, lo, hi = rd_check(tables, sp, test, n_permutations, seed)
        rows.append(
            dict(
                seed=seed,
                events_test=int(test["event"].sum()),
                rd_observed=obs,
                rd_null_lo=lo,
                rd_null_hi=hi,
                n_permutations=n_permutations,
            )
        )
    cols = ["seed", "events_test", "rd_observed", "rd_null_lo", "rd_null_hi", "n_permutations"]
    return pd.DataFrame(rows, columns=cols)


def hamstring_data():
    "The real hamstring sample (Jovanovic, MIT) as pitchlab features, split at its second season (as nbs/34 does)."
    from pitchlab.core import project_root
    from pitchlab.features import build_features, time_split

    raw = pd.read_csv(project_root() / HAMSTRING)
    season_len = raw.groupby("Season")["Date"].max()
    offset = raw["Season"].map({s: int(season_len.loc[:s].sum() - season_len.loc[s]) for s in season_len.index})
    raw["date"] = pd.Timestamp("2017-01-02") + pd.to_timedelta(offset + raw["Date"] - 1, unit="D")
    raw["athlete_id"] = raw["Player.Name"].str.replace("Athlete ", "ham-", regex=False)
    on = raw["LoadMetric01"] > 0
    sessions = pd.DataFrame(
        {
            "athlete_id": raw.loc[on, "athlete_id"],
            "date": raw.loc[on, "date"],
            "load": raw.loc[on, "LoadMetric01"].astype(float),
            "session_type": "training",
            "source": "jovanovic",
            "source_id": raw.loc[on].index.astype(str),
        }
    )
    inj = raw[raw["Injury.Location"].notna()]
    injuries = pd.DataFrame(
        {
            "injury_id": "ham-inj-" + inj.index.astype(str),
            "athlete_id": inj["athlete_id"],
            "onset_date": inj["date"],
            "body_region": "hamstring",
            "injury_type": inj["Injury.Type"].str.lower(),
            "days_lost": 0,
            "contact": False,
        }
    )
    athletes = pd.DataFrame(
        {"athlete_id": sorted(raw["athlete_id"].unique()), "team_id": "ham-squad", "sport": "football"}
    )
    spans = raw.groupby("athlete_id")["date"].agg(start="min", end="max").reset_index()
    f = build_features(
        dict(sessions=sessions, injuries=injuries, athletes=athletes), horizon=7, end=raw["date"].max(), spans=spans
    )
    return time_split(f, test_start=raw.loc[raw["Season"] == "Season 2", "date"].min())


def run_hamstring(draws):
    "Descriptive: the real hamstring sample through the rule, GLM and Bayes (few events: no ranking of methods)."
    from pitchlab.models.baselines import ACWRRule, GLMBaseline
    from pitchlab.models.bayes import HazardModel

    sp = hamstring_data()
    train, test = sp.train, sp.test[sp.test["label"].notna()].reset_index(drop=True)
    y, ev = test["label"].to_numpy(float), test["event"].to_numpy(float)
    cell = dict(athletes=train["athlete_id"].nunique(), acwr_effect=np.nan, frailty=np.nan, scenario="hamstring (real)")
    cfg = dict(covariates=["acwr", "chronic", "rest_day"], levels=["athlete"])
    rows = []
    for name, model in [
        ("ACWR rule 1.5", ACWRRule(high=1.5)),
        ("GLM logistic", GLMBaseline(columns=["acwr_ewma", "ewma_chronic"])),
        ("Bayes hierarchical logit", HazardModel(cfg, sampler(draws, chains=2, random_seed=0))),
    ]:
        t0 = time.process_time()
        model.fit(train)
        p = (
            model.predict_proba(test)
            if not isinstance(model, HazardModel)
            else model.predict(test, 7)["risk"].to_numpy()
        )
        rows.append(
            dict(**cell, seed=0, method=name, events_train=int(train["event"].sum()))
            | _scores(y, ev, p, None, True)
            | dict(cpu_s=time.process_time() - t0, athletes_with_test_events=test.loc[ev > 0, "athlete_id"].nunique())
        )
    return pd.DataFrame(rows)


def summarise(t: pd.DataFrame) -> pd.DataFrame:
    "Cohort x method: medians over seeds, the share of seeds whose gap to the ACWR rule excludes zero, coverage."
    keys = ["scenario", "athletes", "acwr_effect", "frailty", "method"]
    num = ["auc_label", "auc_daily", "gap_oracle", "gap_rule", "oe", "oe_vs_oracle", "slope", "acwr_bias", "cpu_s"]
    t = t.copy()
    for c in num + ["gap_rule_excl0", "acwr_covered", "fe_covered", "fe_total", "events_test", "truth_oe_train"]:
        if c not in t:
            t[c] = np.nan
    # O/E vs oracle as if the training season had drawn exactly the injuries its truth expects (see `season_oe`)
    t["oe_vs_oracle_luck_free"] = t["oe_vs_oracle"] * t["truth_oe_train"]
    num = num + ["oe_vs_oracle_luck_free"]
    g = t.groupby(keys, sort=False, dropna=False)
    s = g[num].median()
    s["events_test"] = g["events_test"].median()
    s["gap_rule_excl0_share"] = g["gap_rule_excl0"].mean()
    s["acwr_coverage"] = g["acwr_covered"].mean()
    s["fe_coverage"] = g["fe_covered"].sum(min_count=1) / g["fe_total"].sum(min_count=1)
    s["seeds"] = g.size()
    return s.reset_index()


GRID_DIR = Path(__file__).resolve().parent / "results" / "grid"  # where the committed full grid is kept
GRID_FIGURE_METHODS = (
    "oracle (frailty)",
    "learnable oracle",
    "Bayes hierarchical logit",
    "GLM logistic",
    "Keras sequence (LSTM)",
    "ACWR rule 1.5",
)


def read_grid(folder=GRID_DIR, coverage=False) -> pd.DataFrame:
    "Every seed of every cell kept in `folder` by `--cell-dir`: the per-seed tables, or with `coverage` their coverage rows."
    paths = sorted(
        p for p in Path(folder).glob("*.csv") if not p.stem.endswith("_coverage") and not p.stem.startswith("null")
    )
    if not paths:
        raise FileNotFoundError(f"no grid tables in {folder}: run with --cell-dir {folder} first")
    if coverage:
        paths = [p.with_name(p.stem + "_coverage.csv") for p in paths]
    return pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)


def grid_figure(summary: pd.DataFrame, methods=GRID_FIGURE_METHODS):
    "The linear cells of the grid at a glance: the 7-day label's AUC (median over seeds) of `methods`, a panel per squad size."
    import matplotlib.pyplot as plt

    s = summary[summary["scenario"] == "linear"]
    sizes = sorted(s["athletes"].unique())
    fig, axes = plt.subplots(1, len(sizes), figsize=(4.4 * len(sizes), 4.2), sharey=True, squeeze=False)
    for ax, n in zip(axes[0], sizes):
        d = s[s["athletes"] == n]
        cells = d[["acwr_effect", "frailty"]].drop_duplicates().sort_values(["acwr_effect", "frailty"])
        x = np.arange(len(cells))
        for m in methods:
            auc = cells.merge(d[d["method"] == m], on=["acwr_effect", "frailty"], how="left")["auc_label"]
            ax.plot(x, auc, marker="o", ms=4, label=m, ls="--" if "oracle" in m else "-")
        ax.set_xticks(x, [f"{e:g} / {f:g}" for e, f in cells.itertuples(index=False)], rotation=60, fontsize=8)
        ax.axhline(0.5, color="grey", lw=0.8)
        ax.set_title(f"{n:g} athletes", fontsize=10)
        ax.set_xlabel("ACWR effect / frailty SD", fontsize=9)
    axes[0, 0].set_ylabel("AUC of the 7-day label (test season)", fontsize=9)
    fig.legend(
        *axes[0, 0].get_legend_handles_labels(), loc="lower center", ncol=len(methods), fontsize=8, frameon=False
    )
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def cell_files(folder, cell):
    "Where `--cell-dir` keeps a cell's per-seed table and its coverage rows: <folder>/<athletes>_<effect>_<frailty>_<truth>.csv."
    n, eff, fr, sc = cell
    t = os.path.join(folder, f"{n}_{float(eff)}_{float(fr)}_{sc}.csv")
    return t, t.replace(".csv", "_coverage.csv")


def cached_seeds(folder, cell, seeds):
    "The rows of the wanted seeds an earlier run left in `folder` (table, coverage) and the seeds still to run."
    if not folder:
        return pd.DataFrame(), pd.DataFrame(), list(seeds)
    tp, cp = cell_files(folder, cell)
    t = pd.read_csv(tp) if os.path.exists(tp) else pd.DataFrame(columns=["seed"])
    c = pd.read_csv(cp) if os.path.exists(cp) else pd.DataFrame(columns=["seed"])
    done = set(t["seed"].astype(int)) & set(c["seed"].astype(int)) if len(t) else set()
    keep = sorted(done & set(seeds))
    return t[t["seed"].isin(keep)], c[c["seed"].isin(keep)], [s for s in seeds if s not in done]


def add_season_oe(folder):
    """Give the per-seed tables in `folder` that predate them the columns truth_oe_train and truth_oe_test (`season_oe`
    of each seed's cohort, drawn again: deterministic). Returns the files it changed."""
    changed = []
    for path in sorted(Path(folder).glob("*.csv")):
        if path.stem.endswith("_coverage") or path.stem.startswith("null"):
            continue
        t = pd.read_csv(path)
        need = t.get("truth_oe_train", pd.Series(np.nan, index=t.index)).isna()
        if not need.any():
            continue
        for c, g in t[need].groupby(["athletes", "acwr_effect", "frailty", "scenario", "seed"]):
            t.loc[g.index, ["truth_oe_train", "truth_oe_test"]] = season_oe(cohort_of(*c[:3], c[4], c[3]))
        t.to_csv(str(path) + ".part", index=False)
        os.replace(str(path) + ".part", path)
        changed.append(path.name)
    return changed


def keep_seed(folder, cell, out, cov):
    "Add one finished seed to the cell's files in `folder` (written whole each time, so a stop loses one seed at most)."
    tp, cp = cell_files(folder, cell)
    for path, new in ((tp, out), (cp, cov)):
        old = pd.read_csv(path) if os.path.exists(path) else pd.DataFrame()
        pd.concat([old, new], ignore_index=True).to_csv(path + ".part", index=False)
        os.replace(path + ".part", path)


def _parse_cells(text):
    "'300:1.0:0.5,75:0:0:u_acwr' -> cells (athletes:effect:frailty[:truth])."
    out = []
    for c in text.split(","):
        v = c.split(":")
        out.append((int(v[0]), float(v[1]), float(v[2]), v[3] if len(v) > 3 else "linear"))
    return out


DAY_MIX_CELLS = [(300, 1.0, 0.5, "linear"), (300, 0.0, 0.0, "linear")]  # the BENCH cell, and no effect or frailty


def run_day_mix(cells, first_seed, seeds, out=None):
    "`--day-mix`: `day_mix_cell` over cells and seeds; prints the medians and writes the per-seed rows to `out`."
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    t0 = time.perf_counter()
    parts = [day_mix_cell(n, e, f, s) for n, e, f, _ in cells for s in range(first_seed, first_seed + seeds)]
    t = pd.concat(parts, ignore_index=True)
    if out:
        t.to_csv(out, index=False)
    keys = ["athletes", "acwr_effect", "frailty", "method", "day_type"]
    med = t.groupby(keys, sort=False)[["auc_label", "oe", "slope"]].median().unstack("day_type")
    with pd.option_context("display.width", 200):
        print(med.round(3).to_string())
    b = t[t["method"] == "Bayes hierarchical logit"].pivot_table(
        index=["athletes", "acwr_effect", "frailty", "seed"], columns="day_type", values=["auc_label", "slope"]
    )
    print(
        f"day-type mix against held, hierarchical Bayes over {len(b)} cohorts: slope {b['slope', 'held'].median():.3f} "
        f"-> {b['slope', 'mix'].median():.3f}, AUC {b['auc_label', 'held'].median():.3f} -> "
        f"{b['auc_label', 'mix'].median():.3f} (medians; {time.perf_counter() - t0:.0f} s)"
    )
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 cells x 2 seeds and the hamstring row (CI)")
    ap.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="seeds per cell (default: quick 4 in the BENCH cell and 2 elsewhere, full 3)",
    )
    ap.add_argument(
        "--cells", default=None, help="subset, e.g. '300:1.0:0.5,300:1.0:0.5:u_acwr' (athletes:effect:frailty[:truth])"
    )
    ap.add_argument(
        "--draws",
        type=int,
        default=None,
        help="NUTS draws and tuning steps per chain (default: the model's own, which pass its gate in one round)",
    )
    ap.add_argument(
        "--null-cohorts",
        type=int,
        default=None,
        help=f"cohorts of {NULL_ATHLETES} athletes with no ACWR and no chronic-load effect for the random-denominator check (default 20 quick, 100 full)",
    )
    ap.add_argument("--first-seed", type=int, default=0, help="seeds run from this one (to add seeds to a run)")
    ap.add_argument("--no-keras", action="store_true", help="leave the Keras sequence model out")
    ap.add_argument("--no-hamstring", action="store_true", help="leave the real hamstring row out")
    ap.add_argument("--out", default=None, help="write the per-seed table (CSV) here; summary and coverage beside it")
    ap.add_argument(
        "--cell-dir",
        default=None,
        help="keep each finished seed of each cell in this folder and reuse the seeds found there (a long grid resumes)",
    )
    ap.add_argument(
        "--add-season-oe",
        action="store_true",
        help="only add each seed's season O/E of the truth to the tables in --cell-dir that lack it, then stop",
    )
    ap.add_argument(
        "--day-mix",
        action="store_true",
        help="only compare today's day type held for the horizon with the athlete's mix (`day_mix_cell`) on --cells "
        f"(default {DAY_MIX_CELLS}) over --seeds (default 2), written to --out, then stop",
    )
    ap.add_argument(
        "--grid-figure",
        default=None,
        metavar="PNG",
        help="only draw the grid kept in --cell-dir (default benchmarks/results/grid) as `grid_figure` to PNG, then stop",
    )
    a = ap.parse_args(argv)
    if a.grid_figure:
        grid = read_grid(a.cell_dir or GRID_DIR)
        grid_figure(summarise(grid)).savefig(a.grid_figure, dpi=100)
        print(f"wrote {a.grid_figure}: {len(grid)} rows of {grid['athletes'].nunique()} squad sizes")
        return 0
    if a.add_season_oe:
        print("added the season O/E of the truth to:", ", ".join(add_season_oe(a.cell_dir)) or "nothing")
        return 0
    if a.day_mix:
        return run_day_mix(_parse_cells(a.cells) if a.cells else DAY_MIX_CELLS, a.first_seed, a.seeds or 2, a.out)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    cells = _parse_cells(a.cells) if a.cells else (QUICK_CELLS if a.quick else FULL_CELLS)
    draws = a.draws
    t0, c0 = time.perf_counter(), time.process_time()
    parts, covers = [], []
    if a.cell_dir:
        os.makedirs(a.cell_dir, exist_ok=True)
    for n, eff, fr, sc in cells:
        seeds = a.seeds or (QUICK_SEEDS.get((n, eff, fr, sc), 2) if a.quick else 3)
        old, old_cov, todo = cached_seeds(a.cell_dir, (n, eff, fr, sc), range(a.first_seed, a.first_seed + seeds))
        if len(old):
            parts.append(old)
            covers.append(old_cov)
            print(
                f"cell athletes={n} acwr_effect={eff} frailty={fr} truth={sc}: seeds {sorted(set(old['seed']))} from {a.cell_dir}"
            )
        for s in todo:
            t1, c1 = time.perf_counter(), time.process_time()
            out, cov = run_cell(n, eff, fr, s, a.quick, draws, sc, keras=not a.no_keras)
            parts.append(out)
            covers.append(cov)
            if a.cell_dir:
                keep_seed(a.cell_dir, (n, eff, fr, sc), out, cov)
            print(
                f"cell athletes={n} acwr_effect={eff} frailty={fr} truth={sc} seed={s}: "
                f"{time.perf_counter() - t1:.0f} s, {time.process_time() - c1:.0f} CPU s",
                flush=True,
            )
    if not a.no_hamstring:
        parts.append(run_hamstring(draws))
    t = pd.concat(parts, ignore_index=True)
    cov = pd.concat(covers, ignore_index=True)
    summ = summarise(t)
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 30)
    show = ["scenario", "athletes", "acwr_effect", "frailty", "method", "seeds", "auc_label", "gap_oracle", "gap_rule"]
    show += [
        "gap_rule_excl0_share",
        "oe",
        "oe_vs_oracle",
        "oe_vs_oracle_luck_free",
        "slope",
        "acwr_bias",
        "fe_coverage",
        "cpu_s",
    ]
    print(summ[show].round(3).to_string(index=False))
    if a.out:
        t.to_csv(a.out, index=False)
        summ.to_csv(a.out.replace(".csv", "_summary.csv"), index=False)
        cov.to_csv(a.out.replace(".csv", "_coverage.csv"), index=False)
    syn = t[t["scenario"] != "hamstring (real)"]
    bayes = syn[(syn["method"] == "Bayes hierarchical logit") & (syn["scenario"] == "linear")]
    at300 = bayes[(bayes["athletes"] == 300) & (bayes["acwr_effect"] == 1.0)]
    gap = float(at300["gap_oracle"].median()) if len(at300) else float("nan")
    oe = float(at300["oe"].median()) if len(at300) else float("nan")
    lin = cov[cov["scenario"] == "linear"] if len(cov) else cov
    k, n = (int(lin["inside"].sum()), len(lin)) if len(lin) else (0, 0)
    share = k / n if n else float("nan")
    lo, hi = clopper_pearson(k, n) if n else (float("nan"), float("nan"))
    fits = lin.groupby(["scenario", "athletes", "acwr_effect", "frailty", "seed", "method"]).ngroups if n else 0
    print(
        f"coverage: {k} of {n} 94% intervals cover the truth ({share:.3f}, Clopper-Pearson 95% [{lo:.3f}, {hi:.3f}]) "
        f"over the fixed effects of {fits} Bayesian fit(s) on linear truths"
    )
    inside = lambda d: int(((d["rd_observed"] >= d["rd_null_lo"]) & (d["rd_observed"] <= d["rd_null_hi"])).sum())
    grid0 = syn[(syn["acwr_effect"] == 0) & (syn["method"] == "ACWR rule 1.5")].drop_duplicates(
        ["athletes", "frailty", "scenario", "seed"]
    )
    n_null = a.null_cohorts if a.null_cohorts is not None else (20 if a.quick else 100)
    n_perm = NULL_PERMUTATIONS["quick" if a.quick else "full"]
    null_path = os.path.join(a.cell_dir, f"null_{n_null}x{n_perm}.csv") if a.cell_dir and n_null else None
    if null_path and os.path.exists(null_path):
        nulls = pd.read_csv(null_path)
    else:
        nulls = null_cohorts(n_null, n_permutations=n_perm)
        if null_path:
            nulls.to_csv(null_path, index=False)
    if a.out:
        nulls.to_csv(a.out.replace(".csv", "_null.csv"), index=False)
    k0, kn = inside(grid0), inside(nulls)
    if len(nulls):
        from scipy.stats import binom

        p = expected_inside(n_perm)
        lo, hi = binom.ppf(0.025, len(nulls), p), binom.ppf(0.975, len(nulls), p)
        print(
            f"no ACWR and no chronic-load effect: the ACWR's AUC lies inside the random-denominator null's 95% range in "
            f"{kn} of {len(nulls)} cohorts of {NULL_ATHLETES} athletes; above it in "
            f"{int((nulls['rd_observed'] > nulls['rd_null_hi']).sum())} (a ratio exchangeable with the null lies inside "
            f"{p:.1%} of the time with {n_perm} permutations: {lo:.0f} to {hi:.0f} of {len(nulls)})"
        )
    print(
        f"ACWR effect 0 in the grid (the generator's protective chronic load kept, so the ratio's own denominator "
        f"carries risk that a random one does not): inside the null in {k0} of {len(grid0)} cohort(s)"
    )
    print(
        f"total {time.perf_counter() - t0:.0f} s, {time.process_time() - c0:.0f} CPU s of "
        f"this process on {os.cpu_count()} cores (load average {os.getloadavg()[0]:.1f})"
    )
    print(f"BENCH injury bayes_gap_300={gap:.4f} oe_300={oe:.3f} coverage={share:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
