"""Benchmark of pitchlab's Bayesian hazard fit against PyMC's default sampler on the same model.

Both fits use the same synthetic cohort (100 athletes x 364 days, about 100 non-contact injuries, with the injury
history the athletes arrived with, which the synthetic tables leave out), the same features, the same discretised
design and the same priors, with 4 chains x (1000 tune + 1000 draws) on 2 cores:

- slow: PyMC's default NUTS (`pm.sample`, target_accept 0.8) on the Bernoulli athlete-day rows;
- fast: pitchlab's default fit: identical (athlete, covariate cell) rows collapsed to Binomial counts, the compiled
  hazard kernel (numba) sampled by nutpie's NUTS (target_accept 0.8, the default).

The collapse is exact (same likelihood up to a constant), so the two posteriors must agree up to Monte Carlo error.
The fast fit is timed before and after the slow one and the mean is used, because other jobs share the machine.
An ADVI fit (the interactive approximation) is timed and compared with the fast NUTS fit too.

Run: `.venv/bin/python benchmarks/bench_bayes.py` (about 5-10 minutes; `--quick` skips the slow fit).
A second figure fits a 300-athlete, two-season cohort at the defaults (4 chains, sampling until the diagnostic targets
hold; bar: under 60 s on 2 cores); `--skip-300` leaves it out.
The last line is `BENCH bayes speedup=<ratio> max_rhat=<x> min_ess_bulk=<n> divergences=<n> fit300_s=<s> fit300_cpu_s=<s>`.
"""

