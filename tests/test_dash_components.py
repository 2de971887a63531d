"""Dashboard components driven through their params: board numbers against pitchlab.load, cache and invalidation,
what-if projections, rules and the risk budget, forms, models, pose, compare, and faults (athletes without data)."""

import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from pitchlab.core import AccessDenied, ValidationError
from pitchlab.dash.auth import DataAccess, User
from pitchlab.board import VARIANTS, LibraryRules, RuleChecker, RuleRisk
from pitchlab.models.baselines import ACWRRule
from pitchlab.board import NoRules as _NoRules
from pitchlab.dash import data as D
from pitchlab.dash.app import App, serve_app
from pitchlab.dash.data import DataStore
from pitchlab.dash.pages.athlete import AthleteDrillDown
from pitchlab.dash.pages.board import TeamRiskBoard
from pitchlab.dash.pages.compare import Compare
from pitchlab.dash.pages.forms import EntryForms
from pitchlab.dash.pages.models import ModelsPage
from pitchlab.dash.pages.pose import LibraryPoseScorer, PosePage, PoseScorer
from pitchlab.dash.pages.whatif import WhatIfPlanner
from pitchlab.planning import project_plan
from pitchlab.rules import VIOLATION_COLUMNS
from doubles import FakeRetrainBackend, MissingScorer


class NoRules(_NoRules):
    "Rules switched off (so a test isolates the risk budget)."

    def check(self, activity, athletes):
        return pd.DataFrame(columns=VIOLATION_COLUMNS)


class DailyPitchLimit(RuleChecker):
    "More than 80 pitches in a day breaks the rule (a stand-in with a known answer)."

    def check(self, activity, athletes):
        a = activity.groupby(["athlete_id", "date"], as_index=False)["pitches"].sum()
        a = a[a["pitches"].fillna(0) > 80]
        return a.assign(ruleset="test", rule="daily", message="too many pitches").reindex(columns=VIOLATION_COLUMNS)


class FakeScorer(PoseScorer):
    available, note = True, ""

    def __init__(self, fail=False):
        self.fail = fail

    def score(self, video_path, movement, athlete_id, progress=None):
        progress(0.5, "half way")
        if self.fail:
            raise RuntimeError("no person found in the video")
        return dict(
            score=64.0,
            confidence=0.7,
            metrics={"knee": 150},
            feedback="stride longer",
            angles=pd.DataFrame({"time_s": [0, 0.1, 0.2], "knee": [150, 140, 130]}),
            source="test",
        )


def _tiny_clip(path):
    "Ten grey 64x48 frames as Motion-JPEG: a real video for the fake scorers (the upload refuses what is not one)."
    import cv2

    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (64, 48))
    for i in range(10):
        vw.write(np.full((48, 64, 3), 20 * i, np.uint8))
    vw.release()
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from pitchlab.store import Store
    from pitchlab.synth import make_cohort

    home = tmp_path_factory.mktemp("dash-comp")
    store = Store(f"sqlite:///{home / 'store.db'}", actor="test").create()
    c = make_cohort(n_teams=2, athletes_per_team=6, seasons=1, seed=31)
    for n in ("teams", "athletes", "sessions", "pitches", "wellness", "cycle_logs", "injuries"):
        store.write(n, getattr(c, n), source="synthetic")
    t1, t2 = c.teams.team_id
    coach = User("cora", "coach", team_ids=f"{t1},{t2}")
    return dict(
        store=store,
        cohort=c,
        t1=t1,
        t2=t2,
        coach=coach,
        pitcher=c.athletes.query("role == 'pitcher'").athlete_id.iloc[0],
        bowler=c.athletes.query("sport == 'cricket'").athlete_id.iloc[0],
    )


def _stated_rule(variant="acwr_ewma"):
    "The ACWR rule with stated band rates, so the planner has known numbers to budget against."
    return RuleRisk(
        variant,
        ACWRRule(edges="warren_hulin", column=variant).stated(
            (0.02, 0.0332, 0.09), "a 2% week x RR 1.66 (Warren 2018) and 4.5 (Hulin 2014)"
        ),
    )


