"""Deactivated accounts on both store backends: every sign-in route refuses them with a sentence (local password, an
OAuth sign-in whose row keeps a role, the API tokens of the user), their open sessions end, the row, role and audit
history stay, and `pitchlab users deactivate|reactivate` switch it; deactivated athletes and teams leave the rosters
that boards and pickers use while staying reachable by id."""

import pytest
from conftest import run_cli as run

from pitchlab.core import AccessDenied

PASSWORD = "correct horse battery staple"


@pytest.fixture
def store(db_url):
    from pitchlab.dash.users import add_user
    from pitchlab.store import Store
    from pitchlab.synth import make_cohort

    st = Store(db_url, actor="test").create()
    c = make_cohort(n_teams=2, athletes_per_team=4, seasons=1, seed=7)
    st.write("teams", c.teams, source="test")
    st.write("athletes", c.athletes, source="test")
    t1 = c.teams.team_id.iloc[0]
    add_user("cora", "coach", PASSWORD, "Cora Coach", team_ids=t1, store=st, actor="root")
    add_user("sso@club.org", "medical", None, team_ids=t1, store=st, actor="root")  # an OAuth-only account
    return st


def test_deactivated_account_is_refused_on_every_route(store):
    from pitchlab.api_tokens import authenticate, create_token
    from pitchlab.dash.auth import sign_in, user_from_claims
    from pitchlab.dash.security import LOGIN_ERRORS, check_session, new_session
    from pitchlab.dash.users import list_users, set_active

    tok, _ = create_token("cora", store=store)
    sid = new_session("cora", "127.0.0.1", store=store)
    assert sign_in("cora", PASSWORD, "10.0.0.1", store=store)[0].username == "cora"
    assert authenticate(tok, store, client="c1").username == "cora"
    assert user_from_claims({"user": "sso@club.org"}, store.read("users")).role == "medical"

    u = set_active("cora", False, store=store, actor="root")
    set_active("sso@club.org", False, store=store, actor="root")
    assert u.active is False and u.role == "coach"
    assert not check_session(sid, "cora", store=store)  # open sessions ended
    user, code = sign_in("cora", PASSWORD, "10.0.0.1", store=store)
    assert user is None and code == "inactive"
    assert LOGIN_ERRORS[code] == "This account is deactivated: ask an admin to reactivate it."
    assert sign_in("cora", "wrong password here", "10.0.0.1", store=store) == (None, "invalid")  # no hint without it
    with pytest.raises(AccessDenied, match="the account sso@club.org is deactivated"):
        user_from_claims({"user": "sso@club.org", "roles": ["pitchlab-admin"]}, store.read("users"))
    import time

    from pitchlab.api_tokens import CACHE_SECONDS

    time.sleep(CACHE_SECONDS + 0.2)  # a token verified just before stays trusted this long (memory only)
    with pytest.raises(AccessDenied, match="the account cora is deactivated: its tokens do not work"):
        authenticate(tok, store, client="c1")

    row = store.read("users").set_index("username").loc["cora"]
    assert row["role"] == "coach" and row["password_hash"].startswith("$argon2") and row["active"] == False  # noqa: E712
    listed = list_users(store).set_index("username")
    assert not listed.at["cora", "active"] and "password_hash" not in listed
    audit = store.read("audit")
    assert audit.query("action == 'user_deactivate'").actor.tolist() == ["root", "root"]
    assert "the account is deactivated" in audit.query("action == 'login_refused'").detail.iloc[-1]
    assert "deactivated" in audit.query("action == 'token_refused'").detail.iloc[-1]

    set_active("cora", True, store=store, actor="root")
    assert sign_in("cora", PASSWORD, "10.0.0.1", store=store)[0].username == "cora"
    assert authenticate(tok, store, client="c1").username == "cora"  # the token was never revoked


def test_users_deactivate_and_reactivate_commands(store, home, monkeypatch):
    from pitchlab.dash.auth import login

    monkeypatch.setenv("PITCHLAB_DB_URL", store.url)
    code, out, _ = run("users", "deactivate", "cora")
    assert code == 0 and "cora is deactivated" in out
    with pytest.raises(AccessDenied, match="deactivated"):
        login("cora", PASSWORD, store)
    code, out, _ = run("users", "list")
    assert code == 0 and "False" in out.splitlines()[1 + sorted(["cora", "sso@club.org"]).index("cora")]
    code, out, _ = run("users", "reactivate", "cora")
    assert code == 0 and "cora is active again" in out
    assert login("cora", PASSWORD, store).username == "cora"
    code, _, err = run("users", "deactivate", "nobody")
    assert code != 0 and "no user 'nobody'" in err


