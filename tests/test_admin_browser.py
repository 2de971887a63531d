"""The admin pages and the Models page in a real browser: `pitchlab serve` (the app) with pitchlab's local sign-in
on 127.0.0.1 and a free port, a temporary PITCHLAB_HOME with a small cohort, a real MLflow registry holding two
versions and a stored drift check; Playwright drives Debian's Chromium. The admin creates a team, imports a roster CSV
with one bad row (the preview shows it, the commit loads the good rows, the bad row is in the quarantine table),
creates an account, resets its password and signs in with the new one, deactivates it and sees sign-in refused, and
promotes a version after the confirmation. Each admin page is checked at 390 and 1400 px for horizontal overflow and
overlapping boxes; screenshots go to docs/screenshots/.

Then the admin imports accounts from a CSV with one bad row (the preview refuses it, the import shows the one-time
passwords once and one of them signs in), deactivates a team (its athletes leave the coach board), exports an athlete
(the download is a zip holding that athlete's rows) and erases one after typing their name (gone from every page)."""

import re
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import open_context, pitchlab_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "docs" / "screenshots"
PASSWORD = "admin-browser-password"
WAIT = 45_000  # ms: the longest any element may take to appear
GOOD = dict(
    auc=0.70,
    baseline_auc=0.60,
    oe=1.05,
    oe_lo=0.9,
    oe_hi=1.2,
    slope=0.95,
    slope_lo=0.8,
    slope_hi=1.1,
    n_test_events=150,
    max_rhat=1.003,
    min_ess_bulk=900,
    min_ess_tail=700,
    divergences=0,
    min_bfmi=0.8,
)  # metrics that pass every bar of the default gate


WIDE = """(width) => {
  const out = [];
  const walk = (root) => { for (const e of root.querySelectorAll('*')) { const r = e.getBoundingClientRect();
    if ((r.right > width + 1 && r.width > 0) || e.scrollWidth > width + 1) out.push(e.scrollWidth + ' ' + e.tagName + '.' + String(e.className).slice(0, 40) + ' ' + Math.round(r.left) + '-' + Math.round(r.right));
    if (e.shadowRoot) walk(e.shadowRoot); } };
  walk(document);
  return out.slice(0, 12);
}"""  # the first boxes that reach past the right edge (named in the failure message)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    "A served dashboard on a temporary data home with an admin, a coach, two registered versions and a drift check."
    from pitchlab.dash.auth import hash_password
    from pitchlab.features import build_features
    from pitchlab.models.baselines import ACWRRule
    from pitchlab.registry import PickledModel, Registry
    from pitchlab.store import Store
    from pitchlab.synth import make_cohort

    home = tmp_path_factory.mktemp("admin-browser") / "home"
    (home / "mlflow" / "artifacts").mkdir(parents=True)
    store = Store(f"sqlite:///{home / 'pitchlab.db'}", actor="test").create()
    c = make_cohort(n_teams=2, athletes_per_team=4, seasons=1, seed=11)
    for n in ("teams", "athletes", "sessions", "wellness", "injuries"):
        store.write(n, getattr(c, n), source="synthetic")
    t1, t2 = c.teams.team_id
    h = hash_password(PASSWORD)
    store.write(
        "users",
        pd.DataFrame(
            [
                dict(username="root", display_name="Ada Admin", role="admin", password_hash=h),
                dict(username="coach", display_name="Cora Coach", role="coach", team_ids=f"{t1},{t2}", password_hash=h),
            ]
        ),
        source="test",
    )
    reg = Registry(f"sqlite:///{home / 'mlflow' / 'mlflow.db'}", artifact_root=home / "mlflow" / "artifacts")
    feats = build_features({t: store.read(t) for t in ("sessions", "athletes", "injuries", "wellness")}, horizon=7)
    model = PickledModel(ACWRRule().fit(feats))
    v1 = reg.log_model("injury_risk", model, metrics=GOOD)["version"]
    reg.log_model("injury_risk", model, metrics={**GOOD, "auc": 0.72, "max_rhat": 1.002})
    assert reg.promote("injury_risk", v1, actor="test")["promoted"]
    now = pd.Timestamp.now().floor("s")
    store.write(
        "drift_checks",
        pd.DataFrame(
            dict(
                checked_at=[now, now],
                model_name="injury_risk",
                model_version=str(v1),
                feature=["acwr_ewma", "monotony"],
                psi=[0.31, 0.04],
                ks=[0.2, 0.05],
                ks_p=[0.001, 0.6],
                level=["major", "stable"],
                window_start=c.sessions.date.max() - pd.Timedelta(days=27),
                window_end=c.sessions.date.max(),
                rows=112,
                action="warned",
            )
        ),
        source="test",
    )
    with pitchlab_server(home, apps=("app",)) as server:
        yield dict(base=server.base, store=store, reg=reg, home=home, t1=t1, t2=t2, cohort=c)


