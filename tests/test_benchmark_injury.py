"""The open benchmark of injury-risk methods (benchmarks/bench_injury.py): its quick mode runs end to end, its BENCH
line parses, its table has a row for every method in every cell, and coverage counts every fixed effect with a truth."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

ROOT = Path(__file__).resolve().parents[1]
METHODS = {
    "oracle (frailty)",
    "learnable oracle",
    "ACWR rule 1.5",
    "ACWR rule (data bands)",
    "acute load alone",
    "GLM logistic",
    "gradient boosting",
    "Keras sequence (LSTM)",
    "Bayes hierarchical logit",
}


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_injury", ROOT / "benchmarks" / "bench_injury.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_null_range_is_narrower_than_its_level_with_few_permutations(bench):
    """With 41 random denominators the 2.5% and 97.5% quantiles fall exactly on the 2nd smallest and 2nd largest draw, so
    an exchangeable ACWR (uniform rank among 42) lies inside for ranks 2..39: 38/42. The benchmark's null cohorts are
    judged against this share, not against 95%."""
    assert bench.expected_inside(41) == pytest.approx(38 / 42, abs=0.003)
    assert bench.expected_inside(50) < 0.92 < bench.expected_inside(200) < 0.95
    assert bench.NULL_PERMUTATIONS["full"] >= 200


def test_season_oe_is_each_seasons_luck_of_the_true_hazard(bench):
    "season_oe: realised over expected injuries of the truth in the first and second 364 days of at-risk days."
    from pitchlab.synth import make_cohort

    c = make_cohort(n_teams=2, athletes_per_team=12, seasons=2, seed=3)
    d = c.truth.daily[c.truth.daily["at_risk"]]
    second = (d["date"] - c.truth.daily["date"].min()).dt.days >= 364
    want = [d.loc[m, "injury"].sum() / d.loc[m, "hazard"].sum() for m in (~second, second)]
    got = bench.season_oe(c)
    assert got == pytest.approx(want) and got[0] != got[1]
    n_train, e_train = d.loc[~second, "injury"].sum(), d.loc[~second, "hazard"].sum()
    assert n_train > 5 and abs(n_train - e_train) < 4 * np.sqrt(e_train)


def test_older_grid_tables_gain_the_season_oe(bench, tmp_path):
    "add_season_oe fills truth_oe_train/test seed by seed from the cohort drawn again, leaves the rest, and runs once."
    src = ROOT / "benchmarks" / "results" / "grid" / "75_1.0_0.5_linear.csv"
    old = pd.read_csv(src).drop(columns=["truth_oe_train", "truth_oe_test"], errors="ignore")
    old.to_csv(tmp_path / src.name, index=False)
    pd.DataFrame({"seed": [0]}).to_csv(tmp_path / "75_1.0_0.5_linear_coverage.csv", index=False)
    assert bench.add_season_oe(tmp_path) == [src.name]
    new = pd.read_csv(tmp_path / src.name)
    pd.testing.assert_frame_equal(new[old.columns], old)
    for seed in (0, 2):
        want = bench.season_oe(bench.cohort_of(75, 1.0, 0.5, seed))
        got = new.loc[new["seed"] == seed, ["truth_oe_train", "truth_oe_test"]].drop_duplicates()
        assert len(got) == 1 and tuple(got.iloc[0]) == pytest.approx(want)
    assert bench.add_season_oe(tmp_path) == []


def test_day_type_shares_count_the_athletes_own_last_28_days(bench):
    """Shares of match, training and rest days among an athlete's days at risk in the 28 days up to each row, by hand:
    days outside the window, other athletes and days not at risk (no row) do not count."""
    d = pd.Timestamp("2026-01-01")
    ctx = pd.DataFrame(
        {
            "athlete_id": ["a"] * 5 + ["b"] * 2,
            "date": [
                d,
                d + pd.Timedelta(days=1),
                d + pd.Timedelta(days=2),
                d + pd.Timedelta(days=20),
                d + pd.Timedelta(days=30),
            ]
            + [d, d + pd.Timedelta(days=1)],
            "match_day": [1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0],
            "rest_day": [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        }
    )
    rows = ctx.iloc[[4, 3, 6]]  # a on day 30 (window days 3..30: days 20 and 30), a on day 20 (all four), b on day 1
    got = bench.day_type_shares(ctx, rows)
    want = [[0.5, 0.5, 0.0], [0.5, 0.25, 0.25], [1.0, 0.0, 0.0]]  # match, training, rest
    np.testing.assert_allclose(got[["share_match", "share_training", "share_rest"]].to_numpy(), want)


def test_mix_risk_is_the_held_risk_when_every_day_is_alike(bench):
    "All days of one type give the held 7-day risk 1-(1-h)^7; an even mix gives 1-(1-h_a)^3.5(1-h_b)^3.5."
    h = {"match": np.array([0.02, 0.001]), "training": np.array([0.01, 0.0005]), "rest": np.array([0.004, 0.0002])}
    only_training = pd.DataFrame({"share_match": [0.0, 0.0], "share_training": [1.0, 1.0], "share_rest": [0.0, 0.0]})
    np.testing.assert_allclose(bench.mix_risk(h, only_training), 1 - (1 - h["training"]) ** 7)
    half = pd.DataFrame({"share_match": [0.5, 0.5], "share_training": [0.0, 0.0], "share_rest": [0.5, 0.5]})
    want = 1 - (1 - h["match"]) ** 3.5 * (1 - h["rest"]) ** 3.5
    np.testing.assert_allclose(bench.mix_risk(h, half), want)


def test_the_oracles_day_mix_differs_from_held_only_in_the_day_type(bench):
    """On a cohort whose days are scored by the truth: a row whose athlete had only its own day type in the last 28
    days keeps the held risk; the mix moves risks towards the athlete's usual week."""
    c, tables, sp = bench.make_data(50, 1.0, 0.5, 0)
    ctx = pd.concat([sp.train, sp.test], ignore_index=True)
    test = sp.test[sp.test["label"].notna()].reset_index(drop=True)
    held = bench.oracle_scores(c, test, True)[1]
    sh = bench.day_type_shares(ctx, test)
    mix = bench.oracle_day_mix(c, sh, test, True)
    assert len(mix) == len(test) and np.isfinite(mix).all() and not np.allclose(mix, held)
    today = np.select([test["match_day"] == 1, test["rest_day"] == 1], ["match", "rest"], "training")
    pure = sh.to_numpy().max(axis=1) == 1.0
    same = pure & (
        sh.to_numpy().argmax(axis=1) == pd.Series(today).map({"match": 0, "training": 1, "rest": 2}).to_numpy()
    )
    assert same.any()  # off-season weeks: 28 days of one type
    np.testing.assert_allclose(mix[same], held[same])
    rest = test["rest_day"].to_numpy() == 1
    assert (
        np.median(mix[rest] / held[rest])
        > 1
        > np.median(mix[test["match_day"].to_numpy() == 1] / held[test["match_day"].to_numpy() == 1])
    )


