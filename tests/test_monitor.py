"""Operations between retrains: the weekly report per team (names, tiers, HTML and PDF) e-mailed to a real local SMTP
server, two reports back to back on fresh kernels, the latest report per team, and the drift command."""

import email
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pitchlab import cli

pytestmark = pytest.mark.slow  # fits models and sends mail over SMTP: `make test` runs it, `make test-quick` does not

PITCHLAB = str(Path(sys.executable).parent / "pitchlab")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def squad_home(tmp_path_factory):
    """A data home with a small demo cohort and a quickly trained champion (GLM, open gate)."""
    h = tmp_path_factory.mktemp("monitor") / "home"
    old = {k: os.environ.get(k) for k in ("PITCHLAB_HOME", "PITCHLAB_DB_URL", "MLFLOW_TRACKING_URI")}
    os.environ["PITCHLAB_HOME"] = str(h)
    os.environ.pop("PITCHLAB_DB_URL", None)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    cli.demo(seed=5, n_teams=2, athletes_per_team=8, seasons=1, quiet=True, train=False)
    from pitchlab import features as F
    from pitchlab.models.baselines import GLMBaseline
    from pitchlab.registry import PickledModel, Registry, feature_profile
    from pitchlab.store import Store

    st = Store()
    feats = F.build_features({t: st.read(t, actor="test") for t in ("sessions", "athletes", "injuries")})
    cols = [c for c in F.LOAD_FEATURES if c in feats]
    recent = feats[feats["date"] > feats["date"].max() - pd.Timedelta(days=28)]
    reg = Registry()
    v = reg.log_model(
        "injury_risk",
        PickledModel(GLMBaseline().fit(feats)),
        metrics=dict(auc=0.6),
        params={},
        profile=feature_profile(recent[cols], seed=0),
        athletes=st.read("athletes"),
    )["version"]
    reg.promote("injury_risk", v, gate=dict(auc_min=None, beat_baseline_by=None))
    yield h
    for k, val in old.items():
        if val is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = val


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller

    class Keep:
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):
            self.messages.append((envelope.rcpt_tos, envelope.content))
            return "250 OK"

    handler, port = Keep(), _free_port()
    ctl = Controller(handler, hostname="127.0.0.1", port=port)
    ctl.start()
    yield handler, port
    ctl.stop()