def sign_in(browser, site, user, password=PASSWORD, width=1400, height=1000):
    page = open_context(browser, width, height).new_page()  # conftest: requests off 127.0.0.1 aborted
    page.set_default_timeout(WAIT)
    page.goto(site["base"] + "/app")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    return page


def nav(page):
    page.wait_for_selector(".pitchlab-nav .bk-btn")
    return [t.strip() for t in page.locator(".pitchlab-nav .bk-btn").all_inner_texts()]


def tab(page, name):
    page.locator(".pitchlab-nav .bk-btn").filter(has_text=re.compile(f"^\\s*{name}\\s*$")).first.click()


def select(page, option_text, choose):
    "Choose `choose` in the select that offers an option reading exactly `option_text`."
    sel = page.locator("select", has=page.locator("option", has_text=re.compile(f"^{re.escape(option_text)}$")))
    sel.first.select_option(label=choose)


def fill(page, label, value):
    "Type into the text input whose placeholder or label is `label`."
    page.get_by_label(label, exact=True).or_(page.get_by_placeholder(label)).first.fill(value)


def shoot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    time.sleep(0.5)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def refused(browser, site, user, password):
    "Does the local sign-in refuse `user` with `password`?"
    page = sign_in(browser, site, user, password)
    try:
        page.wait_for_url(re.compile(r".*/login\?.*error=.*"))
        return page.locator(".pitchlab-nav").count() == 0
    finally:
        page.context.close()


def test_coach_has_no_admin_pages(browser, site):
    page = sign_in(browser, site, "coach")
    try:
        assert not {"Teams", "Athletes", "Accounts"} & set(nav(page))
    finally:
        page.context.close()


