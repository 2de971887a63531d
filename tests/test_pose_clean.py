"""Cleaning landmarks: properties that must hold for any input, checked with hypothesis."""

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings, strategies as st

from pitchlab.core import ValidationError
from pitchlab.pose.landmarks import LANDMARKS
from pitchlab.pose import clean as C

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def smooth_landmarks(n=90, fps=30.0, f1=0.8, f2=0.5, phase=0.0):
    """Landmarks following slow sines; the right side 0.15 to the right of the left side."""
    t = np.arange(n) / fps
    k = np.arange(33)
    x = 0.3 + 0.005 * k[None, :] + 0.05 * np.sin(2 * np.pi * f1 * t + phase)[:, None]
    y = 0.2 + 0.015 * k[None, :] + 0.05 * np.cos(2 * np.pi * f2 * t)[:, None]
    right = np.array([n.startswith("right") for n in LANDMARKS])
    x = x + 0.15 * right
    v = np.stack([x, y, np.zeros_like(x), np.full_like(x, 0.9)], -1)
    w = v.copy()
    w[..., :3] *= 1.7
    return xr.DataArray(
        v,
        dims=("frame", "landmark", "coord"),
        coords=dict(
            frame=np.arange(n),
            landmark=list(LANDMARKS),
            coord=["x", "y", "z", "visibility"],
            time=("frame", t),
            world=(("frame", "landmark", "coord"), w),
        ),
        attrs=dict(fps=fps, width=640, height=480),
    )


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 80), st.integers(1, 6), st.sampled_from(list(C.SWAP_GROUPS))), min_size=1, max_size=4
    ),
    st.floats(0, 6.28),
)
def test_swapped_limbs_are_put_back(swaps, phase):
    truth = smooth_landmarks(phase=phase)
    v = truth.values.copy()
    w = truth.world.values.copy()
    for start, length, group in swaps:
        li = [LANDMARKS.index(f"left_{p}") for p in C.SWAP_GROUPS[group]]
        ri = [LANDMARKS.index(f"right_{p}") for p in C.SWAP_GROUPS[group]]
        sl = slice(start, min(start + length, 89))
        for arr in (v, w):
            a, b = arr[sl][:, li].copy(), arr[sl][:, ri].copy()
            sub = arr[sl]
            sub[:, li], sub[:, ri] = b, a
            arr[sl] = sub
    broken = truth.copy(data=v)
    broken["world"] = (("frame", "landmark", "coord"), w)
    fixed = C.fix_swaps(broken)
    np.testing.assert_allclose(fixed.values, truth.values, atol=1e-12)
    np.testing.assert_allclose(fixed.world.values, truth.world.values, atol=1e-12)


def test_overlapping_sides_are_not_swapped():
    truth = smooth_landmarks()
    v = truth.values.copy()
    right = [i for i, n in enumerate(LANDMARKS) if n.startswith("right")]
    left = [LANDMARKS.index(LANDMARKS[i].replace("right", "left")) for i in right]
    v[:, right] = v[:, left] + 1e-4  # a side view: both sides on top of each other
    out = C.fix_swaps(truth.copy(data=v))
    assert out.attrs["swaps"] == 0 and np.array_equal(out.values, v)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 85), st.integers(1, 25)), min_size=1, max_size=5), st.integers(1, 15))
def test_only_interior_gaps_up_to_max_gap_are_filled(gaps, max_gap):
    truth = smooth_landmarks()
    v = truth.values.copy()
    col = LANDMARKS.index("left_knee")
    for s, n in gaps:
        v[s : s + n, col, :3] = np.nan
    out = C.interpolate_gaps(truth.copy(data=v), max_gap=max_gap).values[:, col, 0]
    miss = np.isnan(v[:, col, 0])
    d = np.diff(np.r_[0, miss.astype(int), 0])
    for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)):
        interior = a > 0 and b < len(miss)
        if interior and b - a <= max_gap:
            assert np.isfinite(out[a:b]).all()
            np.testing.assert_allclose(
                out[a:b], truth.values[a:b, col, 0], atol=0.04
            )  # a chord of a slow sine: close to it
        else:
            assert np.isnan(out[a:b]).all()
    assert np.array_equal(out[~miss], v[~miss, col, 0])


@settings(max_examples=20, deadline=None)
@given(st.floats(-5, 5), st.sampled_from([3.0, 6.0, 10.0, 12.0]), st.integers(12, 120))
def test_butterworth_keeps_constants_and_removes_nothing_slow(c, cutoff, n):
    da = smooth_landmarks(n)
    flat = da.copy(data=np.where(np.arange(4) < 3, c, 0.9) * np.ones(da.shape))
    out = C.butterworth(flat, cutoff)
    np.testing.assert_allclose(out.values, flat.values, atol=1e-9)


