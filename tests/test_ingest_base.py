"""The common ingestion contract: file refusal with the file's name, line numbers, athlete matching, time zones, the report."""

import json

import pandas as pd
import pytest

from pitchlab.core import ConfigError, NotFoundError, ValidationError
from pitchlab.ingest.base import (
    IngestReport,
    decode_text,
    duration_minutes,
    guard_numbers,
    heart_rate_params,
    local_dates,
    match_athletes,
    read_bytes,
    read_table,
    run_files,
    to_number,
    write_frames,
)
from pitchlab.store import Store


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "is empty"),
        (b" \n\n\t\n", "is empty"),
        (b"PK\x03\x04\x14\x00\x06\x00" + bytes(100), "is a ZIP archive"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100), "old Excel .xls"),
        (bytes(range(256)) * 4, "holds binary data"),
        ("game_pk,name\n1,Jos\u00e9\n".encode("cp1252"), "is not utf-8 text: byte 0xe9 on line 2"),
        ("a,b\n1,2\n".encode("utf-16-le"), "holds binary data"),
        (bytes([0x1B, 0x07, 0x08] * 40) + b"a,b\n", "does not look like text"),
    ],
)
def test_unreadable_files_are_refused_with_their_name(tmp_path, content, message):
    p = tmp_path / "week 9.csv"
    p.write_bytes(content)
    with pytest.raises(ValidationError) as e:
        read_table(p)
    assert "week 9.csv" in str(e.value) and message in str(e.value)
    assert e.value.hint


def test_missing_file_and_folder_are_named(tmp_path):
    with pytest.raises(NotFoundError, match="no file .*nope.csv"):
        read_bytes(tmp_path / "nope.csv")
    with pytest.raises(ValidationError, match="is a folder"):
        read_bytes(tmp_path)


@pytest.mark.parametrize("enc", ["utf-8-sig", "utf-16", "utf-32"])
def test_byte_order_marks_are_honoured(tmp_path, enc):
    p = tmp_path / "bom.csv"
    p.write_bytes("name,rpe\nJos\u00e9,6\n".encode(enc))
    t = read_table(p)
    assert list(t.frame.columns) == ["name", "rpe"] and t.frame.loc[2, "name"] == "Jos\u00e9"


def test_named_encoding_reads_windows_files(tmp_path):
    p = tmp_path / "w.csv"
    p.write_bytes("name;rpe\nJos\u00e9 Ure\u00f1a;6\n".encode("cp1252"))
    t = read_table(p, encoding="cp1252")
    assert t.frame.loc[2].tolist() == ["Jos\u00e9 Ure\u00f1a", "6"]
    with pytest.raises(ConfigError, match="unknown text encoding"):
        decode_text(b"a", "x.csv", encoding="klingon")


