"""Authorisation of the dashboards: every page and every data call as every role, against a policy written out here
(not derived from the code), plus audit, OAuth mapping, the Panel login handler and a property test of team scope."""

import pandas as pd
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from pitchlab.core import AccessDenied, NotFoundError
from pitchlab.dash.auth import (
    PAGES,
    ROLES,
    DataAccess,
    User,
    authorize,
    current_user,
    hash_password,
    login,
    user_from_claims,
    verify_password,
)

PER_ATHLETE = [
    "sessions",
    "wellness",
    "pitches",
    "pose_results",
    "predictions",
    "appearances",
    "cycle_logs",
    "injuries",
]
SENSITIVE = {"cycle_logs", "injuries"}
PASSWORD = "a-long-test-password"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Two teams of five, one season; one account per role. `own` is a woman in team 1 (the athlete account's own
    athlete), `mate` her team-mate, `other` an athlete of team 2."""
    from pitchlab.store import Store
    from pitchlab.synth import make_cohort

    home = tmp_path_factory.mktemp("dash-auth")
    store = Store(f"sqlite:///{home / 'store.db'}", actor="test").create()
    c = make_cohort(n_teams=2, athletes_per_team=5, seasons=1, seed=21)
    for n in ("teams", "athletes", "sessions", "pitches", "wellness", "cycle_logs", "injuries"):
        store.write(n, getattr(c, n), source="synthetic")
    t1, t2 = c.teams.team_id
    a1 = c.athletes.query("team_id == @t1")
    own = a1.query("sex == 'F'").athlete_id.iloc[0]
    mate = a1.athlete_id[a1.athlete_id != own].iloc[0]
    other = c.athletes.query("team_id == @t2").athlete_id.iloc[0]
    h = hash_password(PASSWORD)
    users = {
        "athlete": User("ath", "athlete", athlete_id=own),
        "coach": User("coach", "coach", team_ids=t1),
        "medical": User("med", "medical", team_ids=t1),
        "admin": User("root", "admin"),
    }
    store.write(
        "users",
        pd.DataFrame(
            [
                dict(
                    username=u.username,
                    role=u.role,
                    athlete_id=u.athlete_id,
                    team_ids=",".join(u.team_ids) or None,
                    password_hash=h,
                )
                for u in users.values()
            ]
        ),
        source="test",
    )
    return dict(
        store=store,
        users=users,
        t1=t1,
        t2=t2,
        own=own,
        mate=mate,
        other=other,
        home=home,
        team1=set(a1.athlete_id),
        everyone=set(c.athletes.athlete_id),
    )


def expected_read(role, entity, who):
    "The policy, written out: may `role` read `entity` of athlete `who` ('own', 'mate' or 'other')?"
    if role == "admin":
        return entity not in SENSITIVE
    if role == "athlete":
        return who == "own"
    if role == "coach":
        return who in ("own", "mate") and entity not in SENSITIVE
    if role == "medical":
        return who in ("own", "mate")
    raise AssertionError(role)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("entity", PER_ATHLETE)
@pytest.mark.parametrize("who", ["own", "mate", "other"])
def test_every_data_read_as_every_role(world, role, entity, who):
    store, aid = world["store"], world[who]
    da = DataAccess(store, world["users"][role])
    audit_before = len(store.read("audit"))
    if expected_read(role, entity, who):
        rows = da.read(entity, [aid])
        assert set(rows["athlete_id"]) <= {aid}
        audit = store.read("audit").iloc[audit_before:]
        if entity in SENSITIVE:  # exactly one audit row, with the person as actor
            assert audit[["actor", "action", "entity", "athlete_id"]].values.tolist() == [
                [da.user.username, "read", entity, aid]
            ]
        else:
            assert len(audit) == 0
    else:
        with pytest.raises(AccessDenied):
            da.read(entity, [aid])
        assert len(store.read("audit")) == audit_before  # a refused read touches no data, so nothing to audit


@pytest.mark.parametrize("role", ROLES)
def test_default_scope_reads(world, role):
    "Without naming athletes, a read returns only the athletes in scope (a coach never gets team 2; an athlete only herself)."
    da = DataAccess(world["store"], world["users"][role])
    ids = set(da.read("sessions")["athlete_id"])
    roster = set(da.roster()["athlete_id"])
    assert ids <= roster
    if role == "athlete":
        assert roster == {world["own"]}
    if role in ("coach", "medical"):
        assert world["other"] not in ids and world["own"] in ids and world["mate"] in ids
    if role == "admin":
        assert world["other"] in ids
    if role in ("athlete", "medical"):
        assert set(da.read("cycle_logs")["athlete_id"]) <= roster
    else:
        with pytest.raises(AccessDenied):
            da.read("cycle_logs")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("table", ["users", "audit", "quarantine"])
def test_admin_only_tables(world, role, table):
    da = DataAccess(world["store"], world["users"][role])
    if role == "admin":
        assert isinstance(da.read(table), pd.DataFrame)
    else:
        with pytest.raises(AccessDenied):
            da.read(table)


WRITES = {  # (role, entity, who) -> allowed
    **{("athlete", e, "own"): True for e in ("sessions", "wellness", "cycle_logs")},
    **{("athlete", e, "mate"): False for e in ("sessions", "wellness", "cycle_logs")},
    ("coach", "sessions", "mate"): True,
    ("coach", "wellness", "mate"): True,
    ("coach", "cycle_logs", "own"): False,
    ("coach", "injuries", "own"): False,
    ("coach", "sessions", "other"): False,
    ("medical", "cycle_logs", "own"): True,
    ("medical", "injuries", "mate"): True,
    ("medical", "sessions", "other"): False,
    ("admin", "sessions", "other"): True,
    ("admin", "cycle_logs", "own"): False,
}


def _row(entity, aid, day):
    d = pd.Timestamp("2030-01-01") + pd.Timedelta(days=day)
    return {
        "sessions": dict(
            athlete_id=aid,
            date=d,
            sport="cricket",
            session_type="training",
            duration_min=30,
            rpe=4,
            source="form",
            source_id=f"t-{aid}-{day}",
        ),
        "wellness": dict(athlete_id=aid, date=d, sleep_hours=7, soreness=3, source="form"),
        "cycle_logs": dict(athlete_id=aid, date=d, phase="luteal", cycle_day=20, source="form"),
        "injuries": dict(
            injury_id=f"t-inj-{aid}-{day}",
            athlete_id=aid,
            onset_date=d,
            body_region="calf",
            injury_type="strain",
            severity="mild",
            days_lost=5,
            contact=False,
            source="form",
        ),
    }[entity]


@pytest.mark.parametrize("key", sorted(WRITES))
def test_form_writes(world, key):
    role, entity, who = key
    da = DataAccess(world["store"], world["users"][role])
    df = pd.DataFrame([_row(entity, world[who], len(WRITES) + sorted(WRITES).index(key))])
    if WRITES[key]:
        rep = da.write(entity, df)
        assert rep.ok and rep.inserted == 1
        got = world["store"].read(entity, [world[who]], actor="test")
        if "entered_by" in got:
            assert da.user.username in set(got["entered_by"])
    else:
        with pytest.raises(AccessDenied):
            da.write(entity, df)


@pytest.mark.slow  # builds every page for a role
@pytest.mark.parametrize("role", ROLES)
def test_every_page_as_every_role(world, role):
    "The page list each role gets, and that the App refuses to build a page the role may not open."
    from doubles import FakeRetrainBackend
    from pitchlab.board import NoRules
    from pitchlab.dash.app import App

    expect = {
        "athlete": ["today", "athlete", "pose", "entry"],
        "medical": ["board", "athlete", "injuries", "whatif", "compare", "pose", "models", "entry"],
        "admin": ["board", "athlete", "whatif", "compare", "pose", "models", "entry", "teams", "roster", "accounts"],
    }.get(role, ["board", "athlete", "whatif", "compare", "pose", "models", "entry"])
    app = App(access=DataAccess(world["store"], world["users"][role]), rules=NoRules(), backend=FakeRetrainBackend())
    assert app.pages == expect
    for page in PAGES:
        if page in expect:
            assert app.component(page) is not None
        else:
            with pytest.raises(AccessDenied):
                app.component(page)
    expect_roster = {
        "athlete": {world["own"]},
        "coach": world["team1"],
        "medical": world["team1"],
        "admin": world["everyone"],
    }[role]
    assert set(app.data.roster["athlete_id"]) == expect_roster
    if "board" in expect:
        assert set(app.data.board_all["athlete_id"]) == expect_roster


def test_tampered_selection_is_refused_server_side(world):
    "Even if a coach's athlete list is tampered with, the components' own checks refuse the other team's athlete."
    from pitchlab.board import NoRules
    from pitchlab.dash.data import DataStore, load_team
    from pitchlab.dash.pages.athlete import AthleteDrillDown
    from pitchlab.dash.pages.compare import Compare
    from pitchlab.dash.pages.whatif import WhatIfPlanner

    data = DataStore(access=DataAccess(world["store"], world["users"]["coach"]), rules=NoRules())
    with pytest.raises(ValueError):
        data.athlete = world["other"]  # not an option
    drill = AthleteDrillDown(data=data)
    data.param.athlete.objects = {**data.param.athlete.objects, "x": world["other"]}
    with pytest.raises(AccessDenied):
        data.athlete = world["other"]  # the drill-down's check refuses it
    with pytest.raises(AccessDenied):
        data.athlete_metrics(world["other"])
    with pytest.raises(AccessDenied):
        data.access.through(load_team, ["sessions"], [world["other"]])
    cmp_ = Compare(data=data, athletes=[world["own"], world["mate"]])
    cmp_.param.athletes.objects = {**cmp_.param.athletes.objects, "x": world["other"]}
    with pytest.raises(AccessDenied):
        cmp_.athletes = [world["own"], world["other"]]
    assert drill is not None and WhatIfPlanner is not None


@pytest.mark.slow  # builds the drill-down for each role
def test_cycle_overlay_only_for_athlete_and_medical_and_audited(world):
    from pitchlab.board import NoRules
    from pitchlab.dash.data import DataStore
    from pitchlab.dash.pages.athlete import AthleteDrillDown

    store, own = world["store"], world["own"]
    seen = {}
    for role in ROLES:
        before = len(store.read("audit"))
        data = DataStore(access=DataAccess(store, world["users"][role]), rules=NoRules())
        data.athlete = own
        d = AthleteDrillDown(data=data)
        seen[role] = d.sensitive
        new = store.read("audit").iloc[before:]
        cyc = new[new.entity == "cycle_logs"]
        if role in ("athlete", "medical"):
            assert d.sensitive["cycle_logs"] > 0 and set(cyc.actor) == {world["users"][role].username}
        else:
            assert d.sensitive == {"injuries": None, "cycle_logs": None} and len(cyc) == 0
    assert seen["coach"]["cycle_logs"] is None


def test_passwords_and_local_login(world):
    store = world["store"]
    assert verify_password(hash_password(PASSWORD), PASSWORD)
    raw = store.read("users")["password_hash"]
    assert raw.str.startswith("$argon2id$").all() and not raw.str.contains(PASSWORD).any()
    assert login("coach", PASSWORD, store).role == "coach"
    assert login("COACH", PASSWORD, store).username == "coach"
    for bad in (("coach", PASSWORD + "x"), ("nobody", PASSWORD), ("coach", "")):
        assert login(*bad, store) is None
    tail = store.read("audit").tail(5)
    assert list(tail.action) == ["login", "login", "login_failed", "login_failed", "login_failed"]
    assert list(tail.actor) == ["coach", "coach", "coach", "nobody", "coach"]


def test_old_argon2_parameters_still_sign_in_and_are_rehashed(world):
    "A hash made with argon2-cffi's defaults (RFC 9106, 64 MiB t=3 p=4) verifies and is stored again with ARGON2_PARAMS."
    from argon2 import PasswordHasher

    from pitchlab.dash.auth import ARGON2_PARAMS, needs_rehash

    store = world["store"]
    assert ARGON2_PARAMS == dict(time_cost=2, memory_cost=19456, parallelism=1)  # OWASP's 19 MiB, t=2, p=1
    row = store.read("users").query("username == 'med'")
    store.write("users", row.assign(password_hash=PasswordHasher().hash(PASSWORD)), source="test")
    stored = lambda: store.read("users").query("username == 'med'")["password_hash"].iloc[0]
    assert stored().startswith("$argon2id$v=19$m=65536,t=3,p=4$") and needs_rehash(stored())
    assert login("med", "not-the-password", store) is None and stored().startswith("$argon2id$v=19$m=65536")
    assert login("med", PASSWORD, store).role == "medical"
    assert stored().startswith("$argon2id$v=19$m=19456,t=2,p=1$") and not needs_rehash(stored())
    assert login("med", PASSWORD, store).role == "medical"  # the new hash verifies; no second rehash
    tail = store.read("audit").tail(4)
    assert list(tail.action) == ["login_failed", "user_rehash", "login", "login"]
    assert list(tail.actor) == ["med"] * 4


def test_panel_login_handler_checks_the_users_table(world, monkeypatch):
    "The handler registered as `--oauth-provider pitchlab` validates against the users table (argon2)."
    import pitchlab.dash.auth as auth
    from panel.auth import AUTH_PROVIDERS, BasicLoginHandler
    from panel.config import config

    monkeypatch.setenv("PITCHLAB_DB_URL", world["store"].url)
    handler = auth.PitchlabLoginHandler
    assert issubclass(handler, BasicLoginHandler) and AUTH_PROVIDERS["pitchlab"] is handler
    assert "pitchlab" in config.param.objects(False)["_oauth_provider"].objects
    h = object.__new__(handler)
    assert h._validate("med", PASSWORD) is True
    assert h._validate("med", "wrong-password-here") is False
    assert h._validate("nobody", PASSWORD) is False
    assert auth._panel_auth()["ROUTES"] == []  # (auth.ROUTES would install the server hooks into this test process)
    provider = auth.PitchlabAuthProvider()
    assert provider.login_handler is handler
    assert provider.logout_handler is auth.PitchlabLogoutHandler


def test_oauth_claims_map_to_users(world):
    users = world["store"].read("users")
    # the users table wins over whatever the claims say
    assert user_from_claims({"user": "coach", "roles": ["pitchlab-admin"]}, users).role == "coach"
    az = user_from_claims(
        {
            "email": "new@club.org",
            "roles": ["reader", "pitchlab-coach", "pitchlab-medical"],
            "pitchlab_teams": f"{world['t1']},{world['t2']}",
            "name": "New",
        },
        users,
    )
    assert (az.role, az.team_ids, az.display_name) == ("medical", (world["t1"], world["t2"]), "New")
    assert (
        user_from_claims({"preferred_username": "k", "groups": "physio"}, users, role_map={"physio": "medical"}).role
        == "medical"
    )
    with pytest.raises(AccessDenied, match="no pitchlab role"):
        user_from_claims({"email": "eve@x.org", "roles": ["reader"]}, users)
    with pytest.raises(AccessDenied, match="no user name"):
        user_from_claims({"roles": ["pitchlab-admin"]}, users)
    with pytest.raises(AccessDenied):
        user_from_claims({"email": "a@x.org", "roles": "athlete"}, users)  # athlete without id


def test_current_user(world):
    store = world["store"]
    assert current_user(store, user="med", claims={}, auth_configured=True).role == "medical"
    assert (
        current_user(
            store, user=None, claims={}, auth_configured=False, environ={"PITCHLAB_DASH_USER": "ath"}
        ).athlete_id
        == world["own"]
    )
    with pytest.raises(AccessDenied, match="ignored"):
        current_user(store, user=None, claims={}, auth_configured=True, environ={"PITCHLAB_DASH_USER": "root"})
    with pytest.raises(AccessDenied, match="not in the users table"):
        current_user(store, user=None, claims={}, auth_configured=False, environ={"PITCHLAB_DASH_USER": "ghost"})
    with pytest.raises(AccessDenied, match="nobody is signed in"):
        current_user(store, user="guest", claims={}, auth_configured=False, environ={})


def test_bad_requests_are_named():
    u = User("c", "coach", team_ids="t1")
    with pytest.raises(NotFoundError):
        authorize(u, "view", "no-such-page")
    with pytest.raises(NotFoundError):
        authorize(u, "read", "no-such-table", "a", "t1")
    with pytest.raises(AccessDenied, match="nobody is signed in"):
        authorize(None, "read", "teams")
    with pytest.raises(AccessDenied, match="cannot tell which team"):
        authorize(u, "read", "sessions", "ghost", None)


@hsettings(max_examples=200, deadline=None)
@given(
    coach_teams=st.sets(st.sampled_from(["t1", "t2", "t3", "t4"]), max_size=4),
    athlete_team=st.sampled_from(["t1", "t2", "t3", "t4"]),
    entity=st.sampled_from(PER_ATHLETE),
    role=st.sampled_from(["coach", "medical"]),
    action=st.sampled_from(["read", "write"]),
)
def test_team_scope_property(coach_teams, athlete_team, entity, role, action):
    "For coach and medical staff, access to an athlete's rows is exactly: team in their teams, and the entity allowed to the role."
    u = User("x", role, team_ids=",".join(sorted(coach_teams)))
    writable = {
        "coach": {"sessions", "wellness", "pose_results"},
        "medical": {"sessions", "wellness", "cycle_logs", "injuries", "pose_results"},
    }[role]
    allowed = (
        athlete_team in coach_teams
        and (role == "medical" or entity not in SENSITIVE)
        and (action == "read" or entity in writable)
    )
    try:
        authorize(u, action, entity, "a1", athlete_team)
        got = True
    except AccessDenied:
        got = False
    assert got == allowed
