"""The real dashboards in a real browser: `pitchlab serve`'s command line with pitchlab's local sign-in on 127.0.0.1 and
a free port, against a temporary PITCHLAB_HOME holding a small synthetic cohort; Playwright drives Debian's Chromium
(/usr/bin/chromium; `.ci/browser-deps.sh` installs it). Each role signs in, opens its pages, changes an athlete, moves
a what-if slider, presses Retrain, and we check what a person sees. Screenshots of every page go to docs/screenshots/.
Everything is bounded: start-up and every wait have timeouts, and the server is killed in teardown."""

import re
import time
from pathlib import Path

import pandas as pd
import pytest

from pitchlab.board import RULE_LABEL
from conftest import open_context, pitchlab_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "docs" / "screenshots"
PASSWORD = "browser-test-password"
WAIT = 45_000  # ms: the longest any element may take to appear


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    "A served dashboard on a temporary data home: its URL, store and who is who."
    from pitchlab.dash.auth import hash_password
    from pitchlab.store import Store
    from pitchlab.synth import make_cohort

    home = tmp_path_factory.mktemp("dash-browser") / "home"
    home.mkdir()
    store = Store(f"sqlite:///{home / 'pitchlab.db'}", actor="test").create()
    c = make_cohort(n_teams=2, athletes_per_team=6, seasons=1, seed=41)
    for n in ("teams", "athletes", "sessions", "pitches", "wellness", "cycle_logs", "injuries"):
        store.write(n, getattr(c, n), source="synthetic")
    t1, t2 = c.teams.team_id
    team1 = c.athletes.query("team_id == @t1")
    own = team1.query("sex == 'F'").athlete_id.iloc[0]
    h = hash_password(PASSWORD)
    store.write(
        "users",
        pd.DataFrame(
            [
                dict(username="coach", display_name="Cora Coach", role="coach", team_ids=t1, password_hash=h),
                dict(username="med", display_name="Mo Medic", role="medical", team_ids=f"{t1},{t2}", password_hash=h),
                dict(username="ath", display_name="Ann Athlete", role="athlete", athlete_id=own, password_hash=h),
                dict(username="root", display_name="Ada Admin", role="admin", password_hash=h),
            ]
        ),
        source="test",
    )
    with pitchlab_server(home, apps=("app", "coach", "medical", "athlete")) as server:
        yield dict(base=server.base, store=store, cohort=c, t1=t1, t2=t2, own=own, team1=team1, home=home)


def sign_in(browser, site, user, path="/app", password=PASSWORD):
    ctx = open_context(browser, 1400, 1000)  # conftest: requests off 127.0.0.1 aborted
    page = ctx.new_page()
    page.set_default_timeout(WAIT)
    page.goto(site["base"] + path)
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    return page


def _shown_name(site, athlete_id, roster=None):
    "The name a picker shows for an athlete: pitchlab.people.display_names over the roster the person sees."
    from pitchlab.people import display_names

    return display_names(site["cohort"].athletes if roster is None else roster, site["cohort"].teams)[athlete_id]


def tab(page, name):
    page.locator(".pitchlab-nav .bk-btn", has_text=name).first.click()


def nav(page):
    page.wait_for_selector(".pitchlab-nav .bk-btn")
    return [t.strip() for t in page.locator(".pitchlab-nav .bk-btn").all_inner_texts()]


def shoot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    time.sleep(0.5)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_wrong_password_stays_on_the_login_page(browser, site):
    page = sign_in(browser, site, "coach", password="not-the-password")
    page.wait_for_url(re.compile(r".*/login\?.*error=.*"))
    assert "Invalid username or password" in page.content()
    assert page.locator(".pitchlab-nav").count() == 0
    page.context.close()
    assert site["store"].read("audit").query("action == 'login_failed'").actor.iloc[-1] == "coach"


