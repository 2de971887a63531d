"""Roster and accounts from the command line on both store backends: teams, athletes, a roster import with bad rows, users import."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import run_cli as run

from pitchlab.dash.auth import verify_password
from pitchlab.store import Store

# slow: runs the roster and users commands in subprocesses on both backends; `make test` (--runslow) runs it, `make test-quick` does not
pytestmark = pytest.mark.slow

PITCHLAB = str(Path(sys.executable).parent / "pitchlab")


@pytest.fixture
def store_home(home, db_url, monkeypatch):
    monkeypatch.setenv("PITCHLAB_DB_URL", db_url)
    assert run("init")[0] == 0
    return home, Store(db_url)


ROSTER = (
    "ID,First Name,Last Name,Gender,DOB,Squad,Position,Guardian Email\n"
    "U19W-01,Asha,Rao,F,1998-05-01,U19W,opening bowler,\n"
    "U19W-03,Lena,Berg,female,2001-11-30,U19W,keeper,\n"
    "U19W-04,Ana,Silva,F,02/30/2002,U19W,batter,\n"
    "U19W-05,Kit,Ng,F,2013-07-04,U19W,batter,\n"
    "U19W-06,Bea,Ford,F,2012-01-09,U19W,batter,bea.parent@example.org\n"
    "U19W-03,Lena,Borg,F,2001-11-30,U19W,keeper,\n"
    ",Zoe,Hart,F,2000-01-01,U23W,batter,\n"
    ",Ivy,Moss,F,1999-03-03,,all-rounder,\n"
)


def test_teams_and_athletes_commands(store_home):
    home, st = store_home
    assert run("teams", "add", "U19W", "--name", "Under-19 women", "--sport", "cricket", "--level", "u19")[0] == 0
    code, _, err = run("teams", "add", "U19W", "--sport", "cricket")
    assert code == 2 and "team 'U19W' already exists" in err
    assert run("teams", "add", "U19W", "--sport", "cricket", "--exist-ok")[0] == 0
    assert run("teams", "edit", "U19W", "--name", "U19 women")[0] == 0
    assert st.read("teams").set_index("team_id").at["U19W", "name"] == "U19 women"
    code, _, err = run("athletes", "add", "a1", "--name", "Asha Rao", "--sex", "F", "--team", "NOPE")
    assert code == 2 and "no team 'NOPE'" in err
    code, _, err = run(
        "athletes", "add", "k1", "--name", "Kit Ng", "--sex", "F", "--team", "U19W", "--birth-date", "2013-07-04"
    )
    assert code == 2 and "guardian contact is required" in err and not len(st.read("athletes"))
    assert (
        run(
            "athletes",
            "add",
            "k1",
            "--name",
            "Kit Ng",
            "--sex",
            "F",
            "--team",
            "U19W",
            "--birth-date",
            "2013-07-04",
            "--guardian-contact",
            "ng.parent@example.org",
            "--consent-scope",
            "video",
            "--consent-by",
            "Lu Ng",
            "--consent-date",
            "2026-09-01",
        )[0]
        == 0
    )
    assert run("athletes", "edit", "k1", "--position", "keeper")[0] == 0
    row = st.read("athletes", "k1").iloc[0]
    assert (row.sport, row.position, row.consent_scope, row.consent_date) == (
        "cricket",
        "keeper",
        "video",
        pd.Timestamp("2026-09-01"),
    )
    code, out, _ = run("athletes", "list", "--team", "U19W", "--json")
    listed = json.loads(out)
    assert [a["athlete_id"] for a in listed] == ["k1"] and "guardian_contact" not in listed[0]
    code, out, _ = run("teams", "list", "--json")
    assert json.loads(out)[0]["athletes"] == 1
    audit = st.read("audit")
    assert {"team_add", "team_edit", "athlete_add", "athlete_edit"} <= set(audit.action)


def test_roster_import_bad_rows(store_home, tmp_path):
    home, st = store_home
    run("teams", "add", "U19W", "--sport", "cricket")
    f = tmp_path / "squad.csv"
    f.write_text(ROSTER)
    code, out, _ = run("athletes", "import", str(f), "--team", "U19W", "--dry-run", "--json")
    dry = json.loads(out)
    assert (code, dry["inserted"], dry["quarantined"]) == (0, 3, 5)
    assert not len(st.read("athletes")) and not len(st.quarantine())
    code, out, _ = run("athletes", "import", str(f), "--team", "U19W", "--json")
    d = json.loads(out)
    assert (d["inserted"], d["quarantined"]) == (3, 5)
    assert sorted(st.read("athletes").athlete_id) == ["U19W-01", "U19W-06", "U19W-ivy-moss"]
    reasons = {(int(r["row"]), r["field"]): r["reason"] for r in d["rejects"]}
    assert reasons[(3, "athlete_id")] == "duplicate athlete_id 'U19W-03' (also on row 7)"
    assert reasons[(7, "athlete_id")] == "duplicate athlete_id 'U19W-03' (also on row 3)"
    assert "malformed date '02/30/2002' in birth_date" in reasons[(4, "birth_date")]
    assert "under 18" in reasons[(5, "guardian_contact")]
    assert "unknown team 'U23W'" in reasons[(8, "team_id")]
    q = st.quarantine("athletes")
    assert sorted(q.row.astype(int)) == [3, 4, 5, 7, 8] and set(q.source) == {"squad.csv"}
    again = json.loads(run("athletes", "import", str(f), "--team", "U19W", "--json")[1])
    assert (again["inserted"], again["unchanged"], len(st.quarantine("athletes"))) == (0, 3, 5)
    f2 = tmp_path / "squad2.csv"
    f2.write_text("Name,Sex,Team,Position\nAsha Rao,F,U19W,captain\n")
    d = json.loads(run("athletes", "import", str(f2), "--json")[1])
    assert (d["updated"], d["inserted"]) == (0, 1)  # no id column: the id is made from team and name
    f3 = tmp_path / "squad3.csv"
    f3.write_text("athlete_id,name,sex,team_id,position\nU19W-01,Asha Rao,F,U19W,captain\n")
    d = json.loads(run("athletes", "import", str(f3), "--json")[1])
    assert d["updated"] == 1 and d["plan"][0]["changes"] == "position opening bowler -> captain"
    row = st.read("athletes", "U19W-01").iloc[0]
    assert (row.position, row.birth_date) == ("captain", pd.Timestamp("1998-05-01"))  # columns absent are kept


def test_roster_excel(store_home, tmp_path):
    home, st = store_home
    run("teams", "add", "T1", "--sport", "football")
    f = tmp_path / "squad.xlsx"
    pd.DataFrame(
        {"Player Name": ["Ola Berg", "Tom Hill"], "Gender": ["M", "X"], "DOB": ["1999-01-02", "2000-02-03"]}
    ).to_excel(f, index=False, startrow=2)
    d = json.loads(run("athletes", "import", str(f), "--team", "T1", "--json")[1])
    assert d["inserted"] == 1 and d["rejects"][0]["row"] == "5" and d["rejects"][0]["field"] == "sex"


def test_import_failure_leaves_store_as_before(store_home, tmp_path, monkeypatch):
    home, st = store_home
    run("teams", "add", "U19W", "--sport", "cricket")
    f = tmp_path / "squad.csv"
    f.write_text(ROSTER)
    before = st.counts()
    import pitchlab.store as store_mod

    real = store_mod._records

    def boom(df):
        real(df)
        raise RuntimeError("disk gone mid-write")

    monkeypatch.setattr(store_mod, "_records", boom)
    with pytest.raises(RuntimeError):
        from pitchlab.roster import import_athletes

        import_athletes(f, team="U19W", store=st)
    assert st.counts().equals(before)


def test_users_import_passwords_file(store_home, tmp_path):
    home, st = store_home
    run("teams", "add", "T1", "--sport", "football")
    run("athletes", "add", "A1", "--name", "Ann Lee", "--sex", "F", "--team", "T1")
    f = tmp_path / "staff.csv"
    f.write_text(
        "username,role,name,team_ids,athlete_id\n"
        "kim,coach,Kim Lo,T1,\ndr_lee,medical,,T1,\nann,athlete,Ann Lee,,A1\nbad one,coach,,T1,\nzed,coach,,NOPE,\n"
    )
    pw_file = tmp_path / "out" / "pw.tsv"
    code, out, _ = run("users", "import", str(f), "--passwords-file", str(pw_file))
    assert code == 0 and "3 account(s) created" in out and "line 5 (bad one)" in out and "line 6 (zed)" in out
    assert stat.S_IMODE(pw_file.stat().st_mode) == 0o600
    pw = dict(line.split("\t") for line in pw_file.read_text().splitlines()[2:])
    assert set(pw) == {"kim", "dr_lee", "ann"}
    users = st.read("users").set_index("username")
    assert all(verify_password(users.at[u, "password_hash"], p) for u, p in pw.items())
    assert all(p not in out for p in pw.values())
    code, out, _ = run("users", "import", str(f), "--passwords-file", str(pw_file))
    assert code == 0 and "0 account(s) created" in out
    assert "line 2 (kim), field username: duplicate username: 'kim' already has an account" in out


def test_users_import_dry_run_writes_nothing(store_home, tmp_path):
    home, st = store_home
    run("teams", "add", "T1", "--sport", "football")
    f = tmp_path / "staff.csv"
    f.write_text(
        "username,role,teams,email\nkim,coach,T1,kim@club.org\nraj,physio,T1,\nol,coach,T9,\nsam,coach,T1,sam@club\n"
    )
    code, out, _ = run("users", "import", str(f), "--dry-run")
    assert code == 0 and "1 account(s) would be created (dry run: nothing written)" in out
    assert "create kim (coach, T1)" in out and "line 3 (raj), field role: unknown role 'physio'" in out
    assert "line 4 (ol), field teams: unknown team(s) T9" in out and "line 5 (sam), field email: bad e-mail" in out
    assert (
        len(st.read("users")) == 0 and not list((home / "secrets").glob("*")) if (home / "secrets").exists() else True
    )


def test_active_flags_are_migrated_onto_an_older_store(store_home):
    import sqlalchemy as sa

    home, st = store_home
    run("teams", "add", "T1", "--sport", "football")
    run("athletes", "add", "A1", "--name", "Ann Lee", "--sex", "F", "--team", "T1")
    run("athletes", "add", "A2", "--name", "Bo Ray", "--sex", "M", "--team", "T1")
    with st.engine.begin() as c:  # a store made before the flag existed
        for t in ("teams", "athletes", "users"):
            c.execute(sa.text(f'ALTER TABLE {t} DROP COLUMN "active"'))
    old = Store(st.url)
    assert "active" in old.read("athletes") and old.read("athletes")["active"].isna().all()  # added, empty = active
    assert run("athletes", "list", "--json")[1].count('"active": true') == 2
    code, out, _ = run("athletes", "edit", "A1", "--inactive")
    assert code == 0 and "deactivated" in out
    a = old.read("athletes").set_index("athlete_id")
    assert a.at["A1", "active"] == False and pd.isna(a.at["A2", "active"])  # noqa: E712
    assert a.at["A1", "name"] == "Ann Lee"  # the row and its fields stay
    assert run("teams", "edit", "T1", "--inactive")[0] == 0
    listed = json.loads(run("athletes", "list", "--json")[1])
    assert [x["active"] for x in listed] == [False, False]  # an inactive team's athletes are inactive
    assert run("teams", "edit", "T1", "--active")[0] == 0 and run("athletes", "edit", "A1", "--active")[0] == 0
    assert [x["active"] for x in json.loads(run("athletes", "list", "--json")[1])] == [True, True]
    acts = old.read("audit").query("entity in ['teams', 'athletes']").action.tolist()
    assert acts.count("athlete_edit") == 2 and acts.count("team_edit") == 2


def test_reimporting_a_roster_keeps_an_athlete_inactive(store_home, tmp_path):
    home, st = store_home
    run("teams", "add", "T1", "--sport", "football")
    f = tmp_path / "r.csv"
    f.write_text("ID,Name,Sex\nA1,Ann Lee,F\nA2,Bo Ray,M\n")
    assert run("athletes", "import", str(f), "--team", "T1")[0] == 0
    assert run("athletes", "edit", "A1", "--inactive")[0] == 0
    f.write_text("ID,Name,Sex,Position\nA1,Ann Lee,F,wing\nA2,Bo Ray,M,\n")
    d = json.loads(run("athletes", "import", str(f), "--team", "T1", "--json")[1])
    assert d["updated"] == 1
    a = st.read("athletes").set_index("athlete_id")
    assert a.at["A1", "active"] == False and a.at["A1", "position"] == "wing"  # noqa: E712


@pytest.mark.slow  # `make test` runs it, `make test-quick` does not
def test_readme_statcast_example_on_fresh_store(home):
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ)
    subprocess.run([PITCHLAB, "init"], check=True, capture_output=True, env=env)
    files = sorted(str(p) for p in (root / "data/samples/statcast").glob("*.csv"))
    r = subprocess.run(
        [
            PITCHLAB,
            "ingest",
            "statcast",
            *files,
            "--team",
            "MLB",
            "--create-team",
            "--create-athletes",
            "--json",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=300,
    )
    d = json.loads(r.stdout)
    assert r.returncode == 0 and d["errors"] == [] and len(d["created_athletes"]) >= 2
    st = Store()
    assert set(st.read("athletes").team_id) == {"MLB"} and len(st.read("pitches")) == d["read"] - d["quarantined"]