def data_store(world, user=None, rules=None, **params):
    return DataStore(access=DataAccess(world["store"], user or world["coach"]), rules=rules or NoRules(), **params)


def test_board_filters_sort_and_csv(world):
    data = data_store(world)
    board = TeamRiskBoard(data=data)
    assert len(board.table.value) == 12
    data.team = world["t2"]
    assert set(data.board.team_id) == {world["t2"]} and len(board.table.value) == 6
    pos = data.board.position.dropna().iloc[0]
    data.position = pos
    assert ((data.board.position == pos) | (data.board.role == pos)).all()
    data.param.update(team="all", position="all")
    board.sort_by = "acwr"
    shown = board.table.value.acwr.dropna()
    assert shown.is_monotonic_decreasing
    audit_before = len(world["store"].read("audit"))
    csv = pd.read_csv(board.csv())
    assert list(csv.athlete_id) == list(board.table.value.index)  # the athlete id: the table's hidden index
    assert set(csv.risk_level.dropna()) <= {"low", "elevated", "high"} and "<span" not in csv.to_csv()
    assert world["store"].read("audit").iloc[audit_before:].action.tolist() == ["export"]
    for level in ("high", "elevated", "low"):
        data.level = level
        assert (data.board.level == level).all()


def test_board_numbers_match_pitchlab_load(world):
    "ACWR, CTL and monotony on the board equal pitchlab.load on each athlete's sessions with rest days to the team's last day."
    from pitchlab import load

    data = data_store(world)
    as_of = data.as_of
    ses = world["store"].read("sessions", list(data.roster.athlete_id))
    for aid, g in ses.groupby("athlete_id"):
        days = pd.date_range(g.date.max() + pd.Timedelta(days=1), as_of)
        rest = pd.DataFrame({"athlete_id": aid, "date": days, "load": 0.0})
        m = load.to_frame(load.daily_metrics(pd.concat([g[["athlete_id", "date", "load"]], rest], ignore_index=True)))
        last = m[m.date == as_of].iloc[0]
        row = data.board_all.set_index("athlete_id").loc[aid]
        np.testing.assert_allclose(
            [row.acwr, row.ctl, row.monotony], [last.acwr_ewma, last.ctl, last.monotony], rtol=1e-9, equal_nan=True
        )
        assert row.days_since == (as_of - g.date.max()).days
    data.variant = "acwr_uncoupled"
    assert np.allclose(
        data.board_all.set_index("athlete_id").chronic,
        data.frames.now.set_index("athlete_id").chronic_uncoupled.reindex(data.board_all.athlete_id),
        equal_nan=True,
    )


@hsettings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(*[st.one_of(st.none(), st.floats(0, 5))] * 3), min_size=1, max_size=20),
    st.sampled_from(list(VARIANTS)),
)
def test_acwr_rule_risk_properties(rows, variant):
    f = pd.DataFrame(rows, columns=list(VARIANTS)).astype(float).assign(athlete_id=[f"a{i}" for i in range(len(rows))])
    r = _stated_rule(variant).predict(f)
    ok = r.risk.notna()
    assert (r.risk.isna() == f[variant].isna()).all()
    assert ((r.lower[ok] <= r.risk[ok] + 1e-12) & (r.risk[ok] <= r.upper[ok] + 1e-12)).all()
    assert set(np.round(r.risk[ok], 6)) <= {0.02, 0.0332, 0.09}
    order = f[variant][ok].argsort(kind="stable").to_numpy()
    assert np.all(np.diff(r.risk[ok].to_numpy()[order]) >= -1e-12)  # never lower for a higher ACWR


def test_cache_is_shared_and_invalidated_by_a_form_entry(world):
    a, b = data_store(world), data_store(world)
    assert a.frames is b.frames  # one computation for both sessions
    forms = EntryForms(data=a)
    a.athlete = world["pitcher"]
    day = (a.as_of + pd.Timedelta(days=1)).date()
    forms.param.update(session_date=day, duration_min=90, rpe=6, pitches=30, session_type="training")
    v0 = a.version
    forms.param.trigger("save_session")
    assert forms.ok, forms.message
    assert a.version == v0 + 1 and a.frames is not b.frames and a.as_of == pd.Timestamp(day)
    row = a.board_all.set_index("athlete_id")
    assert row.loc[world["pitcher"], "days_since"] == 0 and (row.drop(index=world["pitcher"]).days_since >= 1).all()
    assert data_store(world).frames is a.frames  # the next session reuses the new computation


