"""pitchlab.rules: the shipped rule data against REFERENCES.md, the checks against brute force, and bad input."""

import copy

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from pitchlab.core import ConfigError, NotFoundError, ValidationError
from pitchlab.load import daily_metrics
from pitchlab.rules import (
    VIOLATION_COLUMNS,
    age_group,
    check,
    list_rulesets,
    load_ruleset,
    pitching_availability,
    required_rest_days,
)

# REFERENCES.md, "Pitch Smart": age -> (daily max, first pitch count of 1, 2, 3, 4 days of rest) per version
TABLE = {
    (7, 8): (50, [21, 36, None, None]),
    (9, 10): (75, [21, 36, 51, 66]),
    (11, 12): (85, [21, 36, 51, 66]),
    (13, 14): (95, [21, 36, 51, 66]),
    (15, 16): (95, [31, 46, 61, 76]),
}
LATE = {"2015-2018": [31, 46, 61, 76], "2025-26": [31, 46, 61, 81]}


def test_shipped_files_and_versions():
    rs = list_rulesets()
    assert set(zip(rs["ruleset"], rs["version"])) == {
        ("pitch_smart", "2015-2018"),
        ("pitch_smart", "2025-26"),
        ("ecb_fast_bowling", "2009"),
    }
    assert load_ruleset("pitch_smart")["version"] == "2025-26"  # newest by default
    for f in rs["file"]:
        assert f.endswith(".yaml")


@pytest.mark.slow  # every age and pitch count of both tables
@pytest.mark.parametrize("version", ["2015-2018", "2025-26"])
def test_pitch_smart_table_matches_references(version):
    rules = load_ruleset("pitch_smart", version)
    table = dict(TABLE)
    table[(17, 18)] = (105, LATE[version])
    table[(19, 22)] = (120, LATE[version])
    for (lo, hi), (daily_max, steps) in table.items():
        for age in range(lo, hi + 1):
            assert age_group(rules, age)["daily_max"] == daily_max
            assert required_rest_days(1, age, version=version) == 0
            for days, first in enumerate(steps, start=1):
                if first is None:
                    continue
                assert required_rest_days(first, age, version=version) == days
                assert required_rest_days(first - 1, age, version=version) == days - 1
    caps = {8: 60, 10: 80, 12: 80, 14: 100}
    for age, cap in caps.items():
        assert age_group(rules, age)["innings_per_12_months"] == cap
    assert age_group(rules, 20)["months_off_per_year"] == 3 and age_group(rules, 12)["months_off_per_year"] == 4
    assert rules["max_consecutive_days"] == 2


def test_ecb_table_matches_references():
    rules = load_ruleset("ecb_fast_bowling")
    expect = {
        12: (5, 10, 30, 2),
        13: (5, 10, 30, 2),
        14: (6, 12, 36, 2),
        15: (6, 12, 36, 2),
        16: (7, 18, 36, 3),
        17: (7, 18, 36, 3),
        18: (7, 18, 42, 3),
        19: (7, 18, 42, 3),
    }
    for age, (spell, day, balls, sessions) in expect.items():
        g = age_group(rules, age)
        assert (g["match"]["overs_per_spell"], g["match"]["overs_per_day"]) == (spell, day)
        assert (g["practice"]["balls_per_session"], g["practice"]["sessions_per_week"]) == (balls, sessions)
    assert rules["max_bowling_days"] == 4 and rules["window_days"] == 7


# ----------------------------------------------------------------------------------------------- brute force
def brute_force_pitch_smart(days, pitches, age, version):
    "Day-by-day simulation: each pitching day blocks the next `rest` days; three days in a row are too many."
    rules = load_ruleset("pitch_smart", version)
    blocked, out = set(), []
    pitched = dict(zip(days, pitches))
    for d in sorted(pitched):
        p = pitched[d]
        if d in blocked:
            out.append((d, "required_rest"))
        if p > age_group(rules, age)["daily_max"]:
            out.append((d, "daily_max"))
        if (d - 1) in pitched and (d - 2) in pitched:
            out.append((d, "consecutive_days"))
        blocked |= set(range(d + 1, d + 1 + required_rest_days(p, age, version=version)))
    return sorted(out)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 40), st.integers(1, 130)), min_size=1, max_size=15, unique_by=lambda x: x[0]),
    st.integers(7, 22),
    st.sampled_from(["2015-2018", "2025-26"]),
)
@pytest.mark.slow  # a brute-force search per example
def test_pitch_smart_daily_rules_match_brute_force(log, age, version):
    days, pitches = zip(*log)
    act = pd.DataFrame(
        {
            "athlete_id": "p",
            "date": pd.Timestamp("2024-04-01") + pd.to_timedelta(list(days), unit="D"),
            "pitches": list(pitches),
        }
    )
    v = check(act, "pitch_smart", age=age, version=version)
    assert list(v.columns) == VIOLATION_COLUMNS
    got = sorted(
        (int((d - pd.Timestamp("2024-04-01")).days), r)
        for d, r in zip(v["date"], v["rule"])
        if r in ("required_rest", "daily_max", "consecutive_days")
    )
    assert got == brute_force_pitch_smart(days, pitches, age, version)
    assert (v["ruleset"] == "pitch_smart").all() and (v["version"] == version).all()


def test_rest_days_agree_with_load_module():
    "pitchlab.load's days_rest is the rest a rules check sees between appearances."
    act = pd.DataFrame(
        {
            "athlete_id": "p",
            "date": pd.to_datetime(["2024-05-01", "2024-05-04", "2024-05-06"]),
            "load": 100.0,
            "pitches": [60, 40, 20],
        }
    )
    rest = daily_metrics(act)["days_rest"].sel(athlete_id="p", date=["2024-05-04", "2024-05-06"]).values
    np.testing.assert_array_equal(rest, [2, 1])
    v = check(act, age=14)
    assert v[["rule", "value", "limit"]].values.tolist() == [["required_rest", 2.0, 3.0], ["required_rest", 1.0, 2.0]]


