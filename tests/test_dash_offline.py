"""The dashboards with the internet cut off: `pitchlab serve`'s own command line (`pitchlab.cli.serve_command`, two
server processes) on 127.0.0.1, and Debian's Chromium with every request that leaves 127.0.0.1 aborted (Playwright
`route`). Every role signs in and opens each of its pages, on each server process (the page names the process that
built it), and the test fails on any request to another host, any console error, or a team board without its
Tabulator stylesheet (a computed style of the table). Bounded: sign-ins per role and every wait have limits."""

import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from playwright.sync_api import expect, sync_playwright

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
ARGS += ["--disable-sync", "--no-first-run"]
PASSWORD = "offline-test-password"
WAIT = 60_000  # ms: the longest any element may take to appear (a busy 2-core machine)
PROCS = 2  # server processes, as `pitchlab serve` starts on two cores
TRIES = 40  # sign-ins per role at most while looking for the process not yet seen (the kernel, not us, picks one)
LOCAL = re.compile(r"^(https?|wss?)://127\.0\.0\.1(:\d+)?/|^(data|blob|about):")
PAGE_READY = {  # nav title -> what shows once the page is built
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
    "Teams": ".pitchlab-admin-teams",
    "Athletes": ".pitchlab-admin-athletes",
    "Accounts": ".pitchlab-admin-accounts",
}
ROLES = {"coach": "coach", "med": "medical", "ath": "athlete", "root": "admin"}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _seed(home: Path):
    "A small cohort (two teams) and one account per role."
    from pitchlab.dash.auth import hash_password
    from pitchlab.store import Store
    from pitchlab.synth import make_cohort

    store = Store(f"sqlite:///{home / 'pitchlab.db'}", actor="test").create()
    c = make_cohort(n_teams=2, athletes_per_team=6, seasons=1, seed=43)
    for n in ("teams", "athletes", "sessions", "pitches", "wellness", "cycle_logs", "injuries"):
        store.write(n, getattr(c, n), source="synthetic")
    t1, t2 = c.teams.team_id
    own = c.athletes.query("team_id == @t1 and sex == 'F'").athlete_id.iloc[0]
    h = hash_password(PASSWORD)
    rows = [
        dict(username="coach", display_name="Cora Coach", role="coach", team_ids=t1, password_hash=h),
        dict(username="med", display_name="Mo Medic", role="medical", team_ids=f"{t1},{t2}", password_hash=h),
        dict(username="ath", display_name="Ann Athlete", role="athlete", athlete_id=own, password_hash=h),
        dict(username="root", display_name="Ada Admin", role="admin", password_hash=h),
    ]
    store.write("users", pd.DataFrame(rows), source="test")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    "`pitchlab serve`'s command line with two processes on a temporary data home: the base URL."
    from pitchlab.cli import serve_command

    home = tmp_path_factory.mktemp("dash-offline") / "home"
    home.mkdir()
    _seed(home)
    port = _free_port()
    old = {k: os.environ.get(k) for k in ("PITCHLAB_HOME", "PITCHLAB_DB_URL", "MLFLOW_TRACKING_URI")}
    os.environ["PITCHLAB_HOME"] = str(home)
    os.environ.pop("PITCHLAB_DB_URL", None)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    try:
        cmd, env = serve_command(port=port, address="127.0.0.1", procs=PROCS)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    env = dict(env, PITCHLAB_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("PITCHLAB_RETRAIN_BACKEND", None)
    log = open(home / "serve.log", "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        t0 = time.monotonic()
        while True:
            try:
                if urllib.request.urlopen(base + "/login", timeout=5).status == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() - t0 > 180:
                pytest.fail("pitchlab serve did not start:\n" + (home / "serve.log").read_text()[-3000:])
            time.sleep(0.5)
        yield base
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(20)
        log.close()


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run .ci/browser-deps.sh (Debian's chromium package)")
    expect.set_options(timeout=WAIT)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=60_000)
        try:
            yield b
        finally:
            b.close()


def _offline_context(browser):
    "A browser context where every request off 127.0.0.1 is aborted and recorded, with console errors recorded."
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    seen = dict(blocked=[], errors=[])

    def route(r):
        if LOCAL.match(r.request.url):
            return r.continue_()
        seen["blocked"].append(r.request.url)
        return r.abort()

    ctx.route("**/*", route)
    return ctx, seen


def _table_style(page, tries: int = 10) -> dict:
    """Computed styles that only Tabulator's stylesheet gives a table (unstyled, they are 'static' and 'block').
    Read again (at most `tries` times, 0.5 s apart) while a table is being redrawn: a column detached mid-redraw
    reports no style at all, whereas a table without the stylesheet never turns styled."""
    for _ in range(tries):
        table = page.locator(".tabulator").first
        col = page.locator(".tabulator-col:visible").first
        got = dict(
            position=table.evaluate("e => getComputedStyle(e).position"),
            header=col.evaluate("e => getComputedStyle(e).display"),
        )
        if got == STYLED:
            break
        page.wait_for_timeout(500)
    return got


STYLED = dict(position="relative", header="inline-flex")


def _visit(browser, base, user, skip=()) -> tuple[str, dict, dict]:
    """Sign in as `user`, open each page; the server process that built them, what was seen, the table styles.
    A sign-in that lands on a process in `skip` stops there (its pages were seen already): styles is None."""
    ctx, seen = _offline_context(browser)
    page = ctx.new_page()
    page.set_default_timeout(WAIT)
    page.on("console", lambda m: seen["errors"].append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.goto(base + "/app")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector(".pitchlab-nav .bk-btn")
    pid = re.search(r"pitchlab-pid-(\d+)", page.locator(".pitchlab-process").first.get_attribute("class")).group(1)
    styles = {}
    if pid in skip:
        ctx.close()
        return pid, seen, None
    for title in [t.strip() for t in page.locator(".pitchlab-nav .bk-btn").all_inner_texts()]:
        page.locator(".pitchlab-nav .bk-btn", has_text=title).first.click()
        page.locator(PAGE_READY[title]).first.wait_for()
        if page.locator(".tabulator-col:visible").count():
            styles[title] = _table_style(page)
    time.sleep(1.0)  # late requests (fonts, images) of the last page
    ctx.close()
    return pid, seen, styles


@pytest.mark.parametrize("user", list(ROLES))
def test_every_page_offline_on_both_processes(browser, served, user):
    pids = {}
    for _ in range(TRIES):
        pid, seen, styles = _visit(browser, served, user, skip=set(pids))
        assert seen["blocked"] == [], f"{ROLES[user]} (process {pid}) asked another host for {seen['blocked']}"
        assert seen["errors"] == [], f"{ROLES[user]} (process {pid}) console errors: {seen['errors']}"
        if styles is None:  # a process already seen: only its sign-in page was checked
            continue
        for title, s in styles.items():
            assert s == STYLED, f"{ROLES[user]} {title} (process {pid}): table unstyled: {s}"
        if user != "ath":
            assert "Team board" in styles, f"{ROLES[user]}: no styled board table (process {pid})"
        pids[pid] = styles
        if len(pids) == PROCS:
            break
    assert len(pids) == PROCS, f"{ROLES[user]}: {TRIES} sign-ins all reached process(es) {sorted(pids)}"