def test_butterworth_gaps_and_nyquist():
    da = smooth_landmarks()
    v = da.values.copy()
    v[40:45] = np.nan
    out = C.butterworth(da.copy(data=v), 6.0)
    assert np.isnan(out.values[40:45, :, :3]).all() and np.isfinite(out.values[:40, :, :3]).all()
    with pytest.raises(ValidationError, match="Nyquist"):
        C.butterworth(da, 15.0)  # 15 Hz at 30 fps
    assert (
        C.cutoff_for("pitch", 30.0) == 12.0
        and C.cutoff_for("pitch", 240.0) == 20.0
        and C.cutoff_for("squat", 30) == 6.0
    )


@settings(max_examples=30, deadline=None)
@given(
    st.integers(3, 86), st.floats(0.15, 0.4), st.sampled_from(["x", "y"])
)  # a full window; spikes well above the trend
def test_hampel_removes_a_spike_and_leaves_the_rest(at, size, coord):
    truth = smooth_landmarks()
    v = truth.values.copy()
    col, ci = LANDMARKS.index("right_wrist"), ["x", "y"].index(coord)
    v[at, col, ci] += size
    out = C.hampel(truth.copy(data=v)).values
    assert abs(out[at, col, ci] - truth.values[at, col, ci]) < 0.02  # replaced by its window median
    rest = np.ones(v.shape, bool)
    rest[max(0, at - 3) : at + 4, col] = False
    assert np.abs(out - truth.values)[rest].max() < 1e-3


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-170, 170), min_size=2, max_size=200), st.floats(-1000, 1000))
def test_unwrap_removes_every_jump_past_180(steps, start):
    truth = start + np.cumsum(np.r_[0.0, steps])
    wrapped = (truth + 180) % 360 - 180
    u = C.unwrap_deg(wrapped)
    assert np.abs(np.diff(u)).max() < 180 + 1e-6
    np.testing.assert_allclose(u - u[0], truth - truth[0], atol=1e-6)


def test_clean_pipeline_handles_all_faults_at_once():
    truth = smooth_landmarks()
    rng = np.random.default_rng(3)
    v = truth.values.copy()
    v[..., :2] += rng.normal(0, 0.003, v[..., :2].shape)
    v[30, LANDMARKS.index("left_knee"), 1] += 0.3  # outlier
    v[50:54] = np.nan  # short gap
    v[70, :, 3] = 0.1  # unsure frame
    legs = [LANDMARKS.index(f"{s}_{p}") for s in ("left", "right") for p in C.SWAP_GROUPS["legs"]]
    v[20:23, legs] = v[20:23][:, legs[4:] + legs[:4]]  # swapped legs
    out = C.clean(truth.copy(data=v), "squat")
    assert not np.isnan(out.values[..., :3]).any()
    assert np.abs(out.values - truth.values)[..., :2].mean() < 0.003
    assert (
        out.attrs["swaps"] >= 3 and out.attrs["cutoff_hz"] == 6.0 and out.attrs["masked_points"] == 5 * 33
    )  # the unsure frame and the 4 missing ones
    with pytest.raises(ValidationError, match="unknown movement"):
        C.clean(truth, "curling")


def test_a_point_missing_for_whole_windows_stays_missing_without_a_warning():
    import threading
    import time
    import warnings

    truth = smooth_landmarks()
    v = truth.values.copy()
    knee, hip = LANDMARKS.index("left_knee"), LANDMARKS.index("left_hip")
    v[30:60, knee, :3] = np.nan  # out of frame for a second: many all-NaN Hampel windows
    v[:, hip, :3] = np.nan  # never seen
    da = truth.copy(data=v)
    done = threading.Event()

    def other_thread():  # as the pose pipeline's overlay thread: its catch_warnings restores the global filters
        for _ in range(20_000):
            if done.is_set():
                return
            with warnings.catch_warnings():
                time.sleep(0.0005)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the benchmark saw 'All-NaN slice encountered' leak from nanmedian
        th = threading.Thread(target=other_thread, daemon=True)
        th.start()
        try:
            for _ in range(20):
                h = C.hampel(da)
                out = C.clean(da, "jump")
        finally:
            done.set()
            th.join(timeout=30)
    assert np.isnan(h.values[30:60, knee, :3]).all() and np.isnan(h.values[:, hip, :3]).all()
    np.testing.assert_allclose(np.delete(h.values, [knee, hip], 1), np.delete(truth.values, [knee, hip], 1), atol=1e-9)
    assert np.isnan(out.values[:, hip, :3]).all() and np.isnan(out.values[30:60, knee, :2]).all()
    assert np.isfinite(out.values[:25, knee, :3]).all() and np.isfinite(out.values[65:, knee, :3]).all()