def test_clopper_pearson_matches_scipy(bench):
    for k, n in [(0, 10), (9, 10), (85, 96), (96, 96)]:
        ci = binomtest(k, n).proportion_ci(0.95, method="exact")
        assert np.allclose(bench.clopper_pearson(k, n), (ci.low, ci.high))


def test_cells_parse_with_and_without_a_truth(bench):
    assert bench._parse_cells("300:1.0:0.5,75:0:0:u_acwr") == [(300, 1.0, 0.5, "linear"), (75, 0.0, 0.0, "u_acwr")]
    assert {c[3] for c in bench.FULL_CELLS} == {"linear", "u_acwr", "lagged_acwr", "return"}
    assert len(bench.FULL_CELLS) == 27 + 3


def test_summary_pools_coverage_over_fits(bench):
    t = pd.DataFrame(
        dict(
            scenario="linear",
            athletes=75,
            acwr_effect=1.0,
            frailty=0.5,
            method="Bayes hierarchical logit",
            seed=[0, 1],
            auc_label=[0.6, 0.7],
            fe_covered=[15, 12],
            fe_total=[16, 16],
            acwr_covered=[1.0, 0.0],
            gap_rule_excl0=[1.0, 0.0],
        )
    )
    s = bench.summarise(t).iloc[0]
    assert s["fe_coverage"] == pytest.approx(27 / 32) and s["acwr_coverage"] == 0.5 and s["seeds"] == 2
    assert s["auc_label"] == pytest.approx(0.65) and s["gap_rule_excl0_share"] == 0.5


