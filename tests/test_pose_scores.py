"""Technique scores: band scoring, confidence, each movement on synthetic athletes with known faults, and the real video."""

import json
import math

import pytest
from hypothesis import given, settings, strategies as st

from pitchlab.core import ValidationError
from pitchlab.pose import kinematics as K
from pitchlab.pose import scores as S

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


@settings(max_examples=200, deadline=None)
@given(st.floats(-500, 500), st.floats(-100, 100), st.floats(0, 100), st.floats(0.1, 50))
def test_band_score_is_100_inside_and_falls_linearly_outside(v, lo, width, tol):
    hi = lo + width
    s = S.band_score(v, lo, hi, tol)
    assert 0 <= s <= 100
    if lo <= v <= hi:
        assert s == 100
    else:
        gap = lo - v if v < lo else v - hi
        assert math.isclose(s, max(0.0, 100 * (1 - gap / tol)), abs_tol=1e-9)
        assert S.band_score(v + (1 if v > hi else -1), lo, hi, tol) <= s  # further out never scores higher


def test_combine_weights_by_confidence_and_reports_what_could_be_read():
    ms = [
        S.measure("depth", 10, "squat", 1.0, "side"),
        S.measure("trunk_lean", 65, "squat", 1.0, "side"),
        S.measure("knee_valgus", float("nan"), "squat", 1.0, "front"),
    ]
    score, conf = S.combine(ms)
    assert score == 50.0  # (100 + 0) / 2; the missing measure does not count
    assert math.isclose(conf, 2 / 3, abs_tol=1e-3)  # three measures of weight 1, two read with confidence 1
    assert S.combine([]) == (None, 0.0)
    hidden = S.measure("depth", 10, "squat", 0.1, "side")
    assert hidden.confidence == pytest.approx(0.1) and S.measure(
        "knee_valgus", 5, "squat", 1.0, "side"
    ).confidence == pytest.approx(0.3)


def test_reference_ranges_are_documented():
    for mv in S.MOVEMENTS:
        t = S.reference_table(mv)
        assert len(t) >= 4 and (t.low <= t.high).all() and (t.tolerance > 0).all()
        assert t.source.str.len().min() > 20, mv  # every range says where it comes from
        assert set(t.view) <= {"side", "front", "any"}
    with pytest.raises(ValidationError):
        S.reference_table("curling")


@pytest.mark.parametrize(
    "movement,good,bad,fault",
    [
        ("squat", dict(depth=120, lean=35), dict(depth=75, lean=25), "depth"),
        ("squat", dict(depth=120, lean=35), dict(depth=120, lean=70), "trunk_lean"),
        (
            "squat",
            dict(depth=120, lean=30, view="front"),
            dict(depth=120, lean=30, valgus=20, view="front"),
            "knee_valgus",
        ),
        ("squat", dict(depth=120, lean=30, view="front"), dict(depth=120, lean=30, asym=25, view="front"), "symmetry"),
        ("deadlift", dict(), dict(hips_first=True), "hips_first"),
        ("overhead_press", dict(lean=0), dict(lean=25), "lean_back"),
    ],
)
def test_lifts_good_and_faulty(movement, good, bad, fault):
    g = S.score(K.synthetic_lift(movement, **good), movement)
    b = S.score(K.synthetic_lift(movement, **bad), movement)
    assert fault not in g.faults and fault in b.faults and b.score < g.score
    assert g.metrics["reps"] == 3 and b.metrics["reps"] == 3
    cue = S.REFERENCE_RANGES[movement][fault].cue
    assert cue in b.feedback


