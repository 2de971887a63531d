"""`pitchlab ingest ...` end to end: JSON report, exit codes, help, the installed entry point."""

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pitchlab import cli
from pitchlab.core import project_root, settings
from pitchlab.store import Store

ROOT = project_root(Path(__file__).parent)
FX = ROOT / "tests/data/ingest"
DARVISH = str(ROOT / "data/samples/statcast/pybaseball_raw_darvish_data.csv")


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def store(home):
    st = Store(settings().db_url).create()
    st.write(
        "teams",
        pd.DataFrame(
            [dict(team_id="chc", name="Cubs", sport="baseball"), dict(team_id="wfc", name="WFC", sport="football")]
        ),
    )
    st.write(
        "athletes",
        pd.DataFrame(
            [
                dict(athlete_id="f01", name="Ann Kerr", sex="F", sport="football", team_id="wfc"),
                dict(athlete_id="f02", name="Bea Moss", sex="F", sport="football", team_id="wfc"),
                dict(athlete_id="f03", name="Cara Lind", sex="F", sport="football", team_id="wfc"),
            ]
        ),
    )
    return st


def test_json_report_has_the_promised_keys_and_reload_changes_nothing(store):
    code, out, _ = run("ingest", "statcast", DARVISH, "--team", "chc", "--create-athletes", "--json", "--no-progress")
    d = json.loads(out)
    assert code == 0 and {"read", "loaded", "updated", "quarantined", "errors"} <= set(d)
    assert (d["read"], d["loaded"], d["updated"], d["quarantined"], d["errors"]) == (438, 480, 0, 0, [])
    code, out, _ = run("ingest", "statcast", DARVISH, "--json", "--no-progress")
    d = json.loads(out)
    assert (code, d["inserted"], d["updated"], d["unchanged"]) == (0, 0, 0, 479)


def test_each_kind_runs_from_the_command_line(store, tmp_path):
    fit = ROOT / "data/samples/fit"
    runs = {
        "fit": [
            "fit",
            fit / "garmin-fenix-5-run.fit",
            fit / "MonitoringFile.fit",
            "--athlete",
            "f01",
            "--tz",
            "America/Los_Angeles",
        ],
        "whoop": ["whoop", *sorted((FX / "whoop").glob("*.csv")), "--athlete", "Ann Kerr"],
        "catapult": ["catapult", FX / "catapult_openfield_units.csv", "--team", "wfc", "--dayfirst"],
        "csv": ["csv", FX / "club_sessions.csv", FX / "club_sessions.xlsx", "--mapping", FX / "club_sessions.yaml"],
    }
    got = {}
    for k, argv in runs.items():
        code, out, err = run("ingest", *argv, "--json", "--no-progress")
        assert code == 0, (k, err)
        got[k] = json.loads(out)
    assert (
        got["fit"]["skipped"][0]["file"] == "MonitoringFile.fit"
        and got["fit"]["entities"]["rr_intervals"]["inserted"] == 113
    )
    assert (
        got["whoop"]["entities"]["wellness"]["inserted"] >= 6
        and got["whoop"]["skipped"][0]["file"] == "journal_entries.csv"
    )
    assert got["catapult"]["unknown_athletes"][0]["value"] == "Dee Stranger" and got["catapult"]["inserted"] == 3
    assert got["csv"]["read"] == 12 and got["csv"]["inserted"] == 3 and got["csv"]["unchanged"] == 3


def test_refused_files_are_listed_the_rest_load_and_the_exit_code_says_so(store, tmp_path):
    bad = tmp_path / "export.csv"
    bad.write_bytes(b"\x00\x01\x02 binary with a csv name")
    code, out, err = run(
        "ingest", "statcast", bad, DARVISH, "--team", "chc", "--create-athletes", "--json", "--no-progress"
    )
    d = json.loads(out)
    assert code == 1 and d["inserted"] == 480
    assert d["errors"][0]["file"].endswith("export.csv") and "binary" in d["errors"][0]["error"]
    code, out, err = run("ingest", "statcast", bad, "--no-progress")
    assert code == 1 and "ERROR" in out and "export.csv" in out


def test_configuration_errors_exit_2_with_a_message(store, tmp_path):
    code, out, err = run(
        "ingest", "statcast", DARVISH, "--team", "nope", "--create-athletes", "--json", "--no-progress"
    )
    assert code == 2 and "no team 'nope'" in err and json.loads(out)["errors"][0]["error"].startswith("no team 'nope'")
    code, out, err = run(
        "ingest",
        "fit",
        ROOT / "data/samples/fit/Activity.fit",
        "--athlete",
        "f01",
        "--tz",
        "Mars/Base",
        "--no-progress",
    )
    assert code == 2 and "unknown time zone" in err
    m = tmp_path / "m.yaml"
    m.write_text("entity: sessions\ncolumns: {player: Player}\n")
    code, out, err = run("ingest", "csv", FX / "club_sessions.csv", "--mapping", m, "--no-progress")
    assert code == 2 and "sessions has no field(s) ['player']" in err


def test_no_store_yet_says_to_run_init(home):
    code, out, err = run("ingest", "statcast", DARVISH, "--no-progress")
    assert code == 2 and "pitchlab init" in err


def test_help_lists_the_kinds_and_the_entry_point_works():
    exe = Path(sys.executable).parent / "pitchlab"
    r = subprocess.run([str(exe), "ingest", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0
    for k in ("statcast", "fit", "whoop", "catapult", "csv"):
        assert k in r.stdout
    r = subprocess.run([str(exe), "ingest", "csv", "x.csv"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--mapping" in r.stderr


def test_importing_the_commands_module_stays_light():
    code = (
        "import sys, pitchlab.ingest.commands; "
        "heavy = [m for m in ('pandas', 'sqlalchemy', 'fitdecode', 'openpyxl', 'pitchlab.store') if m in sys.modules]; print(heavy)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "[]", r.stdout + r.stderr
