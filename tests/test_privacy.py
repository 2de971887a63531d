"""Privacy operations on both store backends: export then erase of a synthetic athlete (CLI, confirmation), a
minor's cycle and pose data refused without consent, the retention purge."""

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from pitchlab import synth
from pitchlab.privacy import token
from pitchlab.store import Store

# slow: runs the CLI in subprocesses on both backends; `make test` (--runslow) runs it, `make test-quick` does not
pytestmark = pytest.mark.slow

PITCHLAB = str(Path(sys.executable).parent / "pitchlab")


@pytest.fixture
def cohort(home, db_url, monkeypatch):
    monkeypatch.setenv("PITCHLAB_DB_URL", db_url)
    st = Store(db_url).create()
    tables = synth.make_cohort(seed=2, n_teams=1, athletes_per_team=4, seasons=1).tables()
    for t in ("teams", "athletes", "sessions", "wellness", "cycle_logs", "injuries"):
        st.write(t, tables[t], source="synthetic")
    return st, tables


def pitchlab(*args, stdin=None):
    return subprocess.run([PITCHLAB, *args], input=stdin, capture_output=True, text=True, timeout=300)


def test_export_then_erase(cohort, home):
    st, tables = cohort
    ath = st.read("athletes")
    who = ath[ath.sex == "F"].iloc[0]
    aid, name = who.athlete_id, who["name"]
    st.write(
        "predictions",
        pd.DataFrame(
            [
                dict(
                    athlete_id=aid,
                    date="2025-06-01",
                    horizon_days=7,
                    model_name="injury_risk",
                    model_version="1",
                    risk=0.03,
                    source="test",
                )
            ]
        ),
    )
    (home / "pose" / aid).mkdir(parents=True)
    (home / "pose" / aid / "pitch.json").write_text('{"score": 64}')
    want = {
        t: len(st.read(t, aid, actor="test")) for t in ("sessions", "wellness", "cycle_logs", "injuries", "predictions")
    }
    assert all(want.values())
    r = pitchlab("athletes", "export", aid, "--out", str(home / "exports" / "x.zip"), "--actor", "dpo")
    assert r.returncode == 0, r.stderr
    with zipfile.ZipFile(home / "exports" / "x.zip") as z:
        man = json.loads(z.read("manifest.json"))
        data = json.loads(z.read("data.json"))
        for t, n in want.items():
            assert man["tables"][t] == n and len(pd.read_csv(io.BytesIO(z.read(f"{t}.csv")))) == n
        assert z.read(f"files/pose/{aid}/pitch.json") == b'{"score": 64}'
    assert data["athletes"][0]["name"] == name
    r = pitchlab("athletes", "erase", aid, stdin="wrong-id\n")
    assert r.returncode == 2 and "nothing erased" in r.stderr and len(st.read("athletes", aid))
    r = pitchlab("athletes", "erase", aid, "--actor", "dpo", stdin=aid + "\n")
    assert r.returncode == 0, r.stderr
    assert "registry: 0 model(s) rewritten" in r.stdout and "reports: 0 rewritten" in r.stdout  # no registry here
    for t in st.tables:
        text = st.read(t, actor="check").to_csv()
        assert aid not in text and name not in text, t
    assert not (home / "pose" / aid).exists() or not any((home / "pose" / aid).iterdir())
    assert not (home / "exports" / "x.zip").exists()
    audit = st.read("audit")
    mine = audit[audit.athlete_id == token(aid)]
    assert {"export", "erase"} <= set(mine.action) and "dpo" in " ".join(mine.actor)
    assert len(st.read("athletes")) == len(tables["athletes"]) - 1


def test_minor_needs_consent(cohort):
    st, _ = cohort
    st.write(
        "athletes",
        pd.DataFrame(
            [
                dict(
                    athlete_id="Y1",
                    name="Yan Kid",
                    sex="F",
                    sport="cricket",
                    team_id=st.read("teams").team_id.iloc[0],
                    birth_date="2012-04-01",
                    guardian_contact="kid.parent@example.org",
                )
            ]
        ),
    )
    logs = pd.DataFrame(
        [
            dict(athlete_id=a, date="2026-03-01", phase="luteal", cycle_day=20, source="form")
            for a in ("Y1", st.read("athletes").query("sex == 'F' and athlete_id != 'Y1'").athlete_id.iloc[0])
        ]
    )
    rep = st.write("cycle_logs", logs, source="form")
    assert (rep.inserted, rep.quarantined) == (1, 1)
    why = rep.rejects.iloc[0]
    assert (
        why["field"] == "athlete_id" and "Y1 is under 18: cycle_logs need a guardian's consent (cycle)" in why["reason"]
    )
    pose = pd.DataFrame(
        [dict(athlete_id="Y1", date="2026-03-01", movement="pitch", video_sha256="ab" * 32, score=70.0, source="pose")]
    )
    assert st.write("pose_results", pose, source="pose").quarantined == 1
    r = pitchlab(
        "athletes",
        "edit",
        "Y1",
        "--consent-scope",
        "video,cycle",
        "--consent-by",
        "Mo Kid (mother)",
        "--consent-date",
        "2026-02-20",
    )
    assert r.returncode == 0, r.stderr
    assert st.write("cycle_logs", logs, source="form").inserted == 1
    assert st.write("pose_results", pose, source="pose").inserted == 1


def test_purge(cohort, monkeypatch):
    st, _ = cohort
    n = len(st.read("cycle_logs", actor="t"))
    cut = st.read("cycle_logs", actor="t").date.max() - pd.Timedelta(days=30)
    old = int((st.read("cycle_logs", actor="t").date < cut).sum())
    monkeypatch.setenv("PITCHLAB_RETAIN_CYCLE_DAYS", "30")
    from pitchlab.privacy import purge

    today = cut + pd.Timedelta(days=30)
    assert (
        purge(dry_run=True, today=today)["done"] == {"cycle_logs": old} and len(st.read("cycle_logs", actor="t")) == n
    )
    assert purge(today=today)["done"]["cycle_logs"] == old > 0
    assert len(st.read("cycle_logs", actor="t")) == n - old
    r = pitchlab("privacy", "purge", "--dry-run")
    assert r.returncode == 0 and "cycle_logs 30 d" in r.stdout
