"""Privacy: faces blurred in every written frame (face pixels change, the rest does not), bystanders included."""

import numpy as np
import pytest

from pitchlab.core import ValidationError

from test_pose_landmarks import DEMO, PHOTO, demo_frames, write_clip

# slow: MediaPipe face and pose passes over video; `make test` (--runslow) runs it, `make test-quick` does not
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::RuntimeWarning")]


def read_webm(path) -> tuple:
    "An overlay read back with PyAV: (codec, BGR frames)."
    import av

    with av.open(str(path)) as c:
        return c.streams.video[0].codec_context.name, [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]


@pytest.fixture(scope="module")
def photo():
    import cv2
    from pitchlab.pose.landmarks import landmarks

    return landmarks(PHOTO), cv2.imread(str(PHOTO))


def test_blur_changes_the_face_and_nothing_else(photo):
    from pitchlab.pose.privacy import blur_boxes, face_boxes

    da, img = photo
    ((x0, y0, x1, y1),) = face_boxes(da)[0]
    W, H = da.attrs["width"], da.attrs["height"]
    face = da.sel(
        frame=0,
        landmark=["nose", "left_eye", "right_eye", "left_ear", "right_ear", "mouth_left", "mouth_right"],
        coord=["x", "y"],
    ).values * [W, H]
    assert (face[:, 0] > x0).all() and (face[:, 0] < x1).all() and (face[:, 1] > y0).all() and (face[:, 1] < y1).all()
    assert (y1 - y0) < 0.6 * H and (x1 - x0) < 0.6 * W  # the face, not the whole picture
    out = blur_boxes(img, [(x0, y0, x1, y1)])
    changed = np.abs(out.astype(int) - img).sum(-1) > 0
    inside = np.zeros(changed.shape, bool)
    inside[y0:y1, x0:x1] = True
    assert not changed[~inside].any()  # the rest did not change at all
    assert changed[inside].mean() > 0.8  # nearly every face pixel did
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
    v = da.values.copy()
    v[8:11, :11, :2] = np.nan  # three frames without the face
    fb = face_boxes(da.copy(data=v), hold=5)
    assert all(len(b) == 1 for b in fb)  # held through the gap, one box a frame
    assert fb[9] == fb[0]


def test_written_overlay_video_has_the_face_blurred(tmp_path):
    from pitchlab.pose.landmarks import landmarks, iter_frames
    from pitchlab.pose.clean import clean
    from pitchlab.pose.kinematics import joint_angles
    from pitchlab.pose.privacy import write_overlay, face_boxes

    clip = write_clip(tmp_path / "clip.mp4", demo_frames(20, 50))
    raw = landmarks(clip)
    cl = clean(raw, "jump")
    out = write_overlay(clip, cl, tmp_path / "overlay.webm", joint_angles(cl), everyone=False)
    src = [f for _, _, f in iter_frames(clip)]
    codec, got = read_webm(out)  # the same VP9 WebM the pipeline, jobs, the page and the API write
    assert codec == "vp9" and len(got) == len(src) == 30 and got[0].shape == src[0].shape
    boxes = face_boxes(raw)
    for i in (5, 15, 25):
        x0, y0, x1, y1 = boxes[i][0]
        inside = np.abs(got[i][y0:y1, x0:x1].astype(int) - src[i][y0:y1, x0:x1]).mean()
        far = np.abs(got[i][-40:, :40].astype(int) - src[i][-40:, :40]).mean()  # a corner far from face and skeleton
        assert inside > 8 and far < 4, (i, inside, far)
    gif = write_overlay(clip, cl, tmp_path / "overlay.gif", everyone=False)
    from PIL import Image

    assert Image.open(gif).n_frames == 15 and max(Image.open(gif).size) <= 360
    for bad in ("overlay.mp4", "overlay.avi"):  # one overlay format: no mp4v file a browser cannot play
        with pytest.raises(ValidationError, match="use .webm"):
            write_overlay(clip, cl, tmp_path / bad, everyone=False)
        assert not (tmp_path / bad).exists()


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


# ---------- the face finder: faces whose body the pose model does not find ----------


