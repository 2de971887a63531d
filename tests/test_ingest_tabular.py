"""Generic CSV/Excel through a column mapping, and the dashboard forms."""

from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from pitchlab.core import ConfigError, NotFoundError, ValidationError, project_root
from pitchlab.ingest.tabular import (
    enter_cycle,
    enter_injury,
    enter_session,
    enter_wellness,
    ingest_frame,
    ingest_table,
    load_mapping,
    read_tabular,
)
from pitchlab.store import Store

FX = project_root(Path(__file__).parent) / "tests/data/ingest"
MAP = FX / "club_sessions.yaml"


def _store(url):
    st = Store(url).create()
    st.write("teams", pd.DataFrame([dict(team_id="wfc", name="Women's FC", sport="football")]))
    st.write(
        "athletes",
        pd.DataFrame(
            [
                dict(athlete_id="f01", name="Ann Kerr", sex="F", sport="football", team_id="wfc"),
                dict(athlete_id="f02", name="Bea Moss", sex="F", sport="football", team_id="wfc"),
                dict(athlete_id="f03", name="Cara Lind", sex="F", sport="football", team_id="wfc"),
                dict(athlete_id="m01", name="Max Ode", sex="M", sport="football", team_id="wfc"),
            ]
        ),
    )
    return st


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(entity="sessions"), "has no `columns`"),
        (dict(entity="sesions", columns=dict(athlete_id="P")), "cannot be ingested"),
        (dict(entity="audit", columns=dict(actor="P")), "cannot be ingested"),
        (dict(entity="sessions", columns=dict(player="P")), "sessions has no field(s) ['player']"),
        (dict(entity="sessions", columns=dict(athlete_id="P"), colour="red"), "unknown mapping option(s) ['colour']"),
        (dict(entity="sessions", columns=dict(athlete_id="P"), dates=dict(tz="Mars/Base")), "unknown time zone"),
        (dict(entity="sessions", columns=dict(athlete_id="P"), athletes="nickname"), "athletes must be"),
        ("entity: [sessions", "not valid YAML"),
    ],
)
def test_bad_mappings_are_refused_clearly(bad, message):
    with pytest.raises(ConfigError) as e:
        load_mapping(bad)
    assert message in str(e.value)


def test_csv_and_excel_give_the_same_rows_with_their_own_row_numbers(db_url):
    st = _store(db_url)
    rep = ingest_table(st, [FX / "club_sessions.csv"], MAP)
    assert (rep.read, rep.inserted, rep.quarantined) == (6, 3, 3)
    reasons = dict(zip(rep.rejects().row, rep.rejects().reason))
    assert reasons == {
        5: "duration_min=1500.0 must be between 0 and 1440",
        6: "unknown athlete_id 'Nobody Here': add it to athletes first",
        7: "date='31/02/2025' is not a valid date",
    }
    s = st.read("sessions").set_index("source_id")
    assert (
        s.loc["club_sessions:f01:2025-03-04:1", "load"] == 450.0
        and s.loc["club_sessions:f01:2025-03-05:1", "session_type"] == "gym"
    )
    xl = ingest_table(st, [FX / "club_sessions.xlsx"], MAP)
    assert (xl.inserted, xl.updated, xl.unchanged) == (0, 0, 3)  # same rows, same ids
    assert sorted(xl.rejects().row.tolist()) == [8, 9, 10]  # Excel row numbers
    assert len(st.read("sessions")) == 3


