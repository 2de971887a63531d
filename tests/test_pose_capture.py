"""Capture checks on the real clip made worse with OpenCV: feet cut off, athlete scaled down, darkened; each gives its warning."""

import numpy as np
import pytest

from test_pose_landmarks import DEMO, write_clip

# slow: MediaPipe on the real clip; `make test` (--runslow) runs it, `make test-quick` does not
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::RuntimeWarning")]


@pytest.fixture(scope="module")
def frames():
    """The first 40 frames of the shared clip (1768 x 994), the man on the box in full view."""
    from pitchlab.pose.landmarks import iter_frames

    return [f for _, _, f in iter_frames(DEMO, stop=40)]


def _codes(path, movement="jump"):
    from pitchlab.pose.capture import check_clip

    return {w["code"]: w for w in check_clip(path, movement)}


def _small(f, size=(960, 540)):
    import cv2

    return cv2.resize(f, size, interpolation=cv2.INTER_AREA)


def test_the_real_clip_passes_the_framing_checks(frames, tmp_path):
    codes = _codes(write_clip(tmp_path / "as_filmed.mp4", [_small(f) for f in frames]))
    assert not {"out_of_frame", "too_small", "too_dark", "no_athlete"} & set(codes), codes


def test_feet_cut_off_is_out_of_frame(frames, tmp_path):
    clip = write_clip(tmp_path / "no_feet.mp4", [_small(f[0:380, 300:1100], (800, 380)) for f in frames])
    w = _codes(clip)["out_of_frame"]
    assert "feet" in w["message"] and w["confidence_factor"] == 0.7


def test_scaled_down_athlete_is_too_small(frames, tmp_path):
    import cv2

    def shrink(f):
        canvas = np.full((540, 960, 3), 128, np.uint8)
        canvas[300 : 300 + 162, 400 : 400 + 288] = cv2.resize(f, (288, 162), interpolation=cv2.INTER_AREA)
        return canvas

    codes = _codes(write_clip(tmp_path / "far.mp4", [shrink(f) for f in frames]))
    assert "too_small" in codes or "no_athlete" in codes, codes
    if "too_small" in codes:
        assert "of the frame's height" in codes["too_small"]["message"]


def test_darkened_clip_is_too_dark_and_says_so_before_the_wait(frames, tmp_path):
    from pitchlab.core import ValidationError
    from pitchlab.pose.pipeline import run

    dark = [(_small(f).astype(np.float32) * 0.3).astype(np.uint8) for f in frames]  # mean luma 126 -> 38
    clip = write_clip(tmp_path / "dusk.mp4", dark)
    assert "too dark (mean brightness 3" in _codes(clip)["too_dark"]["message"]
    seen = []
    with pytest.raises(ValidationError, match="no person was detected"):  # MediaPipe finds nobody in this light
        run(clip, "jump", progress=lambda stage, f, **kw: seen.append((stage, kw.get("warnings"))))
    checks = [w for stage, w in seen if stage == "checks"]
    assert checks and "too_dark" in [w["code"] for w in checks[0]]  # told before the pose pass ended


def test_warnings_lower_the_result_confidence(frames, tmp_path):
    from pitchlab.pose.pipeline import run
    from pitchlab.pose.scores import score

    clip = write_clip(tmp_path / "no_feet.mp4", [_small(f[0:380, 300:1100], (800, 380)) for f in frames])
    r = run(clip, "squat")
    assert "out_of_frame" in [w["code"] for w in r.result.metrics["capture_warnings"]]
    plain = score(r.clean, "squat")
    assert r.result.metrics["capture_factor"] == pytest.approx(np.prod([w["confidence_factor"] for w in r.warnings]))
    assert r.result.confidence == pytest.approx(plain.confidence * r.result.metrics["capture_factor"], abs=1e-3)
    assert "Capture: the athlete is not fully in frame" in r.result.feedback


def test_low_frame_rate_for_a_pitch(frames, tmp_path):
    clip = write_clip(tmp_path / "slow.mp4", [_small(f) for f in frames[::2]], fps=15.0)
    w = _codes(clip, "pitch")["low_fps"]
    assert "15 fps is too low" in w["message"] and w["confidence_factor"] == pytest.approx(15 / 40)


def test_wrong_side_for_the_movement(frames, tmp_path):
    from pitchlab.pose.capture import view_coverage

    clip = write_clip(tmp_path / "front.mp4", [_small(f) for f in frames])
    codes = _codes(clip, "shot_put")  # the man faces the camera; a shot put's measures need a side view
    assert "wrong_view" in codes and "side view" in codes["wrong_view"]["message"]
    assert view_coverage("shot_put", "front") < 0.8