def test_installed_face_model_is_the_checksummed_one(monkeypatch, tmp_path):
    from pitchlab.cli import FACE_MODEL, _sha256
    from pitchlab.core import NotFoundError
    from pitchlab.pose.landmarks import face_model_path

    p = face_model_path()
    assert p.name == "face_landmarker.task" and _sha256(p) == FACE_MODEL["sha256"]
    monkeypatch.setenv("PITCHLAB_FACE_MODEL", str(tmp_path / "gone.task"))
    with pytest.raises(NotFoundError) as e:
        face_model_path()
    assert "PITCHLAB_FACE_MODEL" in str(e.value) and "setup-models" in e.value.hint


def test_face_finder_and_pose_agree_on_the_photo():
    from pitchlab.pose.privacy import detected_faces, people_faces

    ((f,),) = detected_faces(PHOTO)
    ((p,),) = people_faces(PHOTO)
    inter = max(0, min(f[2], p[2]) - max(f[0], p[0])) * max(0, min(f[3], p[3]) - max(f[1], p[1]))
    assert inter > 0.5 * (p[2] - p[0]) * (p[3] - p[1])


@pytest.fixture(scope="module")
def pasted(tmp_path_factory):
    "30 frames of the shared video (640 x 360) with the astronaut's face in grey, 50 px high and no body, pasted top left."
    import cv2
    from pitchlab.pose.landmarks import iter_frames, landmarks
    from pitchlab.pose.privacy import face_boxes

    img = cv2.imread(str(PHOTO))
    ((x0, y0, x1, y1),) = face_boxes(landmarks(PHOTO), pad=0.3)[0]
    face = cv2.cvtColor(cv2.cvtColor(img[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    h = 50
    w = round(face.shape[1] / face.shape[0] * h)
    small = cv2.resize(face, (w, h), interpolation=cv2.INTER_AREA)
    frames = []
    for _, _, f in iter_frames(DEMO, max_side=640, stop=30):
        f = f.copy()
        f[30 : 30 + h, 30 : 30 + w] = small
        frames.append(f)
    return write_clip(tmp_path_factory.mktemp("pasted") / "pasted.mp4", frames), (30, 30, 30 + w, 30 + h)


def test_face_finder_finds_a_face_without_a_body_in_every_frame(pasted):
    from pitchlab.pose.privacy import detected_faces, people_faces

    clip, (x0, y0, x1, y1) = pasted
    W, H = 640, 360
    found = detected_faces(clip, every=1)
    covers = lambda ext: any(e[0] * W < x1 and e[2] * W > x0 and e[1] * H < y1 and e[3] * H > y0 for e in ext)
    assert len(found) == 30 and all(covers(f) for f in found)
    assert not any(covers(f) for f in people_faces(clip))  # the 4-person pose pass does not find it: no body
    assert not any(
        covers(f) for f in detected_faces(clip, every=1, tile=None)
    )  # too small for the whole frame: the tiles find it
    assert [bool(f) for f in detected_faces(clip, every=3)[:7]] == [True, False, False, True, False, False, True]


def test_overlay_blurs_the_face_without_a_body(pasted, tmp_path):
    import cv2
    from pitchlab.pose.landmarks import iter_frames, landmarks
    from pitchlab.pose.privacy import write_overlay

    clip, (x0, y0, x1, y1) = pasted
    out = write_overlay(clip, landmarks(clip), tmp_path / "overlay.webm")  # everyone=True: pose pass + face finder
    src = [f for _, _, f in iter_frames(clip)]
    codec, got = read_webm(out)
    assert codec == "vp9" and len(got) == len(src) == 30
    lap = lambda a: float(np.abs(cv2.Laplacian(cv2.cvtColor(a[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY), cv2.CV_64F)).mean())
    ratios = [lap(g) / lap(s) for g, s in zip(got, src)]
    assert max(ratios) < 0.35, [round(r, 2) for r in ratios]  # the face's detail is gone in every frame
    without = write_overlay(
        clip, landmarks(clip), tmp_path / "pose_only.webm", faces=[[]] * 30
    )  # the athlete's own face only
    kept = read_webm(without)[1]
    assert min(lap(g) / lap(s) for g, s in zip(kept, src)) > 0.6  # without the face finder it would have stayed sharp
