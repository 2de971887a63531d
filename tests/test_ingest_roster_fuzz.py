"""Roster imports under generated bad input (hypothesis): every row ends up either loaded or refused with a reason
naming its row and field, never both, never lost, never duplicated; the importer never crashes."""

import csv
import io
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from pitchlab.core import PitchlabError
from pitchlab.roster import _check_rows, import_athletes, read_roster
from pitchlab.store import Store

pytestmark = pytest.mark.slow  # fuzzes 1000 rosters: `make test` runs it, `make test-quick` does not

TEAMS = pd.DataFrame(dict(team_id=["T1", "T2"], name=["One", "Two"], sport=["football", "cricket"]))
HEADER = ["ID", "Name", "Gender", "DOB", "Squad", "Height (cm)", "Guardian Email"]

junk = st.one_of(st.text(max_size=12), st.sampled_from(["", " ", "NULL", "n/a", "-", "\u00a0", "1e309", "null"]))
ids = st.one_of(st.sampled_from(["A1", "A2", "A3", "A1 ", ""]), st.text(alphabet="AB12-_ ", max_size=4))
sexes = st.one_of(st.sampled_from(["F", "M", "f", "male", "Female", "X", "", "1"]), junk)
dates = st.one_of(
    st.dates().map(str),
    st.sampled_from(["2010-02-30", "31/12/1999", "1999-13-01", "yesterday", "", "2015-06-01", "1990-01-01"]),
    junk,
)
teams = st.one_of(st.sampled_from(["T1", "T2", "T3", "", "t1"]), junk)
heights = st.one_of(st.sampled_from(["180", "", "abc", "99", "250", "175.5", "-1"]), junk)
rows = st.lists(
    st.tuples(
        ids,
        st.one_of(st.sampled_from(["Ann Lee", "Bo Ek", ""]), junk),
        sexes,
        dates,
        teams,
        heights,
        st.sampled_from(["", "p@example.org"]),
    ),
    min_size=1,
    max_size=8,
)


def _csv(rs) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(HEADER)
    w.writerows(rs)
    return out.getvalue()


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows)
def test_row_checks_account_for_every_row(rs):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "roster.csv"
        p.write_text(_csv(rs), encoding="utf-8")
        try:
            raw = read_roster(p)
        except PitchlabError:
            return  # a file refused as a whole (e.g. no name column) is a clear refusal, not a crash
        ok, rej = _check_rows(raw, TEAMS, on="2026-01-01")
    assert set(ok.index).isdisjoint(set(rej["row"]))
    assert set(ok.index) | set(rej["row"]) == set(raw.index)
    assert rej["reason"].str.len().gt(0).all() and rej["field"].str.len().gt(0).all()
    assert ok["athlete_id"].is_unique and ok["sex"].isin(["F", "M"]).all() and ok["team_id"].isin(["T1", "T2"]).all()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows)
def test_import_loads_exactly_the_valid_rows(rs):
    with tempfile.TemporaryDirectory() as d:
        st_ = Store(f"sqlite:///{d}/s.db").create()
        st_.write("teams", TEAMS)
        p = Path(d) / "roster.csv"
        p.write_text(_csv(rs), encoding="utf-8")
        try:
            rep = import_athletes(p, store=st_)
        except PitchlabError:
            assert not len(st_.read("athletes"))
            return
        stored = st_.read("athletes")
        planned = rep.plan[rep.plan.action == "insert"]["athlete_id"]
        assert stored["athlete_id"].is_unique and sorted(stored["athlete_id"]) == sorted(planned)
        assert rep.count("insert") + rep.quarantined == rep.read
        q = st_.quarantine("athletes")
        assert set(q["row"].astype(int)) == set(rep.rejects["row"].astype(int))
