"""pitchlab.registry.Gate: the one promotion gate (discrimination, calibration with its event count, Bayesian
diagnostics), its sentences, and a real MLflow registry refusing a miscalibrated model."""

import re
from pathlib import Path

import pytest

import pitchlab
from pitchlab.core import PitchlabError
from pitchlab.registry import Gate, Registry

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
)


def test_gate_passes_a_good_model_silently():
    assert Gate().check(GOOD) == (True, [])
    assert set(Gate().report(GOOD)["verdict"]) == {"pass"}


@pytest.mark.parametrize(
    "change, sentence",
    [
        (
            dict(oe=1.59, oe_lo=1.3, oe_hi=1.9),
            "O/E 1.59 [1.30, 1.90] lies outside [0.8, 1.25] on 150 independent test events: the model predicts 37% fewer injuries than happened",
        ),
        (dict(oe=0.5, oe_lo=0.4, oe_hi=0.6), "the model predicts 100% more injuries than happened"),
        (dict(slope=0.51, slope_lo=0.3, slope_hi=0.7), "its risks are too extreme (overfitted)"),
        (dict(slope=1.6, slope_lo=1.4, slope_hi=1.9), "its risks are too timid"),
        (dict(max_rhat=1.012), "largest R-hat 1.012 is above 1.01"),
        (dict(min_ess_bulk=350), "smallest bulk ESS 350 is below 400"),
        (dict(min_ess_tail=120), "smallest tail ESS 120 is below 400"),
        (dict(divergences=2), "2 divergent transitions (at most 0)"),
        (dict(min_bfmi=0.2), "smallest E-BFMI 0.20 is below 0.3"),
        (dict(divergences=-1), "not NUTS"),
        (dict(auc=0.55, baseline_auc=0.5), "AUC 0.550 is below the gate's 0.600"),
        (dict(auc=0.61, baseline_auc=0.62), "does not beat the ACWR rule"),
    ],
)
def test_gate_refuses_with_a_sentence(change, sentence):
    ok, why = Gate().check({**GOOD, **change})
    assert not ok and len(why) == 1 and sentence in why[0]


def test_gate_says_when_the_events_are_too_few():
    few = {**GOOD, "n_test_events": 24, "slope": 0.51, "slope_lo": 0.29, "slope_hi": 0.74}
    ok, why = Gate().check(few)
    assert ok
    assert why == [
        "note: O/E 1.05 [0.90, 1.20] not held to [0.8, 1.25]: only 24 independent test events (the gate needs 100)",
        "note: calibration slope 0.51 [0.29, 0.74] not held to [0.7, 1.3]: only 24 independent test events (the gate needs 100)",
    ]
    # an interval wholly outside the band fails even with few events
    ok, why = Gate().check({**few, "oe": 2.0, "oe_lo": 1.4, "oe_hi": 2.8})
    assert not ok and why[0].startswith("O/E 2.00 [1.40, 2.80] lies wholly outside [0.8, 1.25] even on only 24")
    # no calibration logged: said, not silently passed
    ok, why = Gate().check({k: v for k, v in GOOD.items() if not k.startswith(("oe", "slope"))})
    assert ok and why == [
        "note: no O/E was logged: calibration not checked",
        "note: no calibration slope was logged: calibration not checked",
    ]
    assert Gate(calibration_min_events=20).check(few)[0] is False  # 24 events meet a lower bar: enforced


def test_gate_settings_are_checked():
    with pytest.raises(PitchlabError, match="unknown gate setting"):
        Gate.from_dict({"auc_mn": 0.7})
    assert Gate.from_dict({"oe_max": None}).check({**GOOD, "oe": 1.4, "oe_lo": 1.1, "oe_hi": 1.7})[0]


class _Const:
    def __init__(self, r=0.01):
        self.r = r

    def predict(self, X):
        import pandas as pd

        return pd.DataFrame({"risk": [self.r] * len(X)})

    def save(self, d):
        (Path(d) / "r.txt").write_text(str(self.r))

    @classmethod
    def load(cls, d):
        return cls(float((Path(d) / "r.txt").read_text()))


def test_registry_refuses_a_miscalibrated_version(tmp_path):
    reg = Registry(f"sqlite:///{tmp_path}/mlflow.db", tmp_path / "art")
    bad = reg.log_model("risk_gate", _Const(), metrics={**GOOD, "oe": 1.6, "oe_lo": 1.35, "oe_hi": 1.9})
    res = reg.promote("risk_gate", bad["version"])
    assert not res["promoted"] and res["champion"] is None
    assert "the model predicts 38% fewer injuries than happened" in res["reasons"][0]
    v = reg.versions("risk_gate").set_index("version")
    assert v.loc[1, "gate"] == "failed" and "O/E 1.60" in v.loc[1, "gate_reasons"]
    few = reg.log_model("risk_gate", _Const(), metrics={**GOOD, "n_test_events": 12})
    res = reg.promote("risk_gate", few["version"])
    assert res["promoted"] and any(r.startswith("note: O/E") for r in res["reasons"])
    assert "only 12 independent test events" in reg.versions("risk_gate").set_index("version").loc[2, "gate_reasons"]


def _bayes_still_has_its_gate():
    from pitchlab.models import bayes

    return hasattr(bayes, "GATE")


@pytest.mark.xfail(_bayes_still_has_its_gate(), reason="until the bayes branch removes models.bayes.GATE", strict=False)
def test_one_gate():
    src = {p: p.read_text() for p in Path(pitchlab.__file__).parent.rglob("*.py") if p.name != "_modidx.py"}
    hits = [p for p, s in src.items() if re.search(r"^(class \w*Gate\b|GATE\s*=)", s, re.M)]
    assert [h.name for h in hits] == ["registry.py"]


def test_gate_does_not_judge_calibration_on_a_handful_of_events():
    ok, why = Gate().check({**GOOD, "n_test_events": 6, "slope": -0.02, "slope_lo": -0.11, "slope_hi": 0.46})
    assert ok and why[-1] == (
        "note: calibration slope -0.02 [-0.11, 0.46] not held to [0.7, 1.3]: only 6 independent test events "
        "(the gate needs 100; 10 to fail even a clear miss)"
    )
