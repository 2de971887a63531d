"""The store on both backends (SQLite file and a real PostgreSQL server): validation, quarantine, idempotence, privacy."""

import json
import multiprocessing as mp
import zipfile

import numpy as np
import pandas as pd
import pytest

from pitchlab.core import NotFoundError, ValidationError
from pitchlab.store import Store


def _base(st):
    st.write("teams", pd.DataFrame({"team_id": ["T1"], "name": ["Women's XI"], "sport": ["cricket"]}), source="setup")
    st.write(
        "athletes",
        pd.DataFrame(
            {
                "athlete_id": ["A1", "A2"],
                "name": ["Ann", "Bea"],
                "sex": "F",
                "birth_date": ["2001-04-02", "1999-11-30"],
                "sport": "cricket",
                "role": ["bowler", "batter"],
                "team_id": "T1",
            }
        ),
        source="setup",
    )


BAD_BATCH = pd.DataFrame(
    {
        "athlete_id": ["A1", "A1", "A2", "A9", "A1", "A2"],
        "date": ["2025-03-01", "2025-03-02", "2025-03-02", "2025-03-02", "2025-03-01", "2025-03-03"],
        "sport": "cricket",
        "duration_min": [60, -5, 90, 45, 60, 75],
        "rpe": [5, 6, 11, 4, 5, 6],
        "balls_bowled": [36, None, None, 24, 36, None],
        "source": "csv",
        "source_id": ["s1", "s2", "s3", "s4", "s1", "s6"],
    },
    index=range(2, 8),
)


def test_bad_batch_loads_good_rows_quarantines_the_rest_and_is_idempotent(db_url):
    st = Store(db_url).create()
    _base(st)
    rep = st.write("sessions", BAD_BATCH, source="week9.csv")
    assert (rep.read, rep.inserted, rep.updated, rep.quarantined) == (6, 2, 0, 4)
    reasons = dict(zip(rep.rejects.row, rep.rejects.reason))
    assert reasons[3] == "duration_min=-5.0 must be between 0 and 1440"
    assert reasons[4] == "rpe=11.0 must be between 0 and 10"
    assert reasons[5] == "unknown athlete_id 'A9': add it to athletes first"
    assert reasons[6].startswith("duplicate of an earlier row")
    s = st.read("sessions")
    assert sorted(s.source_id) == ["s1", "s6"]
    assert s.set_index("source_id").loc["s1", "load"] == 300.0
    q = st.quarantine("sessions")
    assert sorted(q.row.astype(int)) == [3, 4, 5, 6]
    assert set(q.source) == {"week9.csv"}
    assert json.loads(q.set_index("row").loc["4", "payload"])["rpe"] == "11"

    before = st.counts()
    again = st.write("sessions", BAD_BATCH, source="week9.csv")
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)
    pd.testing.assert_series_equal(st.counts(), before)


def test_changed_row_updates_in_place(db_url):
    st = Store(db_url).create()
    _base(st)
    st.write("sessions", BAD_BATCH.loc[[2, 7]], source="a.csv")
    rep = st.write("sessions", BAD_BATCH.loc[[2]].assign(rpe=7, duration_min=50), source="a-fixed.csv")
    assert (rep.inserted, rep.updated) == (0, 1)
    s = st.read("sessions").set_index("source_id")
    assert len(s) == 2 and s.loc["s1", "load"] == 350.0 and s.loc["s1", "rpe"] == 7.0


def test_types_round_trip(db_url):
    st = Store(db_url).create()
    _base(st)
    inj = pd.DataFrame(
        {
            "injury_id": ["i1"],
            "athlete_id": ["A1"],
            "onset_date": ["2025-05-02"],
            "body_region": ["hamstring"],
            "injury_type": ["strain"],
            "severity": ["moderate"],
            "days_lost": [12],
            "contact": [False],
            "return_date": ["2025-05-14"],
            "source": ["medical"],
        }
    )
    st.write("injuries", inj, source="medical")
    got = st.read("injuries", actor="medical:lee")
    assert got.dtypes["onset_date"] == np.dtype("datetime64[ns]")
    assert str(got.dtypes["days_lost"]) == "Int64" and str(got.dtypes["contact"]) == "boolean"
    assert got.loc[0, "days_lost"] == 12 and not got.loc[0, "contact"]
    assert (got.loc[0, "return_date"] - got.loc[0, "onset_date"]).days == 12
    audit = st.read("audit")
    assert audit.iloc[-1][["actor", "action", "entity"]].tolist() == ["medical:lee", "read", "injuries"]