def test_entry_forms_validate_and_explain(world):
    data = data_store(world)
    forms = EntryForms(data=data)
    data.athlete = world["bowler"]
    forms.param.update(wellness_date=pd.Timestamp("2031-02-01").date(), hrv_rmssd=500.0, resting_hr=10.0)
    forms.param.trigger("save_wellness")
    assert not forms.ok and "hrv_rmssd" in forms.message and "resting_hr" in forms.message
    forms.param.update(hrv_rmssd=60.0, resting_hr=50.0)
    forms.param.trigger("save_wellness")
    assert forms.ok and forms.message.startswith("wellness saved")
    got = world["store"].read("wellness", [world["bowler"]]).query("source == 'form'")
    assert got.entered_by.tolist() == ["cora"] and got.hrv_rmssd.tolist() == [60.0]
    forms.param.trigger("save_cycle")
    assert not forms.ok and "cannot write cycle_logs" in forms.message
    tabs = [t for t in forms.__panel__().objects if type(t).__name__ == "Tabs"][0]
    assert list(tabs._names) == ["Session RPE", "Wellness"]


def test_athlete_forms_include_cycle_log(world):
    own = world["cohort"].athletes.query("sex == 'F'").athlete_id.iloc[0]
    data = data_store(world, User("ann", "athlete", athlete_id=own))
    forms = EntryForms(data=data)
    tabs = [t for t in forms.__panel__().objects if type(t).__name__ == "Tabs"][0]
    assert list(tabs._names) == ["Session RPE", "Wellness", "Cycle log"]
    forms.param.update(cycle_date=pd.Timestamp("2031-03-01").date(), phase="menstrual", cycle_day=2, symptoms="cramps")
    forms.param.trigger("save_cycle")
    assert forms.ok
    forms.param.update(cycle_day=99)
    forms.param.trigger("save_cycle")
    assert not forms.ok and "cycle_day" in forms.message


def test_whatif_projection_follows_the_plan(world):
    data = data_store(world)
    data.athlete = world["pitcher"]
    w = WhatIfPlanner(data=data)
    assert len(w.plan) == 7 and w.projection.planned.sum() == 7
    p = w.projection.query("planned")
    np.testing.assert_allclose(p.ctl, p.ctl_projected, rtol=1e-9)  # daily_metrics over history+plan == project_pmc
    first = p.acwr_ewma.iloc[0]
    assert w._slider_unit() == "pitches"  # a pitcher's day sliders move pitches; the load follows from AU per pitch
    w._slid(0)(type("E", (), {"new": int(w.plan.pitches.iloc[0] + 100)})())  # what the day-1 slider does
    assert w.plan.pitches.iloc[0] >= 100 and w.plan.load.iloc[0] == np.round(w.plan.pitches.iloc[0] * w._au_per, -1)
    assert w.projection.query("planned").acwr_ewma.iloc[0] > first
    w.horizon = 14
    assert len(w.plan) == 14 and len(w._sliders) == 14
    with pytest.raises(ValidationError, match="after"):
        project_plan(
            data.frames, world["pitcher"], w.plan.assign(date=w.plan.date - pd.Timedelta(days=30)), _stated_rule()
        )


