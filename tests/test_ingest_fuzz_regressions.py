"""Inputs the format fuzz (tests/test_ingest_fuzz_formats.py) found crashing a reader, kept as explicit regressions."""

from pathlib import Path

import pandas as pd
import pytest

from pitchlab.core import ValidationError, project_root
from pitchlab.ingest.statcast import ingest_statcast
from pitchlab.ingest.fit import ingest_fit
from pitchlab.ingest.tabular import ingest_table
from pitchlab.ingest.wearables import ingest_catapult, ingest_whoop
from pitchlab.store import Store

ROOT = project_root(Path(__file__).parent)
FX = ROOT / "tests/data/ingest"


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 's.db'}").create()
    s.write("teams", pd.DataFrame([dict(team_id="chc", name="Cubs", sport="baseball")]))
    s.write(
        "athletes",
        pd.DataFrame([dict(athlete_id="mlbam:506433", name="Yu Darvish", sex="M", sport="baseball", team_id="chc")]),
    )
    s.write("teams", pd.DataFrame([dict(team_id="wfc", name="WFC", sport="football")]))
    s.write(
        "athletes", pd.DataFrame([dict(athlete_id="f01", name="Ann Kerr", sex="F", sport="football", team_id="wfc")])
    )
    return s


def test_statcast_without_a_readable_pitch_type_column_loads_its_pitches(store, tmp_path):
    # a quote before the header's first name makes the whole header one odd cell run: `pitch_type` is then missing,
    # the (optional) column came out float and building the per-pitch-type index raised TypeError
    lines = (ROOT / "data/samples/statcast/pybaseball_raw_darvish_data.csv").read_bytes().splitlines(keepends=True)
    p = tmp_path / "statcast.csv"
    p.write_bytes(b'"' + b"".join(lines[:13]))
    rep = ingest_statcast(store, p)
    assert rep.errors == [] and rep.entities().loc["pitches", "inserted"] == 12
    assert len(store.read("appearance_pitch_types")) == 0 and len(store.read("appearances")) == 1


def test_xlsx_damaged_inside_a_sheet_is_refused_by_name(store, tmp_path):
    # one byte zeroed half-way through the workbook: openpyxl opens it, then zlib.error escaped while rows were read
    data = bytearray((FX / "club_sessions.xlsx").read_bytes())
    data[int(0.5 * (len(data) + 1))] = 0
    p = tmp_path / "club_sessions.xlsx"
    p.write_bytes(bytes(data))
    before = store.counts()
    with pytest.raises(ValidationError, match=r"club_sessions\.xlsx is not a readable \.xlsx workbook"):
        ingest_table(store, p, FX / "club_sessions.yaml")
    pd.testing.assert_series_equal(store.counts(), before)


@pytest.mark.parametrize(
    "name,damage",
    [
        ("garmin-fenix-5-run.fit", lambda d: bytes([15]) + d[1:]),  # header size 15: fitdecode raised struct.error
        ("Activity.fit", lambda d: d[: len(d) // 2] + d[len(d) // 2 : len(d) // 2 + 129] + d[len(d) // 2 :]),  # assert
    ],
)
def test_damaged_fit_files_are_refused_by_name(store, tmp_path, name, damage):
    p = tmp_path / f"damaged-{name}"
    p.write_bytes(damage((ROOT / "data/samples/fit" / name).read_bytes()))
    before = store.counts()
    with pytest.raises(ValidationError, match=rf"damaged-{name} is not a readable FIT file"):
        ingest_fit(store, p, athlete="f01")
    pd.testing.assert_series_equal(store.counts(), before)


def test_whoop_workout_time_outside_the_nanosecond_range_is_quarantined(store, tmp_path):
    # one byte deleted a third of the way into workouts.csv turned "2025-03-02 07:56:00" into year 25: converting it to
    # nanoseconds raised OutOfBoundsDatetime; now that time is unreadable and its row is quarantined, the others load
    data = (FX / "whoop/workouts.csv").read_bytes()
    cut = int(0.33984375 * (len(data) + 1))
    p = tmp_path / "workouts.csv"
    p.write_bytes(data[:cut] + data[cut + 1 :])
    assert b"25-03-02 07:56:00" in p.read_bytes()
    rep = ingest_whoop(store, p, athlete="f01")
    assert rep.errors == [] and rep.read == 5  # header + 5 workouts
    ses = rep.entities().loc["sessions"]
    assert (ses["inserted"], ses["quarantined"]) == (4, 1)


def test_fit_field_whose_size_no_longer_matches_its_type_is_refused_by_name(store, tmp_path):
    # a generated activity with one byte zeroed a fifth of the way in: a timestamp field came out as a tuple and
    # fitdecode raised TypeError comparing it
    from test_ingest_fuzz_formats import fit_file, mutate

    t = 1_059_000_000
    data = fit_file(
        [("file_id", [4, 0, 0, t])] + [("record", [t, 0, 0, 0])] * 11 + [("session", [t, t, 0, 0, 0, 0, 0, 0, 0])]
    )
    p = tmp_path / "generated.fit"
    p.write_bytes(mutate(data, [("flip", 0.203125, 0)])[0])
    with pytest.raises(ValidationError, match=r"generated\.fit is not a readable FIT file"):
        ingest_fit(store, p, athlete="f01")


def test_whoop_sleeps_without_wake_onset_are_refused_by_name(store, tmp_path):
    # a flipped byte in the header renamed "Wake onset": dating each sleep needs it, and whoop_sleep raised KeyError
    data = bytearray((FX / "whoop/sleeps.csv").read_bytes())
    data[int(0.09375 * (len(data) + 1))] = 1
    p = tmp_path / "sleeps.csv"
    p.write_bytes(bytes(data))
    with pytest.raises(ValidationError, match=r"sleeps\.csv looks like WHOOP's sleeps file but lacks \['Wake onset'\]"):
        ingest_whoop(store, p, athlete="f01")


def test_catapult_table_without_any_date_or_start_time_is_quarantined(store, tmp_path):
    # 55 bytes of the metadata spliced in front of the file: no Date: or Unix start line is read any more, every
    # start key was missing and building the source ids raised TypeError
    data = (FX / "catapult_openfield_units.csv").read_bytes()
    q = int(0.12109375 * len(data))
    p = tmp_path / "catapult.csv"
    p.write_bytes(data[q : q + 55] + data)
    try:
        rep = ingest_catapult(store, p, team="wfc", dayfirst=True)
    except ValidationError as e:
        assert "catapult.csv" in str(e)
        return
    ses = rep.entities().loc["sessions"]
    assert ses["read"] == ses["inserted"] + ses["quarantined"]


def test_whoop_times_with_different_offsets_do_not_crash(store, tmp_path):
    # 16 bytes deleted a third of the way into workouts.csv left a cell that parses with a time zone beside plain
    # times: pandas refused the column ("Mixed timezones detected"); now each cell is read on its own
    data = (FX / "whoop/workouts.csv").read_bytes()
    cut = int(0.33203125 * (len(data) + 1))
    p = tmp_path / "workouts.csv"
    p.write_bytes(data[:cut] + data[cut + 16 :])
    rep = ingest_whoop(store, p, athlete="f01")
    ses = rep.entities().loc["sessions"]
    assert rep.errors == [] and ses["read"] == ses["inserted"] + ses["quarantined"] and ses["inserted"] >= 3