def test_missing_mapped_columns_are_named(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("Player,Date,Minutes\nAnn Kerr,2025-01-01,60\n")
    with pytest.raises(
        ValidationError, match=r"x.csv lacks the mapped column\(s\) \['Session date', 'Type', 'sRPE \(CR-10\)'\]"
    ):
        read_tabular(p, MAP)
    q = tmp_path / "x.xls"
    q.write_bytes(b"\xd0\xcf\x11\xe0" + bytes(600))
    with pytest.raises(ValidationError, match="x.xls is an old .xls workbook"):
        read_tabular(q, MAP)
    r = tmp_path / "y.xlsx"
    r.write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(ValidationError, match="y.xlsx is not a readable .xlsx workbook"):
        read_tabular(r, MAP)


def test_semicolons_windows_encoding_formats_and_templates(tmp_path):
    st = _store(f"sqlite:///{tmp_path}/s.db")
    p = tmp_path / "gym.csv"
    p.write_bytes(
        "Athlete;Day;Mins;Load (AU)\nf01;2025-03-04T23:30:00-05:00;45;300\nm01;04.03.2025;30;300\nf02;05/03/2025;40;1.234,5\n".encode(
            "cp1252"
        )
    )
    m = dict(
        entity="sessions",
        columns=dict(athlete_id="Athlete", date="Day", duration_min="Mins", load="Load (AU)"),
        values=dict(sport="football", session_type="gym", source="gym-log"),
        athletes="id",
        delimiter=";",
        encoding="cp1252",
        dates=dict(dayfirst=True, tz="Europe/London"),
        id_template="{athlete_id}:{date}:{session_type}",
    )
    rep = ingest_table(st, p, m)
    s = st.read("sessions").set_index("source_id")
    assert s.loc["f01:2025-03-05:gym", "date"] == pd.Timestamp("2025-03-05")  # 23:30 in New York is the 5th in London
    assert s.loc["m01:2025-03-04:gym", "load"] == 300.0 and len(s) == 2 and rep.quarantined == 1
    assert rep.rejects().reason.tolist() == [
        "load='1.234,5 (unreadable number)' is not a valid float"
    ]  # not read as 1.2345
    eu = ingest_table(st, p, m | dict(decimal=","))
    assert eu.quarantined == 0 and st.read("sessions", "f02").load.tolist() == [1234.5]
    with pytest.raises(ConfigError, match="id_template"):
        ingest_table(st, p, m | dict(id_template="{nope}"))


def test_other_entities_through_mappings_roster_wellness_injuries(tmp_path):
    st = _store(f"sqlite:///{tmp_path}/s.db")
    roster = pd.DataFrame(
        {"ID": ["g01", "g02"], "Name": ["Gia Hall", "Hana Ito"], "Born": ["12/05/2001", "bad"]}, index=[2, 3]
    )
    r = ingest_frame(
        st,
        roster.rename(columns={"ID": "athlete_id", "Name": "name", "Born": "birth_date"}),
        dict(
            entity="athletes",
            columns=dict(athlete_id="ID", name="Name", birth_date="Born"),
            values=dict(sex="F", sport="football", team_id="wfc"),
            dates=dict(dayfirst=True),
        ),
        "roster.csv",
    )
    assert (r.inserted, r.quarantined) == (1, 1) and st.read("athletes", "g01").birth_date.iloc[0] == pd.Timestamp(
        "2001-05-12"
    )
    w = pd.DataFrame(
        {"who": ["Ann Kerr", "Bea Moss"], "day": [1, 2], "sleep": ["7.5", "8"], "sore": ["4", "9"]}, index=[2, 3]
    )
    rw = ingest_frame(
        st,
        w.rename(columns={"who": "athlete_id", "day": "date", "sleep": "sleep_hours", "sore": "soreness"}),
        dict(
            entity="wellness",
            columns=dict(athlete_id="who", date="day", sleep_hours="sleep", soreness="sore"),
            dates=dict(origin="2025-02-28"),
        ),
        "wellness.csv",
    )
    assert rw.inserted == 1 and rw.rejects().reason.tolist() == ["soreness=9 must be between 1 and 5"]
    assert st.read("wellness").date.tolist() == [pd.Timestamp("2025-03-01")]
    inj = pd.DataFrame(
        {
            "athlete_id": ["f03"],
            "onset_date": ["2025-03-05"],
            "body_region": ["hamstring"],
            "injury_type": ["strain"],
            "severity": ["moderate"],
            "contact": ["no"],
            "days_lost": ["12"],
        },
        index=[2],
    )
    ri = ingest_frame(st, inj, dict(entity="injuries", columns={c: c for c in inj.columns}), "injuries.csv")
    assert ri.inserted == 1 and st.read("injuries").injury_id.tolist() == ["injuries:f03:2025-03-05:1"]


def test_forms_validate_completely_store_who_and_when_and_audit(db_url):
    st = _store(db_url)
    r = enter_session(st, "f01", "2025-03-06", entered_by="coach.sam", duration_min=60, rpe=7)
    assert r.inserted == 1
    s = st.read("sessions").iloc[0]
    assert (s.load, s.sport, s.source, s.entered_by, s.source_id) == (
        420.0,
        "football",
        "form",
        "coach.sam",
        "f01:2025-03-06:training:1",
    )
    assert enter_session(st, "f01", "2025-03-06", entered_by="coach.sam", duration_min=60, rpe=7, slot=2).inserted == 1
    assert enter_session(st, "f01", "2025-03-06", entered_by="coach.kim", duration_min=50, rpe=7).updated == 1
    with pytest.raises(ValidationError) as e:
        enter_session(st, "f01", "2025-03-06", entered_by="coach.sam", duration_min=-3, rpe=12)
    assert {f["field"] for f in e.value.failures} == {"duration_min", "rpe"} and "not saved" in str(e.value)
    with pytest.raises(NotFoundError, match="no athlete 'zz'"):
        enter_wellness(st, "zz", "2025-03-06", entered_by="zz", mood=3)
    with pytest.raises(ValidationError, match="at least one answer"):
        enter_wellness(st, "f02", "2025-03-06", entered_by="f02")
    with pytest.raises(ValidationError, match="is not a date"):
        enter_wellness(st, "f02", "someday", entered_by="f02", mood=3)
    enter_wellness(st, "f02", "2025-03-06", entered_by="f02", sleep_hours=7.5, mood=4)
    enter_cycle(st, "f02", "2025-03-06", "luteal", entered_by="f02", cycle_day=20, symptoms="cramps")
    with pytest.raises(ValidationError, match="recorded as 'M'"):
        enter_cycle(st, "m01", "2025-03-06", "luteal", entered_by="m01")
    enter_injury(
        st,
        "f03",
        "2025-03-05",
        "Hamstring",
        "strain",
        "moderate",
        contact=False,
        entered_by="physio.lee",
        days_lost=12,
        return_date="2025-03-17",
    )
    with pytest.raises(ValidationError, match="return_date is before onset_date"):
        enter_injury(
            st,
            "f03",
            "2025-03-05",
            "calf",
            "strain",
            "mild",
            contact=False,
            entered_by="physio.lee",
            return_date="2025-03-01",
        )
    assert st.read("injuries").injury_id.tolist() == ["f03:2025-03-05:hamstring"]
    with st.engine.connect() as c:
        when = pd.read_sql(sa.text("select entered_by, loaded_at from cycle_logs"), c)
    assert when.entered_by.tolist() == ["f02"] and pd.notna(when.loaded_at.iloc[0])
    audit = st.read("audit")
    forms = audit[audit.detail.fillna("").str.startswith("form entry")]
    assert forms.actor.tolist() == ["coach.sam", "coach.sam", "coach.kim", "f02", "f02", "physio.lee"]
    assert len(st.quarantine()) == 0  # forms refuse; they never quarantine
