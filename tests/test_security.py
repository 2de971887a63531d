"""The attack suite of issue 17, against the real thing: the exact `panel serve` command that `pitchlab serve` builds
(`pitchlab.cli.serve_command`: two server processes, signed sessions, cookies kept out of session tokens, the security
hooks of `pitchlab.dash.security`) on 127.0.0.1 and a free port, over a fresh data home whose every free-text field
carries a script-injection payload.

The kernel, not the client, picks which server process accepts a connection. So that every probe is shown to hold on
BOTH processes, the HTTP and websocket probes run over a connection pinned to one process: the test opens TCP
connections until one is accepted by the wanted process (which process owns the accepted socket is read from
/proc/net/tcp and /proc/<pid>/fd, the server running on this machine), then speaks HTTP/1.1 keep-alive or the websocket
handshake over that connection only. The browser cannot be pinned, so each role signs in again until its pages were
built by each process (the page names the process). Every loop is bounded in count and time, and the servers are
killed in teardown."""

import base64
import concurrent.futures
import http.client
import http.cookies
import json
import os
import re
import socket
import statistics
import struct
import subprocess
import time
import urllib.parse
from pathlib import Path

import pandas as pd
import pytest
from conftest import stop_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "security-test-password"
WAIT = 45_000  # ms
PROCS = 2  # server processes, as `pitchlab serve` starts them on two cores
PIN_TRIES = 200  # TCP connections at most while looking for one accepted by a given process
TRIES = 25  # browser sign-ins per role at most while looking for the process not yet seen


def xss(tag: str) -> str:
    "Three ways a script could run if `tag`'s text were rendered as HTML; each records `tag` in window.__xss."
    mark = f"(window.__xss=window.__xss||[]).push('{tag}')"
    return (
        f'{tag}<img data-xss="{tag}" src="x" onerror="{mark}">'
        f"<script data-xss=\"{tag}\">{mark}</script><svg data-xss=\"{tag}\" onload=\"{mark}\"></svg>"
    )


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Text fields that are not typed by a person (ids, keys, hashes, JSON written by the code) or that select behaviour
# (a sport picks the rule set); every other `str` field without a fixed list of values gets a payload.
NOT_TYPED = {"sport", "source_id", "password_hash", "video_sha256", "metrics", "factors", "team_ids", "username"}


def _typed_fields(entity: str) -> list:
    "The free-text fields of `entity` per pitchlab.schema: kind str, no allowed-value list, not an id."
    from pitchlab.schema import ENTITIES

    return [
        f.name
        for f in ENTITIES[entity].fields
        if f.kind == "str" and not f.isin and not f.name.endswith("_id") and f.name not in NOT_TYPED
    ]


def _plant(cohort):
    "Every free-text field of every entity of the cohort gets a payload naming the entity and field."
    c = cohort
    for entity in ("teams", "athletes", "sessions", "pitches", "wellness", "cycle_logs", "injuries"):
        df = getattr(c, entity).copy()
        for f in _typed_fields(entity):
            if f == "name":
                df[f] = [xss(f"{entity}.name.{i}") for i in range(len(df))]
            elif f in df:
                df[f] = df[f].astype(object)
                df.loc[df.index[::3], f] = xss(f"{entity}.{f}")  # one row in three (others keep their values)
            else:
                df[f] = xss(f"{entity}.{f}")
        setattr(c, entity, df)
    return c


def _group_pids(pgid: int) -> list:
    "Processes of the server's process group (the supervisor and its forked server processes)."
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:  # fields after the name: state, ppid, pgrp
                out.append(int(d))
    return out


def _hexaddr(port: int) -> str:
    return f"0100007F:{port:04X}"


def _owner(site, client_port: int, timeout: float = 5.0) -> int | None:
    "The server process that accepted the connection from 127.0.0.1:`client_port` (None if none did within `timeout`)."
    want_local, want_rem = _hexaddr(site["port"]), _hexaddr(client_port)
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        inode = None
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            f = line.split()
            if f[1] == want_local and f[2] == want_rem and f[9] != "0":
                inode = f[9]
        if inode:
            target = f"socket:[{inode}]"
            for pid in site["pids"]():
                try:
                    fds = os.listdir(f"/proc/{pid}/fd")
                except OSError:
                    continue
                for fd in fds:
                    try:
                        if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                            return pid
                    except OSError:
                        continue
        time.sleep(0.02)
    return None


def connect_to(site, pid: int) -> socket.socket:
    "A TCP connection to the server accepted by process `pid` (at most PIN_TRIES connections are tried)."
    seen = set()
    for _ in range(PIN_TRIES):
        s = socket.create_connection(("127.0.0.1", site["port"]), timeout=30)
        got = _owner(site, s.getsockname()[1])
        if got == pid:
            return s
        seen.add(got)
        s.close()
    pytest.fail(f"{PIN_TRIES} connections were all accepted by process(es) {sorted(map(str, seen))}, never by {pid}")