def test_planned_activity_and_game_types():
    log = pd.DataFrame(
        {
            "athlete_id": "p",
            "date": pd.to_datetime(["2024-05-01", "2024-05-02", "2099-01-01"]),
            "session_type": ["match", "training", "match"],
            "pitches": [80, 60, 120],
        }
    )
    v = check(log, age=12)
    assert v["rule"].tolist() == ["daily_max"] and v["date"].iloc[0] == pd.Timestamp("2099-01-01")  # bullpen ignored
    v_all = check(log, age=12, game_types=None)
    assert "required_rest" in set(v_all["rule"])


def test_age_column_and_mapping():
    log = pd.DataFrame({"athlete_id": ["a", "b"], "date": pd.to_datetime(["2024-05-01"] * 2), "pitches": [90, 90]})
    by_map = check(log, age={"a": 12, "b": 13})
    assert by_map["athlete_id"].tolist() == ["a"]
    assert check(log.assign(age=[12, 13]))["athlete_id"].tolist() == ["a"]
    with pytest.raises(ConfigError, match="depend on age"):
        check(log)
    with pytest.raises(ConfigError, match="no age for athlete"):
        check(log, age={"a": 12})
    with pytest.raises(ConfigError, match="no limits for age 6"):
        check(log, age=6)


def test_innings_cap_uses_baseball_notation():
    log = pd.DataFrame(
        {"athlete_id": "p", "date": pd.date_range("2024-03-01", periods=20, freq="7D"), "pitches": 30, "innings": 3.2}
    )
    v = check(log, age=8)
    inn = v[v["rule"] == "innings_12_months"]
    assert inn.iloc[0]["value"] == round(17 * 11 / 3, 2) and inn.iloc[0]["limit"] == 60
    with pytest.raises(ValidationError, match="baseball notation"):
        check(log.assign(innings=3.5), age=8)


def test_off_season_across_new_year_is_not_a_violation():
    "A November-February break counts as the year's continuous rest (a calendar-year split would miss it)."
    season = lambda y: pd.date_range(f"{y}-03-01", f"{y}-10-31", freq="5D")
    log = pd.DataFrame({"athlete_id": "p", "date": np.r_[season(2022), season(2023), season(2024)], "pitches": 30})
    v = check(log, age=14)
    assert not {"continuous_rest", "months_off"} & set(v["rule"])


def test_ecb_spells_overs_notation_and_bowling_days():
    act = pd.DataFrame(
        {
            "athlete_id": "b",
            "session_type": "match",
            "spell": [1, 1, 2],
            "date": pd.to_datetime(["2024-06-01"] * 3),
            "overs": [4.0, 3.3, 5.0],
        }
    )
    v = check(act, "ecb_fast_bowling", age=17)
    assert v[["rule", "value", "limit"]].values.tolist() == [["overs_per_spell", 7.5, 7.0]]
    with pytest.raises(ValidationError, match="cricket notation"):
        check(act.assign(overs=[4.7, 1.0, 1.0]), "ecb_fast_bowling", age=17)
    week = pd.DataFrame(
        {
            "athlete_id": "b",
            "session_type": "training",
            "date": pd.date_range("2024-06-01", periods=5),
            "balls_bowled": 12,
        }
    )
    v = check(week, "ecb_fast_bowling", age=18)
    assert v[v["rule"] == "bowling_days"][["value", "limit"]].values.tolist() == [[5.0, 4.0]]
    assert (v[v["rule"] == "practice_sessions_per_week"]["value"] == [4.0, 5.0]).all()


def test_bad_rule_data_and_names():
    with pytest.raises(NotFoundError):
        load_ruleset("little_league")
    with pytest.raises(NotFoundError, match="no version"):
        load_ruleset("ecb_fast_bowling", "2030")
    broken = copy.deepcopy(load_ruleset("pitch_smart"))
    broken["age_groups"][2]["rest_after"][1]["pitches"] = 99
    with pytest.raises(ConfigError, match="increasing rest_after"):
        load_ruleset(broken)
    del broken["source"]
    with pytest.raises(ConfigError, match="lacks"):
        load_ruleset(broken)


def test_bad_activity():
    log = pd.DataFrame({"athlete_id": "p", "date": pd.to_datetime(["2024-05-01"]), "pitches": [-3]})
    with pytest.raises(ValidationError, match=">= 0"):
        check(log, age=12)
    with pytest.raises(ValidationError, match="`pitches` column"):
        check(log.drop(columns="pitches"), age=12)
    with pytest.raises(ValidationError, match="athlete_id and date"):
        check(log.drop(columns="date"), age=12)
    assert check(log.iloc[:0], age=12).columns.tolist() == VIOLATION_COLUMNS


def test_availability_for_planning():
    log = pd.DataFrame(
        {
            "athlete_id": ["a", "a", "b"],
            "date": pd.to_datetime(["2024-05-01", "2024-05-02", "2024-05-01"]),
            "pitches": [20, 70, 30],
        }
    )
    av = pitching_availability(log, on="2024-05-05", age=16).set_index("athlete_id")
    assert not av.loc["a", "available"] and av.loc["a", "rest_owed_until"] == pd.Timestamp("2024-05-05")
    assert av.loc["b", "available"] and av.loc["b", "max_pitches"] == 95