@pytest.mark.slow
def test_coverage_counts_every_fixed_effect_with_a_truth(bench):
    from pitchlab.features import build_features
    from pitchlab.models.bayes import QUICK_SAMPLER, HazardModel, history_from_truth
    from pitchlab.synth import make_cohort

    for scenario, dropped in [("linear", set()), ("u_acwr", {"acwr"})]:
        c = make_cohort(n_teams=3, athletes_per_team=10, seasons=1, seed=1, scenario=scenario)
        f = build_features({**c.tables(), "injuries": history_from_truth(c)}, horizon=7)
        m = HazardModel({}, {**QUICK_SAMPLER, "random_seed": 0})
        m.fit(f)
        cov = bench.fixed_effect_coverage(c, m).set_index("parameter")
        assert not {"intercept", "sigma_team", "sigma_athlete", "speed_drop"} & set(cov.index)
        want = {"chronic", "prev_injury", "match_day", "rest_day", "phase_ovulatory"} | ({"acwr"} - dropped)
        assert want <= set(cov.index) and not dropped & set(cov.index), cov.index
        st = m.info["terms"]["chronic"]
        assert cov.loc["chronic", "truth"] == pytest.approx(-0.3 * st["scale"] / 200.0)
        assert (cov["inside"] == ((cov["hdi_lo"] <= cov["truth"]) & (cov["truth"] <= cov["hdi_hi"]))).all()
        assert len(cov) >= 10


@pytest.mark.slow
def test_quick_benchmark_runs_and_reports(tmp_path):
    "The quick mode with one seed per cell (CI time): every method in every cell, the coverage line, the BENCH line."
    out = tmp_path / "bench.csv"
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_injury.py"), "--quick", "--seeds", "1", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=1500,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    lines = r.stdout.strip().splitlines()
    m = re.fullmatch(r"BENCH injury bayes_gap_300=(\S+) oe_300=(\S+) coverage=(\S+)", lines[-1])
    assert m, lines[-1]
    gap, oe, cov = (float(v) for v in m.groups())
    assert -0.2 < gap < 0.3 and 0.2 < oe < 5 and 0 <= cov <= 1
    t = pd.read_csv(out)
    syn = t[t["scenario"] != "hamstring (real)"]
    cells = syn.groupby(["athletes", "acwr_effect", "frailty", "scenario", "seed"])["method"].apply(set)
    assert len(cells) == 3 and all(METHODS <= s for s in cells), cells
    ham = t[t["scenario"] == "hamstring (real)"]
    assert set(ham["method"]) == {"ACWR rule 1.5", "GLM logistic", "Bayes hierarchical logit"}
    assert (ham["events_train"] + ham["events_test"] == 6).all()
    mn = re.search(
        r"null's 95% range in (\d+) of 20 cohorts .* lies inside 91\.4% of the time with 50 permutations", r.stdout
    )
    assert mn and 0 <= int(mn[1]) <= 20, r.stdout[-2000:]
    cv = pd.read_csv(str(out).replace(".csv", "_coverage.csv"))
    k, n = int(cv["inside"].sum()), len(cv)
    mc = re.search(r"coverage: (\d+) of (\d+) 94% intervals", r.stdout)
    assert mc and (int(mc[1]), int(mc[2])) == (k, n) and n >= 3 * 10
    assert cov == pytest.approx(round(k / n, 3), abs=1e-3)
    summary = pd.read_csv(str(out).replace(".csv", "_summary.csv"))
    need = {"auc_label", "auc_daily", "gap_oracle", "gap_rule", "gap_rule_excl0_share", "oe", "oe_vs_oracle", "slope"}
    assert need | {"fe_coverage"} <= set(summary)
    assert (syn.loc[syn["method"] == "learnable oracle", "gap_oracle"] == 0).all()
    assert (syn.loc[syn["method"] == "oracle (frailty)", "oe_vs_oracle"] == 1).all()
    luck = syn.groupby(["athletes", "acwr_effect", "seed"])[["truth_oe_train", "truth_oe_test"]].nunique()
    assert (luck == 1).all().all() and syn["truth_oe_train"].between(0.3, 3).all()