class Pinned(http.client.HTTPConnection):
    "HTTP/1.1 keep-alive to ONE server process, with a cookie jar; a closed connection is an error, never a reconnect."

    def __init__(self, site, pid):
        super().__init__("127.0.0.1", site["port"], timeout=60)
        self.site, self.pid, self.jar = site, pid, {}
        self.sock = connect_to(site, pid)

    def connect(self):
        raise AssertionError(f"the connection to server process {self.pid} was closed; a new one could reach another")

    def call(self, method, path, data=None, cookies=None, headers=None):
        "One request; returns (status, headers, text). `cookies`: exactly these cookies instead of the jar."
        h = dict(headers or {})
        jar = self.jar if cookies is None else cookies
        if jar:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
        body = None
        if data is not None:
            body = data if isinstance(data, bytes) else urllib.parse.urlencode(data).encode()
            h.setdefault("Content-Type", "application/x-www-form-urlencoded")
        self.request(method, path, body=body, headers=h)
        r = self.getresponse()
        text = r.read().decode("utf-8", "replace")
        if cookies is None:
            for raw in r.headers.get_all("Set-Cookie") or []:
                c = http.cookies.SimpleCookie()
                c.load(raw)
                for k, m in c.items():
                    if m.value == "" or m["max-age"] == "0":
                        self.jar.pop(k, None)
                    else:
                        self.jar[k] = m.value
        assert _owner(self.site, self.sock.getsockname()[1], 1.0) == self.pid  # still the same process
        return r.status, r.headers, text


