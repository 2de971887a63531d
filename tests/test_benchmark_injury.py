"""The open benchmark's quick mode (benchmarks/bench_injury.py --quick): it runs end to end, its BENCH line parses and
its table has a row for every method in every cell."""

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
METHODS = {
    "oracle (frailty)",
    "learnable oracle",
    "ACWR rule 1.5",
    "ACWR rule (90th pct band)",
    "acute load alone",
    "GLM logistic",
    "gradient boosting",
    "Bayes hierarchical logit",
}


@pytest.mark.slow
def test_quick_benchmark_runs_and_reports(tmp_path):
    out = tmp_path / "bench.csv"
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_injury.py"), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=1200,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    last = r.stdout.strip().splitlines()[-1]
    m = re.fullmatch(r"BENCH injury bayes_gap_300=(\S+) oe_300=(\S+) coverage=(\S+)", last)
    assert m, last
    gap, oe, cov = (float(v) for v in m.groups())
    assert -0.2 < gap < 0.3 and 0.2 < oe < 5 and 0 <= cov <= 1
    t = pd.read_csv(out)
    cells = t.groupby(["athletes", "acwr_effect", "frailty", "seed"])["method"].apply(set)
    assert len(cells) == 2 and all(METHODS <= s for s in cells), cells
    assert "inside the random-denominator null" in r.stdout
    summary = pd.read_csv(str(out).replace(".csv", "_summary.csv"))
    assert {"auc_label", "auc_daily", "gap_oracle", "gap_rule", "gap_rule_excl0_share", "oe", "slope"} <= set(summary)
    oracle = t[t["method"] == "learnable oracle"]
    assert (oracle["gap_oracle"] == 0).all()