def test_whatif_rules_and_largest_plan_within_budget(world):
    "Suggest (pitchlab.plan_units.optimise_plan): within budget and rules, and one more step on any day would not be."
    data = data_store(world, rules=DailyPitchLimit(), risk_provider=_stated_rule())
    data.athlete = world["pitcher"]
    w = WhatIfPlanner(data=data, risk_budget=0.05)
    w.plan = w.plan.assign(pitches=100, session_type="training", load=w.plan.load + 300)
    assert len(w.plan_violations) == 7 and "Rules broken" in w.verdict()
    w.param.trigger("suggest")
    s = w.suggestion
    assert s is not None and s.pitches.max() <= 80 and len(w.reasons) == 7
    assert all(r.startswith(f"{d:%a %d %b}: ") for r, d in zip(w.reasons, s.date))  # one sentence per day, in order
    f, v = project_plan(data.frames, world["pitcher"], s, _stated_rule(), DailyPitchLimit())
    assert len(v) == 0 and f.query("planned").upper.max() <= 0.05
    per = w.plan.load / 100  # AU per pitch of each planned day
    for i in range(len(s)):
        bigger = s.copy()
        bigger.loc[i, "pitches"] += 5
        bigger.loc[i, "load"] = round(bigger.loc[i, "pitches"] * per[i], -1)
        f2, v2 = project_plan(data.frames, world["pitcher"], bigger, _stated_rule(), DailyPitchLimit())
        assert len(v2) > 0 or f2.query("planned").upper.max() > 0.05  # the largest, day by day
    w.param.trigger("apply")
    assert w.plan.equals(s) and len(w.plan_violations) == 0 and w.verdict().startswith("Within budget")


def test_whatif_with_the_real_pitch_smart_rules(world):
    "110 pitches in a game then pitching the next day breaks Pitch Smart's required rest."
    data = data_store(world, rules=LibraryRules())
    data.athlete = world["pitcher"]
    w = WhatIfPlanner(data=data)
    plan = w.plan.assign(pitches=0, session_type="training")
    plan.loc[0, ["pitches", "session_type"]] = [110, "match"]
    plan.loc[1, ["pitches", "session_type"]] = [40, "match"]
    w.plan = plan
    assert (w.plan_violations.ruleset == "pitch_smart").any()
    assert pd.to_datetime(w.plan_violations.date).min() > data.as_of


def test_models_page_flow(world):
    admin = data_store(world, User("root", "admin"))
    m = ModelsPage(data=admin, backend=FakeRetrainBackend(steps=3, step_s=0.01))
    assert m.start is not None and m.end >= m.start
    m.param.trigger("rollback")
    assert m.yes.name == "Yes, roll back" and m.confirm_box.visible  # a second click is asked for
    m.param.trigger("confirm")
    assert "no earlier champion" in m.status
    for _ in range(2):
        m.param.trigger("retrain")
        t0 = time.time()
        while not m.poll()["done"] and time.time() - t0 < 10:
            time.sleep(0.01)
    assert list(m._table.value["Version"]) == ["1", "2"] and m.progress == 1.0
    m.version = "1"
    m.param.trigger("promote")
    m.param.trigger("cancel")  # the first click alone, or a cancel, changes nothing
    assert m._table.value.set_index("Version").Champion.to_dict() == {"1": "", "2": ""}
    m.param.trigger("promote")
    assert m.yes.name == "Yes, promote version 1"
    m.param.trigger("confirm")
    m.version = "2"
    m.param.trigger("promote")
    assert "It replaces version 1 as the champion" in m.ask.object
    m.param.trigger("confirm")
    assert m._table.value.set_index("Version").Champion.to_dict() == {"1": "", "2": "yes"}
    m.param.trigger("rollback")
    assert m.yes.name == "Yes, roll back version 2"
    m.param.trigger("confirm")
    assert m.status == "rolled back: version 1 is champion"
    acts = world["store"].read("audit").query("entity == 'models'").action.tolist()
    assert acts[-5:] == ["retrain", "retrain", "promote", "promote", "rollback"]
    coach_page = ModelsPage(data=data_store(world), backend=FakeRetrainBackend())
    for ev in ("retrain", "promote", "rollback"):
        with pytest.raises(AccessDenied):
            coach_page.param.trigger(ev)
    with pytest.raises(AccessDenied):
        ModelsPage(data=data_store(world, User("ann", "athlete", athlete_id=world["bowler"])))


