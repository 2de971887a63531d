"""The coach's pages (board, what-if, athlete, compare) in a real browser (Debian Chromium via Playwright, loopback
only) at 390x844 and 1400x900: no horizontal overflow, nothing past the viewport's edges, no overlapping boxes; the
board as cards on a phone; who is out and who is flagged and why on the first screen at 1400 px. Screenshots go to
docs/screenshots/ (ux-<page>-<width>.png). The same four pages are opened again inside the signed-in app (`/app`, the
real `panel serve dashboards/app.py` with pitchlab's sign-in) at both widths, with its navigation and header
(coach-app-<page>-<width>.png)."""

import os
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import open_context, panel_pages, pitchlab_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "docs" / "screenshots"
WAIT = 45_000  # ms: the longest any element may take to appear
PASSWORD = "pages-browser-password"
SIZES = [(390, 844), (1400, 900)]
READY = {
    "board": ".pitchlab-board .tabulator-row, .pitchlab-card",
    "whatif": ".pitchlab-day .noUi-handle",
    "athlete": ".pitchlab-drilldown-plots canvas",
    "compare": "canvas",
}  # what shows once each page has drawn


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    "The four pages served on loopback for a coach of both teams, one athlete logged out today by medical staff."
    from pitchlab.board import RuleRisk
    from pitchlab.dash.auth import DataAccess, User, hash_password
    from pitchlab.dash.data import DataStore
    from pitchlab.dash.pages.athlete import AthleteDrillDown
    from pitchlab.dash.pages.board import TeamRiskBoard
    from pitchlab.dash.pages.compare import Compare
    from pitchlab.dash.pages.whatif import WhatIfPlanner
    from pitchlab.injury_log import add_injury
    from pitchlab.models.baselines import ACWRRule
    from pitchlab.store import Store
    from pitchlab.synth import make_cohort

    home = tmp_path_factory.mktemp("pages")
    store = Store(f"sqlite:///{home / 'pitchlab.db'}", actor="test").create()
    c = make_cohort(n_teams=2, athletes_per_team=8, seasons=1, seed=41)
    for n in ("teams", "athletes", "sessions", "pitches", "wellness", "injuries"):
        store.write(n, getattr(c, n), source="synthetic")
    spiked, out = c.athletes.athlete_id.iloc[0], c.athletes.athlete_id.iloc[-1]
    end = c.sessions.date.max()
    spike = pd.DataFrame(
        {
            "athlete_id": spiked,
            "date": pd.date_range(end - pd.Timedelta(days=5), end),
            "sport": c.athletes.sport.iloc[0],
            "session_type": "conditioning",
            "duration_min": 120.0,
            "rpe": 9.0,
            "load": 1080.0,
            "source": "test",
            "source_id": [f"spike-{i}" for i in range(6)],
        }
    )
    store.write("sessions", spike, source="test")  # a week of heavy extra sessions: this athlete's ACWR spikes
    entry = dict(
        kind="injury",
        body_region="thigh",
        tissue="muscle/tendon",
        injury_type="strain",
        rtp_stage="out",
        onset_date=pd.Timestamp.today().normalize(),
    )
    add_injury(store, out, entry, key="browser-out-1", actor="med")
    coach = User("cora", "coach", "Cora Coach", team_ids=",".join(c.teams.team_id))
    store.write(
        "users",
        pd.DataFrame(
            [
                dict(
                    username="cora",
                    display_name="Cora Coach",
                    role="coach",
                    team_ids=",".join(c.teams.team_id),
                    password_hash=hash_password(PASSWORD),
                )
            ]
        ),
        source="test",
    )  # the same coach signs in to the app (test_coach_pages_inside_the_signed_in_app)
    # the ACWR rule with stated band rates (a squad this small has too few injuries to fit them): an ACWR above 2 is 'high'
    rule = ACWRRule(edges="warren_hulin", column="acwr_ewma").stated(
        (0.02, 0.0332, 0.09), "a 2% week x RR 1.66 (Warren 2018) and 4.5 (Hulin 2014)"
    )
    data = lambda: DataStore(access=DataAccess(store, coach), risk_provider=RuleRisk("acwr_ewma", rule))
    apps = {
        "board": lambda: TeamRiskBoard(data=data()),
        "whatif": lambda: WhatIfPlanner(data=data()),
        "athlete": lambda: AthleteDrillDown(data=data()),
        "compare": lambda: Compare(data=data()),
    }
    old_uri = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"  # this home's (empty) registry
    try:
        with panel_pages(apps, home) as server:
            yield dict(base=server.base, store=store, c=c, out=out, spiked=spiked, coach=coach, home=home)
    finally:
        if old_uri is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = old_uri


