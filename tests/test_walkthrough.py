"""The README's "Bring your own team" section, run as written from a fresh store on SQLite and PostgreSQL.

The fenced ```bash blocks of that section run in order with bash (set -e), the ```python blocks with the project's
Python, in a scratch folder that links the clone's `.venv` and `data/`, with PITCHLAB_HOME a new folder. Then the
store, the registry and the board's data are checked."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

# the README's walk-through on both backends: `make test` runs it, `make test-quick` does not
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Bring your own team"


def readme_blocks(readme: Path = ROOT / "README.md") -> list:
    "(language, code) of every fenced block of the section, in order."
    text = readme.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    body = text[start : end if end > 0 else None]
    return re.findall(r"^```(bash|python)\n(.*?)^```", body, flags=re.M | re.S)


def test_readme_section_has_the_steps():
    blocks = readme_blocks()
    code = "\n".join(c for _, c in blocks)
    for step in (
        "pitchlab init",
        "teams add",
        "athletes import",
        "users import",
        "ingest statcast",
        "ingest fit",
        "ingest csv",
        "pitchlab retrain",
        "pitchlab score",
    ):
        assert step in code, step
    assert {lang for lang, _ in blocks} == {"bash"}


@pytest.mark.slow
def test_walkthrough(tmp_path, db_url):
    work = tmp_path / "work"
    work.mkdir()
    (work / ".venv").symlink_to(ROOT / ".venv")
    (work / "data").symlink_to(ROOT / "data")
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PITCHLAB_", "MLFLOW_"))}
    env.update(PITCHLAB_HOME=str(home), PITCHLAB_DB_URL=db_url, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    outputs = []
    for lang, code in readme_blocks():
        cmd = ["bash", "-euo", "pipefail", "-c", code] if lang == "bash" else [sys.executable, "-c", code]
        r = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=900)
        outputs.append(r.stdout + r.stderr)
        assert r.returncode == 0, (
            f"README {lang} block failed ({r.returncode}):\n{code}\n--- output ---\n{outputs[-1][-4000:]}"
        )
    log = "\n".join(outputs)
    assert "row 4, field guardian_contact: athlete is under 18" in log  # Cy Sprint, refused by the import

    os.environ["PITCHLAB_HOME"], os.environ["PITCHLAB_DB_URL"] = str(home), db_url
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    try:
        from pitchlab.registry import Registry
        from pitchlab.store import Store

        st = Store(db_url)
        ath = st.read("athletes").set_index("athlete_id")
        assert set(ath.team_id) == {"MLB", "HAM", "CYC"}
        assert ath.loc["CYC-cy-sprint", "consent_scope"] == "video"
        assert (ath.team_id == "HAM").sum() == 6 and (ath.team_id == "CYC").sum() == 3
        assert sorted(st.read("users").username) == ["ada", "dr_lee", "kim"]
        pw = work / "myclub" / "one-time-passwords.tsv"
        assert oct(pw.stat().st_mode & 0o777) == "0o600"
        ses = st.read("sessions")
        assert (ses.athlete_id.map(ath.team_id) == "HAM").sum() == 2986
        assert (ses.athlete_id == "CYC-ada-rider").sum() >= 5 and (ses.athlete_id.map(ath.team_id) == "MLB").sum() >= 2
        inj = st.read("injuries", actor="test")
        assert len(inj) == 6 and set(inj.body_region) == {"hamstring"}
        assert (home / "derived" / "daily_metrics.parquet").is_file()
        champ = Registry().champion("injury_risk")
        assert champ is not None
        pred = st.read("predictions")
        assert len(pred) >= 4 and set(pred.model_name) == {"injury_risk"} and set(pred.model_version) == {champ}
        assert pred.athlete_id.is_unique and pred.risk.between(0, 1).all()
        assert len(st.read("drift_checks"))

        from pitchlab.board import default_risk_provider, read_frames, team_board

        ham = ath[ath.team_id == "HAM"].reset_index()
        board = team_board(
            read_frames(st, list(ham.athlete_id)), ham, default_risk_provider(st), teams=st.read("teams")
        )
        assert set(board.name) == {f"Athlete 0{i}" for i in range(1, 7)}
        assert board.risk.notna().sum() >= 4 and set(board.team) == {"Hamstring squad"}
    finally:
        os.environ.pop("PITCHLAB_HOME", None)
        os.environ.pop("PITCHLAB_DB_URL", None)
