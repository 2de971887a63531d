"""Athlete form entries and the medical injury log on a real store (SQLite and PostgreSQL): refusals, idempotency,
no overwrite, grace period, availability for the coach, audit."""

import pandas as pd
import pytest

from pitchlab.core import NotFoundError, ValidationError
from pitchlab.ingest.forms import (
    GRACE,
    day_entries,
    delete_entry,
    edit_session,
    recent_entries,
    save_session,
    save_wellness,
)
from pitchlab.injury_log import add_injury, edit_injury, list_injuries, team_availability
from pitchlab.store import Store

TODAY = pd.Timestamp.now().normalize()
LATE = pd.Timestamp.now(tz="UTC").tz_localize(None) + GRACE + pd.Timedelta(hours=1)


@pytest.fixture
def st(db_url):
    s = Store(db_url, actor="test").create()
    s.write("teams", pd.DataFrame([dict(team_id="T1", name="Firsts", sport="baseball")]), source="t")
    s.write(
        "athletes",
        pd.DataFrame(
            [
                dict(athlete_id="P1", name="Pablo Brooks", sex="M", sport="baseball", team_id="T1"),
                dict(athlete_id="P2", name="Elijah Khan", sex="M", sport="baseball", team_id="T1"),
            ]
        ),
        source="t",
    )
    return s


def _refused(fn) -> dict:
    with pytest.raises(ValidationError) as e:
        fn()
    return e.value.failures


SESSION = dict(date=TODAY, session_type="training", duration_min=50, rpe=6, pitches=40)
WELL = dict(date=TODAY, sleep_hours=8, sleep_quality=4, soreness=4, fatigue=3, mood=4, stress=3)


def test_bad_input_is_refused_beside_the_field_and_nothing_stored(st):
    f = _refused(lambda: save_session(st, "P1", {}, "key-000001"))
    assert f == dict(
        date="choose the day", session_type="choose one", duration_min="enter a value", rpe="choose a value"
    )
    f = _refused(lambda: save_session(st, "P1", {**SESSION, "duration_min": "1h30", "pitches": 400}, "key-000002"))
    assert f["duration_min"].startswith("'1h30' is not a number: enter min")
    assert f["pitches"] == "400 pitches is impossible here: enter 0-300 pitches"
    f = _refused(lambda: save_session(st, "P1", {**SESSION, "balls_bowled": 30}, "key-000003"))
    assert f["balls_bowled"].startswith("not a field of a baseball session")
    f = _refused(lambda: save_wellness(st, "P1", {**WELL, "sleep_hours": 30}, "key-000004"))
    assert f == {"sleep_hours": "30 h is impossible here: enter 0-24 h"}
    f = _refused(lambda: save_session(st, "P1", {**SESSION, "date": TODAY + pd.Timedelta(days=1)}, "key-000005"))
    assert f["date"].endswith("is in the future")
    assert len(st.read("sessions")) == 0 and len(st.read("wellness")) == 0


def test_double_submit_stores_one_session_and_confirms_with_name_and_load(st):
    a = save_session(st, "P1", SESSION, "tap-0000001", actor="pablo")
    b = save_session(st, "P1", SESSION, "tap-0000001", actor="pablo")
    assert (a.status, b.status) == ("saved", "duplicate")
    assert a.message == f"Saved for Pablo Brooks: training on {TODAY:%a %d %b}, 50 min at RPE 6 = 300 AU, 40 pitches"
    got = st.read("sessions")
    assert len(got) == 1 and got.load.tolist() == [300.0] and got.pitches.tolist() == [40]
    assert "P1:tap-0000001" not in a.message  # names, not ids


def test_the_days_report_is_edited_not_overwritten(st):
    save_wellness(st, "P1", WELL, "well-000001", actor="pablo")
    f = _refused(lambda: save_wellness(st, "P1", {**WELL, "mood": 1}, "well-000002", actor="pablo"))
    assert f["date"].startswith("you already reported for")
    assert st.read("wellness").mood.tolist() == [4]
    assert day_entries(st, "P1")["wellness"]["mood"] == 4
    up = save_wellness(st, "P1", {**WELL, "mood": 2}, "well-000003", actor="pablo", edit=True)
    assert up.status == "updated" and st.read("wellness").mood.tolist() == [2]
    f = _refused(lambda: save_wellness(st, "P1", {**WELL, "mood": 5}, "well-000004", edit=True, now=LATE))
    assert "48 h after saving" in f["date"]
    assert st.read("wellness").mood.tolist() == [2]


