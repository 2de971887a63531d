"""Benchmark of pitchlab.load: the full daily metric set for 2,000 athletes x 730 days (1.46 M athlete-days).

Three ways in one run, on the same data:

* pitchlab: the fused numba kernel over the dense athlete x date array (`kernel`, with the threads `daily_metrics`
  uses by default: one per core; also shown on one thread), and the whole path from a long session table to an
  xarray.Dataset (`e2e`, `daily_metrics(sessions)` with its defaults);
* pandas: the idiomatic reference (pandas runs it on one thread), `groupby().rolling()` / `groupby().ewm()` on the daily long table (`kernel`), and
  long session table -> daily calendar -> metrics -> Dataset (`e2e`);
* floor: one read of the input and one write of every output array with NumPy (what no kernel can beat), allocated
  as pitchlab allocates its outputs (one slab); also shown with one new NumPy array per output.

Warm-up first (numba compile, page cache), then the median of several repeats, timed round-robin so that load
from other processes falls on every contender alike. The two implementations are checked
against each other before any time is reported. The last line is machine-readable:

    BENCH load kernel_x_pandas=<ratio> e2e_x_pandas=<ratio> floor_ratio=<pitchlab kernel time / floor time>

Run: .venv/bin/python benchmarks/bench_load.py [--athletes 2000] [--days 730] [--repeats 7]
"""

import argparse
import math
import statistics
import time

import numpy as np
import pandas as pd

from pitchlab.load import METRICS, _metrics_block, _span_index, calendar, daily_metrics, ewma_lambda, kernel_threads

OPTS = dict(
    acute=7,
    chronic=28,
    lam_a=ewma_lambda(7),
    lam_c=ewma_lambda(28),
    seed_first=True,
    seed_value=0.0,
    k_ctl=1 - math.exp(-1 / 42),
    k_atl=1 - math.exp(-1 / 7),
    tsb_next=True,
    ddof=1,
    min_days=1,
    max_missing=0.25,
)


def make_sessions(n_ath, n_days, seed=0):
    "Sorted long session table: ~25% rest days (no row), a few days with two sessions, first and last day trained."
    rng = np.random.default_rng(seed)
    load = np.round(rng.gamma(4.0, 90.0, (n_ath, n_days)), 1)
    train = rng.random((n_ath, n_days)) > 0.25
    train[:, 0] = train[:, -1] = True
    a, d = np.nonzero(train)
    ids = np.array([f"A{i:05d}" for i in range(n_ath)], dtype=object)
    dates = pd.date_range("2023-01-01", periods=n_days).values
    df = pd.DataFrame({"athlete_id": ids[a], "date": dates[d], "load": load[a, d]})
    two = df.sample(frac=0.05, random_state=seed).assign(load=lambda x: np.round(x["load"] * 0.3, 1))
    return pd.concat([df, two]).sort_values(["athlete_id", "date"], kind="stable").reset_index(drop=True)


def pandas_kernel(daily):
    "Idiomatic pandas: the metric set from a daily long table (athlete_id, date, load), every day present, sorted."
    g = daily.groupby("athlete_id", sort=False)["load"]
    roll = lambda w, f: getattr(g.rolling(w, min_periods=1), f)().reset_index(level=0, drop=True)
    h = g.cumcount() + 1
    out = pd.DataFrame({"athlete_id": daily["athlete_id"], "date": daily["date"], "load": daily["load"]})
    out["acute_load"] = roll(7, "mean")
    out["chronic_load"] = roll(28, "mean")
    unc = daily["load"].groupby(daily["athlete_id"], sort=False).shift(7)
    out["chronic_uncoupled"] = (
        unc.groupby(daily["athlete_id"], sort=False).rolling(21, min_periods=1).mean().reset_index(level=0, drop=True)
    )
    out["acwr_rolling"] = out["acute_load"] / out["chronic_load"].where(out["chronic_load"] > 0)
    out["acwr_uncoupled"] = out["acute_load"] / out["chronic_uncoupled"].where(out["chronic_uncoupled"] > 0)
    ewm = lambda lam: g.ewm(alpha=lam, adjust=False).mean().reset_index(level=0, drop=True)
    out["ewma_acute"], out["ewma_chronic"] = ewm(OPTS["lam_a"]), ewm(OPTS["lam_c"])
    out["acwr_ewma"] = out["ewma_acute"] / out["ewma_chronic"].where(out["ewma_chronic"] > 0)
    out["weekly_load"] = roll(7, "sum")
    prev = out.groupby("athlete_id", sort=False)["weekly_load"].shift(7)
    out["week_change_pct"] = ((out["weekly_load"] - prev) / prev.where(prev > 0) * 100).where(h >= 14)
    sd = g.rolling(7, min_periods=1).std(ddof=1).reset_index(level=0, drop=True)
    # pandas' online rolling std of seven rest days after hard weeks is rounding noise (seen: 1e-6), not 0, which
    # would make monotony 0: a constant week (max == min) is undefined, as in pitchlab
    const = roll(7, "max") == roll(7, "min")
    out["monotony"] = (out["acute_load"] / sd.where(~const)).where(h >= 7)
    out["strain"] = out["weekly_load"] * out["monotony"]
    first = g.transform("first")
    for name, k in (("ctl", OPTS["k_ctl"]), ("atl", OPTS["k_atl"])):  # seeded with 0: correct pandas' seed x_0
        out[name] = ewm(k) - (1 - k) ** h * first
    out["tsb"] = (out["ctl"] - out["atl"]).groupby(daily["athlete_id"], sort=False).shift(1).fillna(0.0)
    out["ramp_rate"] = out["ctl"] - out.groupby("athlete_id", sort=False)["ctl"].shift(7)
    return out


