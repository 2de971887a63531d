"""Every catalog entry opens and has its columns; the demo cohort is the same through the catalog, synth and the store."""

import pandas as pd
import pytest

from pitchlab import catalog, cli, synth
from pitchlab.schema import ENTITIES

SMALL = dict(seed=3, n_teams=3, athletes_per_team=4, seasons=1)


@pytest.fixture
def demo_home(home):
    cli.demo(
        seed=SMALL["seed"],
        athletes_per_team=SMALL["athletes_per_team"],
        seasons=SMALL["seasons"],
        end="2026-01-04",  # the catalog's seasons start on make_cohort's default day, 2025-01-06
        quiet=True,
        train=False,
    )
    return home


def test_every_entry_opens_with_its_columns_and_provenance(demo_home):
    entries = catalog.walk()
    assert len(entries) >= 30
    for name, rd in entries.items():
        md = rd.metadata
        assert md.get("description") and md.get("origin"), f"{name} lacks description or origin"
        family, entry = name.split(".")
        df = rd(**SMALL).read() if family == "synthetic" else rd.read()
        assert isinstance(df, pd.DataFrame), name
        want = md.get("columns") or (ENTITIES[entry].columns if entry in ENTITIES and entry != "audit" else [])
        if entry == "users":
            want = [c for c in want if c != "password_hash"]
        assert set(want) <= set(df.columns), f"{name}: missing {set(want) - set(df.columns)}"
        if family == "samples" and entry != "fit_monitoring":
            assert len(df) > 0, name
    samples = {k: v.read() for k, v in entries.items() if k.startswith("samples.statcast")}
    assert len(samples["samples.statcast_darvish"]) == 438
    assert samples["samples.statcast_single_game"].pitcher.nunique() == 10


def test_demo_cohort_is_the_same_through_catalog_synth_and_store(demo_home):
    cat = catalog.open_catalog()
    cohort = synth.make_cohort(n_teams=3, athletes_per_team=4, seasons=1, seed=SMALL["seed"])
    direct = cohort.tables()
    syn, store = cat.synthetic.read(), cat.store.read()
    for t in ["teams", "athletes", "sessions", "pitches", "wellness", "cycle_logs", "injuries"]:
        pd.testing.assert_frame_equal(syn[t](**SMALL).read(), direct[t], obj=f"synthetic.{t}")
        key = list(ENTITIES[t].key)
        want = direct[t][ENTITIES[t].columns].sort_values(key).reset_index(drop=True)
        got = store[t].read()[ENTITIES[t].columns].sort_values(key).reset_index(drop=True)
        pd.testing.assert_frame_equal(got, want, check_dtype=False, check_exact=False, rtol=1e-9, obj=f"store.{t}")
    m = store["daily_metrics"].read()
    assert {"athlete_id", "date", "acwr_ewma", "ctl"} <= set(m.columns)
    assert m.athlete_id.nunique() == len(direct["athletes"])


def test_missing_derived_table_says_how_to_make_it(home):
    from pitchlab.core import NotFoundError

    with pytest.raises(NotFoundError, match="run `pitchlab demo`"):
        catalog.derived_table("daily_metrics")
