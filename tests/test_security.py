"""The attack suite of issue 17, against the real thing: the exact `panel serve` command that `pitchlab serve` builds
(`pitchlab.cli.serve_command`: signed sessions, cookies kept out of session tokens, the security hooks of
`pitchlab.dash.security`) on 127.0.0.1 and a free port, over a fresh data home whose every text field carries a
script-injection payload. Probes use plain HTTP (requests), Tornado's websocket client and Playwright driving Debian's
Chromium. Every loop is bounded in count and time, and the server is killed in teardown."""

import asyncio
import concurrent.futures
import os
import re
import signal
import socket
import statistics
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

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


def _plant(cohort):
    "Every free-text field of every entity gets a payload naming the field."
    c = cohort
    c.teams = c.teams.assign(name=[xss(f"team.name.{i}") for i in range(len(c.teams))], level=xss("team.level"))
    c.athletes = c.athletes.assign(
        name=[xss(f"athlete.name.{i}") for i in range(len(c.athletes))], position=xss("athlete.position")
    )
    c.sessions = c.sessions.assign(session_type=c.sessions.session_type.astype(str))
    c.sessions.loc[c.sessions.index[::7], "session_type"] = xss("session.type")
    c.sessions = c.sessions.assign(entered_by=xss("session.entered_by"))
    c.cycle_logs = c.cycle_logs.assign(symptoms=xss("cycle.symptoms"), entered_by=xss("cycle.entered_by"))
    c.injuries = c.injuries.assign(
        body_region=xss("injury.body_region"), injury_type=xss("injury.type"), entered_by=xss("injury.entered_by")
    )
    if "entered_by" in c.wellness:
        c.wellness = c.wellness.assign(entered_by=xss("wellness.entered_by"))
    return c


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    "`pitchlab serve`'s command on a fresh data home full of payloads: URL, store, home and who is who."
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run .ci/browser-deps.sh (Debian's chromium package)")
    from pitchlab.cli import serve_command
    from pitchlab.dash.auth import hash_password
    from pitchlab.store import Store
    from pitchlab.synth import make_cohort

    old_umask = os.umask(0o022)  # a usual umask: the private modes below must come from pitchlab, not from the test
    home = tmp_path_factory.mktemp("security") / "home"
    logf = home.parent / "serve.log"
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
            rep = store.write(n, getattr(c, n), source="synthetic")
            assert rep.quarantined == 0, (n, rep.rejects.head())
        t1, t2 = c.teams.team_id
        own = c.athletes.query("team_id == @t1 and sex == 'F'").athlete_id.iloc[0]
        h = hash_password(PASSWORD)
        users = [
            dict(username="coach", display_name=xss("user.display_name.coach"), role="coach", team_ids=t1),
            dict(username="med", display_name=xss("user.display_name.med"), role="medical", team_ids=f"{t1},{t2}"),
            dict(username="ath", display_name=xss("user.display_name.ath"), role="athlete", athlete_id=own),
            dict(username="root", display_name=xss("user.display_name.root"), role="admin"),
            dict(username="victim", display_name="Vic", role="coach", team_ids=t1),
            dict(username="replay", display_name="Rey", role="coach", team_ids=t1),
        ]
        store.write("users", pd.DataFrame([{**u, "password_hash": h} for u in users]), source="test")
        port = _free_port()
        cmd, env = serve_command(port, procs=2)  # both server processes: a websocket may reach the other one
        # locks after 3 failures (default 10) so that one burst shows the lock; the delays keep their defaults
        env.update(PITCHLAB_RETRAIN_BACKEND="stub", TF_CPP_MIN_LOG_LEVEL="3", PITCHLAB_LOGIN_LOCK_AFTER="3")
        for k in ("PITCHLAB_DASH_USER", "PANEL_OAUTH_PROVIDER", "PANEL_BASIC_AUTH"):
            env.pop(k, None)
        log = open(logf, "w")
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        import requests

        t0 = time.monotonic()
        while True:  # bounded: 150 s
            try:
                if requests.get(base + "/login", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.monotonic() - t0 > 150:
                pytest.fail("panel serve did not start:\n" + logf.read_text()[-3000:])
            time.sleep(0.5)
        yield dict(
            base=base,
            port=port,
            store=store,
            home=home,
            cmd=cmd,
            env=env,
            cookie_secret=env["PANEL_COOKIE_SECRET"],
            log=logf,
        )
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(15)
        for k, v in keep.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        os.umask(old_umask)


def http_sign_in(site, user, password=PASSWORD):
    "A requests.Session signed in through the form (CSRF token included); returns (session, POST response)."
    import requests

    s = requests.Session()
    page = s.get(site["base"] + "/login", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = s.post(
        site["base"] + "/login",
        data=dict(username=user, password=password, csrf_token=token),
        allow_redirects=False,
        timeout=30,
    )
    return s, r


def app_status(site, cookies) -> tuple:
    "GET /app with exactly these cookies: (status, Location)."
    import requests

    r = requests.get(site["base"] + "/app", cookies=cookies, allow_redirects=False, timeout=30)
    return r.status_code, r.headers.get("Location", "")


def signed(site, name, value, age_days=0.0) -> str:
    "A cookie value signed with the server's cookie secret, `age_days` old."
    from tornado.web import create_signed_value

    t = time.time() - age_days * 86400
    return create_signed_value(site["cookie_secret"], name, value, clock=lambda: t).decode()


# ---------------------------------------------------------------- the command, files, headers, CSRF, error texts


def test_served_with_signed_sessions_and_no_cookies_in_tokens(site):
    cmd = site["cmd"]
    assert cmd[cmd.index("--session-ids") + 1] == "signed" and len(site["env"]["BOKEH_SECRET_KEY"]) >= 32
    s, r = http_sign_in(site, "coach")
    assert r.status_code == 302 and "pitchlab_session" in s.cookies
    html = s.get(site["base"] + "/app", timeout=30).text
    from bokeh.util.token import get_token_payload

    token = re.search(r'"token":"([^"]+)"', html).group(1)
    payload = get_token_payload(token)
    assert not {"user", "id_token", "pitchlab_session"} & set(payload.get("cookies", {}))
    assert "Cookie" not in payload.get("headers", {})


def test_file_modes_in_a_fresh_data_home(site):
    from pitchlab.core import mode_warnings

    http_sign_in(site, "coach")
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


def test_response_headers(site):
    import requests

    s, _ = http_sign_in(site, "coach")
    for path in ("/login", "/app", "/static/js/bokeh.min.js"):
        r = s.get(site["base"] + path, timeout=30)
        assert r.status_code == 200, path
        h = r.headers
        csp = h["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp, path
        script_src = re.search(r"script-src ([^;]*)", csp).group(1)
        assert "'unsafe-inline'" not in script_src, path  # ('unsafe-eval' is needed by BokehJS: nbs/63)
        assert h["X-Frame-Options"] == "DENY" and h["X-Content-Type-Options"] == "nosniff", path
        assert h["Referrer-Policy"] == "same-origin", path
    app_csp = s.get(site["base"] + "/app", timeout=30).headers["Content-Security-Policy"]
    assert len(re.findall(r"'sha256-[A-Za-z0-9+/=]+'", app_csp)) == 2  # exactly the page's own two inline scripts
    r = requests.get(site["base"] + "/login", timeout=10)
    for c in r.headers["Set-Cookie"].split(", "):
        if "=" in c and "expires" not in c.split("=")[0].lower():
            assert "SameSite=" in c, c


def test_sign_in_without_csrf_token_is_refused(site):
    import requests

    r = requests.post(
        site["base"] + "/login", data=dict(username="coach", password=PASSWORD), allow_redirects=False, timeout=30
    )
    assert r.status_code == 302 and r.headers["Location"].endswith("/login?error=csrf")
    assert "user" not in r.cookies and "pitchlab_session" not in r.cookies
    s = requests.Session()
    page = s.get(site["base"] + "/login", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r2 = requests.post(  # the token without its cookie (a cross-site form cannot set the cookie)
        site["base"] + "/login",
        data=dict(username="coach", password=PASSWORD, csrf_token=token),
        allow_redirects=False,
        timeout=30,
    )
    assert r2.headers["Location"].endswith("/login?error=csrf") and "user" not in r2.cookies
    assert "The sign-in form had expired" in requests.get(site["base"] + "/login?error=csrf", timeout=10).text


def test_login_error_texts_are_only_known_sentences(site):
    import requests

    for err in ("<script>alert(1)</script>", "Your account is suspended: call +1 555 0100", "invalid"):
        r = requests.get(site["base"] + "/login", params={"error": err}, timeout=10)
        assert "<script>alert" not in r.text and "suspended" not in r.text and "<script" not in r.text
    assert "Invalid username or password." in requests.get(site["base"] + "/login?error=invalid", timeout=10).text


# ---------------------------------------------------------------- replay, forgery, origins


def test_cookie_replay_after_logout_is_refused(site):
    import requests

    s, _ = http_sign_in(site, "replay")
    jar = requests.utils.dict_from_cookiejar(s.cookies)
    assert app_status(site, jar)[0] == 200
    page = s.get(site["base"] + "/logout", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert app_status(site, jar)[0] == 200  # GET /logout only asks; it signs nobody out
    r = s.post(site["base"] + "/logout", data=dict(csrf_token=token), allow_redirects=False, timeout=30)
    assert r.status_code == 200 and "You are signed out" in r.text
    status, loc = app_status(site, jar)  # the old cookies, replayed
    assert status == 302 and "/login" in loc
    audit = site["store"].read("audit")
    assert ((audit.action == "session_revoked") & (audit.actor == "replay")).any()


def test_logout_without_csrf_token_is_refused(site):
    import requests

    s, _ = http_sign_in(site, "coach")
    r = s.post(site["base"] + "/logout", data={}, allow_redirects=False, timeout=30)
    assert r.status_code == 403 and "expired" in r.text
    assert app_status(site, requests.utils.dict_from_cookiejar(s.cookies))[0] == 200  # still signed in


def test_cookies_older_than_a_day_or_of_a_dead_session_are_refused(site):
    import requests

    from pitchlab.dash.security import new_session

    s, _ = http_sign_in(site, "coach")
    jar = requests.utils.dict_from_cookiejar(s.cookies)
    sid = new_session("coach", store=site["store"])
    fresh = dict(user=signed(site, "user", "coach"), pitchlab_session=signed(site, "pitchlab_session", sid))
    assert app_status(site, fresh)[0] == 200  # control: freshly signed cookies of a live session open the app
    old = dict(user=signed(site, "user", "coach", 1.5), pitchlab_session=signed(site, "pitchlab_session", sid, 1.5))
    assert app_status(site, old)[0] == 302  # 1.5 days old: refused although the session row is live
    assert app_status(site, {**fresh, "pitchlab_session": jar["pitchlab_session"].replace("a", "b", 1)})[0] == 302
    dead = new_session("coach", store=site["store"], days=-1)
    assert app_status(site, {**fresh, "pitchlab_session": signed(site, "pitchlab_session", dead)})[0] == 302
    other = new_session("ath", store=site["store"])  # a live session, but the athlete's
    assert app_status(site, {**fresh, "pitchlab_session": signed(site, "pitchlab_session", other)})[0] == 302
    assert app_status(site, {"user": fresh["user"]})[0] == 302  # the user cookie alone no longer opens anything


async def _ws_opens(site, token, cookies, origin) -> bool:
    "Does Bokeh's websocket accept this token with these cookies from this origin (an ACK arrives within 10 s)?"
    from tornado.httpclient import HTTPClientError, HTTPRequest
    from tornado.websocket import WebSocketClosedError, websocket_connect

    url = f"ws://127.0.0.1:{site['port']}/app/ws"
    req = HTTPRequest(
        url,
        headers={"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()), "Origin": origin},
        request_timeout=10,
        connect_timeout=10,
    )
    try:
        conn = await asyncio.wait_for(websocket_connect(req, subprotocols=["bokeh", token]), 10)
    except (HTTPClientError, WebSocketClosedError, OSError, asyncio.TimeoutError):  # refused at the handshake
        return False
    try:
        msg = await asyncio.wait_for(conn.read_message(), 10)
        return msg is not None and "ACK" in str(msg)
    except asyncio.TimeoutError:
        return False
    finally:
        conn.close()


def _page_token(session, site):
    html = session.get(site["base"] + "/app", timeout=30).text
    return re.search(r'"token":"([^"]+)"', html).group(1)


def test_forged_tokens_and_foreign_origins_are_refused(site):
    import requests
    from bokeh.util.token import generate_jwt_token, get_session_id

    s, _ = http_sign_in(site, "coach")
    jar = requests.utils.dict_from_cookiejar(s.cookies)
    me = f"http://127.0.0.1:{site['port']}"
    assert asyncio.run(_ws_opens(site, _page_token(s, site), jar, me))  # control: the genuine token opens
    token = _page_token(s, site)
    sid = get_session_id(token)
    unsigned = generate_jwt_token(sid, signed=False, extra_payload={"cookies": {"user": jar["user"]}})
    assert not asyncio.run(_ws_opens(site, unsigned, jar, me))
    wrong_key = generate_jwt_token(sid, secret_key=b"not-the-key" * 4, signed=True)
    assert not asyncio.run(_ws_opens(site, wrong_key, jar, me))
    assert not asyncio.run(_ws_opens(site, token[:-2] + ("AA" if token[-2:] != "AA" else "BB"), jar, me))
    a, _ = http_sign_in(site, "ath")  # a second account from another site / another scheme
    ajar = requests.utils.dict_from_cookiejar(a.cookies)
    assert asyncio.run(_ws_opens(site, _page_token(a, site), ajar, me))  # control
    assert not asyncio.run(_ws_opens(site, _page_token(a, site), ajar, "http://evil.example"))
    assert not asyncio.run(_ws_opens(site, _page_token(a, site), ajar, f"https://127.0.0.1:{site['port']}"))
    assert not asyncio.run(_ws_opens(site, _page_token(a, site), {}, me))  # no cookies: who is it? refused


# ---------------------------------------------------------------- brute force and denial


def test_thirty_wrong_passwords_are_throttled_and_others_stay_fast(site):
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

    other = requests.Session()
    other.get(site["base"] + "/login", timeout=10)
    lat = []
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        futs = [pool.submit(attempt, i) for i in range(30)]
        t_end = time.monotonic() + 60
        while not all(f.done() for f in futs) and time.monotonic() < t_end and len(lat) < 400:
            t0 = time.perf_counter()
            assert other.get(site["base"] + "/login", timeout=10).status_code == 200
            lat.append(time.perf_counter() - t0)
            time.sleep(0.02)
        codes = [f.result(timeout=60).rsplit("error=", 1)[-1] for f in futs]
    n_invalid = codes.count("invalid")
    n_refused = codes.count("throttled") + codes.count("locked")
    print(
        f"30 wrong passwords: {n_invalid} checked, {n_refused} refused unchecked; other user's GET /login "
        f"median {statistics.median(lat) * 1000:.1f} ms, max {max(lat) * 1000:.1f} ms over {len(lat)} requests"
    )
    assert n_invalid + n_refused == 30 and n_refused >= 20 and n_invalid <= 8
    assert len(lat) >= 3 and statistics.median(lat) < 0.2
    _, r = http_sign_in(site, "victim")  # even the right password is refused while the account is locked
    assert r.headers["Location"].endswith("error=locked")
    audit = site["store"].read("audit").query("actor == 'victim'")
    assert (audit.action == "login_throttled").sum() >= 20
    th = site["store"].read("auth_throttle").set_index("key")
    assert th.loc["user:victim", "failures"] >= 3


# ---------------------------------------------------------------- stored XSS in a real browser, every page, every role

ROLES_USERS = ["coach", "med", "ath", "root"]
# Pages that would still render a payload as markup (an element with data-xss reaching the DOM, even if the CSP keeps it
# from running), with the reason; empty since every typed value goes through pitchlab.dash.data.esc.
UNESCAPED: dict = {}


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


@pytest.fixture(scope="module")
def visits(browser, site):
    "Every role signs in and opens every page of its navigation; per (role, page): what ran and what reached the DOM."
    out = {}
    T0 = time.monotonic()
    for user in ROLES_USERS:
        ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = ctx.new_page()
        page.set_default_timeout(WAIT)
        dialogs, violations = [], []
        page.on("dialog", lambda d, dialogs=dialogs: (dialogs.append(d.message), d.dismiss()))
        page.on(
            "console",
            lambda m, v=violations: (
                v.append(m.text) if "Content Security Policy" in m.text and "blob:" not in m.text else None
            ),
        )
        page.goto(site["base"] + "/login")
        page.fill("input[name=username]", user)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.goto(site["base"] + "/app")
        page.wait_for_selector(".pitchlab-nav .bk-btn")
        names = [t.strip() for t in page.locator(".pitchlab-nav .bk-btn").all_inner_texts()][:12]
        print(f"{time.monotonic() - T0:.1f}s {user}: {names}", flush=True)
        for name in names:
            page.locator(".pitchlab-nav .bk-btn", has_text=name).first.click(timeout=15_000)
            page.wait_for_timeout(1500)  # bounded settle: the page's data arrives over the websocket
            print(f"{time.monotonic() - T0:.1f}s {user} {name}", flush=True)
            ran = page.evaluate("window.__xss || []")
            markup = page.evaluate(
                """() => { const found = new Set();
                  const walk = (root) => { root.querySelectorAll('[data-xss]').forEach(e => found.add(e.getAttribute('data-xss')));
                    root.querySelectorAll('*').forEach(e => { if (e.shadowRoot) walk(e.shadowRoot); }); };
                  walk(document); return [...found]; }"""
            )
            out[(user, name)] = dict(ran=list(ran), dialogs=list(dialogs), markup=markup, csp=list(violations))
        ctx.close()
    return out


def test_every_role_saw_its_pages(visits):
    pages = {}
    for user, name in visits:
        pages.setdefault(user, []).append(name)
    assert set(pages) == set(ROLES_USERS)
    assert len(pages["coach"]) >= 5 and len(pages["ath"]) >= 2, pages


def test_no_payload_runs_on_any_page_for_any_role(visits):
    print("CSP refusals seen:", sorted({m[:160] for v in visits.values() for m in v["csp"]})[:10])
    ran = {k: v for k, v in visits.items() if v["ran"] or v["dialogs"]}
    assert not ran, ran


def _markup_cases():
    return [
        pytest.param(
            page,
            marks=pytest.mark.xfail(strict=True, reason=UNESCAPED[page]) if page in UNESCAPED else (),
            id=page,
        )
        for page in [
            "Team board",
            "Athlete",
            "My data",
            "What-if",
            "Compare",
            "Pose",
            "Models",
            "Entry forms",
            "Today",
            "Injury log",
        ]
    ]


@pytest.mark.parametrize("page", _markup_cases())
def test_no_payload_reaches_the_dom_as_markup(visits, page):
    "Escaping, checked apart from the CSP: no element carrying data-xss exists on the page, for any role."
    seen = {u: v["markup"] for (u, p), v in visits.items() if p == page}
    assert seen, f"no role opened a page called {page!r}"
    bad = {u: m for u, m in seen.items() if m}
    assert not bad, f"{page}: payload rendered as markup for {bad}"
