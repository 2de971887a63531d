"""The what-if suggestion on a real projection: synthetic cricket squad, load metrics, ACWR-rule risk, ECB rules."""

import numpy as np
import pandas as pd
import pytest

from pitchlab.board import LibraryRules, RuleRisk, frames_from_tables
from pitchlab.models.baselines import ACWRRule
from pitchlab.plan_units import _amount, _upper, budget_breaches, budget_verdict, optimise_plan, plan_unit
from pitchlab.synth import make_cohort


@pytest.fixture(scope="module")
def squad():
    c = make_cohort(n_teams=1, athletes_per_team=4, seasons=1, seed=3)
    pose = pd.DataFrame(columns=["athlete_id", "date"])
    return frames_from_tables(c.athletes, c.sessions, c.wellness, pose)


def _projector(frames, athlete, calls):
    from pitchlab.planning import project_plan

    provider, rules = (
        RuleRisk(
            rule=ACWRRule(edges="warren_hulin", column="acwr_ewma").stated(
                (0.02, 0.0332, 0.09), "a 2% week x RR 1.66 (Warren 2018) and 4.5 (Hulin 2014)"
            )
        ),
        LibraryRules(),
    )

    def project(plan):
        calls.append(1)
        return project_plan(frames, athlete, plan, provider, rules)

    return project


def test_suggestion_is_the_largest_within_budget_with_matches_fixed(squad):
    a = "syn-a001"
    d0 = squad.as_of + pd.Timedelta(days=1)
    plan = pd.DataFrame(
        {
            "date": pd.date_range(d0, periods=4),
            "session_type": ["training", "training", "training", "match"],
            "load": [900.0, 0.0, 900.0, 300.0],
            "balls": [0, 0, 0, 0],
            "pitches": [0, 0, 0, 0],
        }
    )
    calls = []
    project = _projector(squad, a, calls)
    f, v = project(plan)
    budget = 0.035  # the ACWR rule gives 2% x 1.66 above ACWR 1.42 and 2% x 4.5 above 2.0: ACWR 2.0 is the limit
    assert len(budget_breaches(f, budget)) > 0  # the coach's plan is over budget ...
    assert budget_verdict(f, v, budget).startswith(
        "Over budget on "
    )  # ... and the verdict says so, not "no rule broken"
    best, why, ok = optimise_plan(plan, project, "cricket", budget=budget)
    assert ok and len(why) == 4
    fb, vb = project(best)
    assert _upper(fb[fb["planned"]]).max() <= budget and len(vb) == 0
    assert best.loc[3, "load"] == 300.0 and best.loc[1, "load"] == 0.0  # match kept, rest day kept
    assert why[1].endswith("rest day kept") and "match kept as planned (300 AU)" in why[3]
    for i in (0, 2):
        assert best.loc[i, "load"] < 2 * plan.loc[i, "load"]
        more = _amount(best, i, "load", best.loc[i, "load"] + 10, 0)
        fm, vm = project(more)
        assert _upper(fm[fm["planned"]]).max() > budget or len(vm) > 0  # one step more breaks the budget
        assert f"instead of the planned {plan.loc[i, 'load']:.0f} AU, because" in why[i]
    assert len(calls) < 40


def test_units_by_sport():
    assert plan_unit("cricket") == ("balls", "balls", 6)
    assert plan_unit("Baseball") == ("pitches", "pitches", 5)
    assert plan_unit("football") == ("load", "AU", 10)
    assert np.isnan(_upper(pd.DataFrame({"risk": [np.nan], "upper": [np.nan]})).iloc[0])