def test_sensitive_reads_are_audited_and_plain_passwords_refused(db_url):
    st = Store(db_url, actor="coach:kim").create()
    _base(st)
    st.write(
        "cycle_logs",
        pd.DataFrame(
            {
                "athlete_id": ["A1", "A1"],
                "date": ["2025-03-01", "2025-03-02"],
                "phase": ["luteal", "luteal"],
                "cycle_day": [22, 23],
                "source": "form",
            }
        ),
        source="form",
    )
    n0 = len(st.read("audit"))
    st.read("cycle_logs", "A1")
    a = st.read("audit")
    assert len(a) == n0 + 1 and a.iloc[-1]["athlete_id"] == "A1" and a.iloc[-1]["actor"] == "coach:kim"
    rep = st.write(
        "users", pd.DataFrame({"username": ["kim"], "role": ["coach"], "password_hash": ["hunter2"]}), source="cli"
    )
    assert rep.quarantined == 1 and "plain passwords are never stored" in rep.rejects.reason[0]
    assert len(st.read("users")) == 0
    assert "hunter2" not in st.quarantine("users").payload[0], "a rejected password must not be kept in clear"


def test_missing_column_names_the_file(db_url):
    st = Store(db_url).create()
    with pytest.raises(ValidationError, match=r"sessions in week9.csv: required column\(s\) \['date'\] are missing"):
        st.write("sessions", BAD_BATCH.drop(columns="date"), source="week9.csv")


def test_export_and_erase_an_athlete(db_url, tmp_path):
    st = Store(db_url).create()
    _base(st)
    st.write("sessions", BAD_BATCH, source="week9.csv")
    z = st.export_athlete("A1", tmp_path / "a1.zip", actor="admin:ops")
    with zipfile.ZipFile(z) as f:
        s = pd.read_csv(f.open("sessions.csv"))
        assert s.source_id.tolist() == ["s1"]
        assert "password_hash" not in pd.read_csv(f.open("users.csv")).columns
        assert sorted(pd.read_csv(f.open("quarantine.csv")).row) == [3, 6]  # A1's rejected rows
    gone = st.erase_athlete("A1", actor="admin:ops")
    assert gone["sessions"] == 1 and gone["athletes"] == 1 and gone["quarantine"] >= 1
    for e in ("sessions", "athletes", "cycle_logs"):
        assert len(st.read(e, "A1")) == 0
    assert (st.quarantine().athlete_id == "A1").sum() == 0
    acts = st.read("audit").query("athlete_id == 'A1'").action.tolist()
    assert "export" in acts and acts.index("export") < acts.index("erase")
    with pytest.raises(NotFoundError):
        st.export_athlete("A1")


def _writer(url, k):
    st = Store(url)
    rows = pd.DataFrame(
        {
            "athlete_id": "A1",
            "date": pd.date_range("2024-01-01", periods=200).astype(str),
            "sport": "cricket",
            "duration_min": 60,
            "rpe": 5,
            "source": f"proc{k}",
            "source_id": [f"{k}-{i}" for i in range(200)],
        }
    )
    for i in range(0, len(rows), 20):
        chunk = rows.iloc[i : i + 20]
        st.write("sessions", chunk, source=f"proc{k}")


@pytest.mark.slow  # `make test` runs it, `make test-quick` does not
def test_several_processes_write_one_sqlite_file(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    st = Store(url).create()
    _base(st)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(url, k)) for k in range(3)]
    [p.start() for p in procs]
    [p.join(120) for p in procs]
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert st.counts()["sessions"] == 600
    with st.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_create_adds_columns_the_contracts_gained(db_url):
    import sqlalchemy as sa

    st = Store(db_url).create()
    with st.engine.begin() as c:
        c.execute(sa.text("ALTER TABLE sessions DROP COLUMN tss"))
        c.execute(sa.text("DROP TABLE pose_results"))
    assert not st.exists()
    st.create()
    assert st.exists()
    cols = {c["name"] for c in sa.inspect(st.engine).get_columns("sessions")}
    assert "tss" in cols
    _base(st)
    rep = st.write("sessions", BAD_BATCH.loc[[2]].assign(tss=42.0), source="a.csv")
    assert rep.inserted == 1 and st.read("sessions").tss.tolist() == [42.0]


