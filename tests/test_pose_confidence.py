"The completeness rule on the real clip: a jump whose landing is cut by the clip's end is flagged and its confidence capped."

import pytest

from pitchlab.core import project_root
from pitchlab.pose.clean import clean
from pitchlab.pose.scores import CONFIDENCE_LOW, CUT_CAPS, EDGE_FRAMES, score

CLIP = project_root() / "data" / "samples" / "pose" / "sports2d_demo.mp4"


@pytest.fixture(scope="module")
def raw():
    "Real MediaPipe landmarks of the whole clip (230 frames), found once for the module."
    from pitchlab.pose.landmarks import landmarks

    if not CLIP.exists():
        pytest.skip(f"{CLIP} is not in this clone")
    return landmarks(CLIP)


def _codes(res) -> list:
    return [w["code"] for w in res.warnings]


def test_whole_jump_has_no_completeness_warning(raw):
    res = score(clean(raw, "jump"), "jump")
    assert res.score is not None
    assert res.events["landing"] > res.events["takeoff"] > 1.0  # the box jump, not a bounce
    assert _codes(res) == []
    assert res.to_dict()["warnings"] == []


def test_jump_with_its_landing_cut_is_flagged_and_capped(raw):
    whole = score(clean(raw, "jump"), "jump")
    land = int(round(whole.events["landing"] * raw.attrs["fps"]))  # landing frame
    cut = raw.isel(frame=slice(0, land + EDGE_FRAMES))  # the clip ends 2 frames after touch-down
    res = score(clean(cut, "jump"), "jump")
    assert "movement_cut_at_clip_edge" in _codes(res)
    assert res.confidence <= CUT_CAPS["movement_cut_at_clip_edge"] < CONFIDENCE_LOW
    w = next(w for w in res.warnings if "clip's end" in w["message"])  # the cut is at the end
    assert w["code"] == "movement_cut_at_clip_edge" and w["confidence_cap"] == CUT_CAPS["movement_cut_at_clip_edge"]
    assert "Confidence is low: " in res.feedback and w["message"] in res.feedback
    assert w in res.to_dict()["warnings"]
