"""pitchlab.load on a Dask-backed calendar, run on a dask.distributed LocalCluster: same numbers as in memory."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from pitchlab.load import METRICS, calendar, daily_metrics, example_sessions, to_frame

import dask.distributed as distributed


@pytest.fixture(scope="module")
def client():
    "Two in-process workers (threads: quick to start, bounded, always closed)."
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None)
    c = distributed.Client(cluster)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


@pytest.fixture(scope="module")
def sessions():
    s = example_sessions(n_athletes=25, n_days=200, seed=11)
    late = s["athlete_id"] == "P003"  # an athlete who starts mid-season
    s = s[~late | (s["date"] >= "2024-03-01")]
    return pd.concat([s, s.iloc[:40].assign(load=lambda x: x["load"] * 0.5)]).assign(
        pitches=lambda x: (x["load"] // 20).astype(int)
    )


@pytest.mark.timeout(180)
def test_distributed_matches_in_memory(client, sessions):
    memory = daily_metrics(sessions, ewma="goldencheetah", ctl0={"P001": 40.0})
    cal = calendar(sessions).chunk({"athlete_id": 6})
    lazy = daily_metrics(cal, ewma="goldencheetah", ctl0={"P001": 40.0})
    assert lazy["acwr_ewma"].chunks[0] == (6, 6, 6, 6, 1)  # chunked by athlete, dates whole
    assert len(lazy["acwr_ewma"].chunks[1]) == 1
    done = client.compute(lazy).result()
    names = list(METRICS) + ["qc", "pitches_7d", "pitches_28d", "days_rest"]
    xr.testing.assert_identical(done[names], memory[names])
    assert client.run(lambda: 1) and len(client.scheduler_info()["workers"]) == 2


@pytest.mark.timeout(180)
def test_distributed_unreported_days_and_long_output(client, sessions):
    reported = sessions[["athlete_id", "date"]].drop_duplicates()  # only training days reported: rest days missing
    cal = calendar(sessions, reported=reported)
    memory = daily_metrics(cal, max_missing=0.3)
    lazy = daily_metrics(cal.chunk({"athlete_id": 10}), max_missing=0.3).persist()
    a, b = to_frame(lazy), to_frame(memory)
    pd.testing.assert_frame_equal(a, b)
    assert np.isnan(b["acwr_rolling"]).any() and np.isfinite(b["acwr_rolling"]).any()
