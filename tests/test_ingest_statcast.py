"""Statcast ingestion on the shared files and the newer-layout fixture, on SQLite and PostgreSQL."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pitchlab.core import ConfigError, ValidationError, project_root
from pitchlab.ingest.statcast import (
    appearances_from_pitches,
    ingest_statcast,
    pitcher_trends,
    pitches_frame,
    read_statcast,
    stored_pitcher_trends,
)
from pitchlab.store import Store

ROOT = project_root(Path(__file__).parent)
DARVISH = ROOT / "data/samples/statcast/pybaseball_raw_darvish_data.csv"
GAME = ROOT / "data/samples/statcast/pybaseball_single_game_request_raw.csv"
NEWER = ROOT / "tests/data/ingest/statcast_newer_layout.csv"


def _store(url):
    st = Store(url).create()
    st.write(
        "teams",
        pd.DataFrame(
            [
                dict(team_id="chc", name="Chicago Cubs", sport="baseball"),
                dict(team_id="mlb", name="MLB", sport="baseball"),
            ]
        ),
    )
    return st


def test_darvish_loads_with_the_right_counts_and_means_and_reloads_unchanged(db_url):
    st = _store(db_url)
    rep = ingest_statcast(st, DARVISH, team="chc", create_athletes=True)
    assert (rep.read, rep.quarantined, rep.errors, rep.created_athletes) == (438, 0, [], ["mlbam:506433"])
    p = st.read("pitches")
    assert len(p) == 438 and set(p.athlete_id) == {"mlbam:506433"}
    ff = p[p.pitch_type == "FF"]
    assert ff.release_speed.mean() == pytest.approx(95.0065, abs=0.005)
    assert round(ff.release_speed.mean(), 2) == 95.01 and round(ff.release_spin_rate.mean(), 2) == 2529.85
    apps = st.read("appearances").sort_values("game_date")
    assert apps.pitches.tolist() == [86, 94, 83, 77, 98] and apps.pitches.sum() == 438
    assert apps.days_rest.tolist()[1:] == [9, 5, 6, 7] and pd.isna(apps.days_rest.iloc[0])
    assert apps.innings.tolist() == [7.0, 6.0, 6.0, 6.0, 6.0]
    types = st.read("appearance_pitch_types")
    assert (
        types.groupby("game_pk").pitches.sum().sort_index().tolist()
        == apps.set_index("game_pk").pitches.sort_index().tolist()
    )
    ses = st.read("sessions").sort_values("date")
    assert ses.pitches.tolist() == [86, 94, 83, 77, 98] and ses.load.tolist() == [86.0, 94.0, 83.0, 77.0, 98.0]
    assert set(ses.session_type) == {"match"} and set(ses.sport) == {"baseball"} and set(ses.source) == {"statcast"}
    assert set(ses.source_id) == {f"{g}:506433" for g in apps.game_pk}
    a = st.read("athletes").set_index("athlete_id").loc["mlbam:506433"]
    assert (a["name"], a["role"], a["position"], a["team_id"]) == ("Yu Darvish", "pitcher", "RHP", "chc")

    before = st.counts()
    again = ingest_statcast(st, DARVISH)
    assert (again.inserted, again.updated, again.quarantined) == (0, 0, 0)
    assert again.unchanged == 438 + 5 + len(types) + 5
    pd.testing.assert_series_equal(st.counts(), before)


def test_unknown_pitchers_are_listed_and_quarantined_not_created(tmp_path):
    st = _store(f"sqlite:///{tmp_path}/s.db")
    rep = ingest_statcast(st, GAME)
    assert rep.inserted == 0 and rep.created_athletes == []
    assert len(rep.unknown_athletes) == 10 and sum(u["rows"] for u in rep.unknown_athletes) == 336
    assert all("--create-athletes" in u["reason"] for u in rep.unknown_athletes)
    assert st.counts()["athletes"] == 0 and st.counts()["pitches"] == 0
    q = st.quarantine("pitches")
    assert len(q) == 336 and q.reason.str.startswith("unknown athlete_id 'mlbam:").all()
    with pytest.raises(ConfigError, match="needs a team"):
        ingest_statcast(st, GAME, create_athletes=True)
    with pytest.raises(ConfigError, match="no team 'nope'"):
        ingest_statcast(st, GAME, team="nope", create_athletes=True)
    later = ingest_statcast(st, GAME, team="mlb", create_athletes=True)
    assert later.entities().loc["pitches", "inserted"] == 336 and len(later.created_athletes) == 10
    # player_name names the batters in a game request: pitchers are not given a batter's name
    assert st.read("athletes").name.str.startswith("MLBAM ").all()


def test_game_file_appearances_match_a_plain_groupby(tmp_path):
    st = _store(f"sqlite:///{tmp_path}/s.db")
    ingest_statcast(st, GAME, team="mlb", create_athletes=True)
    raw = pd.read_csv(GAME)
    want = raw.groupby("pitcher").agg(
        n=("pitch_number", "size"),
        v=("release_speed", "mean"),
        vmax=("release_speed", "max"),
        spin=("release_spin_rate", "mean"),
        inn=("inning", "nunique"),
    )
    got = (
        st.read("appearances")
        .assign(pitcher=lambda d: d.athlete_id.str[6:].astype(int))
        .set_index("pitcher")
        .sort_index()
    )
    assert got.pitches.tolist() == want.n.tolist()
    np.testing.assert_allclose(got.release_speed_mean, want.v, rtol=1e-12)
    np.testing.assert_allclose(got.release_speed_max, want.vmax, rtol=1e-12)
    np.testing.assert_allclose(got.spin_mean, want.spin, rtol=1e-12)
    assert got.innings.tolist() == want.inn.astype(float).tolist()


def test_newer_layout_is_read_by_name_with_spin_axis_and_savant_rest(tmp_path):
    sf = read_statcast(NEWER)
    assert "newer layout" in sf.layout and "spin_axis" in sf.raw and sf.n_columns > 100
    st = _store(f"sqlite:///{tmp_path}/s.db")
    rep = ingest_statcast(st, NEWER, team="mlb", create_athletes=True)
    assert rep.quarantined == 0 and rep.read == 60
    p = st.read("pitches")
    assert p.spin_axis.notna().all() and p.spin_axis.between(0, 360).all()
    apps = st.read("appearances").set_index("athlete_id")
    assert apps.loc["mlbam:592836", "days_rest"] == 5 and apps.loc["mlbam:641743", "days_rest"] == 2
    # the same pitches from the older layout of the same game give the same appearance figures
    st2 = _store(f"sqlite:///{tmp_path}/s2.db")
    ingest_statcast(st2, GAME, team="mlb", create_athletes=True)
    old = st2.read("pitches").set_index(["game_pk", "at_bat_number", "pitch_number"])
    new = p.set_index(["game_pk", "at_bat_number", "pitch_number"])
    pd.testing.assert_frame_equal(new.drop(columns="spin_axis"), old.loc[new.index].drop(columns="spin_axis"))


def test_missing_required_columns_are_named(tmp_path):
    raw = pd.read_csv(DARVISH, dtype=str, keep_default_na=False)
    p = tmp_path / "no_ab.csv"
    raw.drop(columns=["at_bat_number"]).to_csv(p, index=False)
    with pytest.raises(
        ValidationError, match=r"no_ab.csv lacks required Statcast column\(s\): missing \['at_bat_number'\]"
    ):
        read_statcast(p)
    q = tmp_path / "other.csv"
    q.write_text("date,rpe\n2025-01-01,5\n")
    with pytest.raises(ValidationError, match="other.csv is not a Statcast"):
        read_statcast(q)


def test_out_of_order_loading_gives_the_same_days_rest(tmp_path):
    raw = pd.read_csv(DARVISH, dtype=str, keep_default_na=False)
    late, early = tmp_path / "late.csv", tmp_path / "early.csv"
    raw[raw.game_date > "2019-07-10"].to_csv(late, index=False)
    raw[raw.game_date <= "2019-07-10"].to_csv(early, index=False)
    st = _store(f"sqlite:///{tmp_path}/s.db")
    ingest_statcast(st, late, team="chc", create_athletes=True)
    assert pd.isna(st.read("appearances").sort_values("game_date").days_rest.iloc[0])
    rep = ingest_statcast(st, early)
    assert rep.entities().loc["appearances", "updated"] == 1  # 12 July: rest now known (9 days)
    assert st.read("appearances").sort_values("game_date").days_rest.tolist()[1:] == [9, 5, 6, 7]


def test_a_truncated_copy_loaded_later_does_not_shrink_appearances(tmp_path):
    st = _store(f"sqlite:///{tmp_path}/s.db")
    ingest_statcast(st, DARVISH, team="chc", create_athletes=True)
    text = DARVISH.read_text()
    cut = tmp_path / "cut.csv"
    cut.write_text(text[: len(text) // 3])  # ends inside a row
    rep = ingest_statcast(st, cut)
    assert rep.entities().loc["pitches", "quarantined"] <= 1
    assert st.read("appearances").sort_values("game_date").pitches.tolist() == [86, 94, 83, 77, 98]
    assert len(st.read("pitches")) == 438


def test_bad_readings_are_quarantined_but_the_pitch_still_counts(tmp_path):
    raw = pd.read_csv(DARVISH, dtype=str, keep_default_na=False)
    raw.loc[0, "release_speed"] = "197.3"  # radar glitch
    raw.loc[1, "release_spin_rate"] = "null"  # Savant's own "no value"
    p = tmp_path / "glitch.csv"
    raw.to_csv(p, index=False)
    st = _store(f"sqlite:///{tmp_path}/s.db")
    rep = ingest_statcast(st, p, team="chc", create_athletes=True)
    rej = rep.rejects()
    assert rej[["row", "field"]].values.tolist() == [[2, "release_speed"]]
    apps = st.read("appearances").set_index("game_pk")
    assert apps.loc[566619, "pitches"] == 98  # the glitched pitch is still a pitch
    assert apps.loc[566619, "release_speed_max"] < 110
    assert len(st.read("pitches")) == 437


def test_trends_compare_each_appearance_with_the_earlier_ones():
    p = pitches_frame(read_statcast(DARVISH))
    _, types = appearances_from_pitches(p)
    tr = pitcher_trends(types, window=2, min_history=2)
    ff = tr[tr.pitch_type == "FF"].sort_values("game_date").reset_index(drop=True)
    assert ff.speed_baseline.isna().tolist() == [True, True, False, False, False]
    assert ff.speed_baseline[2] == pytest.approx(ff.release_speed_mean[:2].mean())
    assert ff.speed_z[3] == pytest.approx(
        (ff.release_speed_mean[3] - ff.release_speed_mean[1:3].mean()) / ff.release_speed_mean[1:3].std()
    )
    assert ff.n_baseline.tolist() == [0, 1, 2, 2, 2]
    with pytest.raises(ConfigError):
        pitcher_trends(types, window=2, min_history=3)
    assert list(pitcher_trends(types.iloc[:0]).columns)[:3] == ["athlete_id", "game_pk", "game_date"]


def test_catalog_entries_read_the_ingested_tables(home):
    import intake
    from pitchlab.core import settings

    st = _store(settings().db_url)
    ingest_statcast(st, DARVISH, team="chc", create_athletes=True)
    cat = intake.open_catalog(str(ROOT / "catalogs/ingested.yaml"))
    assert set(cat.entries) >= {"appearances", "appearance_pitch_types", "rr_intervals", "pitcher_trends"}
    for name in cat.entries:
        rd = cat[name]
        assert rd.metadata.get("description") and rd.metadata.get("origin")
        df = rd.read()
        assert set(rd.metadata.get("columns") or []) <= set(df.columns)
    assert len(cat["appearances"].read()) == 5
    tr = cat["pitcher_trends"](window=3, min_history=2).read()
    pd.testing.assert_frame_equal(tr, stored_pitcher_trends(3, 2, store=st))
    assert tr.speed_baseline.notna().sum() > 0
