"""The medical injury log: deactivated athletes' entries are hidden by default and shown, marked, on request."""


def test_the_log_shows_a_deactivated_athletes_history_on_request(tmp_path):
    from pitchlab.dash.auth import DataAccess, User
    from pitchlab.dash.data import DataStore
    from pitchlab.dash.pages.injuries import InjuryLogPage
    from pitchlab.injury_log import list_injuries
    from pitchlab.store import Store
    from pitchlab.synth import make_cohort

    store = Store(f"sqlite:///{tmp_path / 'pitchlab.db'}", actor="test").create()
    c = make_cohort(n_teams=1, athletes_per_team=6, seasons=1, seed=7)
    for n in ("teams", "athletes", "sessions", "injuries"):
        store.write(n, getattr(c, n), source="synthetic")
    gone = c.injuries["athlete_id"].iloc[0]  # an athlete with an injury on record, who then leaves the squad
    name = c.athletes.set_index("athlete_id").loc[gone, "name"]
    a = store.read("athletes")
    store.write("athletes", a[a.athlete_id == gone].assign(active=False), source="roster")
    medic = User("med", "medical", team_ids=c.athletes.team_id.iloc[0], display_name="Mo Medic")
    page = InjuryLogPage(data=DataStore(access=DataAccess(store, medic)))
    assert gone not in set(page.data.roster.athlete_id)
    assert name not in page._list.object  # the active squad's log only
    page.inactive.value = True
    shown = page._list.object
    assert f"{name} (inactive)" in shown
    every = list_injuries(store, list(c.athletes.athlete_id), actor="test")
    assert shown.count("<tr>") - 1 == min(len(every), 50)  # every athlete's entries, header row aside
    page.inactive.value = False
    assert name not in page._list.object
    reads = store.read("audit")
    mine = reads[(reads.actor == "med") & (reads.entity == "injuries")]
    assert mine.detail.str.contains(gone).any()  # the medical read of the inactive athlete's entries is audited