def test_pose_page(world, home):
    data = data_store(world)
    data.athlete = world["bowler"]
    page = PosePage(data=data, scorer=FakeScorer())
    page.take_file(_tiny_clip(home.parent / "bowl.avi"))  # streamed to the data home as the browser's upload is
    page.param.trigger("score_video")
    while not page._job["job"]["done"]:
        time.sleep(0.01)
    page.poll()
    assert page.status == "score 64 stored" and page.history().score.tolist() == [64.0]
    stored = world["store"].read("pose_results", [world["bowler"]])
    assert len(stored.video_sha256.iloc[0]) == 64 and stored.movement.iloc[0] == "pitch"
    bad = PosePage(data=data, scorer=FakeScorer(fail=True))
    bad.take_file(_tiny_clip(home.parent / "bowl2.avi"))
    bad.param.trigger("score_video")
    while not bad._job["job"]["done"]:
        time.sleep(0.01)
    bad.poll()
    assert bad.status == "scoring failed: no person found in the video"
    none = PosePage(data=data, scorer=MissingScorer())
    none.param.trigger("score_video")
    assert none.status == MissingScorer.note


def test_compare_and_drilldown(world):
    data = data_store(world)
    ids = list(data.roster.athlete_id)
    cmp_ = Compare(data=data, athletes=ids[:6], metric="ctl", days=60)
    f = cmp_.frame()
    assert f.athlete_id.nunique() == 6 and f.date.min() > data.as_of - pd.Timedelta(days=60)
    cmp_.athletes = ids[:1]
    assert type(cmp_._out[0]).__name__ == "Alert"
    data.athlete = world["pitcher"]
    d = AthleteDrillDown(data=data, days=120)
    figs = d.figures()
    assert {"load", "acwr", "pmc", "wellness", "pitches", "velocity", "spin"} <= set(figs) and "balls" not in figs
    data.athlete = world["bowler"]
    assert "balls" in d.figures() and "pitches" not in d.figures()


def test_athlete_without_any_data(world):
    "A new athlete with no sessions yet shows on the board with empty metrics instead of breaking it."
    store = world["store"]
    new = pd.DataFrame(
        [dict(athlete_id="new-001", name="New Signing", sex="M", sport="cricket", role="batter", team_id=world["t1"])]
    )
    store.write("athletes", new, source="test")
    data = data_store(world)
    row = data.board_all.set_index("athlete_id").loc["new-001"]
    assert pd.isna(row.risk) and row.level == "" and pd.isna(row.acwr)
    data.athlete = "new-001"
    d = AthleteDrillDown(data=data)
    assert d.figures() == {} or "load" in d.figures()


def test_empty_store(tmp_path):
    "A store with a team but no sessions yet: the pages open and say so."
    from pitchlab.store import Store

    store = Store(f"sqlite:///{tmp_path / 'empty.db'}").create()
    store.write("teams", pd.DataFrame([dict(team_id="t", name="T", sport="cricket")]), source="test")
    store.write(
        "athletes", pd.DataFrame([dict(athlete_id="a", name="A", sex="F", sport="cricket", team_id="t")]), source="test"
    )
    app = App(access=DataAccess(store, User("c", "coach", team_ids="t")), rules=NoRules(), backend=FakeRetrainBackend())
    assert app.data.as_of is None and len(app.data.board) == 1
    for p in app.pages:
        app.show(p)


def test_serve_app_without_sign_in_shows_a_notice(world, monkeypatch):
    monkeypatch.setenv("PITCHLAB_DB_URL", world["store"].url)
    monkeypatch.delenv("PITCHLAB_DASH_USER", raising=False)
    out = serve_app()
    assert "pitchlab-denied" in out.css_classes and "nobody is signed in" in out[0].object
    world["store"].write(
        "users", pd.DataFrame([dict(username="cora", role="coach", team_ids=world["t1"])]), source="test"
    )
    D._TOKENS.clear()  # page loads reuse a look at the tables for up to 2 s; this test does not wait
    monkeypatch.setenv("PITCHLAB_DASH_USER", "cora")
    app = serve_app(roles=("coach",), rules=NoRules())
    assert isinstance(app, App) and app.data.access.user.username == "cora"
    denied = serve_app(roles=("athlete",))
    assert "this dashboard is for athlete" in denied[0].object