def test_read_table_keeps_file_lines_and_pads_or_notes_ragged_rows(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text('meta:,x\n\nid,val,id\n1,"multi\nline",3\n\n2,5\n3,6,7,8\n4,7,8,,\n')
    t = read_table(p, header=lambda cells: "val" in cells)
    assert t.header_line == 3 and t.preamble == [["meta:", "x"]]
    assert list(t.frame.columns) == ["id", "val", "id.1"]
    assert list(t.frame.index) == [4, 7, 8, 9]
    assert t.frame.loc[7].tolist() == ["2", "5", ""]
    assert t.frame.loc[8].tolist() == ["3", "6", "7"]
    assert "line(s) [8]" in t.notes[0]


def test_a_file_without_the_header_a_source_needs_is_refused(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(ValidationError, match="x.csv has no row that looks like this source's header"):
        read_table(p, header=lambda cells: "Player Name" in cells)


def test_numbers_and_durations_from_text():
    assert to_number(pd.Series(["1,234.5", "  7 ", "NA", "null", "-", "x"])).tolist()[:2] == [1234.5, 7.0]
    assert to_number(pd.Series(["NA", "null", "-", "x"])).isna().all()
    d = duration_minutes(pd.Series(["1:30:00", "12:30", "5400", "junk", None]), unit="s")
    assert d.tolist()[:3] == [90.0, 12.5, 90.0] and d.iloc[3:].isna().all()
    with pytest.raises(ConfigError):
        duration_minutes(pd.Series(["1"]), unit="fortnights")


def test_local_dates_follow_the_time_zone():
    ts = pd.Series(pd.to_datetime(["2025-03-30 00:30", "2025-03-30 23:30"], utc=True))
    assert local_dates(ts, "Europe/London").dt.day.tolist() == [30, 31]  # BST starts 30 March
    assert local_dates(ts, "America/New_York").dt.day.tolist() == [29, 30]
    naive = pd.Series(pd.to_datetime(["2025-03-30 23:30"]))
    assert local_dates(naive, None).dt.day.tolist() == [30]  # wall-clock times stay put
    with pytest.raises(ConfigError, match="unknown time zone"):
        local_dates(ts, "Nowhere/Special")


def test_match_athletes_by_id_then_unique_name_never_guessing():
    ath = pd.DataFrame(
        dict(
            athlete_id=["a1", "a2", "a3", "a4"],
            name=["Ann Kerr", "Bea Moss", "Bea Moss", "Zo\u00eb Li"],
            team_id=["t1", "t1", "t2", "t1"],
        )
    )
    vals = pd.Series(["a1", " ann  KERR ", "Bea Moss", "zoe li", "Q", None], index=[10, 11, 12, 13, 14, 15])
    ids, unknown = match_athletes(ath, vals, file="f.csv")
    assert ids.tolist()[:5] == ["a1", "a1", "Bea Moss", "a4", "Q"] and pd.isna(ids.iloc[5])
    u = {x["value"]: x for x in unknown}
    assert set(u) == {"Bea Moss", "Q"} and "2 athletes are named" in u["Bea Moss"]["reason"] and u["Q"]["lines"] == [14]
    ids, unknown = match_athletes(ath, vals.iloc[:3], team="t2")
    assert ids.tolist() == ["a1", "ann  KERR", "a3"] and [x["value"] for x in unknown] == ["ann  KERR"]
    ids, unknown = match_athletes(ath, pd.Series(["Ann Kerr"]), by="id")
    assert [x["value"] for x in unknown] == ["Ann Kerr"]


def test_heart_rate_parameters_say_where_they_came_from():
    p = heart_rate_params(
        dict(sex="F", birth_date=pd.Timestamp("1995-01-01")),
        on=pd.Timestamp("2025-01-01", tz="UTC"),
        device=dict(hr_rest=48, hr_max=None),
        hr_max=None,
    )
    assert p["origin"] == dict(hr_rest="device", hr_max="athlete age (Tanaka)", sex="athlete")
    assert p["hr_max"] == pytest.approx(208 - 0.7 * 30, abs=0.05)
    q = heart_rate_params(dict(sex="F"), hr_rest=55, hr_max=180, sex="M")
    assert (q["hr_rest"], q["hr_max"], q["sex"]) == (55.0, 180.0, "M")
    with pytest.raises(ValidationError, match="must exceed"):
        heart_rate_params(hr_rest=200, hr_max=150)


def test_guard_numbers_turns_overflows_and_ambiguous_commas_into_rejects_not_crashes():
    df = pd.DataFrame(
        dict(
            game_pk=["1", "1e300", "inf", "-inf", "99999999999999999999", 5, "1,5"],
            release_speed=["95.1", "1,234.5", "1,5", "1.234,5", "NA", "x", "-"],
        )
    )
    g = guard_numbers("pitches", df)
    assert g.game_pk.tolist()[0] == "1" and g.game_pk.tolist()[5] == 5
    assert (
        all(str(v).endswith("(out of range)") for v in g.game_pk.iloc[1:5])
        and g.game_pk.iloc[6] == "1,5 (unreadable number)"
    )
    assert g.release_speed.tolist() == [
        "95.1",
        "1,234.5",
        "1,5 (unreadable number)",
        "1.234,5 (unreadable number)",
        "NA",
        "x",
        "-",
    ]
    assert guard_numbers("pitches", pd.DataFrame(dict(game_pk=[1, 2]))).game_pk.tolist() == [1, 2]


def test_report_sums_loads_and_serialises(tmp_path):
    st = Store(f"sqlite:///{tmp_path}/s.db").create()
    st.write("teams", pd.DataFrame([dict(team_id="t", name="T", sport="football")]))
    st.write("athletes", pd.DataFrame([dict(athlete_id="a", name="A", sex="F", sport="football", team_id="t")]))
    s = pd.DataFrame(
        dict(
            athlete_id=["a", "a", "zz"],
            date="2025-01-01",
            sport="football",
            duration_min=60,
            rpe=[5, 11, 5],
            source="csv",
            source_id=["1", "2", "3"],
        ),
        index=[2, 3, 4],
    )
    rep = write_frames(st, {"sessions": s}, "s.csv", IngestReport("csv", files=["s.csv"], read=3))
    d = json.loads(rep.to_json())
    assert {k: d[k] for k in ("read", "loaded", "inserted", "updated", "quarantined")} == dict(
        read=3, loaded=1, inserted=1, updated=0, quarantined=2
    )
    assert d["errors"] == [] and d["entities"]["sessions"]["quarantined"] == 2
    assert sorted(r["row"] for r in d["rejects"]) == [3, 4]
    assert "s.csv line 3 [sessions.rpe]" in str(rep)
    with pytest.raises(ValidationError, match="cannot ingest entities"):
        write_frames(st, {"audit": s}, "x")


def test_run_files_raises_or_collects_and_never_collects_config_errors(tmp_path):
    good, bad = tmp_path / "g.csv", tmp_path / "b.csv"
    good.write_text("a\n1\n2\n")
    bad.write_bytes(b"\x00\x01binary")
    one = lambda p: IngestReport("csv", files=[p.name], read=len(read_table(p).frame))
    rep = run_files("csv", [good, bad, tmp_path / "missing.csv"], one, on_error="collect")
    assert rep.read == 2 and [e["file"].rsplit("/", 1)[-1] for e in rep.errors] == ["b.csv", "missing.csv"]
    with pytest.raises(ValidationError, match="b.csv"):
        run_files("csv", [good, bad], one)

    def config_problem(p):
        raise ConfigError("bad option")

    with pytest.raises(ConfigError):
        run_files("csv", [good], config_problem, on_error="collect")
    with pytest.raises(ConfigError, match="no csv files"):
        run_files("csv", [], one)
