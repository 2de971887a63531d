"""Personal API tokens on both store backends: hashed, shown once, expiring, revocable, throttled and audited; the
`pitchlab users token` and `pitchlab api` commands; the API's models agree with the pandera contracts field by field."""

import datetime as dt
import os
import re
import socket
import subprocess
import sys
import time

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa

from pitchlab.core import AccessDenied, NotFoundError, ValidationError

# slow: serves the HTTP API and runs `pitchlab api`; `make test` (--runslow) runs it, `make test-quick` does not
pytestmark = pytest.mark.slow


@pytest.fixture
def store(db_url):
    from pitchlab.dash.users import add_user
    from pitchlab.store import Store

    st = Store(db_url, actor="test").create()
    st.write("teams", pd.DataFrame([dict(team_id="t1", name="Firsts", sport="cricket")]), source="test")
    add_user("cora", "coach", team_ids="t1", store=st, actor="test")
    return st


def test_token_is_hashed_shown_once_and_checked(store):
    from pitchlab.api_tokens import TOKENS, authenticate, create_token, list_tokens

    tok, row = create_token("cora", days=30, label="club app", store=store, actor="admin1")
    secret = tok.split("_", 2)[2]
    with store.engine.connect() as c:
        stored = c.execute(sa.select(TOKENS)).mappings().one()
    assert secret not in str(dict(stored)) and len(stored["token_hash"]) == 64
    assert (stored["expires"] - stored["created"]).days == 30
    assert authenticate(tok, store, client="c1").username == "cora"
    listed = list_tokens(store)
    assert "token_hash" not in listed and listed["status"].tolist() == ["active"]
    audit = store.read("audit")
    assert ((audit["action"] == "token_create") & (audit["actor"] == "admin1")).sum() == 1
    with pytest.raises(ValidationError, match="1 to 366 days"):
        create_token("cora", days=1000, store=store)
    with pytest.raises(NotFoundError, match="no user"):
        create_token("nobody", store=store)


def test_expired_and_revoked_tokens_are_refused_and_audited(store):
    from pitchlab.api_tokens import TOKENS, authenticate, create_token, revoke_token
    from pitchlab.dash.security import Throttle

    th = Throttle(store)
    old, orow = create_token("cora", store=store)
    with store.engine.begin() as c:
        c.execute(TOKENS.update().where(TOKENS.c.token_id == orow["token_id"]).values(expires=dt.datetime(2020, 1, 1)))
    with pytest.raises(AccessDenied, match="invalid or expired token"):
        authenticate(old, store, client="c2", throttle=th)
    tok, row = create_token("cora", store=store)
    assert authenticate(tok, store, client="c2", throttle=th).username == "cora"
    revoke_token(row["token_id"], store, actor="admin1")
    with pytest.raises(AccessDenied, match="invalid or expired token"):
        authenticate(tok, store, client="c2", throttle=th)
    reasons = store.read("audit").query("action == 'token_failed'")["detail"].tolist()
    assert any("expired on 2020-01-01" in r for r in reasons) and any("was revoked" in r for r in reasons)


def test_failures_lock_the_client_out_and_the_lockout_is_audited(store):
    "The dashboards' limiter (shared through the store) counts failed token checks per address and per token id."
    from pitchlab.api_tokens import _VERIFIED, authenticate, create_token
    from pitchlab.core import SecuritySettings
    from pitchlab.dash.security import Throttle, Throttled

    tok, row = create_token("cora", store=store)
    th = Throttle(store, SecuritySettings(free_attempts=5, lock_after=5, address_factor=1, lock_minutes=1))
    for i in range(5):
        with pytest.raises(AccessDenied, match="invalid or expired token"):
            authenticate(f"plk_guess{i}_x", store, client="10.1.1.1", throttle=th)
    _VERIFIED.clear()
    with pytest.raises(Throttled) as e:
        authenticate(tok, store, client="10.1.1.1", throttle=th)  # even a good token, while locked out
    assert 0 < e.value.retry_after <= 60 and e.value.locked
    assert authenticate(tok, store, client="10.2.2.2", throttle=th).username == "cora"  # other addresses are not
    other = Throttle(store, th.config)  # another process's limiter sees the same counts (they live in the store)
    assert other.wait("addr:10.1.1.1")[1] is True
    th.success("addr:10.1.1.1")
    _VERIFIED.clear()
    assert authenticate(tok, store, client="10.1.1.1", throttle=th).username == "cora"
    for i in range(5):  # guessing one token's secret from many addresses locks that token id
        with pytest.raises(AccessDenied):
            authenticate(f"plk_{row['token_id']}_wrong{i}", store, client=f"10.3.3.{i}", throttle=th)
    _VERIFIED.clear()
    with pytest.raises(Throttled):
        authenticate(tok, store, client="10.4.4.4", throttle=th)
    audit = store.read("audit")
    assert (audit["action"] == "token_throttled").sum() == 2
    assert (audit["action"] == "token_failed").sum() == 10


