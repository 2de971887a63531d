"""Geometry on landmark arrays built with known angles and events: every angle and event must be recovered."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from pitchlab.core import ValidationError
from pitchlab.pose import kinematics as K
from pitchlab.pose.clean import clean

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")
angle = st.floats(0, 150)


@settings(max_examples=40, deadline=None)
@given(
    lean=st.floats(-30, 60),
    hip=angle,
    knee=angle,
    ankle=st.floats(-40, 40),
    shoulder=st.floats(5, 175),
    elbow=angle,
    hip_r=angle,
    knee_r=angle,
)
def test_side_view_joint_angles_are_recovered_in_image_and_world(
    lean, hip, knee, ankle, shoulder, elbow, hip_r, knee_r
):
    truth = dict(
        trunk_lean=lean,
        left_hip_flexion=hip,
        left_knee_flexion=knee,
        left_ankle_dorsiflexion=ankle,
        left_shoulder_flexion=shoulder,
        left_elbow_flexion=elbow,
        right_hip_flexion=hip_r,
        right_knee_flexion=knee_r,
    )
    da = K.stick_figure(3, angles=truth)
    expected = {
        k.replace("shoulder_flexion", "shoulder_abduction"): abs(v) if k == "trunk_lean" else v
        for k, v in truth.items()
    }
    for world in (False, True):
        got = K.joint_angles(da, world=world)
        for k, v in expected.items():
            np.testing.assert_allclose(got.sel(angle=k).values, v, atol=1e-4, err_msg=f"{k} world={world}")


@settings(max_examples=40, deadline=None)
@given(vl=st.floats(-30, 30), vr=st.floats(-30, 30), abd_l=st.floats(0, 175), abd_r=st.floats(0, 175))
def test_front_view_valgus_and_abduction_are_recovered(vl, vr, abd_l, abd_r):
    da = K.stick_figure(
        2,
        view="front",
        angles=dict(
            left_knee_valgus=vl, right_knee_valgus=vr, left_shoulder_abduction=abd_l, right_shoulder_abduction=abd_r
        ),
    )
    got = K.joint_angles(da).isel(frame=0)
    for k, v in dict(
        left_knee_valgus=vl, right_knee_valgus=vr, left_shoulder_abduction=abd_l, right_shoulder_abduction=abd_r
    ).items():
        assert abs(float(got.sel(angle=k)) - v) < 1e-4, k
    assert K.camera_view(da)[0] == "front" and K.camera_view(K.stick_figure(2))[0] == "side"


def test_knee_is_zero_when_the_shank_continues_the_thigh():
    da = K.stick_figure(1)
    a = K.joint_angles(da).isel(frame=0)
    for k in (
        "left_knee_flexion",
        "right_knee_flexion",
        "left_hip_flexion",
        "left_elbow_flexion",
        "trunk_lean",
        "left_knee_valgus",
    ):
        assert abs(float(a.sel(angle=k))) < 1e-4
    assert (
        abs(float(a.sel(angle="left_shoulder_abduction"))) < 1e-4
        and abs(float(a.sel(angle="left_ankle_dorsiflexion"))) < 1e-4
    )


@settings(max_examples=20, deadline=None)
@given(turns=st.floats(-3, 3))
def test_segment_angles_never_jump_past_360(turns):
    n = 60
    da = K.stick_figure(n, angles=dict(left_shoulder_flexion=np.linspace(0, 360 * turns, n)))
    seg = K.segment_angles(da).sel(segment="left_upper_arm").values
    assert np.abs(np.diff(seg)).max() < 180
    np.testing.assert_allclose(seg[-1] - seg[0], 360 * turns, atol=1e-6)


def test_velocity_follows_the_time_coordinate():
    da = K.stick_figure(30, dx=np.arange(30) * 5.0)
    t = np.cumsum(np.r_[0, np.where(np.arange(29) < 15, 1 / 30, 1 / 15)])  # the frame rate halves mid-clip
    da = da.assign_coords(time=("frame", t))
    sp = K.speed(da, "left_hip")
    np.testing.assert_allclose(sp[2:13], 150.0, rtol=1e-9)  # 5 px per 1/30 s
    np.testing.assert_allclose(sp[17:-2], 75.0, rtol=1e-9)  # 5 px per 1/15 s
    with pytest.raises(ValidationError):
        K.velocity(da.isel(frame=slice(0, 1)))


@settings(max_examples=15, deadline=None)
@given(px=st.floats(150, 600), h=st.floats(1.4, 2.1))
def test_scale_to_metres_from_height_or_world(px, h):
    da = K.stick_figure(5, height_px=px, height=int(px * 1.6), width=int(px * 2), height_m=h)
    assert abs(K.body_height(da) - px) < 1e-6 * px
    assert abs(K.body_height(da, world=True) - h) < 1e-6
    assert abs(K.metres_per_pixel(da) - h / px) < 1e-9
    assert abs(K.metres_per_pixel(da, 1.80) - 1.80 / px) < 1e-9


@settings(max_examples=12, deadline=None)
@given(flight=st.floats(0.3, 0.7), fps=st.sampled_from([30.0, 60.0, 120.0]))
def test_jump_events_and_height_from_flight_time(flight, fps):
    da = K.synthetic_jump(fps=fps, flight=flight)
    ev = K.jump_events(da, height_m=1.75)
    tol = 1.0 / fps
    assert ev["found"] and ev["flight_valid"]
    assert abs(ev["takeoff_time"] - 0.9) <= tol and abs(ev["landing_time"] - (0.9 + flight)) <= tol
    h = K.G * flight**2 / 8
    assert abs(ev["jump_height_flight_m"] - h) < K.G * flight * tol / 4 + 0.005  # about a frame of flight time
    assert abs(ev["jump_height_hip_m"] - h) < 0.03
    assert 0.1 < ev["countermovement_depth_m"] < 0.5 and abs(da.time.values[ev["bottom_frame"]] - 0.7) < 0.1


def test_jump_events_survive_cleaning_and_noise():
    da = K.synthetic_jump(flight=0.5)
    rng = np.random.default_rng(0)
    v = da.values.copy()
    v[..., :2] += rng.normal(0, 0.0015, v[..., :2].shape)  # about 0.7 px of jitter at 480 px
    noisy = da.copy(data=v)
    ev = K.jump_events(clean(noisy, "jump"), height_m=1.75)
    assert ev["flight_valid"] and abs(ev["jump_height_flight_m"] - K.G * 0.25 / 8) < 0.04


def test_no_jump_in_standing_still():
    ev = K.jump_events(K.stick_figure(60))
    assert ev["found"] is False and np.isnan(ev["flight_time"])


@settings(max_examples=10, deadline=None)
@given(
    reps=st.integers(1, 5),
    period=st.floats(1.5, 4.0),
    movement=st.sampled_from(["squat", "deadlift", "overhead_press"]),
)
def test_every_rep_and_its_turning_point_is_found(reps, period, movement):
    da = K.synthetic_lift(movement, reps=reps, period=period, pause=0.6)
    ev = K.lift_events(da, movement)
    assert len(ev) == reps
    turns = 0.6 + period / 2 + np.arange(reps) * (period + 0.6)
    np.testing.assert_allclose(ev.t_turn.to_numpy(), turns, atol=1.5 / 30)
    assert (ev.t_start < ev.t_turn).all() and (ev.t_turn < ev.t_end).all()
    assert (ev.t_end - ev.t_start).between(0.4 * period, period + 0.1).all()


def test_lift_events_unknown_movement():
    with pytest.raises(ValidationError, match="no rep detection"):
        K.lift_events(K.stick_figure(10), "bench")


def test_pitch_events_side_and_timing():
    da = K.synthetic_pitch()
    ev = K.throw_events(da)
    assert (ev["hand"], ev["lead"], ev["stride_seen"]) == ("right", "left", True)
    for k, v in dict(release_time=1.2, foot_plant_time=1.0, leg_lift_time=0.5).items():
        assert abs(ev[k] - v) <= 1 / 30 + 1e-9, k
    assert K.throw_events(da, hand="left")["lead"] == "right"
    with pytest.raises(ValidationError):
        K.throw_events(da, hand="both")


def test_plot_angles_marks_events():
    da = K.synthetic_jump()
    fig = K.plot_angles(
        K.joint_angles(da), ["left_knee_flexion"], events=dict(takeoff=0.9, landing=1.4, nothing=float("nan"))
    )
    ax = fig.axes[0]
    assert len(ax.lines) == 1 + 2 and ax.get_xlabel() == "time (s)"