def test_edit_and_delete_within_the_grace_period_audited(st):
    s = save_session(st, "P1", SESSION, "tap-0000009", actor="pablo")
    rec = recent_entries(st, "P1")
    assert rec.entity.tolist() == ["sessions"] and rec.editable.tolist() == [True]
    assert rec.what.iloc[0] == f"training on {TODAY:%a %d %b}, 50 min at RPE 6 = 300 AU, 40 pitches"
    assert not recent_entries(st, "P1", now=LATE).editable.any()
    edit_session(st, "P1", s.ref, {**SESSION, "rpe": 8}, actor="pablo")
    assert st.read("sessions").load.tolist() == [400.0]
    _refused(lambda: delete_entry(st, "P1", "sessions", s.ref, now=LATE))
    assert delete_entry(st, "P1", "sessions", s.ref, actor="pablo").status == "deleted"
    assert len(st.read("sessions")) == 0
    with pytest.raises(NotFoundError):
        edit_session(st, "P1", s.ref, SESSION)
    acts = st.read("audit", "P1")
    assert acts.loc[acts.entity == "sessions", "action"].tolist() == ["form_add", "form_edit", "form_delete"]
    assert set(acts.actor[acts.entity == "sessions"]) == {"pablo"}


def test_medical_logs_an_injury_and_the_coach_sees_out_without_detail(st):
    assert team_availability(st, ["P1", "P2"], actor="coach").availability.tolist() == ["available", "available"]
    entry = dict(
        kind="injury",
        onset_date=TODAY,
        body_region="Elbow",
        tissue="ligament/joint capsule",
        injury_type="sprain",
        diagnosis="UCL sprain, grade 1",
        rtp_stage="out",
    )
    f = _refused(lambda: add_injury(st, "P1", {**entry, "body_region": "funny bone", "rtp_stage": None}, "inj-000001"))
    assert set(f) == {"body_region", "rtp_stage"} and len(st.read("injuries")) == 0
    s = add_injury(st, "P1", entry, "inj-000002", actor="physio")
    assert add_injury(st, "P1", entry, "inj-000002", actor="physio").status == "duplicate"
    assert len(st.read("injuries")) == 1
    assert s.message.startswith(f"Logged Pablo Brooks's injury: elbow sprain from {TODAY:%a %d %b %Y}")
    av = team_availability(st, ["P1", "P2"], actor="coach")
    assert av.set_index("name").status.to_dict() == {"Pablo Brooks": "Out", "Elijah Khan": "Available"}
    assert not {"diagnosis", "body_region", "injury_type", "tissue"} & set(av.columns)
    edit_injury(st, s.ref, dict(availability="modified"), actor="physio")
    assert team_availability(st, ["P1"], actor="coach").availability.tolist() == ["modified"]
    log = list_injuries(st, actor="physio")
    assert log[["athlete", "severity", "coach_sees", "stage"]].iloc[0].tolist() == [
        "Pablo Brooks",
        "minimal",
        "Modified training",
        "Out of training",
    ]
    aud = st.read("audit", "P1")
    reads = aud[(aud.action == "read") & (aud.entity == "injuries")]
    assert {"coach", "physio"} <= set(reads.actor)
    assert aud.loc[aud.action == "injury_edit", "detail"].tolist() == [f"{s.ref}: availability"]


def test_wellness_report_deleted_within_grace_then_a_new_one_allowed(st):
    save_wellness(st, "P2", WELL, "well-000010", actor="elijah")
    _refused(lambda: delete_entry(st, "P2", "wellness", f"{TODAY:%Y-%m-%d}", now=LATE))
    d = delete_entry(st, "P2", "wellness", f"{TODAY:%Y-%m-%d}", actor="elijah")
    assert d.message == f"Deleted Elijah Khan's wellness report of {TODAY:%a %d %b}"
    assert len(st.read("wellness")) == 0 and day_entries(st, "P2")["wellness"] is None
    assert save_wellness(st, "P2", {**WELL, "mood": 5}, "well-000011").status == "saved"
    assert st.read("wellness").mood.tolist() == [5]


def test_readiness_is_the_mean_of_the_athletes_own_item_z_scores():
    import numpy as np

    from pitchlab.load import wellness_z
    from pitchlab.readiness import ITEMS, readiness
    from pitchlab.synth import make_cohort

    c = make_cohort(n_teams=1, athletes_per_team=4, seasons=1, seed=5)
    w = c.wellness
    day = w["date"].max()
    rd = readiness(w, on=day).set_index("athlete_id")
    cols = [k for k in ITEMS if k in w and w[k].notna().any()]
    wz = wellness_z(w, columns=cols)
    today = wz[wz["date"] == day].set_index("athlete_id")
    assert set(rd.index) == set(w["athlete_id"])
    for a, r in rd.iterrows():
        if a not in today.index:
            assert r.band == "no report" and np.isnan(r.readiness_z)
            continue
        zs = [ITEMS[k][0] * today.at[a, f"{k}_z"] for k in cols if np.isfinite(today.at[a, f"{k}_z"])]
        assert r.readiness_z == pytest.approx(np.mean(zs))
        assert r.band in ("as usual", "a little below usual", "well below usual")
        assert len(r.reasons) == sum(z <= -1 for z in zs)