def test_a_datetime_natural_key_is_matched_on_both_backends(db_url):
    "drift_checks is keyed by a timestamp first: a second write of the same check updates it, never duplicates or fails."
    st = Store(db_url, actor="test").create()
    at = pd.Timestamp("2026-12-06 03:41:41")
    row = dict(
        checked_at=at,
        model_name="injury_risk",
        model_version="1",
        feature="acwr_ewma",
        psi=7.2,
        ks=0.5,
        ks_p=0.01,
        level="major",
        window_start=pd.Timestamp("2026-10-01"),
        window_end=pd.Timestamp("2026-11-30"),
        rows=120,
        action="warned",
    )
    first = st.write("drift_checks", pd.DataFrame([row]))
    again = st.write("drift_checks", pd.DataFrame([dict(row, action="retrain started")]))
    got = st.read("drift_checks")
    assert (first.inserted, again.inserted, again.updated) == (1, 0, 1)
    assert len(got) == 1 and got["action"].iloc[0] == "retrain started" and got["checked_at"].iloc[0] == at


def test_a_date_range_keeps_both_boundary_days(db_url):
    "Store.read(start=, end=) is inclusive on both backends: SQLite keeps DATE as text, so a timestamp bound dropped the first day."
    st = Store(db_url, actor="test").create()
    _base(st)
    days = ["2025-03-01", "2025-03-02", "2025-03-03", "2025-03-04"]
    st.write(
        "sessions",
        pd.DataFrame(
            {"athlete_id": "A1", "date": days, "sport": "cricket", "duration_min": 60, "rpe": 5, "source": "csv"}
            | {"source_id": [f"b{i}" for i in range(4)]}
        ),
        source="b.csv",
    )
    got = st.read("sessions", start="2025-03-02", end="2025-03-03")
    assert got["date"].dt.strftime("%Y-%m-%d").tolist() == ["2025-03-02", "2025-03-03"]
    one = st.read("sessions", start=pd.Timestamp("2025-03-04"), end=pd.Timestamp("2025-03-04"))
    assert one["source_id"].tolist() == ["b3"]
    assert len(st.read("sessions", start="2025-03-01")) == 4 and len(st.read("sessions", end="2025-03-01")) == 1
    ts = st.read("audit")  # a timestamp column: an end day counts whole
    st.log("read", "sessions", "A1", detail="probe")
    today = pd.Timestamp.now("UTC").tz_localize(None).normalize()
    assert len(st.read("audit", start=today, end=today)) == len(ts) + 1


def test_an_older_store_gains_the_columns_added_since(db_url, caplog):
    "A store made before a column existed is read and written after a plain open: the column is added (nullable), logged."
    import logging

    import sqlalchemy as sa

    old = Store(db_url).create()
    _base(old)
    with old.engine.begin() as c:
        c.execute(sa.text("ALTER TABLE injuries DROP COLUMN return_date"))
        c.execute(sa.text("ALTER TABLE sessions DROP COLUMN tss"))
    old.engine.dispose()
    st = Store(db_url, actor="test")  # opened as a new process would: no create()
    with caplog.at_level(logging.WARNING, logger="pitchlab.store"):
        inj = st.read("injuries")
    assert list(inj.columns).count("return_date") == 1 and len(inj) == 0
    assert {"sessions.tss", "injuries.return_date"} <= {
        f"{r.getMessage().split('column ')[1].split(' ')[0]}"
        for r in caplog.records
        if "added the column" in r.getMessage()
    }
    rep = st.write("sessions", BAD_BATCH.loc[[2]].assign(tss=42.0), source="a.csv")
    assert rep.inserted == 1 and st.read("sessions").tss.tolist() == [42.0]
