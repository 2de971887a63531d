"""The athlete's Today page in a real browser (Debian Chromium via Playwright, loopback only) at 390x844 and 1400 px:
no horizontal overflow, no overlapping boxes, refusals beside the fields, one session per tap, logged in under 30 s."""

import os
import time
from pathlib import Path

import pytest
from conftest import panel_pages

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "docs" / "screenshots"
WAIT = 45_000


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from pitchlab.dash.auth import DataAccess, User
    from pitchlab.dash.data import DataStore
    from pitchlab.dash.pages.injuries import InjuryLogPage
    from pitchlab.dash.pages.today import TodayPage
    from pitchlab.store import Store
    from pitchlab.synth import make_cohort

    home = tmp_path_factory.mktemp("today")
    store = Store(f"sqlite:///{home / 'pitchlab.db'}", actor="test").create()
    c = make_cohort(n_teams=1, athletes_per_team=4, seasons=1, seed=7)
    for n in ("teams", "athletes", "sessions", "wellness"):
        store.write(n, getattr(c, n), source="synthetic")
    me = c.athletes.iloc[0]
    user = User("ath", "athlete", athlete_id=me.athlete_id, display_name=me["name"])
    medic = User("med", "medical", team_ids=me.team_id, display_name="Mo Medic")
    apps = {
        "today": lambda: TodayPage(data=DataStore(access=DataAccess(store, user))),
        "injuries": lambda: InjuryLogPage(data=DataStore(access=DataAccess(store, medic))),
    }
    old_uri = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"  # this home's (empty) registry
    try:
        with panel_pages(apps, home) as server:
            yield dict(url=server.base + "/today", base=server.base, store=store, me=me, c=c)
    finally:
        if old_uri is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = old_uri


def _open(browser_context, served, width, height):
    page = browser_context(width, height).new_page()
    page.goto(served["url"], timeout=WAIT)
    page.get_by_text("What to tell your coach").wait_for(timeout=WAIT)
    return page


@pytest.mark.parametrize("width,height", [(390, 844), (1400, 900)])
def test_today_fits_without_overflow_or_overlap(browser_context, served, layout_problems, width, height):
    page = _open(browser_context, served, width, height)
    try:
        for tab in ("Session", "Wellness"):
            page.locator(".bk-tab", has_text=tab).click()
            page.wait_for_timeout(500)
            n, bad = layout_problems(page, width)  # conftest: overflow, clipped and overlapping boxes
            assert bad == [] and n > 15, f"{tab} tab at {width} px: {bad} ({n} boxes)"
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"today-{width}-wellness.png"), full_page=True)
        page.locator(".bk-tab", has_text="Session").click()
        page.screenshot(path=str(SHOTS / f"today-{width}.png"), full_page=True)
    finally:
        page.close()


def test_athlete_logs_a_session_on_a_phone_once(browser_context, served):
    st, me = served["store"], served["me"]
    before = len(st.read("sessions", me.athlete_id))
    page = _open(browser_context, served, 390, 844)
    try:
        t0 = time.monotonic()
        page.get_by_role("button", name="Save session").click()
        page.get_by_text("choose one").first.wait_for(timeout=WAIT)
        assert len(st.read("sessions", me.athlete_id)) == before  # an untouched form stores nothing
        page.locator("select", has=page.locator("option", has_text="conditioning")).first.select_option("training")
        page.get_by_placeholder("1-1440 min").fill("60")
        page.get_by_placeholder("0-10").fill("6")
        page.get_by_role("button", name="Save session").click()
        page.get_by_text(f"Saved for {me['name']}").wait_for(timeout=WAIT)
        elapsed = time.monotonic() - t0
        page.get_by_role("button", name="Save session").click()  # a second tap: the form is empty again
        page.get_by_text("choose one").first.wait_for(timeout=WAIT)
        assert elapsed < 30
        got = st.read("sessions", me.athlete_id)
        assert len(got) == before + 1
        new = got[got.source == "form"]
        assert new.load.tolist() == [360.0] and new.session_type.tolist() == ["training"]
        page.get_by_text("60 min at RPE 6 = 360 AU").first.wait_for(
            timeout=WAIT
        )  # in the confirmation and the recent entries
        page.screenshot(path=str(SHOTS / "today-390-saved.png"), full_page=True)
    finally:
        page.close()


def test_untouched_wellness_form_stores_nothing(browser_context, served):
    st, me = served["store"], served["me"]
    before = len(st.read("wellness", me.athlete_id))
    page = _open(browser_context, served, 390, 844)
    try:
        page.locator(".bk-tab", has_text="Wellness").click()
        page.get_by_role("button", name="Save wellness").click()
        page.get_by_text("wellness report not saved").wait_for(timeout=WAIT)
        assert page.get_by_text("choose a value", exact=True).count() == 5  # each 1-5 item refused beside itself
        assert len(st.read("wellness", me.athlete_id)) == before
    finally:
        page.close()


@pytest.mark.parametrize("width,height", [(390, 844), (1400, 900)])
def test_medical_logs_an_injury_and_the_athlete_turns_out(browser_context, served, layout_problems, width, height):
    from pitchlab.injury_log import team_availability

    st = served["store"]
    page = browser_context(width, height).new_page()
    try:
        page.goto(served["base"] + "/injuries", timeout=WAIT)
        page.get_by_role("button", name="Log entry").wait_for(timeout=WAIT)
        n, bad = layout_problems(page, width)
        assert bad == [] and n > 15, f"injury log at {width} px: {bad} ({n} boxes)"
        before = len(st.read("injuries"))
        page.get_by_role("button", name="Log entry").click()
        page.get_by_text("injury log entry not saved").wait_for(timeout=WAIT)
        assert len(st.read("injuries")) == before  # an untouched form stores nothing
        for label, value in (
            ("Injury", "injury"),
            ("Thigh", "thigh"),
            ("Muscle/tendon", "muscle/tendon"),
            ("Out of training", "out"),
        ):
            page.locator("select", has=page.locator("option", has_text=label)).first.select_option(label=label)
        page.locator("input.flatpickr-input + input, input.flatpickr-input[type=text]").first.click()
        page.locator(".flatpickr-calendar.open .flatpickr-day.today").click()
        page.get_by_label("Type (e.g. strain, sprain; infection)").fill("strain")
        page.get_by_role("button", name="Log entry").click()
        page.get_by_text("injury: thigh strain").first.wait_for(timeout=WAIT)
        new = st.read("injuries")
        new = new[new["source"] == "medical"].sort_values("onset_date")
        assert new.entered_by.tolist()[-1] == "med"
        who = new.athlete_id.iloc[-1]
        name = served["c"].athletes.set_index("athlete_id").at[who, "name"]
        page.get_by_text(f"Logged {name}'s injury: thigh strain").first.wait_for(timeout=WAIT)  # a name, not an id
        assert team_availability(st, [who], actor="coach").availability.tolist() == ["out"]
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.screenshot(path=str(SHOTS / f"injuries-{width}.png"), full_page=True)
    finally:
        page.close()
