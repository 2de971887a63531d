"""Retraining through papermill and the MLflow registry, as operators use it: gate, rollback, lock, crash, privacy."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pitchlab import cli
from pitchlab.registry import Registry

pytestmark = pytest.mark.slow  # runs papermill retrains with MLflow: `make test` runs it, `make test-quick` does not

PITCHLAB = str(Path(sys.executable).parent / "pitchlab")
OPEN_GATE = json.dumps({"auc_min": None, "beat_baseline_by": None})


def retrain(*params, env=None):
    args = [PITCHLAB, "retrain", "--json"] + [a for p in params for a in ("--param", p)]
    r = subprocess.run(args, capture_output=True, text=True, env=env, timeout=900)
    return r.returncode, json.loads(r.stdout.strip().splitlines()[-1]), r


@pytest.fixture(scope="module")
def cohort_home(tmp_path_factory):
    """A data home with a small demo cohort in its store (shared by the tests of this module, in order)."""
    h = tmp_path_factory.mktemp("pipelines") / "home"
    old = {k: os.environ.get(k) for k in ("PITCHLAB_HOME", "PITCHLAB_DB_URL", "MLFLOW_TRACKING_URI")}
    os.environ["PITCHLAB_HOME"] = str(h)
    os.environ.pop("PITCHLAB_DB_URL", None)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    cli.demo(seed=5, athletes_per_team=10, seasons=2, quiet=True, train=False)
    yield h
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def test_gate_rollback_and_privacy(cohort_home):
    rc, first, _ = retrain("model=glm", f"gate={OPEN_GATE}")
    assert rc == 0 and first["status"] == "succeeded" and first["result"]["promoted"] is True
    reg = Registry()
    assert reg.champion("injury_risk") == first["result"]["version"]

    rc, second, _ = retrain("model=glm", "test_frac=0.4", f"gate={OPEN_GATE}")
    assert rc == 0 and second["result"]["promoted"] is True
    assert reg.champion("injury_risk") == second["result"]["version"]

    rc, failing, _ = retrain("model=glm", 'gate={"auc_min": 0.99}')
    assert rc == 0 and failing["result"]["promoted"] is False
    assert any("below the gate's 0.990" in r for r in failing["result"]["gate_reasons"])
    assert reg.champion("injury_risk") == second["result"]["version"], "a failed gate must leave the champion"
    v = reg.versions("injury_risk").set_index("version")
    assert v.loc[int(failing["result"]["version"]), "gate"] == "failed"

    assert reg.rollback("injury_risk") == first["result"]["version"]
    assert reg.champion("injury_risk") == first["result"]["version"]
    model = reg.load("injury_risk")
    assert model.registry_version == first["result"]["version"]

    # the report and every artifact carry pseudonymous ids, never names or birth dates
    from pitchlab.store import Store

    athletes = Store().read("athletes")
    names, births = set(athletes.name), {d.strftime("%Y-%m-%d") for d in athletes.birth_date.dropna()}
    texts = [Path(first["notebook"]).read_text(), Path(first["html"]).read_text()]
    texts += [
        p.read_text(errors="ignore")
        for p in (cohort_home / "mlflow").rglob("*")
        if p.is_file() and p.suffix in (".json", ".txt", ".yaml", ".ipynb", ".html", "")
    ]
    blob = "\n".join(texts)
    # the retrain report shows aggregates only (calibration, tiers, gate): not even the pseudonymous athlete ids
    assert "syn-" not in Path(first["notebook"]).read_text() and "O/E" in Path(first["notebook"]).read_text()
    assert not [n for n in names if n in blob], "an athlete name reached a report or artifact"
    assert not [b for b in births if b in blob], "a birth date reached a report or artifact"


def test_a_second_retrain_is_refused_while_one_runs(cohort_home):
    slow = subprocess.Popen(
        [PITCHLAB, "retrain", "--json", "--param", "model=glm", "--param", "promote=false"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lock = cohort_home / "locks" / "retrain_injury_risk.lock"
    for _ in range(300):
        if lock.is_file() and lock.read_text().strip():
            break
        time.sleep(0.1)
    rc, refused, _ = retrain("model=glm")
    out, _ = slow.communicate(timeout=600)
    assert rc == 3 and refused["status"] == "refused" and "already running" in refused["error"]
    assert slow.returncode == 0 and json.loads(out.strip().splitlines()[-1])["status"] == "succeeded"


def test_a_killed_retrain_leaves_registry_and_champion_and_the_next_one_runs(cohort_home):
    reg = Registry()
    before_champ, before_versions = reg.champion("injury_risk"), len(reg.versions("injury_risk"))
    p = subprocess.Popen(
        [
            PITCHLAB,
            "retrain",
            "--param",
            "model=bayes",
            "--param",
            "draws=50000",
            "--param",
            "tune=50000",
            "--param",
            f"gate={OPEN_GATE}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    lock = cohort_home / "locks" / "retrain_injury_risk.lock"
    for _ in range(600):  # the runner holds the lock: the notebook is starting
        if lock.is_file() and lock.read_text().strip():
            break
        time.sleep(0.1)
    time.sleep(
        10
    )  # inside the notebook: kernel started, features built, sampling under way (50,000 draws cannot be done)
    assert p.poll() is None, "the retrain ended before it could be killed"
    os.killpg(p.pid, signal.SIGKILL)
    p.wait(30)
    assert reg.champion("injury_risk") == before_champ
    assert len(reg.versions("injury_risk")) == before_versions
    rc, after, _ = retrain("model=glm", "promote=false")
    assert rc == 0 and after["status"] == "succeeded"


def test_session_quality_retrain_and_weekly_report(cohort_home):
    args = [PITCHLAB, "retrain", "--json", "--pipeline", "retrain_session_quality", "--param", "epochs=3"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=900)
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert r.returncode == 0 and out["status"] == "succeeded", out.get("error")
    assert out["result"]["mae"] > 0 and out["result"]["version"] == "1"
    assert out["result"]["promoted"] == (out["result"]["mae"] < out["result"]["baseline_mae"])

    r = subprocess.run(
        [PITCHLAB, "retrain", "--json", "--pipeline", "weekly_report"], capture_output=True, text=True, timeout=900
    )
    rep = json.loads(r.stdout.strip().splitlines()[-1])
    assert r.returncode == 0 and rep["status"] == "succeeded", rep.get("error")
    assert rep["result"]["athletes"] == 30 and rep["result"]["flags"] == sum(rep["result"]["by_kind"].values())
    html = Path(rep["html"]).read_text()
    assert "Flags" in html and "EWMA ACWR" in html
    from pitchlab.store import Store

    athletes = Store().read("athletes")
    # a coach's report (issue 15): athletes by name, never their birth dates
    assert [n for n in set(athletes.name) if n in html], "the weekly report names the athletes"
    births = {d.strftime("%Y-%m-%d") for d in athletes.birth_date.dropna()}
    assert not [b for b in births if b in html], "a birth date reached the weekly report"


def test_the_demo_stores_the_champions_risk_for_its_last_day(cohort_home):
    "As `make demo` does after its first training: the champion scores the last session day and the rows are stored."
    from pitchlab.store import Store

    champ = Registry().champion("injury_risk")
    assert champ is not None  # promoted by the tests above
    out = cli._demo_score(quiet=True)
    st = Store()
    day = st.read("sessions").date.max()
    p = st.read("predictions", start=day, end=day)
    assert out["day"] == f"{day:%Y-%m-%d}" and out["version"] == champ
    assert len(p) == out["athletes"] > 0 and set(p.model_version) == {str(champ)}
    assert p.risk.between(0, 1).all()
    again = cli._demo_score(quiet=True)  # a second demo run stores nothing twice
    assert again["inserted"] == 0 and len(st.read("predictions", start=day, end=day)) == len(p)
    line = cli.summary(st, scored=out)
    assert f"risk of {out['athletes']} athletes at risk on {out['day']} stored with injury_risk v{champ}" in line