def pinned_sign_in(site, pid, user, password=PASSWORD) -> tuple:
    "Sign in through the form (CSRF token included) on process `pid`: (Pinned connection, status, Location)."
    c = Pinned(site, pid)
    _, _, page = c.call("GET", "/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    status, h, _ = c.call("POST", "/login", dict(username=user, password=password, csrf_token=token))
    return c, status, h.get("Location", "")


def app_status(site, pid, cookies) -> tuple:
    "GET /app on process `pid` with exactly these cookies: (status, Location)."
    c = Pinned(site, pid)
    try:
        status, h, _ = c.call("GET", "/app", cookies=cookies)
    finally:
        c.close()
    return status, h.get("Location", "")


def signed(site, name, value, age_days=0.0) -> str:
    "A cookie value signed with the server's cookie secret, `age_days` old."
    from tornado.web import create_signed_value

    t = time.time() - age_days * 86400
    return create_signed_value(site["cookie_secret"], name, value, clock=lambda: t).decode()


def _serve(home, env_extra, procs, logf, apps=None):
    "Start `pitchlab serve`'s command line; returns (process, port, cmd, env) once /login answers (bounded: 150 s)."
    import requests

    from pitchlab.cli import serve_command

    port = _free_port()
    cmd, env = serve_command(port, procs=procs, **({"apps": apps} if apps else {}))
    env.update(PITCHLAB_RETRAIN_BACKEND="stub", TF_CPP_MIN_LOG_LEVEL="3", PITCHLAB_HOME=str(home), **env_extra)
    for k in ("PITCHLAB_DASH_USER", "PANEL_OAUTH_PROVIDER", "PANEL_BASIC_AUTH"):
        env.pop(k, None)
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=open(logf, "w"), stderr=subprocess.STDOUT, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    t0 = time.monotonic()
    while True:  # bounded: 150 s
        try:
            if requests.get(base + "/login", timeout=5).status_code == 200:
                break
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.monotonic() - t0 > 150:
            stop_server(proc, wait=15)
            pytest.fail("panel serve did not start:\n" + Path(logf).read_text()[-3000:])
        time.sleep(0.5)
    return proc, port, cmd, env


USERS = ["coach", "med", "ath", "root", "victim", "replay", "tab"] + [
    f"{w}{i}" for w in ("pw", "off", "role", "gone") for i in (0, 1)
]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    "`pitchlab serve`'s command (two processes) on a fresh data home full of payloads: URL, store, home, processes."
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run .ci/browser-deps.sh (Debian's chromium package)")
    from pitchlab.dash.auth import hash_password
    from pitchlab.store import Store
    from pitchlab.synth import make_cohort

    old_umask = os.umask(0o022)  # a usual umask: the private modes below must come from pitchlab, not from the test
    home = tmp_path_factory.mktemp("security") / "home"
    keep = {
        k: os.environ.get(k) for k in ("PITCHLAB_HOME", "PANEL_COOKIE_SECRET", "BOKEH_SECRET_KEY", "PITCHLAB_DB_URL")
    }
    os.environ["PITCHLAB_HOME"] = str(home)
    for k in ("PANEL_COOKIE_SECRET", "BOKEH_SECRET_KEY", "PITCHLAB_DB_URL"):
        os.environ.pop(k, None)
    proc = None
    try:
        store = Store(f"sqlite:///{home / 'pitchlab.db'}", actor="test").create()
        c = _plant(make_cohort(n_teams=2, athletes_per_team=4, seasons=1, seed=41))
        for n in ("teams", "athletes", "sessions", "pitches", "wellness", "cycle_logs", "injuries"):
            rep = store.write(n, getattr(c, n), source=xss(f"{n}.source"))
            assert rep.quarantined == 0, (n, rep.rejects.head())
        t1, t2 = c.teams.team_id
        own = c.athletes.query("team_id == @t1 and sex == 'F'").athlete_id.iloc[0]
        pose = dict(athlete_id=own, date=c.sessions.date.max(), movement="jump", score=61.0, confidence=0.8)
        pose.update(feedback=xss("pose_results.feedback"), metrics=json.dumps({"knee": 150}), video_sha256="0" * 64)
        pose.update(source=xss("pose_results.source"))
        rep = store.write("pose_results", pd.DataFrame([pose]), source=xss("pose_results.source"))
        assert rep.quarantined == 0, rep.rejects.head()
        h = hash_password(PASSWORD)
        users = [
            dict(username="coach", display_name=xss("users.display_name.coach"), role="coach", team_ids=t1),
            dict(username="med", display_name=xss("users.display_name.med"), role="medical", team_ids=f"{t1},{t2}"),
            dict(username="ath", display_name=xss("users.display_name.ath"), role="athlete", athlete_id=own),
            dict(username="root", display_name=xss("users.display_name.root"), role="admin"),
        ] + [dict(username=u, display_name=u.title(), role="coach", team_ids=t1) for u in USERS[4:]]
        store.write("users", pd.DataFrame([{**u, "password_hash": h} for u in users]), source="test")
        store.log("note", "users", detail=xss("audit.detail"), actor=xss("audit.actor"))
        # locks after 3 failures (default 10) so that one burst shows the lock; the delays keep their defaults
        lim = dict(
            PITCHLAB_LOGIN_LOCK_AFTER="3", PITCHLAB_SESSION_RECHECK_S="2"
        )  # open pages check their session every 2 s
        proc, port, cmd, env = _serve(home, lim, PROCS, home.parent / "serve.log")
        pids = lambda: [p for p in _group_pids(proc.pid) if p != proc.pid] or [proc.pid]
        t0 = time.monotonic()
        while len(pids()) < PROCS and time.monotonic() - t0 < 30:
            time.sleep(0.2)
        assert len(pids()) == PROCS, f"expected {PROCS} server processes, found {pids()}"
        yield dict(
            base=f"http://127.0.0.1:{port}",
            port=port,
            store=store,
            home=home,
            cmd=cmd,
            env=env,
            cookie_secret=env["PANEL_COOKIE_SECRET"],
            log=home.parent / "serve.log",
            pids=pids,
            team=t1,
        )
    finally:
        stop_server(proc, wait=15)
        for k, v in keep.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        os.umask(old_umask)


@pytest.fixture(params=range(PROCS), ids=[f"process{i}" for i in range(PROCS)])
def pid(request, site):
    "Each server process in turn (the probe runs over connections that process accepted)."
    return sorted(site["pids"]())[request.param]


# ---------------------------------------------------------------- the command, files, headers, CSRF, error texts


def test_served_with_signed_sessions_and_no_cookies_in_tokens(site, pid):
    from bokeh.util.token import get_token_payload

    cmd = site["cmd"]
    assert cmd[cmd.index("--session-ids") + 1] == "signed" and len(site["env"]["BOKEH_SECRET_KEY"]) >= 32
    assert cmd[cmd.index("--num-procs") + 1] == str(PROCS)
    c, status, _ = pinned_sign_in(site, pid, "coach")
    assert status == 302 and "pitchlab_session" in c.jar
    status, _, html = c.call("GET", "/app")
    assert status == 200
    payload = get_token_payload(re.search(r'"token":"([^"]+)"', html).group(1))
    assert not {"user", "id_token", "pitchlab_session"} & set(payload.get("cookies", {}))
    assert "Cookie" not in payload.get("headers", {})


def test_file_modes_in_a_fresh_data_home(site):
    from pitchlab.core import mode_warnings

    home = site["home"]
    for name in (
        "pitchlab.db",
        "pitchlab.db-wal",
        "pitchlab.db-shm",
        "secrets/cookie_secret",
        "secrets/bokeh_secret_key",
    ):
        assert oct((home / name).stat().st_mode & 0o777) == "0o600", name
    for d in (home, home / "secrets", home / "models", home / "reports", home / "mlflow"):
        assert oct(d.stat().st_mode & 0o777) == "0o700", d
    assert mode_warnings(home, limit=100) == []


def test_pitchlab_info_warns_about_wider_modes(tmp_path):
    "`pitchlab info` on a data home where one file and one folder were opened up names both and says how to fix it."
    home = tmp_path / "home"
    env = dict(os.environ, PITCHLAB_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("PITCHLAB_DB_URL", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    exe = str(ROOT / ".venv" / "bin" / "pitchlab")
    ok = subprocess.run([exe, "info"], env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "readable by other local accounts" not in ok.stdout  # a fresh home is private
    os.chmod(home / "pitchlab.db", 0o644)
    (home / "reports").mkdir(mode=0o700, exist_ok=True)
    (home / "reports").chmod(0o755)
    r = subprocess.run([exe, "info"], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "warning: the data home is readable by other local accounts" in r.stdout
    assert f"{home / 'pitchlab.db'} is 0644" in r.stdout and f"{home / 'reports'} is 0755" in r.stdout
    assert f"fix: chmod -R go-rwx {home}" in r.stdout


def test_response_headers(site, pid):
    c, _, _ = pinned_sign_in(site, pid, "coach")
    for path in ("/login", "/app", "/static/js/bokeh.min.js"):
        status, h, _ = c.call("GET", path)
        assert status == 200, path
        csp = h["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp, path
        script_src = re.search(r"script-src ([^;]*)", csp).group(1)
        assert "'unsafe-inline'" not in script_src, path  # ('unsafe-eval' is needed by BokehJS: nbs/63)
        assert h["X-Frame-Options"] == "DENY" and h["X-Content-Type-Options"] == "nosniff", path
        assert h["Referrer-Policy"] == "same-origin", path
        assert "Strict-Transport-Security" not in h  # plain HTTP here (PITCHLAB_HTTPS off)
    _, h, _ = c.call("GET", "/app")
    assert len(re.findall(r"'sha256-[A-Za-z0-9+/=]+'", h["Content-Security-Policy"])) == 2  # the page's own two
    fresh = Pinned(site, pid)
    _, h, _ = fresh.call("GET", "/login")
    cookies = h.get_all("Set-Cookie")
    assert cookies and all("SameSite=" in x for x in cookies), cookies
    assert all("Secure" not in x for x in cookies), cookies  # not over plain HTTP (see the HTTPS test)
    c3 = Pinned(site, pid)  # the sign-in response sets user and pitchlab_session: Lax and HttpOnly
    _, _, page = c3.call("GET", "/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    _, h, _ = c3.call("POST", "/login", dict(username="coach", password=PASSWORD, csrf_token=token))
    set_cookies = {x.split("=", 1)[0]: x for x in h.get_all("Set-Cookie")}
    for name in ("user", "pitchlab_session"):
        assert "SameSite=Lax" in set_cookies[name] and "HttpOnly" in set_cookies[name], set_cookies[name]


def test_sign_in_without_csrf_token_is_refused(site, pid):
    c = Pinned(site, pid)
    status, h, _ = c.call("POST", "/login", dict(username="coach", password=PASSWORD))
    assert status == 302 and h["Location"].endswith("/login?error=csrf")
    assert "user" not in c.jar and "pitchlab_session" not in c.jar
    _, _, page = c.call("GET", "/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    # the token without its cookie (a cross-site form cannot set the cookie)
    status, h, _ = c.call("POST", "/login", dict(username="coach", password=PASSWORD, csrf_token=token), cookies={})
    assert h["Location"].endswith("/login?error=csrf") and "user" not in c.jar
    # a token of another form (its own cookie, someone else's field)
    status, h, _ = c.call("POST", "/login", dict(username="coach", password=PASSWORD, csrf_token=token[::-1]))
    assert h["Location"].endswith("/login?error=csrf") and "user" not in c.jar
    assert "The sign-in form had expired" in c.call("GET", "/login?error=csrf")[2]


def test_login_error_texts_are_only_known_sentences(site, pid):
    from pitchlab.dash.security import LOGIN_ERRORS

    c = Pinned(site, pid)
    for err in ("<script>alert(1)</script>", "Your account is suspended: call +1 555 0100", "invalid%00"):
        _, _, text = c.call("GET", "/login?" + urllib.parse.urlencode({"error": err}))
        assert "<script>alert" not in text and "suspended" not in text and "<script" not in text
        assert "Sign-in failed. Please try again." in text  # an unknown code gets the generic sentence
    for code, sentence in LOGIN_ERRORS.items():
        from html import escape

        assert escape(sentence) in c.call("GET", f"/login?error={code}")[2], code


# ---------------------------------------------------------------- replay, revocation, forgery, origins


def test_cookie_replay_after_logout_is_refused(site, pid):
    c, _, _ = pinned_sign_in(site, pid, "replay")
    jar = dict(c.jar)
    assert app_status(site, pid, jar)[0] == 200
    _, _, page = c.call("GET", "/logout")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert app_status(site, pid, jar)[0] == 200  # GET /logout only asks; it signs nobody out
    status, _, text = c.call("POST", "/logout", dict(csrf_token=token))
    assert status == 200 and "You are signed out" in text
    status, loc = app_status(site, pid, jar)  # the old cookies, replayed
    assert status == 302 and "/login" in loc
    audit = site["store"].read("audit")
    assert ((audit.action == "session_revoked") & (audit.actor == "replay")).any()


def test_sign_out_on_one_process_ends_the_session_on_the_other(site):
    "The session record is shared: signed in on one process, signed out on the other, replayed on the first."
    a, b = sorted(site["pids"]())
    c, _, _ = pinned_sign_in(site, a, "replay")
    jar = dict(c.jar)
    other = Pinned(site, b)
    other.jar = dict(jar)
    _, _, page = other.call("GET", "/logout")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert other.call("POST", "/logout", dict(csrf_token=token))[0] == 200
    assert app_status(site, a, jar)[0] == 302


@pytest.mark.parametrize("change", ["password", "deactivation", "role", "removal"])
def test_sessions_are_revoked_on_password_change_deactivation_role_change_and_removal(site, pid, change):
    """Signed in, an admin changes the account: the browser's old cookies, replayed, no longer open anything.
    Deactivation is the password removed (`set_password(user, None)`, what the admin pages' Deactivate does)."""
    from pitchlab.dash.users import remove_user, set_password, set_role

    i = sorted(site["pids"]()).index(pid)
    user = {"password": "pw", "deactivation": "off", "role": "role", "removal": "gone"}[change] + str(i)
    c, status, _ = pinned_sign_in(site, pid, user)
    assert status == 302
    jar = dict(c.jar)
    assert app_status(site, pid, jar)[0] == 200  # control: the session is live
    st = site["store"]
    if change == "password":
        set_password(user, "a-brand-new-passphrase", store=st, actor="root")
    elif change == "deactivation":
        set_password(user, None, store=st, actor="root")
    elif change == "role":
        set_role(user, "medical", team_ids=site["team"], store=st, actor="root")
    else:
        remove_user(user, store=st, actor="root")
    status, loc = app_status(site, pid, jar)
    assert status == 302 and "/login" in loc, (change, status, loc)
    c.close()
    audit = st.read("audit").query("action == 'session_revoked'")
    assert audit.detail.str.contains(f"of {user}:").any(), audit.tail()
    if change == "password":  # the old password no longer works, the new one does
        assert pinned_sign_in(site, pid, user)[2].endswith("error=invalid")
        assert pinned_sign_in(site, pid, user, "a-brand-new-passphrase")[1] == 302
    if change == "deactivation":  # and nobody signs in with the old password any more
        assert pinned_sign_in(site, pid, user)[2].endswith("error=invalid")


def test_logout_without_csrf_token_is_refused(site, pid):
    c, _, _ = pinned_sign_in(site, pid, "coach")
    status, _, text = c.call("POST", "/logout", {})
    assert status == 403 and "expired" in text
    assert app_status(site, pid, dict(c.jar))[0] == 200  # still signed in


def test_cookies_older_than_a_day_or_of_a_dead_session_are_refused(site, pid):
    from pitchlab.dash.security import new_session

    c, _, _ = pinned_sign_in(site, pid, "coach")
    jar = dict(c.jar)
    sid = new_session("coach", store=site["store"])
    fresh = dict(user=signed(site, "user", "coach"), pitchlab_session=signed(site, "pitchlab_session", sid))
    assert app_status(site, pid, fresh)[0] == 200  # control: freshly signed cookies of a live session open the app
    old = dict(user=signed(site, "user", "coach", 1.5), pitchlab_session=signed(site, "pitchlab_session", sid, 1.5))
    assert app_status(site, pid, old)[0] == 302  # 1.5 days old: refused although the session row is live
    tampered = {**fresh, "pitchlab_session": jar["pitchlab_session"].replace("a", "b", 1)}
    assert app_status(site, pid, tampered)[0] == 302
    dead = new_session("coach", store=site["store"], days=-1)
    assert app_status(site, pid, {**fresh, "pitchlab_session": signed(site, "pitchlab_session", dead)})[0] == 302
    other = new_session("ath", store=site["store"])  # a live session, but the athlete's
    assert app_status(site, pid, {**fresh, "pitchlab_session": signed(site, "pitchlab_session", other)})[0] == 302
    assert app_status(site, pid, {"user": fresh["user"]})[0] == 302  # the user cookie alone no longer opens anything


def _ws_frames(sock, rest=b"", limit=20):
    "Server frames (opcode, payload) from a websocket, at most `limit` (unmasked frames, as a server sends them)."
    buf = [rest]

    def exact(n):
        while len(buf[0]) < n:
            chunk = sock.recv(65536)
            if not chunk:
                raise EOFError
            buf[0] += chunk
        out, buf[0] = buf[0][:n], buf[0][n:]
        return out

    for _ in range(limit):
        b0, b1 = exact(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", exact(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", exact(8))[0]
        yield b0 & 0x0F, exact(n)


def ws_opens(site, pid, token, cookies, origin) -> bool:
    "Does Bokeh's websocket on process `pid` accept this token with these cookies from this origin (ACK within 10 s)?"
    sock = connect_to(site, pid)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            "GET /app/ws HTTP/1.1",
            f"Host: 127.0.0.1:{site['port']}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            f"Sec-WebSocket-Protocol: bokeh, {token}",
            f"Origin: {origin}",
        ]
        if cookies:
            lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in cookies.items()))
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        sock.settimeout(10)
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            chunk = sock.recv(4096)
            if not chunk:
                return False
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            return False  # refused at the handshake
        try:
            for opcode, payload in _ws_frames(sock, head.split(b"\r\n\r\n", 1)[1]):
                if opcode == 8:  # close
                    return False
                if opcode == 1:
                    return b'"ACK"' in payload
        except (EOFError, OSError):
            return False
        return False
    finally:
        sock.close()


def _page_token(c):
    return re.search(r'"token":"([^"]+)"', c.call("GET", "/app")[2]).group(1)


def test_forged_tokens_and_foreign_origins_are_refused(site, pid):
    from bokeh.util.token import generate_jwt_token, get_session_id

    c, _, _ = pinned_sign_in(site, pid, "coach")
    jar = dict(c.jar)
    me = f"http://127.0.0.1:{site['port']}"
    assert ws_opens(site, pid, _page_token(c), jar, me)  # control: the genuine token opens
    token = _page_token(c)
    sid = get_session_id(token)
    unsigned = generate_jwt_token(sid, signed=False, extra_payload={"cookies": {"user": jar["user"]}})
    assert not ws_opens(site, pid, unsigned, jar, me)
    wrong_key = generate_jwt_token(sid, secret_key=b"not-the-key" * 4, signed=True)
    assert not ws_opens(site, pid, wrong_key, jar, me)
    assert not ws_opens(site, pid, token[:-2] + ("AA" if token[-2:] != "AA" else "BB"), jar, me)
    a, _, _ = pinned_sign_in(site, pid, "ath")  # a second account from another site / another scheme
    ajar = dict(a.jar)
    assert ws_opens(site, pid, _page_token(a), ajar, me)  # control
    assert not ws_opens(site, pid, _page_token(a), ajar, "http://evil.example")
    assert not ws_opens(site, pid, _page_token(a), ajar, f"https://127.0.0.1:{site['port']}")
    assert not ws_opens(site, pid, _page_token(a), {}, me)  # no cookies: who is it? refused
    # the athlete's page token with only the coach's signed `user` cookie (no live session): refused
    assert not ws_opens(site, pid, _page_token(a), {"user": jar["user"]}, me)


# ---------------------------------------------------------------- refusals are sentences


BAD_REQUESTS = [
    ("GET", "/no-such-page", None),
    ("GET", "/static/../../etc/passwd", None),
    ("GET", "/static/%2e%2e/%2e%2e/pitchlab.db", None),
    ("GET", "/app/ws", None),  # a websocket URL without the upgrade
    ("GET", "/app?bokeh-session-id=forged", None),
    ("GET", "/login?next=http://evil.example/", None),
    ("POST", "/login", b"\xff\xfe\x00garbage"),
    ("POST", "/login", {"username": "x" * 5000, "password": "y" * 5000}),
    ("POST", "/login", {"csrf_token": ["a", "b"]}),
    ("POST", "/logout", b"csrf_token=%ZZ"),
    ("PUT", "/login", b"{}"),
    ("DELETE", "/app", None),
]


def test_refusals_are_sentences_never_tracebacks(site, pid):
    "Bad URLs, bad form posts and expired sessions: a status below 500 and a short text, never a traceback."
    c = Pinned(site, pid)
    c.call("GET", "/login")  # the CSRF cookie, so that form posts get past the first check
    for method, path, data in BAD_REQUESTS:
        if isinstance(data, dict):
            data = urllib.parse.urlencode(data, doseq=True).encode()
        status, h, text = c.call(method, path, data)
        assert status < 500, (method, path, status, text[:300])
        for marker in ("Traceback", 'File "', "Exception", "Error:", "tornado.", "sqlalchemy"):
            assert marker not in text, (method, path, text[:500])
        if status == 302:
            assert not h["Location"].startswith("http://evil"), (path, h["Location"])
    old = dict(user=signed(site, "user", "coach", 3), pitchlab_session=signed(site, "pitchlab_session", "x", 3))
    status, h, text = c.call("GET", "/app", cookies=old)  # an expired sign-in: back to the sign-in form
    assert status == 302 and "/login" in h["Location"] and "Traceback" not in text
    log = site["log"].read_text()  # nor a traceback in the server's log for any of them
    for method, path, _ in BAD_REQUESTS:  # (/app/ws is left out: Bokeh logs its refusal of a forged token that way)
        if path != "/app/ws":
            assert f"Uncaught exception {method} {path} " not in log, (method, path)


# ---------------------------------------------------------------- brute force and denial


def test_thirty_wrong_passwords_are_throttled_and_others_are_still_served(site):
    import requests

    s = requests.Session()
    s.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=32))
    page = s.get(site["base"] + "/login", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)

    def attempt(_):
        r = s.post(
            site["base"] + "/login",
            data=dict(username="victim", password="wrong-password-guess", csrf_token=token),
            allow_redirects=False,
            timeout=60,
        )
        return r.headers.get("Location", "")

    others = {p: Pinned(site, p) for p in sorted(site["pids"]())}  # another user's page on each process
    lat = {p: [] for p in others}
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        futs = [pool.submit(attempt, i) for i in range(30)]
        t_end = time.monotonic() + 60
        # sample until the attack is over and each process answered at least 3 times (argon2id at OWASP's cost, ~0.02 s
        # a check, lets the 30 attempts end within a couple of samples)
        while (
            (not all(f.done() for f in futs) or min(map(len, lat.values())) < 3)
            and time.monotonic() < t_end
            and sum(map(len, lat.values())) < 400
        ):
            for p, c in others.items():
                t0 = time.perf_counter()
                assert c.call("GET", "/login")[0] == 200
                lat[p].append(time.perf_counter() - t0)
            time.sleep(0.02)
        codes = [f.result(timeout=60).rsplit("error=", 1)[-1] for f in futs]
    n_invalid = codes.count("invalid")
    n_refused = codes.count("throttled") + codes.count("locked")
    for p, v in lat.items():
        print(
            f"30 wrong passwords: {n_invalid} checked, {n_refused} refused unchecked; other user's GET /login on "
            f"process {p}: median {statistics.median(v) * 1000:.1f} ms, max {max(v) * 1000:.1f} ms over {len(v)}"
        )
    assert n_invalid + n_refused == 30 and n_refused >= 20 and n_invalid <= 8, codes
    for v in lat.values():  # the other user is served on every process during and after the attack (latency printed
        assert len(v) >= 3  # above; speed is measured in benchmarks/, not asserted here)
    for p in others:  # even the right password is refused on either process while the account is locked
        assert pinned_sign_in(site, p, "victim")[2].endswith("error=locked")
    audit = site["store"].read("audit").query("actor == 'victim'")
    assert (audit.action == "login_throttled").sum() >= 20
    th = site["store"].read("auth_throttle").set_index("key")
    assert th.loc["user:victim", "failures"] >= 3


# ---------------------------------------------------------------- stored XSS in a real browser, every page, every role

ROLES_USERS = ["coach", "med", "ath", "root"]
PAGE_READY = {  # nav title -> what shows once the page is built (as in tests/test_dash_offline.py)
    "Team board": ".tabulator-row",
    "Athlete": ".pitchlab-drilldown-plots canvas",
    "My data": ".pitchlab-drilldown-plots canvas",
    "What-if": ".pitchlab-day .noUi-handle",
    "Compare": "canvas",
    "Pose": ".bk-btn",
    "Models": ".pitchlab-versions",
    "Entry forms": ".pitchlab-forms",
    "Today": ".pitchlab-today-summary",
    "Injury log": ".pitchlab-injury-list",
    "Teams": ".tabulator-row",  # the admin pages: their tables have rows
    "Athletes": ".tabulator-row",
    "Accounts": ".tabulator-row",
}
# Pages that would still render a payload as markup (an element with data-xss reaching the DOM, even if the CSP keeps it
# from running), with the reason; empty since every typed value goes through pitchlab.dash.data.esc.
UNESCAPED: dict = {}
MARKUP_JS = """() => { const found = new Set();
  const walk = (root) => { root.querySelectorAll('[data-xss]').forEach(e => found.add(e.getAttribute('data-xss')));
    root.querySelectorAll('*').forEach(e => { if (e.shadowRoot) walk(e.shadowRoot); }); };
  walk(document); return [...found]; }"""
TEXT_JS = """() => { const out = [];
  const walk = (root) => { out.push(root.textContent || '');
    root.querySelectorAll('*').forEach(e => { if (e.shadowRoot) walk(e.shadowRoot); }); };
  walk(document.body); return out.join(' '); }"""


@pytest.fixture(scope="module")
def browser():
    pw = pytest.importorskip("playwright.sync_api")
    pw.expect.set_options(timeout=WAIT)
    with pw.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=60_000)
        try:
            yield b
        finally:
            b.close()


def _visit(browser, site, user, skip, out):
    "Sign in as `user`; unless the process that built the app is in `skip`, open every page: returns that process."
    t0 = time.monotonic()
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = ctx.new_page()
        page.set_default_timeout(WAIT)
        dialogs, violations, errors = [], [], []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on(
            "console",
            lambda m: (
                violations.append(m.text) if "Content Security Policy" in m.text and "blob:" not in m.text else None
            ),
        )
        page.goto(site["base"] + "/login")
        page.fill("input[name=username]", user)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.goto(site["base"] + "/app")
        page.wait_for_selector(".pitchlab-nav .bk-btn")
        cls = page.locator(".pitchlab-process").first.get_attribute("class")
        pid = int(re.search(r"pitchlab-pid-(\d+)", cls).group(1))
        if pid in skip:
            print(f"  {user}: process {pid} again ({time.monotonic() - t0:.1f} s)", flush=True)
            return pid
        names = [t.strip() for t in page.locator(".pitchlab-nav .bk-btn").all_inner_texts()][:12]
        for name in names:
            page.locator(".pitchlab-nav .bk-btn", has_text=name).first.click(timeout=15_000)
            ready = True
            try:
                page.locator(PAGE_READY.get(name, ".pitchlab-nav")).first.wait_for(timeout=30_000)
            except Exception:  # noqa: BLE001 (recorded: test_every_page_was_built fails on it)
                ready = False
            page.wait_for_timeout(300)  # late updates over the websocket
            out[(user, pid, name)] = dict(
                ran=list(page.evaluate("window.__xss || []")),
                dialogs=list(dialogs),
                markup=page.evaluate(MARKUP_JS),
                text=page.evaluate(TEXT_JS),
                csp=list(violations),
                errors=list(errors),
                ready=ready,
            )
        print(f"  {user}: process {pid}, {len(names)} pages ({time.monotonic() - t0:.1f} s)", flush=True)
        return pid
    finally:
        ctx.close()


@pytest.fixture(scope="module")
def visits(browser, site):
    "Every role signs in and opens every page of its navigation on each server process: per (role, process, page)."
    out = {}
    T0 = time.monotonic()
    for user in ROLES_USERS:
        seen = set()
        for _ in range(TRIES):
            seen.add(_visit(browser, site, user, seen, out))
            if len(seen) == PROCS:
                break
        print(f"{time.monotonic() - T0:.1f}s {user}: processes {sorted(seen)}", flush=True)
    return out


def test_every_role_saw_its_pages_on_both_processes(visits, site):
    pids = set(site["pids"]())
    for user in ROLES_USERS:
        got = {p for u, p, _ in visits if u == user}
        assert got == pids, f"{user}: pages built only by process(es) {sorted(got)} of {sorted(pids)}"
        pages = {n for u, _, n in visits if u == user}
        assert len(pages) >= (2 if user == "ath" else 5), (user, pages)
    assert {"Today", "Injury log", "Team board", "Athlete", "My data"} <= {n for _, _, n in visits}


def test_every_page_was_built(visits):
    "Payloads in every field do not break a page: each page's content appeared, with no script error."
    broken = {k: v["errors"] for k, v in visits.items() if not v["ready"] or v["errors"]}
    assert not broken, broken


def test_no_payload_runs_on_any_page_for_any_role(visits):
    print("CSP refusals seen:", sorted({m[:160] for v in visits.values() for m in v["csp"]})[:10])
    ran = {k: v for k, v in visits.items() if v["ran"] or v["dialogs"]}
    assert not ran, ran


def test_payloads_were_shown_as_text(visits):
    "Control for the escaping test: the payloads did reach the pages, as visible text (so that probe can fail)."
    text = " ".join(v["text"] for v in visits.values())
    shown = {".".join(t.split(".")[:2]) for t in re.findall(r'data-xss="([a-z_.0-9]+)"', text)}
    print("payload fields shown as text:", sorted(shown))
    assert {"athletes.name", "athletes.position", "teams.name", "users.display_name"} <= shown, sorted(shown)
    assert {"injuries.body_region", "pose_results.feedback"} & shown, sorted(shown)


def _markup_cases():
    return [
        pytest.param(
            page,
            marks=pytest.mark.xfail(strict=True, reason=UNESCAPED[page]) if page in UNESCAPED else (),
            id=page,
        )
        for page in PAGE_READY
    ]


@pytest.mark.parametrize("page", _markup_cases())
def test_no_payload_reaches_the_dom_as_markup(visits, page):
    "Escaping, checked apart from the CSP: no element carrying data-xss exists on the page, for any role or process."
    seen = {(u, p): v["markup"] for (u, p, n), v in visits.items() if n == page}
    assert seen, f"no role opened a page called {page!r}"
    bad = {k: m for k, m in seen.items() if m}
    assert not bad, f"{page}: payload rendered as markup for {bad}"


def test_no_payload_reaches_the_dom_on_any_page(visits):
    "The same over every page any role opened, named above or not (e.g. the admin pages)."
    bad = {k: v["markup"] for k, v in visits.items() if v["markup"]}
    assert not bad, bad


def test_an_open_page_ends_when_its_session_is_revoked(browser, site):
    "A page left open when an admin deactivates the account stops showing data: its session check replaces it."
    from pitchlab.dash.users import set_password

    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = ctx.new_page()
        page.set_default_timeout(WAIT)
        page.goto(site["base"] + "/login")
        page.fill("input[name=username]", "tab")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.goto(site["base"] + "/app")
        page.wait_for_selector(".pitchlab-nav .bk-btn")
        page.wait_for_timeout(5000)  # control: two checks of a live session change nothing
        assert page.locator(".pitchlab-session-ended").count() == 0 and page.locator(".pitchlab-nav").count() == 1
        set_password("tab", None, store=site["store"], actor="root")  # what the admin pages' Deactivate does
        page.locator(".pitchlab-session-ended").wait_for(timeout=20_000)
        assert page.locator(".pitchlab-nav").count() == 0 and page.locator(".tabulator-row").count() == 0
        page.get_by_text("Your sign-in has ended").wait_for(timeout=10_000)  # (the text is in the pane's shadow DOM)
    finally:
        ctx.close()


def test_sensitive_reads_name_the_person(visits, site):
    """Issue 17 item 5: every audited read of cycle logs or injuries made while the pages were served names the person
    it was made for (a coach's board reads injury history for availability and the risk rule: audited as the coach),
    never a program ('pitchlab board', 'pitchlab predict')."""
    audit = site["store"].read("audit")
    reads = audit[(audit.action == "read") & audit.entity.isin(["cycle_logs", "injuries"])]
    assert len(reads), "no sensitive read was audited while medical staff and the athlete used the pages"
    assert set(reads.actor) <= {"coach", "med", "ath", "root", "tab"}, reads.actor.value_counts()
    assert {"med", "ath"} <= set(reads.actor), reads.actor.value_counts()
    cycle = reads[reads.entity == "cycle_logs"]
    assert "coach" not in set(cycle.actor), cycle.actor.value_counts()  # a coach never reads cycle logs


def test_file_modes_after_every_page_was_used(visits, site):
    "After every role used every page (store, MLflow, uploads, reports touched): nothing in the home is wider."
    from pitchlab.core import mode_warnings

    assert mode_warnings(site["home"], limit=100) == []


# ---------------------------------------------------------------- HTTPS deployments (a setting)


@pytest.fixture(scope="module")
def https_site(tmp_path_factory):
    "One server process with PITCHLAB_HTTPS=1 (as behind a TLS-terminating reverse proxy) on an empty data home."
    from pitchlab.dash.auth import hash_password
    from pitchlab.store import Store

    home = tmp_path_factory.mktemp("security-https") / "home"
    keep = {k: os.environ.get(k) for k in ("PITCHLAB_HOME", "PANEL_COOKIE_SECRET", "BOKEH_SECRET_KEY")}
    os.environ["PITCHLAB_HOME"] = str(home)
    os.environ.pop("PANEL_COOKIE_SECRET", None)
    os.environ.pop("BOKEH_SECRET_KEY", None)
    proc = None
    try:
        st = Store(f"sqlite:///{home / 'pitchlab.db'}", actor="test").create()
        row = dict(username="root", display_name="Root", role="admin", password_hash=hash_password(PASSWORD))
        st.write("users", pd.DataFrame([row]), source="test")
        proc, port, cmd, env = _serve(home, dict(PITCHLAB_HTTPS="1"), 1, home.parent / "serve.log", apps=("app",))
        yield dict(port=port, base=f"http://127.0.0.1:{port}", pids=lambda: [proc.pid], cmd=cmd)
    finally:
        stop_server(proc, wait=15)
        for k, v in keep.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_https_setting_gives_secure_cookies_hsts_and_https_origins(https_site):
    site = https_site
    pid = site["pids"]()[0]
    c = Pinned(site, pid)
    _, h, page = c.call("GET", "/login", headers={"X-Forwarded-Proto": "https"})
    assert h["Strict-Transport-Security"].startswith("max-age=")
    assert all("Secure" in x and "SameSite=" in x for x in h.get_all("Set-Cookie")), h.get_all("Set-Cookie")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    _, h, _ = c.call("POST", "/login", dict(username="root", password=PASSWORD, csrf_token=token))
    set_cookies = {x.split("=", 1)[0]: x for x in h.get_all("Set-Cookie")}
    for name in ("user", "pitchlab_session"):
        assert "Secure" in set_cookies[name] and "SameSite=Lax" in set_cookies[name], set_cookies[name]
    jar = dict(c.jar)
    tok = re.search(r'"token":"([^"]+)"', c.call("GET", "/app")[2]).group(1)
    assert ws_opens(site, pid, tok, jar, f"https://127.0.0.1:{site['port']}")  # the proxy's https origin
    assert not ws_opens(site, pid, tok, jar, f"http://127.0.0.1:{site['port']}")  # plain http refused
