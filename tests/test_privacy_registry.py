"""Erasure reaches the registry: a real Bayesian risk model (per-athlete effects) and a real MLflow registry in a temp
data home, an artefact table and a parameter naming the athlete, a report naming them; after `privacy.erase_athlete`
(what `pitchlab athletes erase` and the admin page call) no file under the data home (store, registry database and artefacts, reports) holds the athlete's id or name, the
model still loads and scores the other athletes exactly as before, and the audit says what was rewritten."""

import json
import pickle
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pitchlab.features import build_features
from pitchlab.models.bayes import QUICK_SAMPLER, HazardModel
from pitchlab.privacy import erase_athlete, token
from pitchlab.registry import Registry
from pitchlab.store import Store
from pitchlab.synth import make_cohort

warnings.filterwarnings("ignore", category=FutureWarning)


def _hits(home: Path, needles: list) -> dict:
    "Every file under the data home whose bytes contain one of the needles (plain substring: stricter than erase's)."
    out = {}
    for p in sorted(home.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            found = [n for n in needles if n.encode() in data]
            if found:
                out[str(p.relative_to(home))] = found
    return out


@pytest.fixture
def trained(home):
    st = Store().create()
    tables = make_cohort(seed=4, n_teams=1, athletes_per_team=8, seasons=1).tables()
    for t in ("teams", "athletes", "sessions", "wellness", "cycle_logs", "injuries"):
        st.write(t, tables[t], source="synthetic")
    ath = st.read("athletes")
    who = ath.iloc[2]
    feats = build_features(
        {k: st.read(k, actor="t") for k in ("athletes", "sessions", "wellness", "injuries")}, horizon=7
    )
    m = HazardModel(
        model_config=dict(levels=["athlete"]),
        sampler_config={**QUICK_SAMPLER, "draws": 60, "tune": 60, "chains": 1, "random_seed": 1},
    )
    m.fit(feats)
    assert who.athlete_id in m.info["levels"]["athlete"]
    table = home / "per_athlete_auc.csv"  # an evaluation table by athlete, logged with the run
    pd.DataFrame(dict(athlete_id=ath.athlete_id, auc=0.6)).to_csv(table, index=False)
    reg = Registry()
    logged = reg.log_model(
        "injury_risk",
        m,
        metrics=dict(auc=0.7),
        params=dict(model="bayes", holdout_athlete=who.athlete_id),
        artifacts=[table],
        athletes=ath,
    )
    table.unlink()
    report = home / "reports" / "weekly_report" / ath.team_id.iloc[0]
    report.mkdir(parents=True)
    (report / "weekly_report-1.html").write_text(
        f"<td>{who['name']}</td><td>{who.athlete_id}</td><td>{ath.iloc[3]['name']}</td>"
    )
    (report / "weekly_report-1.pdf").write_bytes(b"%PDF-1.4 compressed names")
    (report / "weekly_report-2.html").write_text(f"<td>{ath.iloc[3]['name']}</td>")
    return st, feats, who, logged, ath


def test_erase_reaches_the_registry_and_the_reports(trained, home):
    st, feats, who, logged, ath = trained
    aid, name = who.athlete_id, who["name"]
    others = feats[feats.athlete_id != aid].tail(40)
    before = Registry().load("injury_risk", logged["version"]).predict(others)
    seen = set(_hits(home, [aid, name]))
    assert "mlflow/mlflow.db" in seen and seen & {"pitchlab.db", "pitchlab.db-wal"}
    out = erase_athlete(aid, actor="dpo")  # the command's confirmation is tested in test_privacy.py
    assert out["registry_mentions"] == [] and out["registry"]["flagged"] == []
    assert _hits(home, [aid, name]) == {}
    # the model lost the athlete's effect and cells, nothing else: the others score exactly as before
    m = Registry().load("injury_risk", logged["version"])
    assert aid not in m.info["levels"]["athlete"] and len(m.info["levels"]["athlete"]) == len(ath) - 1
    np.testing.assert_allclose(m.predict(others)["risk"], before["risk"], rtol=1e-12)
    c = Registry().client
    run = c.get_run(logged["run_id"])
    assert run.data.params["holdout_athlete"] == token(aid) and "pitchlab.erasure" in run.data.tags
    mv = c.get_model_version("injury_risk", logged["version"])
    assert "pitchlab.erasure" in mv.tags
    art = Path(run.info.artifact_uri.replace("file://", "")) / "report" / "per_athlete_auc.csv"
    assert list(pd.read_csv(art).athlete_id).count(token(aid)) == 1  # rewritten in place, the other rows kept
    rep = home / "reports" / "weekly_report" / ath.team_id.iloc[0]
    assert (
        not (rep / "weekly_report-1.pdf").exists() and "[erased athlete]" in (rep / "weekly_report-1.html").read_text()
    )
    assert ath.iloc[3]["name"] in (rep / "weekly_report-2.html").read_text()
    audit = st.read("audit")
    entry = audit[(audit.action == "erase_files") & (audit.athlete_id == token(aid))]
    d = json.loads(entry.detail.iloc[0])
    assert d["registry"]["models"] == 1 and d["registry"]["effects"] == 1 and d["registry"]["db_values"] >= 1
    assert d["registry"]["texts"] == 1 and d["reports_rewritten"] == 1 and d["reports_deleted"] == 1


def test_an_artefact_that_cannot_be_rewritten_is_flagged_for_retrain(home, tmp_path):
    st = Store().create()
    st.write("teams", pd.DataFrame([dict(team_id="T1", name="Team", sport="football")]))
    st.write(
        "athletes", pd.DataFrame([dict(athlete_id="A7", name="Ana Lima", sex="F", sport="football", team_id="T1")])
    )
    blob = tmp_path / "encoder.pkl"
    blob.write_bytes(pickle.dumps({"A7": 0}))

    class Const:
        def save(self, d):
            (Path(d) / "const.json").write_text("{}")

        def predict(self, rows):
            return pd.DataFrame(dict(risk=np.full(len(rows), 0.01)))

    logged = Registry().log_model("injury_risk", Const(), metrics=dict(auc=0.7), artifacts=[blob])
    out = erase_athlete("A7", actor="dpo")
    assert out["registry"]["flagged"] == [f"artifacts/{logged['run_id']}/artifacts/report/encoder.pkl"]
    assert out["registry_mentions"] == [f"mlflow/artifacts/{logged['run_id']}/artifacts/report/encoder.pkl"]
    tags = Registry().client.get_model_version("injury_risk", logged["version"]).tags
    assert "retrain" in tags["pitchlab.retrain_needed"] and "A7" not in tags["pitchlab.retrain_needed"]
