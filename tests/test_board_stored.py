"""The board reads what `pitchlab score` stored for its day (on SQLite and PostgreSQL): its numbers equal the stored
rows, a re-score with a new champion changes them, a past day is looked up again; without a champion it is the one
ACWR rule (pitchlab.models.baselines.ACWRRule), with rates from the store's injuries or bands without a probability."""

import numpy as np
import pandas as pd
import pytest

from pitchlab.board import default_risk_provider, read_frames, team_board

# slow: trains and registers champions in MLflow; `make test` (--runslow) runs it, `make test-quick` does not
pytestmark = pytest.mark.slow


def _squad(url, monkeypatch, tmp_path):
    "A one-team store with a season of synthetic data and an empty MLflow registry of its own."
    from pitchlab.registry import Registry
    from pitchlab.store import Store
    from pitchlab.synth import make_cohort

    monkeypatch.setenv("PITCHLAB_DB_URL", url)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    st = Store(url, actor="test").create()
    co = make_cohort(n_teams=1, athletes_per_team=8, seasons=1, seed=11)
    for n in ("teams", "athletes", "sessions", "wellness", "injuries"):
        st.write(n, getattr(co, n), source="synthetic")
    reg = Registry(f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=tmp_path / "artifacts")
    return st, reg, co


@pytest.fixture
def squad(db_url, home, monkeypatch, tmp_path):
    "The squad on each backend (SQLite and PostgreSQL)."
    return _squad(db_url, monkeypatch, tmp_path)


@pytest.fixture
def squad1(home, monkeypatch, tmp_path):
    "The squad on SQLite only, for what does not depend on the backend (the API tests cover both)."
    return _squad(f"sqlite:///{tmp_path / 'store.db'}", monkeypatch, tmp_path)


def _champion(st, reg, edges):
    "Register and promote an ACWR rule with these edges, fitted on the store (a real registered model)."
    from pitchlab.features import build_features
    from pitchlab.models.baselines import ACWRRule
    from pitchlab.registry import PickledModel
    from pitchlab.score import SCORED_TABLES

    feats = build_features({t: st.read(t) for t in SCORED_TABLES}, horizon=7)
    logged = reg.log_model("injury_risk", PickledModel(ACWRRule(edges=edges).fit(feats)), metrics={"auc": 0.6})
    reg.promote("injury_risk", logged["version"], force=True, actor="test")
    return logged


def _board(st, day=None):
    ath = st.read("athletes")
    return team_board(read_frames(st, list(ath.athlete_id), day=day), ath, default_risk_provider(st)).set_index(
        "athlete_id"
    )


def _stored(st, day, version):
    p = st.read("predictions", start=day, end=day)
    return p[p.model_version == str(version)].set_index("athlete_id")


def test_the_board_shows_the_stored_rows_and_a_new_champion_changes_them(squad):
    from pitchlab.score import score_day

    st, reg, _ = squad
    v1 = _champion(st, reg, "gabbett")["version"]
    s1 = score_day(store=st, registry=reg)
    day = s1["day"]
    b1, p1 = _board(st), _stored(st, day, v1)
    assert len(p1) == s1["athletes"] > 0
    on = b1.loc[p1.index]
    assert (on.risk_source == "stored").all() and set(on.model) == {f"injury_risk v{v1}"}
    np.testing.assert_allclose(on[["risk", "lower", "upper"]].astype(float), p1[["risk", "lower", "upper"]], rtol=1e-12)
    assert on.level.tolist() == p1.tier.tolist() and on.scored_at.notna().all()
    assert (b1.drop(p1.index).risk_source == "live, not stored").all()  # athletes not at risk that day
    v2 = _champion(st, reg, "warren_hulin")["version"]
    score_day(store=st, registry=reg)
    b2, p2 = _board(st), _stored(st, day, v2)
    on2 = b2.loc[p2.index]
    assert set(on2.model) == {f"injury_risk v{v2}"} and (on2.risk_source == "stored").all()
    np.testing.assert_allclose(on2["risk"].astype(float), p2["risk"], rtol=1e-12)
    assert not np.allclose(on2["risk"].astype(float), b1.loc[p2.index, "risk"].astype(float))  # the re-score shows
    assert len(_stored(st, day, v1)) == len(p1)  # what v1 said that day stays on record


