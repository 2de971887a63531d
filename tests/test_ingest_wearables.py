"""WHOOP and Catapult exports built in their public formats (tests/data/ingest): the awkward parts included."""

import shutil
from pathlib import Path

import pandas as pd
import pytest

from pitchlab import load
from pitchlab.core import ValidationError, project_root
from pitchlab.ingest.wearables import (
    catapult_sessions,
    ingest_catapult,
    ingest_whoop,
    read_catapult,
    read_whoop,
    whoop_kind,
    whoop_wellness,
)
from pitchlab.ingest.base import match_athletes
from pitchlab.store import Store

FX = project_root(Path(__file__).parent) / "tests/data/ingest"
WHOOP = sorted((FX / "whoop").glob("*.csv"))


def _store(url):
    st = Store(url).create()
    st.write(
        "teams",
        pd.DataFrame(
            [
                dict(team_id="wfc", name="Women's FC", sport="football"),
                dict(team_id="lax", name="Lacrosse", sport="other"),
            ]
        ),
    )
    st.write(
        "athletes",
        pd.DataFrame(
            [
                dict(
                    athlete_id="f01", name="Ann Kerr", sex="F", birth_date="1999-04-02", sport="football", team_id="wfc"
                ),
                dict(athlete_id="f02", name="Bea Moss", sex="F", sport="football", team_id="wfc"),
                dict(athlete_id="f03", name="Cara Lind", sex="F", sport="football", team_id="wfc"),
                dict(athlete_id="f04", name="Eve Park", sex="F", sport="football", team_id="wfc"),
                dict(athlete_id="l01", name="Jane Roe", sex="F", sport="other", team_id="lax"),
                dict(athlete_id="l02", name="Jim Poe", sex="M", sport="other", team_id="lax"),
                dict(athlete_id="l03", name="Dave Loe", sex="M", birth_date="2000-01-01", sport="other", team_id="lax"),
                dict(athlete_id="l04", name="Abby Moe", sex="F", sport="other", team_id="lax"),
            ]
        ),
    )
    return st


def test_whoop_files_are_recognised_by_header_not_name(tmp_path):
    for p in WHOOP:
        q = tmp_path / "export.csv"
        shutil.copy(p, q)
        assert read_whoop(q)[0] == whoop_kind(pd.read_csv(p, nrows=0).columns)
    bad = tmp_path / "physiological_cycles.csv"
    bad.write_text("date,recovery\n2025-01-01,50\n")
    with pytest.raises(ValidationError, match="physiological_cycles.csv is not a file of WHOOP's data export"):
        read_whoop(bad)
    half = tmp_path / "w.csv"
    half.write_text('"Workout start time","Activity name"\n2025-01-01 10:00:00,Running\n')
    with pytest.raises(ValidationError, match="lacks"):
        read_whoop(half)


def test_whoop_wellness_dates_are_wake_days_and_empty_cycles_are_not_reports():
    _, df = read_whoop(FX / "whoop/physiological_cycles.csv")
    w, empty = whoop_wellness(df, "f01")
    assert empty == 2 and list(w.index) == [2, 3, 4, 5, 7, 9]  # line 8 is blank in the file
    assert w.date.dt.strftime("%Y-%m-%d").tolist() == [
        "2025-03-02",
        "2025-03-03",
        "2025-03-04",
        "2025-03-05",
        "2025-03-07",
        "2025-03-08",
    ]
    assert w.sleep_hours.iloc[0] == pytest.approx(452 / 60, abs=1e-4)
    assert w.recovery.tolist()[:3] == ["71", "54", "33"] and w.hrv_rmssd.iloc[-1] == "999.0"


def test_whoop_export_loads_in_any_order_to_the_same_rows_and_reloads_unchanged(db_url, tmp_path):
    stores = []
    for order, url in ((WHOOP, db_url), (WHOOP[::-1], f"sqlite:///{tmp_path}/b.db")):
        st = _store(url)
        rep = ingest_whoop(st, order, athlete="f01")
        assert [k["file"] for k in rep.skipped] == ["journal_entries.csv"]
        assert sorted(map(tuple, rep.rejects()[["entity", "row", "field"]].values.tolist())) == [
            ("sessions", 6, ""),
            ("wellness", 9, "hrv_rmssd"),
        ]
        stores.append(st)
    a, b = (s.read("wellness").drop(columns=[]) for s in stores)
    pd.testing.assert_frame_equal(a, b)
    w = a.set_index("date")
    assert w.loc["2025-03-10", "sleep_hours"] == pytest.approx(395 / 60, abs=1e-4) and pd.isna(
        w.loc["2025-03-10", "recovery"]
    )
    assert (w.loc["2025-03-02", "recovery"], w.loc["2025-03-02", "hrv_rmssd"], w.loc["2025-03-02", "resting_hr"]) == (
        71.0,
        68.2,
        52.0,
    )
    s = stores[0].read("sessions").set_index("source_id")
    run = s.loc["f01:2025-03-02T07:10:00"]
    age_max = 208 - 0.7 * ((pd.Timestamp("2025-03-02") - pd.Timestamp("1999-04-02")).days / 365.25)
    assert (run.sport, run.distance_m, run.hr_mean) == ("running", 8210.0, 156.0)
    assert run.trimp == pytest.approx(float(load.trimp(46, 156, 60, age_max, "F")))  # HRmax from her age that day
    assert s.loc["f01:2025-03-03T23:40:00", "date"] == pd.Timestamp("2025-03-03")
    before = stores[0].counts()
    again = ingest_whoop(stores[0], WHOOP, athlete="f01")
    assert (again.inserted, again.updated) == (0, 0)
    pd.testing.assert_series_equal(stores[0].counts(), before)