def test_weekly_reports_emailed_back_to_back(squad_home, smtp_server, monkeypatch):
    from pitchlab.monitor import latest_report, weekly_reports
    from pitchlab.store import Store

    handler, port = smtp_server
    monkeypatch.setenv("PITCHLAB_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("PITCHLAB_SMTP_PORT", str(port))
    monkeypatch.setenv("PITCHLAB_REPORT_FROM", "reports@club.example")
    monkeypatch.setenv("PITCHLAB_REPORT_TO", "head.coach@club.example")
    st = Store()
    ath, teams = st.read("athletes"), st.read("teams").set_index("team_id")
    ids = sorted(set(ath.team_id))
    monkeypatch.setenv("PITCHLAB_REPORT_TO_" + ids[0].upper().replace("-", "_"), "team.doc@club.example")
    reps = weekly_reports(ids)
    assert [r["status"] for r in reps] == ["succeeded", "succeeded"], [r["error"] for r in reps]
    assert len(handler.messages) == 2
    assert sorted(handler.messages[0][0]) == ["head.coach@club.example", "team.doc@club.example"]
    assert handler.messages[1][0] == ["head.coach@club.example"]
    for (to, raw), r in zip(handler.messages, reps):
        msg = email.message_from_bytes(raw)
        assert teams.at[r["team"], "name"] in msg["Subject"]
        parts = {p.get_filename(): p for p in msg.walk() if p.get_filename()}
        pdf = next(p for n, p in parts.items() if n.endswith(".pdf")).get_payload(decode=True)
        html = next(p for n, p in parts.items() if n.endswith(".html")).get_payload(decode=True).decode()
        assert pdf.startswith(b"%PDF") and Path(r["pdf"]).read_bytes() == pdf
        team_ath = ath[ath.team_id == r["team"]]
        assert any(n in html for n in team_ath.name)
        assert not any(re.search(rf"\b{re.escape(a)}\b", html) for a in team_ath.athlete_id)
        assert 0 < len(r["risk"]) <= len(team_ath) and all(x["athlete"] in set(team_ath.name) for x in r["risk"])
        assert {x["tier"] for x in r["risk"]} <= {"low", "elevated", "high"}
        flagged = {k.split()[0] for k in r["by_kind"] if k.endswith(" risk")}
        assert flagged == {x["tier"] for x in r["risk"]} - {"low"}  # flags follow the tiers, never a top-N rank
    last = latest_report(ids[1])
    assert last["pdf"] == reps[1]["pdf"] and Path(last["html"]).is_file() and last["week_end"] == reps[1]["week_end"]
    assert latest_report("no-such-team") is None
    audit = st.read("audit")
    assert (audit.action == "report").sum() >= 2


def test_report_without_smtp_and_cli(squad_home, monkeypatch):
    for k in ("PITCHLAB_SMTP_HOST", "PITCHLAB_REPORT_TO"):
        monkeypatch.delenv(k, raising=False)
    from pitchlab.store import Store

    team = sorted(set(Store().read("athletes").team_id))[0]
    r = subprocess.run([PITCHLAB, "report", "--team", team, "--json"], capture_output=True, text=True, timeout=600)
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert r.returncode == 0 and out[0]["status"] == "succeeded" and out[0]["sent_to"] == []


def test_drift_command(squad_home):
    r = subprocess.run([PITCHLAB, "drift", "--days", "28", "--json"], capture_output=True, text=True, timeout=600)
    out = json.loads(r.stdout)
    assert r.returncode in (0, 1) and out["model_name"] == "injury_risk" and out["rows"] > 0
    assert {f["feature"] for f in out["features"]} >= {"acwr_ewma", "ctl"}
    from pitchlab.monitor import latest_drift

    d = latest_drift()
    assert len(d) == len(out["features"]) and d["psi"].is_monotonic_decreasing
    assert (r.returncode == 1) == out["over"]
    t = subprocess.run(
        [PITCHLAB, "schedule", "--command", "drift", "--when", "*-*-* 04:00:00"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "ExecStart=" in t.stdout and " drift\n" in t.stdout and "OnCalendar=*-*-* 04:00:00" in t.stdout


def test_weekly_report_reads_the_predictions_stored_for_its_day(squad_home):
    "The report's risk table is what `pitchlab score` stored for the week's last day (what the board showed), with the model."
    from pitchlab.monitor import weekly_reports
    from pitchlab.store import Store

    st = Store()
    ath = st.read("athletes")
    team = sorted(set(ath.team_id))[0]
    team_ath = ath[ath.team_id == team]
    end = st.read("sessions", list(team_ath.athlete_id))["date"].max()
    r = subprocess.run(
        [PITCHLAB, "score", "--day", str(end.date()), "--json"], capture_output=True, text=True, timeout=600
    )
    assert r.returncode == 0, r.stderr[-2000:]
    scored = json.loads(r.stdout)
    rep = weekly_reports([team], send=False)[0]
    assert rep["status"] == "succeeded", rep["error"]
    stored = st.read("predictions", list(team_ath.athlete_id), start=end, end=end)
    stored = stored[stored.model_version == scored["version"]]
    want = dict(zip(stored.athlete_id.map(team_ath.set_index("athlete_id")["name"]), stored.risk))
    assert rep["week_end"] == str(end.date()) and len(rep["risk"]) == len(want) > 0
    assert {x["source"] for x in rep["risk"]} == {"stored"} and {x["model"] for x in rep["risk"]} == {
        f"injury_risk v{scored['version']}"
    }
    np.testing.assert_allclose([x["risk"] for x in rep["risk"]], [want[x["athlete"]] for x in rep["risk"]], rtol=1e-12)
    assert f"injury_risk v{scored['version']}, scored" in rep["risk_source"]