@pytest.mark.slow
def test_pose_page_with_the_real_scorer(world, home):
    "The Pose page scores the sample video with pitchlab.pose (MediaPipe), stores the score and shows the plots."
    import hashlib
    from pathlib import Path

    video = Path(__file__).resolve().parents[1] / "data" / "samples" / "pose" / "sports2d_demo.mp4"
    from pitchlab.pose.landmarks import pose_model_path

    pose_model_path()  # NotFoundError with the way to install it if the model is missing
    data = data_store(world)
    data.athlete = world["bowler"]
    page = PosePage(data=data, scorer=LibraryPoseScorer(), movement="jump")
    assert page.scorer.note == ""
    page.take_file(video)
    page.param.trigger("score_video")
    t0 = time.time()
    while page._job is not None:  # a pose job: polled as the served page does
        assert time.time() - t0 < 300, "scoring took longer than 5 minutes"
        time.sleep(0.2)
        page.poll()
    assert page.status.endswith("stored"), page.status
    r = page.result
    assert 0 <= r["score"] <= 100 and 0 <= r["confidence"] <= 1 and r["measures"]
    h = page.history().set_index("video_sha256")
    row = h.loc[hashlib.sha256(video.read_bytes()).hexdigest()]
    assert row.movement == "jump" and row.score == pytest.approx(r["score"])


def test_pose_scorer_note_finds_the_models_as_the_scorer_does(monkeypatch, tmp_path):
    "An empty data home falls back to the clone's models (no false 'not installed'); a wrong PITCHLAB_POSE_MODEL is named."
    monkeypatch.setenv("PITCHLAB_HOME", str(tmp_path / "home"))
    assert LibraryPoseScorer().note == ""
    monkeypatch.setenv("PITCHLAB_POSE_MODEL", str(tmp_path / "gone.task"))
    note = LibraryPoseScorer().note
    assert "PITCHLAB_POSE_MODEL" in note and "gone.task" in note and "pitchlab setup-models" in note


def test_two_sessions_of_a_team_reuse_the_board_frame_and_each_is_audited(world):
    """The board's rows, the table's frame and the team's availability are computed by the first session of a team and
    reused by the next (cache hits counted, not timed); the second session still writes its own audit entry for the
    injury log it reads through the shared copy; another scope is another key."""
    from pitchlab.dash.data import SHARED

    SHARED.clear()
    store, t1, t2 = world["store"], world["t1"], world["t2"]
    med = User("mo", "medical", team_ids=f"{t1},{t2}")

    def injury_reads(who):
        a = store.read("audit")
        return int(((a.actor == who) & (a.action == "read") & (a.entity == "injuries")).sum())

    first = TeamRiskBoard(data=data_store(world))
    assert {k: SHARED.misses[k] for k in ("board", "board_view", "availability")} == dict(
        board=1, board_view=1, availability=1
    )
    hits, reads = dict(SHARED.hits), injury_reads("mo")
    second = TeamRiskBoard(data=data_store(world, user=med))
    assert {k: SHARED.misses[k] for k in ("board", "board_view", "availability")} == dict(
        board=1, board_view=1, availability=1
    )  # nothing computed again
    assert SHARED.hits["board"] == hits.get("board", 0) + 1
    assert SHARED.hits["availability"] == hits.get("availability", 0) + 1
    assert SHARED.hits["board_view"] >= hits.get("board_view", 0) + 1
    pd.testing.assert_frame_equal(second.table.value, first.table.value)
    assert injury_reads("mo") == reads + 1  # the shared read is audited in the second person's name
    third = TeamRiskBoard(data=data_store(world, user=User("tess", "coach", team_ids=t1)))
    assert SHARED.misses["board_view"] == 2
    ath = store.read("athletes")
    assert set(third.table.value.index) == set(ath[ath.team_id == t1].athlete_id)
    second.data.team = t2  # a filter applies to the shared frame: no new computation
    assert SHARED.misses["board_view"] == 2 and set(second.view().team) == {
        first.data.teams.set_index("team_id").name[t2]
    }