def test_pitch_measures_are_read_at_foot_plant_and_release():
    r = S.score(K.synthetic_pitch(elbow=95, abduction=85, stride=0.82, tilt=30), "pitch")
    v = {m.name: m.value for m in r.measures}
    assert (
        abs(v["elbow_fp"] - 95) < 1
        and abs(v["shoulder_fp"] - 85) < 1
        and abs(v["stride"] - 82) < 3
        and abs(v["trunk_release"] - 30) < 2
    )
    assert r.score > 90 and r.events["foot_plant"] < r.events["release"]
    bad = S.score(K.synthetic_pitch(elbow=150, abduction=45, stride=0.55, tilt=5), "pitch")
    assert {"elbow_fp", "shoulder_fp", "stride", "trunk_release"} <= set(bad.faults) and bad.score < 20
    assert {m.name: m.weight for m in bad.measures}["arm_slot"] == 0  # reported, not scored


@pytest.mark.parametrize("movement", ["shot_put", "discus"])
def test_throws_release_angle_and_height(movement):
    ang, h = (38, 1.15) if movement == "shot_put" else (36, 0.95)
    r = S.score(K.synthetic_throw(angle=ang, release_height=h), movement)
    v = {m.name: m.value for m in r.measures}
    assert abs(v["release_angle"] - ang) < 1 and abs(v["release_height"] - h) < 0.03 and r.score > 85
    low = S.score(K.synthetic_throw(angle=15, release_height=0.6), movement)
    assert {"release_angle", "release_height"} <= set(low.faults)
    assert "release_angle" in S.THROW_ESTIMABILITY.measure.tolist()


def test_jump_scores_landing_and_reports_height():
    r = S.score(K.synthetic_jump(flight=0.5, landing=70), "jump", height_m=1.75)
    assert r.faults == [] and r.score > 90 and abs(r.metrics["jump_height_flight_m"] - K.G * 0.25 / 8) < 0.02
    stiff = S.score(K.synthetic_jump(landing=15), "jump", height_m=1.75)
    assert "landing_flexion" in stiff.faults
    nothing = S.score(K.stick_figure(60), "jump")
    assert nothing.score is None and "no take-off" in nothing.feedback


def test_confidence_falls_when_the_measures_landmarks_are_hidden():
    da = K.synthetic_lift("squat", depth=120, lean=35)
    seen = S.score(da, "squat")
    v = da.values.copy()
    legs = [
        K.LANDMARKS.index(f"{s}_{p}") for s in ("left", "right") for p in ("hip", "knee", "ankle", "heel", "foot_index")
    ]
    v[:, legs, 3] = 0.05
    hidden = S.score(da.copy(data=v), "squat")
    depth = lambda r: next(m for m in r.measures if m.name == "depth").confidence
    assert depth(hidden) < 0.1 * depth(seen) and hidden.confidence < 0.5 * seen.confidence
    assert "Confidence is low" in hidden.feedback


def test_results_are_json_safe():
    r = S.score(K.synthetic_lift("squat", valgus=5), "squat")
    d = r.to_dict()
    text = json.dumps(d, allow_nan=False)  # no NaN may reach the store
    back = json.loads(text)
    assert back["movement"] == "squat" and set(back["measures"]) == set(S.REFERENCE_RANGES["squat"])
    assert len(back["metrics"]["per_rep"]) == 3 and r.table().shape[0] == 5


def test_scores_refuse_a_photo_and_unknown_movements():
    da = K.stick_figure(1)
    with pytest.raises(ValidationError, match="at least 10 frames"):
        S.score(da, "squat")
    with pytest.raises(ValidationError, match="unknown movement"):
        S.score(K.stick_figure(20), "curling")


def test_pose_science_does_not_import_the_store():
    import subprocess
    import sys

    code = (
        "import sys; import pitchlab.pose.landmarks, pitchlab.pose.clean, pitchlab.pose.kinematics, pitchlab.pose.scores, "
        "pitchlab.pose.privacy; bad = sorted(m for m in sys.modules if m.startswith('pitchlab.') and not m.startswith('pitchlab.pose') "
        "and m != 'pitchlab.core'); print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]", f"pitchlab.pose.* imported {out}"