def test_admin_walks_through_teams_roster_accounts_and_promotion(browser, site, tmp_path):
    from playwright.sync_api import expect

    st = site["store"]
    page = sign_in(browser, site, "root")
    try:
        assert nav(page)[-3:] == ["Teams", "Athletes", "Accounts"]

        tab(page, "Teams")
        page.get_by_role("button", name="Add team").click()
        expect(page.get_by_text("enter a team id (letters and digits, no spaces)")).to_be_visible()
        assert "U21M" not in set(st.read("teams").team_id)
        fill(page, "e.g. U19W", "U21M")
        fill(page, "e.g. Under-19 women", "Under-21 men")
        fill(page, "cricket, baseball, football ...", "football")
        page.get_by_role("button", name="Add team").click()
        expect(page.get_by_text("Team Under-21 men (U21M) added.")).to_be_visible()
        assert st.read("teams").set_index("team_id").loc["U21M", "sport"] == "football"
        shoot(page, "admin-teams")

        tab(page, "Athletes")
        csv = tmp_path / "u21m.csv"
        csv.write_text(
            "Name,Sex,DOB,Team\nBo Aden,M,2004-02-03,U21M\nCy Brandt,M,2005-05-06,U21M\nDev Cole,X,2004-01-01,U21M\n"
        )
        page.locator(".pitchlab-roster-file input[type=file]").set_input_files(str(csv))
        time.sleep(1.0)  # the file reaches the server over the websocket
        page.get_by_role("button", name="Preview import").click()
        expect(page.get_by_text("2 row(s) will load")).to_be_visible()
        expect(page.get_by_text("sex 'X' is not F or M")).to_be_visible()
        expect(page.get_by_text("Rows that will be quarantined")).to_be_visible()
        assert not len(st.read("athletes").query("team_id == 'U21M'"))  # the preview wrote nothing
        shoot(page, "admin-athletes-preview")
        page.get_by_role("button", name="Load the 2 row(s)").click()
        expect(page.get_by_text("2 row(s) loaded")).to_be_visible()
        expect(page.get_by_text("Quarantine report")).to_be_visible()
        expect(page.get_by_text("sex 'X' is not F or M")).to_be_visible()
        shoot(page, "admin-athletes-loaded")
        assert sorted(st.read("athletes").query("team_id == 'U21M'").name) == ["Bo Aden", "Cy Brandt"]
        q = st.quarantine("athletes")
        assert q[["source", "row", "field"]].values.tolist() == [["u21m.csv", "4", "sex"]]
        assert st.read("audit").query("action == 'import'").actor.iloc[-1] == "root"

        tab(page, "Accounts")
        fill(page, "e.g. an email", "nia")
        select(page, "medical", "coach")
        page.get_by_role("button", name="Create account").click()
        expect(page.get_by_text("a coach account needs at least one team")).to_be_visible()
        page.locator(".choices").first.click()
        page.get_by_role("option", name=re.compile("Under-21 men")).first.click()
        page.keyboard.press("Escape")
        page.get_by_role("button", name="Create account").click()
        secret = page.locator(".pitchlab-secret")
        expect(secret).to_be_visible()
        first_pw = secret.inner_text().strip()
        assert st.read("users").set_index("username").loc["nia", "team_ids"] == "U21M"
        select(page, "(a new account)", "nia (coach)")
        page.get_by_role("button", name="Reset password").click()
        expect(page.get_by_text("Password of nia reset")).to_be_visible()
        new_pw = secret.inner_text().strip()
        assert new_pw != first_pw and new_pw not in st.read("users").password_hash.str.cat()
        shoot(page, "admin-accounts")
        assert refused(browser, site, "nia", first_pw)
        nia = sign_in(browser, site, "nia", new_pw)
        assert "Team board" in nav(nia)  # signed in with the new password
        nia.context.close()

        page.get_by_role("button", name="Deactivate").click()
        expect(page.get_by_text("Deactivate nia?")).to_be_visible()
        assert st.read("users").set_index("username").password_hash.notna()["nia"]  # one click changes nothing
        page.get_by_role("button", name="Yes, deactivate nia").click()
        expect(page.get_by_text("nia is deactivated")).to_be_visible()
        assert refused(browser, site, "nia", new_pw)
        nia = sign_in(browser, site, "nia", new_pw)
        expect(nia.get_by_text("This account is deactivated: ask an admin to reactivate it.")).to_be_visible()
        nia.context.close()
        row = st.read("users").set_index("username").loc["nia"]
        assert row["active"] == False and row["role"] == "coach" and row["password_hash"]  # noqa: E712 (row kept)
        acts = st.read("audit").query("entity == 'users' and actor == 'root'").action
        assert acts[acts.str.startswith("user_")].tolist() == ["user_add", "user_passwd", "user_deactivate"]

        tab(page, "Models")
        expect(page.get_by_text("what the gate checks")).to_be_visible()
        expect(page.get_by_text("passed: R-hat: the largest, 1.002, is at most 1.01")).to_be_visible()
        expect(page.get_by_text(re.compile(r"the largest shift is acwr_ewma \(PSI 0\.31, major\)"))).to_be_visible()
        select(page, "1", "2")
        page.get_by_role("button", name="Promote").click()
        expect(page.get_by_text("Promote version 2?")).to_be_visible()
        expect(page.get_by_text("It replaces version 1 as the champion")).to_be_visible()
        assert site["reg"].champion("injury_risk") == "1"  # not before the second click
        shoot(page, "admin-models-confirm")
        page.get_by_role("button", name="Yes, promote version 2").click()
        expect(page.get_by_text("version 2 is champion")).to_be_visible()
        assert site["reg"].champion("injury_risk") == "2"
        assert st.read("audit").query("action == 'promote'").actor.tolist() == ["root"]
        shoot(page, "admin-models-promoted")
    finally:
        page.context.close()


def board_text(browser, site):
    "The coach's team board, freshly signed in."
    page = sign_in(browser, site, "coach")
    try:
        page.wait_for_selector(".pitchlab-board .tabulator-row")
        time.sleep(0.5)
        return "\n".join(page.locator(".pitchlab-board .tabulator-row").all_inner_texts())  # rows live in shadow roots
    finally:
        page.context.close()