def _open(browser, served, name, width, height):
    page = open_context(browser, width, height).new_page()  # conftest: requests off 127.0.0.1 aborted
    page.set_default_timeout(WAIT)
    page.goto(f"{served['base']}/{name}", timeout=2 * WAIT)  # a busy machine: the first load builds the page
    page.locator(READY[name]).first.wait_for(state="visible", timeout=WAIT)
    time.sleep(1.0)  # let the charts finish their layout
    return page


@pytest.mark.parametrize("width,height", SIZES)
@pytest.mark.parametrize("name", list(READY))
def test_page_fits_without_overflow_or_overlap(browser, served, layout_problems, name, width, height):
    page = _open(browser, served, name, width, height)
    try:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"ux-{name}-{width}.png"), full_page=True)
        n, bad = layout_problems(page, width)
        assert n > 5 and bad == [], bad
    finally:
        page.close()


def _name(served, aid):
    return served["c"].athletes.set_index("athlete_id").at[aid, "name"]


def test_coach_sees_who_is_out_and_who_is_flagged_and_why_on_the_first_screen(browser, served):
    page = _open(browser, served, "board", 1400, 900)
    try:
        rows = page.locator(".pitchlab-board .tabulator-row")
        out = rows.filter(has_text=_name(served, served["out"])).first
        flagged = rows.filter(has_text=_name(served, served["spiked"])).first
        assert "Out" in out.inner_text()
        text = flagged.inner_text()
        assert "high" in text or "elevated" in text
        assert "ACWR" in text  # the reason, beside the tier
        for row in (out, flagged):
            box = row.bounding_box()
            assert box["y"] >= 0 and box["y"] + box["height"] <= 900  # on the first screen, no scrolling
        assert page.locator(".tabulator-col", has_text="Fitness (CTL)").count() == 0  # a compact board first
        page.get_by_role("button", name="More columns").click()  # then every column
        page.locator(".tabulator-col", has_text="Fitness (CTL)").first.hover()
        page.get_by_text("42-day weighted average").first.wait_for(timeout=WAIT)  # the header explains itself
        page.locator(".pitchlab-glossary-card summary").first.click()
        page.locator(".pitchlab-glossary dd", has_text="mean daily load divided by its spread").first.wait_for(
            timeout=WAIT
        )  # and so does the glossary, of the columns shown
    finally:
        page.close()


def test_board_is_a_card_list_on_a_phone(browser, served):
    page = _open(browser, served, "board", 390, 844)
    try:
        cards = page.locator(".pitchlab-card")
        assert cards.count() == len(served["c"].athletes)
        assert not page.locator(".pitchlab-board").first.is_visible()
        first = cards.first.inner_text()
        assert _name(served, served["out"]) in first and "Out" in first  # out first
        spiked = cards.filter(has_text=_name(served, served["spiked"])).first.inner_text()
        assert "Why:" in spiked and "ACWR" in spiked
        a = served["c"].athletes
        spiked = a.set_index("athlete_id").loc[served["spiked"]]
        pos = next(p for p in a.position.dropna().unique() if p not in (spiked.position, spiked.role))
        page.locator("select").nth(2).select_option("high")  # the risk filter
        page.locator("select").nth(1).select_option(pos)  # and a position nobody high plays
        page.get_by_text("No athlete matches these filters").wait_for(timeout=WAIT)
        assert page.locator(".pitchlab-card").count() == 0
    finally:
        page.close()