def test_a_grid_resumes_from_its_cell_folder(bench, tmp_path, capsys):
    """`--cell-dir`: seeds found in the folder are reused, not fitted again, and the combined table is the one a run in
    one sitting gives. The folder is filled from the committed 75-athlete row of the full grid (results/grid)."""
    grid = ROOT / "benchmarks" / "results" / "grid"
    cells = [(75, 0.0, 0.0, "linear"), (75, 1.0, 1.0, "linear")]
    kept = [bench.cached_seeds(grid, cell, range(3)) for cell in cells]
    assert all(todo == [] and sorted(set(t["seed"])) == [0, 1, 2] for t, _, todo in kept)
    for cell, (t, c, _) in zip(cells, kept):
        for seed in range(3):
            bench.keep_seed(tmp_path, cell, t[t["seed"] == seed], c[c["seed"] == seed])
    old, old_cov, todo = bench.cached_seeds(tmp_path, cells[0], range(4))
    assert todo == [3] and sorted(set(old["seed"])) == [0, 1, 2] and set(old_cov["seed"]) == {0, 1, 2}
    out = tmp_path / "combined.csv"
    argv = ["--cells", "75:0:0,75:1:1", "--seeds", "3", "--cell-dir", str(tmp_path), "--no-hamstring"]
    assert bench.main(argv + ["--null-cohorts", "0", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.count(f"seeds [0, 1, 2] from {tmp_path}") == 2 and " CPU s\n" not in printed.split("coverage:")[0]
    keys = ["scenario", "frailty", "acwr_effect", "athletes", "method"]
    got = pd.read_csv(str(out).replace(".csv", "_summary.csv")).set_index(keys).sort_index()
    want = bench.summarise(pd.concat([t for t, _, _ in kept], ignore_index=True)).set_index(keys).sort_index()
    assert len(got) == 2 * 13 and got.loc[("linear", 1.0, 1.0, 75, "oracle (frailty)"), "seeds"] == 3
    pd.testing.assert_frame_equal(got, want[got.columns], check_exact=False, rtol=1e-9)
    k, n = sum(int(c["inside"].sum()) for _, c, _ in kept), sum(len(c) for _, c, _ in kept)
    assert f"coverage: {k} of {n} 94% intervals" in printed


def test_the_grid_figure_draws_the_committed_grid_medians(bench, tmp_path, capsys):
    grid = bench.read_grid()
    assert sorted(grid["athletes"].unique()) == [75, 300, 1200]
    summary = bench.summarise(grid)
    fig = bench.grid_figure(summary)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["75 athletes", "300 athletes", "1200 athletes"]
    big = panels[2]
    hier = [ln for ln in big.get_lines() if ln.get_label() == "Bayes hierarchical logit"][0]
    want = summary[
        (summary["athletes"] == 1200)
        & (summary["scenario"] == "linear")
        & (summary["method"] == "Bayes hierarchical logit")
    ].sort_values(["acwr_effect", "frailty"])["auc_label"]
    assert len(want) == 9
    np.testing.assert_allclose(hier.get_ydata(), want.to_numpy())
    # the command line writes the same figure as a PNG
    out = tmp_path / "grid.png"
    assert bench.main(["--grid-figure", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"{len(grid)} rows of 3 squad sizes" in capsys.readouterr().out
    cov = bench.read_grid(coverage=True)
    assert set(cov.columns) >= {"parameter", "truth", "inside"} and len(cov) == 5442
    with pytest.raises(FileNotFoundError, match="no grid tables in"):
        bench.read_grid(tmp_path)
