"""The session-quality score beside each session on the athlete drill-down and the athlete's own page: scored by the
registry's trained champion (a real Keras model in a real MLflow registry), or a sentence and no number without one."""

import html
import re

import numpy as np
import pytest

pytestmark = pytest.mark.slow

ROW = re.compile(r"<li class='pitchlab-quality-row'>(.*?)</li>")


@pytest.fixture
def squad(home):
    from pitchlab.store import Store
    from pitchlab.synth import make_cohort

    c = make_cohort(n_teams=1, athletes_per_team=4, seasons=1, seed=5)
    st = Store(actor="test").create()
    for t in ("teams", "athletes", "sessions", "pitches", "wellness", "cycle_logs", "injuries"):
        st.write(t, getattr(c, t), source="synthetic")
    return c, st


def _pages(c, st):
    from pitchlab.dash.auth import DataAccess, User
    from pitchlab.dash.data import DataStore
    from pitchlab.dash.pages.athlete import AthleteDrillDown
    from pitchlab.dash.pages.today import TodayPage

    team = c.teams.team_id.iloc[0]
    aid = c.athletes.athlete_id.iloc[1]
    coach = DataStore(access=DataAccess(st, User("cora", "coach", "Cora Coach", team_ids=team)))
    coach.athlete = aid
    mine = DataStore(access=DataAccess(st, User("ann", "athlete", "Ann", athlete_id=aid)))
    return aid, AthleteDrillDown(data=coach), TodayPage(data=mine)


def _train(c, st):
    "Train and promote a small session-quality model as the retrain_session_quality pipeline does."
    from pitchlab.models.deep import SessionQuality, session_quality_table
    from pitchlab.registry import Registry

    tables = {t: st.read(t, actor="test") for t in ("athletes", "sessions", "wellness", "injuries", "pitches")}
    q = session_quality_table(tables)
    m = SessionQuality(model_config=dict(epochs=2, seed=0)).fit(q[q["quality"].notna()])
    reg = Registry()
    v = reg.log_model("session_quality", m, metrics=dict(mae=0.5), params={}, athletes=tables["athletes"])["version"]
    reg.promote(
        "session_quality",
        v,
        gate=dict(auc_min=None, beat_baseline_by=None, rhat_max=None, ess_bulk_min=None, divergences_max=None),
    )
    return m, q


def test_no_model_says_so_and_shows_no_number(squad):
    from pitchlab.dash.data import NO_QUALITY_MODEL

    c, st = squad
    _, drill, today = _pages(c, st)
    for page in (drill, today):
        text = html.unescape(page._quality.object)
        assert NO_QUALITY_MODEL in text, text
        assert ROW.findall(page._quality.object) == [] and "/5" not in text


def test_trained_model_scores_every_session_row(squad):
    from pitchlab.glossary import explain

    c, st = squad
    m, q = _train(c, st)
    aid, drill, today = _pages(c, st)
    mine = q[q["athlete_id"] == aid].reset_index(drop=True)
    want = m.predict(mine)["quality"].to_numpy()[::-1]  # newest first, as the pages list them
    for page, n in ((drill, 10), (today, 7)):
        rows = ROW.findall(page._quality.object)
        assert len(rows) == n, page._quality.object
        got = np.array([float(re.search(r"quality ([\d.]+)/5", r).group(1)) for r in rows])
        np.testing.assert_allclose(got, want[:n], atol=0.051)  # shown to one decimal
        assert all(re.search(r"</b> <span[^>]*>(as planned|watch|check)</span>$", r) for r in rows), rows
        for r, (_, s) in zip(rows, mine.iloc[::-1].head(n).iterrows()):
            assert r.startswith(f"{s['date']:%a %d %b}: {s['session_type']}, {s['duration_min']:.0f} min"), r
        note = html.unescape(page._quality.object)
        assert "session_quality v1 (champion)" in note and explain("session_quality") in note
