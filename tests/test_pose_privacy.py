"""Privacy: faces blurred in every written frame (face pixels change, the rest does not), bystanders included."""
from pathlib import Path

import numpy as np
import pytest

from test_pose_landmarks import DEMO, PHOTO, demo_frames, write_clip

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


@pytest.fixture(scope="module")
def photo():
    import cv2
    from pitchlab.pose.landmarks import landmarks
    return landmarks(PHOTO), cv2.imread(str(PHOTO))


def test_blur_changes_the_face_and_nothing_else(photo):
    from pitchlab.pose.privacy import blur_boxes, face_boxes
    da, img = photo
    (x0, y0, x1, y1), = face_boxes(da)[0]
    W, H = da.attrs["width"], da.attrs["height"]
    face = da.sel(frame=0, landmark=["nose", "left_eye", "right_eye", "left_ear", "right_ear", "mouth_left", "mouth_right"],
                  coord=["x", "y"]).values * [W, H]
    assert (face[:, 0] > x0).all() and (face[:, 0] < x1).all() and (face[:, 1] > y0).all() and (face[:, 1] < y1).all()
    assert (y1 - y0) < 0.6 * H and (x1 - x0) < 0.6 * W  # the face, not the whole picture
    out = blur_boxes(img, [(x0, y0, x1, y1)])
    changed = np.abs(out.astype(int) - img).sum(-1) > 0
    inside = np.zeros(changed.shape, bool); inside[y0:y1, x0:x1] = True
    assert not changed[~inside].any()              # the rest did not change at all
    assert changed[inside].mean() > 0.8            # nearly every face pixel did
    assert np.abs(out.astype(int) - img)[inside].mean() > 10
    # detail is gone: the blurred face has far less high-frequency energy than the original
    import cv2
    lap = lambda a: float(np.abs(cv2.Laplacian(cv2.cvtColor(a[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY), cv2.CV_64F)).mean())
    assert lap(out) < 0.3 * lap(img)
    assert np.array_equal(blur_boxes(img, []), img) and blur_boxes(img, [(5, 5, 5, 5)]).tobytes() == img.tobytes()


def test_face_boxes_hold_over_short_gaps_and_merge():
    from pitchlab.pose.kinematics import stick_figure
    from pitchlab.pose.privacy import face_boxes
    da = stick_figure(20, view="front", height_px=300)
    v = da.values.copy(); v[8:11, :11, :2] = np.nan  # three frames without the face
    fb = face_boxes(da.copy(data=v), hold=5)
    assert all(len(b) == 1 for b in fb)  # held through the gap, one box a frame
    assert fb[9] == fb[0]


def test_written_overlay_video_has_the_face_blurred(tmp_path):
    import cv2
    from pitchlab.pose.landmarks import landmarks, iter_frames
    from pitchlab.pose.clean import clean
    from pitchlab.pose.kinematics import joint_angles
    from pitchlab.pose.privacy import write_overlay, face_boxes
    clip = write_clip(tmp_path / "clip.mp4", demo_frames(20, 50))
    raw = landmarks(clip)
    cl = clean(raw, "jump")
    out = write_overlay(clip, cl, tmp_path / "overlay.mp4", joint_angles(cl), everyone=False)
    src = [f for _, _, f in iter_frames(clip)]
    got = [f for _, _, f in iter_frames(out)]
    assert len(got) == len(src) == 30 and got[0].shape == src[0].shape
    boxes = face_boxes(raw)
    for i in (5, 15, 25):
        x0, y0, x1, y1 = boxes[i][0]
        inside = np.abs(got[i][y0:y1, x0:x1].astype(int) - src[i][y0:y1, x0:x1]).mean()
        far = np.abs(got[i][-40:, :40].astype(int) - src[i][-40:, :40]).mean()  # a corner far from face and skeleton
        assert inside > 8 and far < 4, (i, inside, far)
    gif = write_overlay(clip, cl, tmp_path / "overlay.gif", everyone=False)
    from PIL import Image
    assert Image.open(gif).n_frames == 15 and max(Image.open(gif).size) <= 360


def test_strict_mode_blurs_everything_but_the_athlete(tmp_path):
    from pitchlab.pose.landmarks import landmarks, iter_frames
    from pitchlab.pose.privacy import overlay_frames
    clip = write_clip(tmp_path / "clip.mp4", demo_frames(20, 30))
    raw = landmarks(clip)
    plain = [f for _, _, f in iter_frames(clip)]
    strict = [f for _, _, f in overlay_frames(clip, raw, everyone=False, background="blur")]
    keep = [f for _, _, f in overlay_frames(clip, raw, everyone=False)]
    corner = lambda f, i: np.abs(f[:30, -60:].astype(int) - plain[i][:30, -60:]).mean()  # background, top right
    assert all(corner(strict[i], i) > corner(keep[i], i) + 1 for i in range(len(plain)))


def test_bystanders_faces_are_found_by_the_four_person_pass():
    from pitchlab.pose.privacy import people_faces
    faces = people_faces(DEMO, stop=70)
    her = [f for f in faces[60:70] for b in f if b[0] > 0.7]  # the passer-by on the right, frames 60-69
    assert len(her) >= 5
