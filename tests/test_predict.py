"""pitchlab.predict: risk a coach can read (interval, rr_self, rr_team, tiers from validation data, factors from the
model), a CoachModel through a real MLflow registry and a real store, and the edge cases (one day, one team)."""

import json

import numpy as np
import pandas as pd
import pytest

from pitchlab import features as F, synth
from pitchlab.core import ValidationError
from pitchlab.evaluate import choose_recalibration
from pitchlab.models.baselines import GLMBaseline
from pitchlab.predict import (
    TIERS,
    ChampionRisk,
    CoachModel,
    coach_frame,
    contributions,
    factor_text,
    save_predictions,
    score,
    tier_of,
    tier_thresholds,
    typical_rows,
)
from pitchlab.registry import Champion, PickledModel, Registry


@pytest.fixture(scope="module")
def squad():
    c = synth.make_cohort(n_teams=3, athletes_per_team=6, seasons=1, seed=2)
    tables = c.tables()
    feats = F.build_features(tables, horizon=7)
    lab = feats[feats.label.notna()]
    cut = lab["date"].quantile(0.7)
    glm = PickledModel(
        GLMBaseline(columns=["acwr_ewma", "ewma_chronic", "match_day", "prev_injury"]).fit(lab[lab["date"] < cut])
    )
    return tables, feats, lab[lab["date"] >= cut], glm


def test_tier_thresholds_are_shares_of_validation_days():
    r = np.linspace(0, 0.1, 1001)
    y = (r > 0.09).astype(float)
    th = tier_thresholds(r, y)
    assert th["elevated"] == pytest.approx(0.08) and th["high"] == pytest.approx(0.095)
    assert th["observed"]["high"] == 1.0 and th["observed"]["low"] == 0.0
    assert list(tier_of([0.01, 0.085, 0.099, np.nan], th)) == ["low", "elevated", "high", ""]
    with pytest.raises(ValidationError, match="no validation risks"):
        tier_thresholds([np.nan])


def test_factors_are_the_models_own_counterfactual(squad):
    tables, feats, window, glm = squad
    day = feats[feats.date == feats.date.max()].reset_index(drop=True)
    hist = feats[feats.date < feats.date.max()]
    typ = typical_rows(day, hist)
    med = hist.groupby("athlete_id")["acwr_ewma"].median()
    assert typ["acwr_ewma"].to_numpy() == pytest.approx(med.reindex(day.athlete_id).to_numpy())
    con = contributions(glm, day, typ)
    alt = day.copy()
    alt["acwr_ewma"] = typ["acwr_ewma"]
    assert con["acwr_ewma"].to_numpy() == pytest.approx(glm.predict_proba(day) - glm.predict_proba(alt), abs=1e-12)
    assert "weekly_load" not in con or np.allclose(con["weekly_load"].fillna(0), 0)  # a feature the GLM does not use
    assert factor_text("acwr_ewma", 1.64, 0.006) == "ACWR 1.64, +0.6% vs typical"
    assert factor_text("days_since_return", 3, 0.004) == "3 days after return, +0.4% vs typical"
    assert factor_text("pitches_last", 98, 0.002, "team") == "98 pitches last outing, +0.2% vs team"


def test_coach_frame_columns_and_edge_cases(squad):
    tables, feats, window, glm = squad
    day = feats[feats.date == feats.date.max()].reset_index(drop=True)
    th = tier_thresholds(glm.predict_proba(window), window["label"])
    f = coach_frame(glm, day, feats[feats.date < feats.date.max()], thresholds=th)
    assert list(f.columns) == [
        "athlete_id",
        "date",
        "risk",
        "risk_lo",
        "risk_hi",
        "rr_self",
        "rr_team",
        "tier",
        "factors",
    ]
    assert set(f.tier) <= set(TIERS) and f.risk.between(0, 1).all()
    assert f.groupby(day.team_id).rr_team.median().to_numpy() == pytest.approx(1.0)
    assert all(isinstance(x, list) and all(isinstance(s, str) for s in x) for x in f.factors)
    flagged = f.tier.isin(["elevated", "high"])
    assert all(len(x) > 0 for x in f.loc[flagged, "factors"])  # every flagged athlete says why
    # one athlete, one day: their own typical day -> rr_self 1, no factors; a single team -> rr_team 1
    one = coach_frame(glm, day.head(1), history=day.head(1), thresholds=th)
    assert one.rr_self.iloc[0] == pytest.approx(1.0) and one.rr_team.iloc[0] == pytest.approx(1.0)
    assert one.factors.iloc[0] == [] or one.tier.iloc[0] != "low"
    with pytest.raises(ValidationError, match="no rows"):
        coach_frame(glm, day.iloc[:0])