import argparse
import json
import os
import resource
import sys
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")
os.environ.setdefault("PYTHONWARNINGS", "ignore")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--teams", type=int, default=4)
    ap.add_argument("--athletes-per-team", type=int, default=25)
    ap.add_argument("--seasons", type=int, default=1)
    ap.add_argument(
        "--alpha", type=float, default=-6.15, help="true intercept (logit daily hazard): -6.15 gives about 100 injuries"
    )
    ap.add_argument("--seed", type=int, default=0, help="cohort seed")
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="skip the slow PyMC fit (no speed-up reported)")
    ap.add_argument("--skip-300", action="store_true", help="skip the 300-athlete, two-season fit")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    a = ap.parse_args(argv)

    t = time.perf_counter()
    import pymc  # noqa: F401  (imports cost 5-10 s once per process: kept out of both timings)

    print(f"imports of pymc, arviz and nutpie: {time.perf_counter() - t:.1f} s (not timed below)", flush=True)
    from pitchlab.synth import make_cohort, HazardParams
    from pitchlab.features import build_features
    from pitchlab.models.bayes import HazardModel, compare_fits, history_from_truth
    import arviz as az

    t = time.perf_counter()
    cohort = make_cohort(
        n_teams=a.teams,
        athletes_per_team=a.athletes_per_team,
        seasons=a.seasons,
        seed=a.seed,
        hazard=HazardParams(alpha=a.alpha),
    )
    feats = build_features({**cohort.tables(), "injuries": history_from_truth(cohort)}, horizon=7)
    print(
        f"cohort: {feats['athlete_id'].nunique()} athletes, {len(feats)} athlete-days at risk, {int(feats['event'].sum())} "
        f"non-contact injuries ({time.perf_counter() - t:.1f} s to simulate and build features)",
        flush=True,
    )
    # the same draws for both samplers, one round (no sampling until targets): a like-for-like timing
    sc = dict(draws=a.draws, tune=a.tune, chains=a.chains, cores=a.cores, random_seed=1, targets=None)

    def cpu():
        "CPU seconds of this process (nutpie's threads) and of its finished children (PyMC's sampler processes)."
        c = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + c.ru_utime + c.ru_stime

    def fast_fit():
        m = HazardModel(sampler_config=sc)
        t0, c0 = time.perf_counter(), cpu()
        m.fit(feats)
        m._cpu = cpu() - c0
        return m, time.perf_counter() - t0

    fast, t_fast1 = fast_fit()
    d, fs = fast.diagnostics(), fast.fit_summary()
    print(
        f"fast (Binomial cells + compiled kernel + nutpie): {t_fast1:.1f} s ({fast._cpu:.1f} CPU s); {fs['n_rows']} rows -> {fs['n_cells']} cells; "
        f"max R-hat {d['max_rhat']:.4f}, min bulk ESS {d['min_ess_bulk']:.0f}, min tail ESS {d['min_ess_tail']:.0f}, "
        f"divergences {d['divergences']}, min E-BFMI {d['min_bfmi']:.2f}",
        flush=True,
    )
    res = dict(fast_seconds=[t_fast1], fast_diagnostics=d)
    if not a.quick:
        slow = HazardModel(sampler_config={**sc, "backend": "pymc", "collapse": False, "target_accept": 0.8})
        t0, c0 = time.perf_counter(), cpu()
        slow.fit(feats)
        t_slow, cpu_slow = time.perf_counter() - t0, cpu() - c0
        ds = slow.diagnostics()
        print(
            f"slow (PyMC default NUTS on Bernoulli rows): {t_slow:.1f} s ({cpu_slow:.1f} CPU s); max R-hat {ds['max_rhat']:.4f}, min bulk ESS "
            f"{ds['min_ess_bulk']:.0f}, divergences {ds['divergences']}",
            flush=True,
        )
        fast2, t_fast2 = fast_fit()
        print(f"fast again after the slow fit: {t_fast2:.1f} s ({fast2._cpu:.1f} CPU s)", flush=True)
        t_fast = (t_fast1 + t_fast2) / 2
        cpu_fast = (fast._cpu + fast2._cpu) / 2
        cmp = compare_fits(slow, fast)
        # Monte Carlo standard errors of both means, for a z-score of each difference
        names = ["intercept", "beta"] + [v for v in slow.idata.posterior.data_vars if v.startswith("sigma_")]
        mcse = lambda m: np.concatenate([np.ravel(az.mcse(m.idata.posterior[v])[v].values) for v in names])
        z = (cmp["mean_b"] - cmp["mean_a"]).to_numpy() / np.sqrt(mcse(slow) ** 2 + mcse(fast) ** 2)
        cmp["z_mcse"] = z
        agree = bool(np.abs(z).max() < 4 and cmp["diff_in_sd"].abs().max() < 0.25)
        print("\nposterior means, slow (a) vs fast (b):")
        print(cmp[["mean_a", "mean_b", "sd_a", "sd_b", "diff_in_sd", "z_mcse"]].round(3).to_string())
        print(
            f"largest difference {cmp['diff_in_sd'].abs().max():.3f} posterior SDs (|z| vs Monte Carlo error {np.abs(z).max():.2f}): "
            f"{'agree' if agree else 'DISAGREE'}"
        )
        speedup = t_slow / t_fast
        print(
            f"\nspeed-up (wall clock, slow / mean of the two fast fits): {speedup:.1f}x; in CPU seconds: {cpu_slow / cpu_fast:.1f}x; "
            f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other jobs share the machine)"
        )
        res.update(
            slow_seconds=t_slow,
            slow_diagnostics=ds,
            fast_seconds=[t_fast1, t_fast2],
            speedup=speedup,
            agree=agree,
            cpu_speedup=cpu_slow / cpu_fast,
            max_diff_in_sd=float(cmp["diff_in_sd"].abs().max()),
            max_abs_z=float(np.abs(z).max()),
        )
    advi = HazardModel(sampler_config={**sc, "backend": "advi"})
    t0 = time.perf_counter()
    advi.fit(feats)
    t_advi = time.perf_counter() - t0
    ca = compare_fits(fast, advi)
    print(
        f"\nADVI (mean-field, 20,000 steps, same kernel): {t_advi:.1f} s; against fast NUTS: largest mean difference "
        f"{ca['diff_in_sd'].abs().max():.2f} posterior SDs (median {ca['diff_in_sd'].abs().median():.2f}); SD ratio "
        f"median {ca['sd_ratio'].median():.2f}, range {ca['sd_ratio'].min():.2f}-{ca['sd_ratio'].max():.2f}"
    )
    res.update(
        advi_seconds=t_advi,
        advi_max_diff_in_sd=float(ca["diff_in_sd"].abs().max()),
        advi_sd_ratio_median=float(ca["sd_ratio"].median()),
    )
    if not a.skip_300:
        # the size the open benchmark needs: 300 athletes (12 squads of 25), two seasons, fitted at the defaults
        # (4 chains, sampling until R-hat <= 1.01, ESS >= 400, no divergence; bar: under 60 s on 2 cores)
        big = make_cohort(n_teams=12, athletes_per_team=25, seasons=2, seed=a.seed, hazard=HazardParams())
        fb = build_features({**big.tables(), "injuries": history_from_truth(big)}, horizon=7)
        m300 = HazardModel(sampler_config=dict(random_seed=1, cores=a.cores))
        t0, c0 = time.perf_counter(), cpu()
        m300.fit(fb)
        t300, cpu300 = time.perf_counter() - t0, cpu() - c0
        d3, s3 = m300.diagnostics(), m300.fit_summary()
        print(
            f"\n300 athletes x 2 seasons at the defaults: {t300:.1f} s wall ({cpu300:.1f} CPU s); {s3['n_rows']} rows -> "
            f"{s3['n_cells']} cells, {s3['n_events']} events, {s3['chains']} chains x {s3['draws']} draws in "
            f"{max(len(s3['rounds']), 1)} round(s); max R-hat {d3['max_rhat']:.4f}, min bulk ESS {d3['min_ess_bulk']:.0f}, "
            f"min tail ESS {d3['min_ess_tail']:.0f}, divergences {d3['divergences']}; load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        res.update(fit300_seconds=t300, fit300_cpu_seconds=cpu300, fit300_diagnostics=d3)
    gate = d["max_rhat"] <= 1.01 and d["min_ess_bulk"] >= 400 and d["divergences"] == 0
    if not a.quick:
        bar = gate and res["speedup"] >= 8 and res["agree"]
        print(
            f"\nbar (>= 8x, R-hat <= 1.01, bulk ESS >= 400, no divergences, means agree): {'met' if bar else 'NOT met'}"
        )
        res["bar_met"] = bar
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1, default=float)
    speed = f"{res['speedup']:.1f}" if "speedup" in res else "nan"
    print(
        f"BENCH bayes speedup={speed} max_rhat={d['max_rhat']:.4f} min_ess_bulk={d['min_ess_bulk']:.0f} divergences={d['divergences']}"
        + (
            f" fit300_s={res['fit300_seconds']:.1f} fit300_cpu_s={res['fit300_cpu_seconds']:.1f}"
            if "fit300_seconds" in res
            else ""
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