def pandas_e2e(sessions):
    "Idiomatic pandas end to end: long session table -> daily calendar -> metrics -> xarray.Dataset."
    daily = sessions.groupby(["athlete_id", "date"])["load"].sum()
    full = pd.MultiIndex.from_product(
        [daily.index.levels[0], pd.date_range(sessions["date"].min(), sessions["date"].max())],
        names=["athlete_id", "date"],
    )
    daily = daily.reindex(full, fill_value=0.0).reset_index()
    return pandas_kernel(daily).set_index(["athlete_id", "date"]).to_xarray()


def floor(load, n_out):
    "One read of the input and one write of every output, allocated as pitchlab allocates them (one slab + qc)."
    out = np.empty((n_out,) + load.shape)
    for k in range(n_out):
        np.multiply(load, 1.0, out=out[k])
    return out, np.greater(load, 0.0).astype(np.uint8)


def floor_arrays(load, n_out):
    "The same with one new NumPy array per output (glibc may then reuse freed heap pages: often faster here)."
    return [np.multiply(load, 1.0) for _ in range(n_out)], np.greater(load, 0.0).astype(np.uint8)


def timeit(fns, repeats):
    "Median wall time of each function, timed round-robin (one call of each per round) after a warm-up."
    for fn in fns.values():
        fn()
    ts = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            ts[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in ts.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--athletes", type=int, default=2000)
    ap.add_argument("--days", type=int, default=730)
    ap.add_argument("--repeats", type=int, default=7, help="repeats of the fast paths (pandas: at least 3)")
    args = ap.parse_args()
    sessions = make_sessions(args.athletes, args.days)
    cal = calendar(sessions)
    load = np.ascontiguousarray(cal["load"].values)
    first, last = (a.values for a in _span_index(cal))
    zeros = np.zeros(args.athletes)
    daily = (
        sessions.groupby(["athlete_id", "date"])["load"]
        .sum()
        .reindex(
            pd.MultiIndex.from_product([cal.indexes["athlete_id"], cal.indexes["date"]], names=["athlete_id", "date"]),
            fill_value=0.0,
        )
        .reset_index()
    )
    print(
        f"{args.athletes} athletes x {args.days} days = {load.size / 1e6:.2f} M athlete-days; "
        f"{len(sessions) / 1e6:.2f} M session rows; {len(METRICS)} metrics + qc"
    )

    # agreement first: pitchlab against the pandas reference, every metric
    ours = daily_metrics(sessions)
    ref = pandas_e2e(sessions)
    worst = 0.0
    for m in METRICS:
        a, b = ours[m].values, ref[m].transpose("athlete_id", "date").values
        assert np.array_equal(np.isnan(a), np.isnan(b)), f"{m}: NaN patterns differ"
        ok = ~np.isnan(a)
        rel = np.max(np.abs(a[ok] - b[ok]) / np.maximum(1.0, np.abs(b[ok])))
        worst = max(worst, rel)
        assert rel < 1e-8, f"{m}: pitchlab and pandas differ by {rel:.2e}"
    print(f"agreement with pandas on all {len(METRICS)} metrics: max scaled difference {worst:.1e}")

    nt = kernel_threads(args.athletes, args.days)
    fast = timeit(
        {
            "kernel": lambda: _metrics_block(load, first, last, zeros, zeros, **OPTS, threads=nt),
            "kernel_1t": lambda: _metrics_block(load, first, last, zeros, zeros, **OPTS, threads=1),
            "floor": lambda: floor(load, len(METRICS)),
            "arrays": lambda: floor_arrays(load, len(METRICS)),
            "e2e": lambda: daily_metrics(sessions),
        },
        args.repeats,
    )
    slow = timeit(
        {"kernel": lambda: pandas_kernel(daily), "e2e": lambda: pandas_e2e(sessions)}, max(3, args.repeats // 2)
    )
    print(
        f"kernel : pitchlab {fast['kernel']:8.4f} s ({nt} threads; one thread {fast['kernel_1t']:.4f} s)   pandas {slow['kernel']:8.4f} s   floor {fast['floor']:8.4f} s "
        f"(one array per output: {fast['arrays']:.4f} s)"
    )
    print(
        f"e2e    : pitchlab {fast['e2e']:8.4f} s   pandas {slow['e2e']:8.4f} s   (long sessions table -> xarray.Dataset)"
    )
    kx, ex = slow["kernel"] / fast["kernel"], slow["e2e"] / fast["e2e"]
    fr, fs = fast["kernel"] / fast["floor"], fast["kernel"] / fast["arrays"]
    print(
        f"ratios : kernel {kx:.1f}x pandas (bar 30x; one thread {slow['kernel'] / fast['kernel_1t']:.1f}x), e2e {ex:.1f}x pandas (bar 10x), "
        f"kernel / floor {fr:.2f} (bar 2; one thread {fast['kernel_1t'] / fast['floor']:.2f}; "
        f"against one array per output {fs:.2f})"
    )
    print(f"BENCH load kernel_x_pandas={kx:.1f} e2e_x_pandas={ex:.1f} floor_ratio={fr:.2f}")


if __name__ == "__main__":
    main()