@pytest.mark.slow  # `make test` runs it, `make test-quick` does not
def test_coach_model_through_registry_store_and_board(squad, tmp_path):
    from pitchlab.store import Store

    tables, feats, window, glm = squad
    pw = glm.predict_proba(window)
    ch = choose_recalibration(window["label"], pw, window["label"], pw)
    m = CoachModel(glm, ch["recalibration"], tier_thresholds(pw, window["label"]), horizon=7)
    reg = Registry(f"sqlite:///{tmp_path}/mlflow.db", tmp_path / "art")
    v = reg.log_model("risk_t", m, metrics=dict(auc=0.7))
    assert reg.promote("risk_t", v["version"], gate=dict(auc_min=None, beat_baseline_by=None))["promoted"]
    champ = reg.load("risk_t")
    assert isinstance(champ, CoachModel) and champ.recalibration == m.recalibration
    assert (champ.tiers["elevated"], champ.tiers["high"]) == (m.tiers["elevated"], m.tiers["high"])
    day = feats[feats.date == feats.date.max()]
    assert champ.predict_proba(day) == pytest.approx(m.predict_proba(day))
    p = score(tables, champ, name="risk_t")
    assert {"risk", "risk_lo", "risk_hi", "rr_self", "rr_team", "tier", "factors", "model_version"} <= set(p.columns)
    assert (p.model_version == "1").all()
    st = Store(f"sqlite:///{tmp_path}/s.db").create()
    for t in ("teams", "athletes", "sessions", "pitches", "wellness", "cycle_logs", "injuries"):
        st.write(t, tables[t], source="synthetic")
    rep = save_predictions(st, p)
    assert (rep.inserted, rep.quarantined) == (len(p), 0)
    stored = st.read("predictions").set_index("athlete_id").sort_index()
    assert [json.loads(x) for x in stored.factors] == p.set_index("athlete_id").sort_index().factors.tolist()
    prov = ChampionRisk(st, "risk_t", champion=Champion("risk_t", reg, ttl=0))
    board = prov.predict(p[["athlete_id"]])
    assert board.set_index("athlete_id").risk.sort_index().to_numpy() == pytest.approx(
        p.set_index("athlete_id").risk.sort_index().to_numpy()
    )
    assert (
        board.set_index("athlete_id").tier.sort_index().tolist() == p.set_index("athlete_id").tier.sort_index().tolist()
    )
    moved = prov.predict(p[["athlete_id"]].assign(acwr_ewma=2.5))
    assert not np.allclose(moved.risk, board.risk)
    unknown = prov.predict(pd.DataFrame({"athlete_id": ["nobody"]}))
    assert np.isnan(unknown.risk.iloc[0]) and unknown.tier.iloc[0] == "" and unknown.factors.iloc[0] == []
    # read on a coach's behalf: the model's sensitive reads are audited as the coach, with the purpose
    n_audit = len(st.read("audit"))
    for_kim = ChampionRisk(st, "risk_t", champion=Champion("risk_t", reg, ttl=0), actor="kim", purpose="team board")
    for_kim.predict(p[["athlete_id"]])
    new = st.read("audit").iloc[n_audit:]
    sensitive = new[new.entity.isin(["injuries", "cycle_logs"])]
    assert set(sensitive.entity) == {"injuries", "cycle_logs"} and set(sensitive.actor) == {"kim"}
    assert sensitive.detail.str.endswith("; purpose: team board").all()
    assert "pitchlab predict" not in set(new.actor)
