"""The dashboards with the internet cut off: `pitchlab serve`'s own command line (`pitchlab.cli.serve_command`, two
server processes) on 127.0.0.1, and Debian's Chromium with every request that leaves 127.0.0.1 aborted (Playwright
`route`). Every role signs in and opens each of its pages, on each server process (the page names the process that
built it), and the test fails on any request to another host, any console error, or a team board without its
Tabulator stylesheet (a computed style of the table). Bounded: sign-ins per role and every wait have limits."""

import re
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import pitchlab_server
from playwright.sync_api import TimeoutError as PlaywrightTimeout

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

PASSWORD = "offline-test-password"
PROCS = 2  # server processes, as `pitchlab serve` starts on two cores
TRIES = 40  # sign-ins per role at most while looking for the process not yet seen (the kernel, not us, picks one)
PAGE_READY = {  # nav title -> what shows once the page is built
    "Team board": ".tabulator-row",
    "Athlete": ".pitchlab-drilldown-plots canvas",
    "My data": ".pitchlab-drilldown-plots canvas",
    "What-if": ".pitchlab-day .noUi-handle",
    "Compare": "canvas",
    "Pose": ".pitchlab-pose-upload-box",
    "Models": ".pitchlab-versions",
    "Entry forms": ".pitchlab-forms",
    "Today": ".pitchlab-today-summary",
    "Injury log": ".pitchlab-injury-list",
    "Teams": ".pitchlab-admin-teams",
    "Athletes": ".pitchlab-admin-athletes",
    "Accounts": ".pitchlab-admin-accounts",
}
ROLES = {"coach": "coach", "med": "medical", "ath": "athlete", "root": "admin"}


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
    home = tmp_path_factory.mktemp("dash-offline") / "home"
    home.mkdir()
    _seed(home)
    with pitchlab_server(home, apps=("app", "coach", "medical", "athlete"), procs=PROCS) as server:
        yield server.base


def _table_style(page, tries: int = 10) -> dict | None:
    """Computed styles that only Tabulator's stylesheet gives a table (unstyled, they are 'static' and 'block').
    Read again (at most `tries` times, 0.5 s apart) while a table is being redrawn: a column detached mid-redraw
    reports no style at all, whereas a table without the stylesheet never turns styled. None when the table was the
    previous page's, removed as the new page (without a table) replaced it."""
    got = None
    for _ in range(tries):
        if not page.locator(".tabulator-col:visible").count():
            return got if got == STYLED else None
        table = page.locator(".tabulator").first
        col = page.locator(".tabulator-col:visible").first
        try:
            got = dict(
                position=table.evaluate("e => getComputedStyle(e).position", timeout=5000),
                header=col.evaluate("e => getComputedStyle(e).display", timeout=5000),
            )
        except PlaywrightTimeout:  # detached between the count and the read: look again
            page.wait_for_timeout(500)
            continue
        if got == STYLED:
            break
        page.wait_for_timeout(500)
    return got


STYLED = dict(position="relative", header="inline-flex")


def _visit(browser_context, base, user, skip=()) -> tuple[str, dict, dict]:
    """Sign in as `user`, open each page; the server process that built them, what was seen, the table styles.
    A sign-in that lands on a process in `skip` stops there (its pages were seen already): styles is None."""
    ctx = browser_context(1400, 1000)  # conftest: requests off 127.0.0.1 aborted, console errors recorded
    seen = dict(blocked=ctx.blocked, errors=ctx.errors)
    page = ctx.new_page()
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
        if page.locator(".tabulator-col:visible").count() and (style := _table_style(page)) is not None:
            styles[title] = style
    time.sleep(1.0)  # late requests (fonts, images) of the last page
    ctx.close()
    return pid, seen, styles


@pytest.mark.parametrize("user", list(ROLES))
def test_every_page_offline_on_both_processes(browser_context, served, user):
    pids = {}
    for _ in range(TRIES):
        pid, seen, styles = _visit(browser_context, served, user, skip=set(pids))
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