def test_admin_imports_accounts_deactivates_a_team_exports_and_erases(browser, site, tmp_path):
    import zipfile

    from playwright.sync_api import expect

    st, c, t1, t2 = site["store"], site["cohort"], site["t1"], site["t2"]
    names2 = c.athletes.query("team_id == @t2").name.tolist()
    page = sign_in(browser, site, "root")
    try:
        nav(page)
        tab(page, "Accounts")
        csv = tmp_path / "staff.csv"
        csv.write_text(f"username,role,teams,athlete_id\nkai,coach,{t1},\nmo,physio,{t1},\nzoe,medical,{t2},\n")
        page.locator(".pitchlab-users-file input[type=file]").set_input_files(str(csv))
        time.sleep(1.0)  # the file reaches the server over the websocket
        page.get_by_role("button", name="Preview accounts").click()
        expect(page.get_by_text("2 account(s) will be created, 1 row(s) will be refused")).to_be_visible()
        expect(page.get_by_text("unknown role 'physio': use one of athlete, coach, medical, admin")).to_be_visible()
        assert not {"kai", "zoe"} & set(st.read("users").username)  # the preview wrote nothing
        shoot(page, "admin-accounts-import-preview")
        page.get_by_role("button", name="Import 2 account(s)").click()
        secrets = page.locator(".pitchlab-secrets-table .pitchlab-secret")
        expect(secrets).to_have_count(2)
        users = [u.strip() for u in page.locator(".pitchlab-secrets-table td:first-child").all_inner_texts()]
        pw = dict(zip(users, [p.strip() for p in secrets.all_inner_texts()]))
        assert set(pw) == {"kai", "zoe"}
        shoot(page, "admin-accounts-imported")
        stored = st.read("users").set_index("username")
        assert stored.at["zoe", "team_ids"] == t2 and "mo" not in stored.index
        assert not any(p in stored.password_hash.str.cat() + st.read("audit").detail.str.cat() for p in pw.values())
        kai = sign_in(browser, site, "kai", pw["kai"])
        assert "Team board" in nav(kai)  # signed in with the one-time password
        kai.context.close()

        before = board_text(browser, site)
        assert all(n in before for n in names2)
        tab(page, "Teams")
        select(page, "(a new team)", c.teams.set_index("team_id").at[t2, "name"] + f" ({t2})")
        page.get_by_role("button", name="Deactivate team").click()
        expect(
            page.get_by_text(re.compile(r"is deactivated: its 4 athlete\(s\) leave the coach board"))
        ).to_be_visible()
        assert st.read("teams").set_index("team_id").at[t2, "active"] == False  # noqa: E712
        shoot(page, "admin-teams-deactivated")
        after = board_text(browser, site)
        assert not any(n in after for n in names2) and all(n in after for n in c.athletes.query("team_id == @t1").name)
        assert len(st.read("sessions", c.athletes.query("team_id == @t2").athlete_id.tolist()))  # history kept

        a = c.athletes.query("team_id == @t1").iloc[0]
        tab(page, "Athletes")
        select(page, "(a new athlete)", f"{a['name']} ({a['athlete_id']})")
        with page.expect_download(timeout=WAIT) as dl:
            page.get_by_role("button", name="Export (zip)").click()
        got = tmp_path / "export.zip"
        dl.value.save_as(got)
        with zipfile.ZipFile(got) as z:
            ath = pd.read_csv(z.open("athletes.csv"))
            ses = pd.read_csv(z.open("sessions.csv"))
        assert ath.athlete_id.tolist() == [a["athlete_id"]] and set(ses.athlete_id) == {a["athlete_id"]}
        assert len(ses) == len(st.read("sessions", a["athlete_id"])) > 0
        assert st.read("audit").query("action == 'export'").actor.tolist() == ["root"]

        page.get_by_role("button", name="Erase", exact=True).click()
        expect(page.get_by_text("This removes every row about them")).to_be_visible()
        fill(page, "Type the athlete's id or name to confirm", "someone else")
        page.get_by_role("button", name="Erase for ever").click()
        expect(page.get_by_text(re.compile("exactly to confirm; nothing was erased"))).to_be_visible()
        assert len(st.read("athletes", a["athlete_id"])) == 1
        fill(page, "Type the athlete's id or name to confirm", a["name"])
        shoot(page, "admin-athletes-erase-confirm")
        page.get_by_role("button", name="Erase for ever").click()
        expect(page.get_by_text(re.compile(f"{re.escape(a['name'])} .* is erased"))).to_be_visible()
        assert not len(st.read("athletes", a["athlete_id"])) and not len(st.read("sessions", a["athlete_id"]))
        rows = "\n".join(page.locator(".pitchlab-admin-athletes .tabulator-row").all_inner_texts())
        assert a["name"] not in rows and c.athletes.query("team_id == @t1").name.iloc[1] in rows
        assert a["name"] not in board_text(browser, site)
    finally:
        page.context.close()


@pytest.mark.parametrize("width,height", [(390, 844), (1400, 900)])
def test_admin_pages_fit_without_overflow_or_overlap(browser, site, layout_problems, width, height):
    page = sign_in(browser, site, "root", width=width, height=height)
    try:
        nav(page)
        for name, wait in (
            ("Teams", ".pitchlab-admin-teams"),
            ("Athletes", ".pitchlab-admin-athletes"),
            ("Accounts", ".pitchlab-admin-accounts"),
            ("Models", ".pitchlab-gate-words"),
        ):
            tab(page, name)
            page.wait_for_selector(wait)
            time.sleep(0.5)
            assert page.evaluate("document.documentElement.scrollWidth") <= width, (name, page.evaluate(WIDE, width))
            n, bad = layout_problems(page, width)
            assert n > 5 and bad == [], (name, bad)
            shoot(page, f"admin-{name.lower()}-{width}")
    finally:
        page.context.close()