def test_catapult_units_export_sums_periods_reads_separators_and_lists_strangers(db_url):
    st = _store(db_url)
    rep = ingest_catapult(st, FX / "catapult_openfield_units.csv", team="wfc", dayfirst=True)
    assert (rep.read, rep.inserted, rep.quarantined) == (7, 3, 2)
    assert [u["value"] for u in rep.unknown_athletes] == ["Dee Stranger"] and rep.unknown_athletes[0]["lines"] == [14]
    reasons = dict(zip(rep.rejects().row, rep.rejects().reason))
    assert reasons[15] == "distance_m=-12.0 must be between 0 and 400000"
    s = st.read("sessions").set_index("athlete_id")
    ann = s.loc["f01"]
    assert (
        ann.distance_m == pytest.approx(8840.6)
        and ann.player_load == pytest.approx(868.2)
        and ann.load == ann.player_load
    )
    assert ann.duration_min == pytest.approx(87 + 5 / 60) and ann.hr_max == 191.0
    assert ann.hr_mean == pytest.approx((151 * (42 + 10 / 60) + 156 * (44 + 55 / 60)) / (87 + 5 / 60))
    assert (ann.date, ann.session_type, ann.sport, ann.source_id) == (
        pd.Timestamp("2025-03-04"),
        "match",
        "football",
        "1741104300:f01",
    )
    assert pd.isna(s.loc["f02", "hr_mean"]) and pd.isna(s.loc["f02", "trimp"])  # strap not worn: 0 is missing
    assert pd.isna(s.loc["f03", "distance_m"]) and s.loc["f03", "load"] == 301.0  # NA distance stays missing
    again = ingest_catapult(st, FX / "catapult_openfield_units.csv", team="wfc", dayfirst=True)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3)


def test_catapult_classic_export_with_metadata_lines_and_whole_session_rows(tmp_path):
    st = _store(f"sqlite:///{tmp_path}/s.db")
    rep = ingest_catapult(st, FX / "catapult_openfield_classic.csv", team="lax", tz="America/Chicago")
    assert rep.inserted == 4 and [u["value"] for u in rep.unknown_athletes] == ["Zed Unknown"]
    s = st.read("sessions").set_index("athlete_id")
    assert (s.date == pd.Timestamp("2019-02-02")).all() and set(s.session_type) == {"training"}
    assert s.loc["l01", "duration_min"] == pytest.approx(83.05) and s.loc["l01", "distance_m"] == pytest.approx(6982.73)
    age = (pd.Timestamp("2019-02-02") - pd.Timestamp("2000-01-01")).days / 365.25
    assert s.loc["l03", "trimp"] == pytest.approx(float(load.trimp(74.7, 142, 60, 208 - 0.7 * age, "M")))
    assert pd.isna(s.loc["l01", "trimp"])  # heart rate 0: no strap
    assert s.loc["l01", "source_id"] == "1549112183:l01"


def test_catapult_units_are_converted_and_unknown_units_refused(tmp_path):
    p = tmp_path / "km.csv"
    p.write_text(
        "Date:,2025-05-01\n\nPlayer Name,Total Duration (min),Total Distance (km),Player Load\nAnn Kerr,90,\"10.5\",800\n"
    )
    ex = read_catapult(p)
    ids, _ = match_athletes(_store(f"sqlite:///{tmp_path}/s.db"), ex.table[ex.columns["player"]])
    s, _ = catapult_sessions(ex, ids)
    assert (s.distance_m.iloc[0], s.duration_min.iloc[0], s.date.iloc[0]) == (10500.0, 90.0, pd.Timestamp("2025-05-01"))
    q = tmp_path / "furlong.csv"
    q.write_text("Player Name,Total Duration,Total Distance (furlong)\nAnn Kerr,1:00:00,8\n")
    ex = read_catapult(q)
    with pytest.raises(ValidationError, match="unknown distance unit 'furlong'"):
        catapult_sessions(ex, pd.Series(["f01"], index=ex.table.index))


def test_a_file_without_a_player_table_is_refused(tmp_path):
    p = tmp_path / "summary.csv"
    p.write_text("Date:,2025-05-01\nTeam,Distance\nWFC,99000\n")
    with pytest.raises(ValidationError, match="summary.csv has no row that looks like this source's header"):
        read_catapult(p)
    q = tmp_path / "nodur.csv"
    q.write_text("Player Name,Total Distance\nAnn,100\n")
    with pytest.raises(ValidationError, match=r"nodur.csv: the Catapult table lacks \['duration'\]"):
        read_catapult(q)