def test_coach(browser, site, layout_problems):
    from playwright.sync_api import expect

    page = sign_in(browser, site, "coach")
    assert nav(page) == ["Team board", "Athlete", "What-if", "Compare", "Pose", "Models", "Entry forms"]
    expect(page.locator(".tabulator-row")).to_have_count(len(site["team1"]))  # only the coach's own team
    text = page.locator(".pitchlab-board").inner_text()
    for n in site["cohort"].athletes.query("team_id == @site['t2']").name:
        assert n not in text
    expect(page.get_by_text(f"risk: {RULE_LABEL}").first).to_be_visible()  # pitchlab.board.RULE_LABEL
    shoot(page, "coach-board")

    tab(page, "Athlete")
    page.wait_for_selector(".pitchlab-drilldown-plots canvas")
    expect(page.get_by_text("injury and cycle detail: medical staff and the athlete only")).to_be_visible()
    target = site["team1"].iloc[2]
    label = _shown_name(site, target.athlete_id, site["team1"])
    sel = page.locator("select", has=page.locator("option", has_text=label)).first
    options = sel.locator("option").all_inner_texts()
    assert len(options) == len(site["team1"]) and not any(a in o for o in options for a in site["team1"].athlete_id)
    sel.select_option(label=label)  # the picker reads names (the board's disambiguation), never ids
    expect(page.locator("h3", has_text=target["name"]).last).to_be_visible()  # the heading names the athlete
    page.wait_for_selector(".pitchlab-drilldown-plots canvas")
    shoot(page, "coach-athlete")

    tab(page, "What-if")
    page.wait_for_selector(".pitchlab-day .noUi-handle")
    title = page.locator(".pitchlab-day .bk-slider-title").first.inner_text()  # the sliders move the sport's unit
    who = site["cohort"].athletes.set_index("athlete_id").loc[target.athlete_id]
    unit = "balls" if "balls" in title else "pitches" if "(pitches)" in title else "AU"
    want = {"bowler": "balls", "pitcher": "pitches", "batter": "AU", "position player": "AU"}.get(who.role, unit)
    assert unit == want, (title, who.role)  # a bowler's sliders move balls (titled as overs), a pitcher's pitches
    pattern = {"AU": r"planned load ([\d,]+) AU", "balls": r"\((\d+) balls\)", "pitches": r"; (\d+) pitches"}[unit]
    summary = page.get_by_text(re.compile(pattern))
    total = lambda: int(re.search(pattern, summary.inner_text()).group(1).replace(",", ""))
    day = page.locator(".pitchlab-day .bk-slider-value").first
    value = lambda: int(day.inner_text().replace(",", ""))
    t0, v0 = total(), value()
    handle = page.locator(".pitchlab-day .noUi-handle").first
    handle.focus()
    for _ in range(30):
        handle.press("ArrowRight")  # +10 AU, or one ball or pitch, a press
    time.sleep(1.0)
    v1 = value()
    assert v1 == v0 + 30 * (10 if unit == "AU" else 1)
    deadline = time.monotonic() + WAIT / 1000
    while total() != t0 - v0 + v1 and time.monotonic() < deadline:
        time.sleep(0.3)
    assert total() == t0 - v0 + v1  # the plan follows the slider
    time.sleep(1.0)
    assert value() == v1 and total() == t0 - v0 + v1  # and nothing undoes the move afterwards
    shoot(page, "coach-whatif")

    for name, shot, wait in (
        ("Compare", "coach-compare", "canvas"),
        ("Pose", "coach-pose", ".bk-btn"),
        ("Models", "coach-models", ".pitchlab-versions"),
        ("Entry forms", "coach-forms", ".pitchlab-forms"),
    ):
        tab(page, name)
        page.wait_for_selector(wait)
        shoot(page, shot)
    tab(page, "Models")
    assert page.locator("button", has_text="Retrain").first.is_disabled()  # coaches see versions, cannot retrain
    page.set_viewport_size({"width": 390, "height": 844})  # the same session on a phone: nothing clipped or overlapping
    for name, wait in (("Team board", ".pitchlab-card"), ("What-if", ".pitchlab-day .noUi-handle")):
        tab(page, name)
        page.wait_for_selector(wait)
        time.sleep(1.0)
        n, bad = layout_problems(page, 390)
        assert n > 10 and bad == [], (name, bad)
    shoot(page, "coach-whatif-390")
    page.context.close()
    cyc = site["store"].read("audit").query("entity == 'cycle_logs'")
    assert "coach" not in set(cyc.actor)


def test_medical_sees_the_cycle_overlay_and_it_is_audited(browser, site):
    from playwright.sync_api import expect

    before = len(site["store"].read("audit"))
    page = sign_in(browser, site, "med")
    page.wait_for_selector(".tabulator-row")
    expect(page.locator(".tabulator-row")).to_have_count(len(site["cohort"].athletes))  # both teams
    tab(page, "Athlete")
    page.wait_for_selector(".pitchlab-drilldown-plots canvas")
    label = _shown_name(site, site["own"])
    sel = page.locator("select", has=page.locator("option", has_text=label)).first
    sel.select_option(label=label)
    expect(page.get_by_text(re.compile("cycle phase shaded")).first).to_be_visible()
    page.wait_for_selector(".pitchlab-drilldown-plots canvas")
    shoot(page, "medical-athlete")
    page.context.close()
    audit = site["store"].read("audit").iloc[before:]
    mine = audit.query("entity == 'cycle_logs' and athlete_id == @site['own']")
    assert len(mine) >= 1 and set(mine.actor) == {"med"}


def test_athlete_sees_only_their_own(browser, site):
    from playwright.sync_api import expect

    page = sign_in(browser, site, "ath")
    page.wait_for_selector(".pitchlab-today-summary")  # athletes land on their Today page
    assert nav(page) == ["Today", "My data", "Pose", "Entry forms"]
    tab(page, "My data")
    page.wait_for_selector(".pitchlab-drilldown-plots canvas")
    team1 = site["team1"]
    label = _shown_name(site, site["own"], team1[team1.athlete_id == site["own"]])
    opts = page.locator("select", has=page.locator("option", has_text=label)).first.locator("option").all_inner_texts()
    assert opts == [label]  # only themselves, by name
    expect(page.get_by_text(re.compile("cycle phase shaded")).first).to_be_visible()
    assert page.locator(".tabulator-row").count() == 0
    shoot(page, "athlete-mydata")
    tab(page, "Entry forms")
    page.wait_for_selector(".pitchlab-forms")
    expect(page.locator(".bk-tab", has_text="Cycle log")).to_be_visible()
    page.locator("button", has_text="Save session").first.click()
    expect(page.get_by_text(re.compile(r"session saved for"))).to_be_visible()
    shoot(page, "athlete-forms")
    page.goto(site["base"] + "/coach")
    expect(page.get_by_text(re.compile("this dashboard is for coach, admin"))).to_be_visible()
    page.context.close()
    s = site["store"].read("sessions", [site["own"]]).query("source == 'form'")
    assert list(s.entered_by) == ["ath"] and s.load.iloc[0] == 300.0  # 60 min x RPE 5


def test_admin_sees_the_registry_and_may_retrain(browser, site):
    "The served app uses the real registry and pipeline (no stand-in); live retraining progress is covered by the component tests."
    page = sign_in(browser, site, "root")
    page.wait_for_selector(".tabulator-row")
    tab(page, "Models")
    page.wait_for_selector(".pitchlab-versions")
    assert page.locator("button", has_text="Retrain").first.is_enabled()
    assert page.locator("button", has_text="Promote").first.is_enabled()
    shoot(page, "admin-models")
    page.context.close()