def test_users_token_commands(home, capsys):
    from pitchlab import cli
    from pitchlab.api_tokens import authenticate
    from pitchlab.dash.users import add_user
    from pitchlab.store import Store

    assert cli.main(["init"]) == 0
    st = Store()
    st.write("teams", pd.DataFrame([dict(team_id="t1", name="Firsts", sport="cricket")]), source="test")
    add_user("cora", "coach", team_ids="t1", store=st)
    capsys.readouterr()
    assert cli.main(["users", "token", "create", "cora", "--days", "7", "--label", "club app"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    tok = out[-1]
    assert re.fullmatch(r"plk_[0-9a-f]{10}_[A-Za-z0-9_-]{43}", tok) and "shown only now" in out[1]
    assert authenticate(tok, st, client="cli").username == "cora"
    assert cli.main(["users", "token", "list"]) == 0
    listing = capsys.readouterr().out
    tid = tok.split("_")[1]
    assert tid in listing and "club app" in listing and "active" in listing and tok.split("_", 2)[2] not in listing
    assert cli.main(["users", "token", "revoke", tid]) == 0
    assert cli.main(["users", "token", "list", "--user", "cora"]) == 0
    assert "revoked" in capsys.readouterr().out
    assert cli.main(["users", "token", "revoke", "nope"]) == 2


def test_pitchlab_api_command_serves_and_prints_its_urls(home, tmp_path):
    from pitchlab import cli

    assert cli.main(["init"]) == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PITCHLAB_HOME=str(home))
    p = subprocess.Popen(
        [sys.executable, "-c", f"from pitchlab.cli import main; raise SystemExit(main(['api', '--port', '{port}']))"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = p.stdout.readline()
        assert f"http://127.0.0.1:{port}/api/v1/" in line and f"http://127.0.0.1:{port}/api/docs" in line
        for _ in range(120):  # at most 60 s
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=5)
                break
            except httpx.HTTPError:
                time.sleep(0.5)
        assert r.status_code == 200 and r.json()["store"]["ok"] is True
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/teams", timeout=5).status_code == 401
    finally:
        p.terminate()
        p.wait(timeout=20)


def test_api_models_agree_with_the_contracts_field_by_field():
    "Every row model has the contract's fields, kinds, nullability, bounds and allowed values; input models its kinds."
    import typing

    from pitchlab.api import IN_MODELS, ROW_MODELS, _PY
    from pitchlab.schema import ENTITIES

    def base(ann):
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        return base(args[0]) if typing.get_origin(ann) is typing.Union else ann

    for name, model in ROW_MODELS.items():
        ent = ENTITIES[name]
        assert list(model.model_fields) == ent.columns, name
        for f in ent.fields:
            mf = model.model_fields[f.name]
            assert mf.is_required() == (not f.nullable), (name, f.name)
            t = base(mf.annotation)
            if f.isin:
                assert set(typing.get_args(t)) == set(f.isin), (name, f.name)
            else:
                assert t is _PY[f.kind], (name, f.name, t)
            ge = next((m.ge for m in mf.metadata if getattr(m, "ge", None) is not None), None)
            le = next((m.le for m in mf.metadata if getattr(m, "le", None) is not None), None)
            assert (ge, le) == (f.min, f.max), (name, f.name)
            assert f.doc in mf.description and (not f.unit or f"[{f.unit}]" in mf.description)
    for name, model in IN_MODELS.items():
        ent = ENTITIES[name]
        assert set(model.model_fields) == set(ent.columns) - {"entered_by"}, name
        for f in ent.fields:
            if f.name in model.model_fields:
                assert base(model.model_fields[f.name].annotation) is _PY[f.kind], (name, f.name)
    assert ROW_MODELS["predictions"].model_fields["run_id"].is_required() is False