def test_a_past_day_is_live_until_scored_then_reads_its_stored_rows_and_so_does_the_report(squad1):
    from pitchlab.monitor import week_risk
    from pitchlab.score import score_day

    st, reg, co = squad1
    v = _champion(st, reg, "gabbett")["version"]
    ids = list(co.athletes.athlete_id)
    past = (co.sessions.date.max() - pd.Timedelta(days=20)).normalize()
    live = _board(st, past)
    assert set(live.risk_source) == {"live, not stored"} and set(live.model) == {f"injury_risk v{v}"}
    wl = week_risk(st, ids, past)
    assert len(wl) > 0 and set(wl.risk_source) == {"live, not stored"} and set(wl.model) == {f"injury_risk v{v}"}
    assert len(_stored(st, past, v)) == 0  # computed, not stored
    score_day(day=past, store=st, registry=reg)
    then, p = _board(st, past), _stored(st, past, v)
    assert len(p) > 0 and (then.loc[p.index, "risk_source"] == "stored").all()
    np.testing.assert_allclose(then.loc[p.index, "risk"].astype(float), p["risk"], rtol=1e-12)
    later = _board(st, past)
    pd.testing.assert_frame_equal(later, then)  # the same day looked up again gives the same board
    r = week_risk(st, ids, past).set_index("athlete_id")
    assert set(r.risk_source) == {"stored"} and sorted(r.index) == sorted(p.index)
    np.testing.assert_allclose(r.loc[p.index, "risk"].astype(float), p["risk"], rtol=1e-12)


def test_without_a_champion_the_board_is_the_acwr_rule_fitted_on_the_store(squad1):
    from pitchlab.models.baselines import ACWRRule

    st, _, _ = squad1
    prov = default_risk_provider(st)
    assert isinstance(prov.live.rule, ACWRRule) and prov.live.fitted
    b = _board(st)
    assert set(b.model) == {"rule-based (no trained model)"} and set(b.risk_source) == {"live, not stored"}
    bands = prov.live.rule.bands()
    known = b[b.acwr.notna()]
    assert set(np.round(known.risk, 12)) <= set(np.round(bands.risk, 12))  # each band's rate from the squad's data
    assert "rule-based (no trained model)" in prov.label and "injuries" in prov.label


def test_a_squad_without_injuries_gets_rule_bands_and_no_probability(db_url, home):  # both: the store's reads
    from pitchlab.store import Store
    from pitchlab.synth import make_cohort

    st = Store(db_url, actor="test").create()
    co = make_cohort(n_teams=1, athletes_per_team=6, seasons=1, seed=3)
    for n in ("teams", "athletes", "sessions"):
        st.write(n, getattr(co, n), source="synthetic")
    prov = default_risk_provider(st)
    b = _board(st)
    assert not prov.live.fitted and b.risk.isna().all()
    assert set(b.level) <= {"low", "elevated", "high", ""} and (b.level[b.acwr.notna()] != "").all()
    assert "no injuries recorded, so no probability" in prov.label


def test_a_corrected_injury_refits_the_rule_though_no_row_was_added(squad1):
    "An upsert keeps the row count: the rule's cache is keyed on Store.version, so the board refits on the corrected data."
    from pitchlab.board import RULE_EDGES
    from pitchlab.models.baselines import ACWRRule

    st, _, _ = squad1
    before = default_risk_provider(st).live.rule
    n, v0 = len(st.read("injuries")), st.version(["injuries"])
    inj = st.read("injuries")
    st.write("injuries", inj.assign(onset_date=inj.onset_date + pd.Timedelta(days=10)), source="correction")
    assert len(st.read("injuries")) == n and st.version(["injuries"]) != v0
    after = default_risk_provider(st).live.rule
    assert after is not before
    fresh = ACWRRule.from_tables({t: st.read(t) for t in ("athletes", "sessions", "injuries")}, edges=RULE_EDGES)
    pd.testing.assert_frame_equal(after.bands(), fresh.bands())
    assert not after.bands().equals(before.bands())