def test_whatif_on_a_phone_overs_budget_horizon_and_suggestion(browser, served, layout_problems):
    "The spiked bowler's plan: a breach said in words, overs refused and taken, edits kept over a longer horizon, Suggest with reasons."
    page = _open(browser, served, "whatif", 390, 844)
    try:
        budget = page.locator(".noUi-handle").nth(1)
        budget.focus()
        for _ in range(4):
            budget.press("ArrowLeft")  # -0.5% a press: 3%, under this week's 3.3%
        page.get_by_text("Risk budget: 3.0%").first.wait_for(timeout=WAIT)
        page.get_by_text("against a budget of 3%").first.wait_for(timeout=WAIT)  # a breach, in words
        assert page.get_by_text("Over budget or breaks a rule").first.is_visible()
        cell = lambda row: (
            page.locator(".pitchlab-plan .tabulator-row").nth(row).locator(".tabulator-cell[tabulator-field=overs]")
        )

        def type_overs(row, text):
            cell(row).click()
            box = cell(row).locator("input")
            box.fill(text)
            box.press("Enter")

        type_overs(0, "4.7")
        page.get_by_text("not an over count").first.wait_for(timeout=WAIT)  # refused beside the table
        type_overs(0, "4.3")
        page.get_by_text("not an over count").first.wait_for(state="detached", timeout=WAIT)  # taken
        handle = page.locator(".noUi-handle").first  # Days planned
        handle.focus()
        for _ in range(7):
            handle.press("ArrowRight")
        rows = page.locator(".pitchlab-plan .tabulator-row")
        deadline = time.monotonic() + 30
        while rows.count() != 14 and time.monotonic() < deadline:
            time.sleep(0.3)
        assert rows.count() == 14 and cell(0).inner_text().strip() == "4.3"  # the edit survived the longer horizon
        suggest = page.get_by_role("button", name="Suggest the largest plan within budget")
        budget.focus()
        for _ in range(34):
            budget.press("ArrowRight")  # +0.5% a press: 20%
        page.get_by_text("Risk budget: 20.0%").first.wait_for(timeout=WAIT)
        page.wait_for_timeout(1000)
        suggest.click()
        page.get_by_text("Suggested plan within a risk budget of 20.0%").first.wait_for(timeout=WAIT)
        assert page.locator(".pitchlab-suggestion li").count() == 14  # one reason per day
        page.wait_for_timeout(500)
        n, bad = layout_problems(page, 390)
        assert bad == [], bad
        page.screenshot(path=str(SHOTS / "ux-whatif-390-suggested.png"), full_page=True)
    finally:
        page.close()


APP_PAGES = {"board": "Team board", "whatif": "What-if", "athlete": "Athlete", "compare": "Compare"}  # app.PAGE_TITLES
APP_READY = {**READY, "compare": ".pitchlab-compare-table"}  # in the app, a selector only that page has


@pytest.fixture(scope="module")
def app_site(served):
    "`pitchlab serve`'s command line (the app, pitchlab's local sign-in) on the same data home, on loopback."
    with pitchlab_server(served["home"], apps=("app",)) as server:
        yield server.base


@pytest.mark.parametrize("width,height", SIZES)
def test_coach_pages_inside_the_signed_in_app(browser, app_site, layout_problems, width, height):
    "Each coach page inside /app: navigation wrapping, header and Sign out on screen, no overflow or overlap."
    ctx = open_context(browser, width, height)  # conftest: requests off 127.0.0.1 aborted
    page = ctx.new_page()
    page.set_default_timeout(WAIT)
    try:
        page.goto(app_site + "/app", timeout=2 * WAIT)
        page.fill("input[name=username]", "cora")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.locator(READY["board"]).first.wait_for(state="visible", timeout=2 * WAIT)
        buttons = page.locator(".pitchlab-nav .bk-btn")
        titles = [t.strip() for t in buttons.all_inner_texts()]
        assert set(APP_PAGES.values()) <= set(titles), titles
        problems = {}
        for name, title in APP_PAGES.items():
            buttons.filter(has_text=title).first.click()
            page.locator(APP_READY[name]).first.wait_for(state="visible", timeout=WAIT)
            page.locator(READY[name]).first.wait_for(state="visible", timeout=WAIT)
            time.sleep(1.0)  # let the charts finish their layout
            page.screenshot(path=str(SHOTS / f"coach-app-{name}-{width}.png"), full_page=True)
            n, bad = layout_problems(page, width)
            assert n > 5, (name, n)
            if bad:
                problems[name] = bad
            for box in [b.bounding_box() for b in buttons.all()] + [page.get_by_text("Sign out").first.bounding_box()]:
                assert box and 0 <= box["x"] and box["x"] + box["width"] <= width + 1, (
                    name,
                    box,
                )  # wrapped, not clipped
            if name == "athlete":  # the session-quality section: no model in this registry, so a sentence, no number
                q = page.locator(".pitchlab-quality").first
                q.get_by_text("No session-quality model is trained yet").wait_for(timeout=WAIT)
                assert "/5" not in q.inner_text()
        assert problems == {}, problems
    finally:
        ctx.close()