def test_inactive_athletes_and_teams_leave_the_roster_but_stay_reachable(store):
    from pitchlab.dash.auth import DataAccess, User
    from pitchlab.roster import edit_athlete, edit_team

    a = store.read("athletes")
    t1, t2 = store.read("teams").team_id
    a1 = a[a.team_id == t1].athlete_id.iloc[0]
    admin = User("root", "admin")
    coach = User("cora", "coach", team_ids=t1)
    edit_athlete(a1, store=store, actor="root", active=False)
    assert a1 not in set(DataAccess(store, coach).roster().athlete_id)
    assert len(DataAccess(store, coach).roster()) == 3
    assert a1 in set(DataAccess(store, coach).roster(inactive=True).athlete_id)
    DataAccess(store, coach).check("read", "sessions", a1)  # the history stays reachable by id
    edit_team(t2, store=store, actor="root", active=False)
    da = DataAccess(store, admin)
    assert set(da.roster().team_id) == {t1} and len(da.roster()) == 3
    assert len(da.roster(inactive=True)) == len(a)
    me = a[a.team_id == t2].athlete_id.iloc[0]
    assert list(DataAccess(store, User("ath", "athlete", athlete_id=me)).roster().athlete_id) == [me]


def test_pitchlab_score_skips_inactive_athletes_and_teams(store, tmp_path):
    from pitchlab.features import build_features
    from pitchlab.models.baselines import ACWRRule
    from pitchlab.registry import PickledModel, Registry
    from pitchlab.roster import edit_athlete, edit_team
    from pitchlab.score import SCORED_TABLES, score_day
    from pitchlab.synth import make_cohort

    if store.dialect != "sqlite":
        pytest.skip("the filter is pandas after the read: one backend is enough (CI time)")
    c = make_cohort(n_teams=2, athletes_per_team=4, seasons=1, seed=7)
    for n in ("sessions", "wellness", "injuries"):
        store.write(n, getattr(c, n), source="test")
    t1, t2 = c.teams.team_id
    off = c.athletes.query("team_id == @t1").athlete_id.iloc[0]
    edit_athlete(off, store=store, actor="root", active=False)
    edit_team(t2, store=store, actor="root", active=False)
    reg = Registry(f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=tmp_path / "artifacts")
    feats = build_features({t: store.read(t) for t in SCORED_TABLES}, horizon=7)
    v = reg.log_model("injury_risk", PickledModel(ACWRRule().fit(feats)), metrics={"auc": 0.6})["version"]
    reg.promote("injury_risk", v, force=True, actor="test")
    out = score_day(store=store, registry=reg)
    want = set(c.athletes.query("team_id == @t1").athlete_id) - {off}
    assert out["athletes"] == len(want) == 3
    assert set(store.read("predictions").athlete_id) == want  # one prediction per active athlete
    assert len(store.read("sessions", off)) > 0  # their history stays


def test_the_api_keeps_a_deactivated_athletes_history_readable_and_refuses_new_data(store, tmp_path, monkeypatch):
    "The HTTP API through the same roster: listed only on request, history readable by id, writes refused by name."
    from fastapi.testclient import TestClient

    from pitchlab.api import API_PREFIX, ApiContext, create_app
    from pitchlab.api_tokens import create_token
    from pitchlab.roster import edit_athlete

    monkeypatch.setenv("PITCHLAB_HOME", str(tmp_path / "home"))
    a = store.read("athletes")
    t1 = store.read("teams").team_id.iloc[0]
    a1 = a[a.team_id == t1].athlete_id.iloc[0]
    tok, _ = create_token("cora", store=store)
    edit_athlete(a1, store=store, actor="root", active=False)
    app = create_app(
        ctx=ApiContext(
            str(store.engine.url.render_as_string(hide_password=False)), f"sqlite:///{tmp_path / 'mlflow.db'}"
        )
    )
    h = {"Authorization": f"Bearer {tok}"}
    with TestClient(app) as c:
        listed = c.get(f"{API_PREFIX}/athletes", headers=h).json()
        assert a1 not in {r["athlete_id"] for r in listed} and len(listed) == 3
        every = c.get(f"{API_PREFIX}/athletes", params={"inactive": "true"}, headers=h).json()
        assert a1 in {r["athlete_id"] for r in every} and len(every) == 4
        assert c.get(f"{API_PREFIX}/athletes/{a1}/metrics", headers=h).status_code == 200
        r = c.post(
            f"{API_PREFIX}/sessions",
            json=dict(athlete_id=a1, date="2026-12-01", sport="cricket", session_type="gym", duration_min=40, rpe=5),
            headers=h,
        )
        assert r.status_code == 422, r.text
        assert f"athlete {a1!r} is deactivated: an admin reactivates them before new data" in r.text
    assert not len(store.read("sessions"))
