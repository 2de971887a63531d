"""Pose landmarks from real media: the shared video and photo, phone rotation, variable frame rate, bad files, the model."""

import struct
from pathlib import Path

import numpy as np
import pytest

from pitchlab.core import NotFoundError, ValidationError, project_root

# slow: MediaPipe on the demo videos; `make test` (--runslow) runs it, `make test-quick` does not
pytestmark = pytest.mark.slow

ROOT = project_root(Path(__file__).resolve().parent)
DEMO = ROOT / "data" / "samples" / "pose" / "sports2d_demo.mp4"
PHOTO = ROOT / "data" / "samples" / "pose" / "skimage_astronaut.png"


# ---------- small media made at run time ----------


def write_clip(path, frames, fps=30.0):
    """Write BGR frames to an MPEG-4 (mp4v) file with OpenCV."""
    import cv2

    h, w = frames[0].shape[:2]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for f in frames:
        vw.write(f)
    vw.release()
    return Path(path)


def demo_frames(start=20, stop=60, size=(480, 270)):
    """Frames of the shared video cropped around the man on the box (he fills most of the height), resized."""
    import cv2
    from pitchlab.pose.landmarks import iter_frames

    return [
        cv2.resize(f[0:560, 400:1396], size, interpolation=cv2.INTER_AREA)
        for i, _, f in iter_frames(DEMO, stop=stop)
        if i >= start
    ]


def _boxes(b, off=0, end=None):
    """(type, offset, size) of the MP4 boxes in b[off:end], recursing into containers."""
    end = len(b) if end is None else end
    while off < end:
        size, typ = struct.unpack(">I4s", b[off : off + 8])
        yield typ.decode("latin1"), off, size
        if typ in (b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts"):
            yield from _boxes(b, off + 8, off + size)
        off += size


def set_rotation(path, degrees):
    """Tag an MP4 as a phone does: a display matrix in tkhd rotating the picture clockwise by `degrees`."""
    b = bytearray(Path(path).read_bytes())
    off = next(o for t, o, _ in _boxes(b) if t == "tkhd")
    assert b[off + 8] == 0, "tkhd version 0 expected"
    one = 0x10000
    m = {
        90: (0, one, 0, -one, 0, 0, 0, 0, 0x40000000),
        180: (-one, 0, 0, 0, -one, 0, 0, 0, 0x40000000),
        270: (0, -one, 0, one, 0, 0, 0, 0, 0x40000000),
    }[degrees]
    start = off + 8 + 4 + 4 * 5 + 8 + 8  # version/flags, 5 fields, reserved, layer/group/volume/reserved
    b[start : start + 36] = struct.pack(">9i", *m)
    Path(path).write_bytes(bytes(b))


def set_frame_durations(path, durations):
    """Rewrite the stts table of a single-track MP4 (moov after mdat) so frame k lasts durations[k] ticks."""
    b = bytearray(Path(path).read_bytes())
    boxes = list(_boxes(b))
    off, size = next((o, s) for t, o, s in boxes if t == "stts")
    assert next(o for t, o, _ in boxes if t == "mdat") < next(o for t, o, _ in boxes if t == "moov")
    runs = []
    for d in durations:
        if runs and runs[-1][1] == d:
            runs[-1][0] += 1
        else:
            runs.append([1, d])
    body = struct.pack(">II", 0, len(runs)) + b"".join(struct.pack(">II", n, d) for n, d in runs)
    new = struct.pack(">I4s", 8 + len(body), b"stts") + body
    grow = len(new) - size
    for t, o, s in boxes:  # enlarge every container holding stts
        if t in ("moov", "trak", "mdia", "minf", "stbl") and o < off < o + s:
            b[o : o + 4] = struct.pack(">I", s + grow)
    b[off : off + size] = new
    Path(path).write_bytes(bytes(b))


def timescale(path):
    b = Path(path).read_bytes()
    off = next(o for t, o, _ in _boxes(b) if t == "mdhd")
    return struct.unpack(">I", b[off + 20 : off + 24])[0]


# ---------- shared results (MediaPipe is the slow part: run each input once) ----------


@pytest.fixture(scope="module")
def demo():
    from pitchlab.pose.landmarks import landmarks

    return landmarks(DEMO)


@pytest.fixture(scope="module")
def upright(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("clip") / "upright.mp4", demo_frames())


# ---------- the model ----------


def test_model_found_through_the_clone_when_the_data_home_is_elsewhere(home):
    from pitchlab.pose.landmarks import pose_model_path

    p = pose_model_path()
    assert p.name == "pose_landmarker_full.task" and p.stat().st_size == 9_398_198
    assert not str(p).startswith(str(home))


def test_model_env_var_and_argument(monkeypatch, tmp_path):
    from pitchlab.pose.landmarks import pose_model_path, landmarks

    real = pose_model_path()
    monkeypatch.setenv("PITCHLAB_POSE_MODEL", str(real))
    assert pose_model_path() == real
    monkeypatch.setenv("PITCHLAB_POSE_MODEL", str(tmp_path / "gone.task"))
    with pytest.raises(NotFoundError) as e:
        pose_model_path()
    assert "pitchlab setup-models" in str(e.value) and "PITCHLAB_POSE_MODEL" in str(e.value)
    with pytest.raises(NotFoundError, match="setup-models"):
        landmarks(PHOTO)  # the landmarker refuses to start without its model
    assert pose_model_path(real) == real  # an explicit argument wins over the environment


def test_model_missing_everywhere_says_how_to_install(monkeypatch, home):
    import pitchlab.pose.landmarks as L

    monkeypatch.delenv("PITCHLAB_POSE_MODEL", raising=False)
    monkeypatch.setattr(L, "_clone_roots", lambda: [])
    with pytest.raises(NotFoundError) as e:
        L.pose_model_path()
    assert e.value.hint and "pitchlab setup-models" in e.value.hint


# ---------- bad input ----------


def test_bad_files_give_clear_errors(tmp_path):
    from pitchlab.pose.landmarks import landmarks

    (tmp_path / "zero.mp4").write_bytes(b"")
    (tmp_path / "corrupt.mov").write_bytes(np.random.default_rng(1).bytes(50_000))
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(NotFoundError, match="no such file"):
        landmarks(tmp_path / "missing.mp4")
    with pytest.raises(ValidationError, match=r"empty \(0 bytes\)"):
        landmarks(tmp_path / "zero.mp4")
    with pytest.raises(ValidationError) as e:
        landmarks(tmp_path / "corrupt.mov")
    assert "corrupt.mov" in str(e.value) and "H.264" in e.value.hint
    with pytest.raises(ValidationError, match="cannot be decoded as an image"):
        landmarks(tmp_path / "corrupt.png")
    with pytest.raises(ValidationError, match="is a folder"):
        landmarks(tmp_path)


def test_video_without_a_person_is_all_nan_not_an_error(tmp_path):
    from pitchlab.pose.landmarks import landmarks

    frames = [np.full((240, 320, 3), 60 + 2 * i, np.uint8) for i in range(20)]
    da = landmarks(write_clip(tmp_path / "empty.mp4", frames))
    assert da.shape == (20, 33, 4) and da.attrs["detected"] == 0.0 and bool(da.isnull().all())
    assert np.allclose(np.diff(da.time.values), 1 / 30)


# ---------- the shared photo and video ----------


def test_photo_gives_an_upper_body_pose():
    from pitchlab.pose.landmarks import landmarks, world_landmarks

    da = landmarks(PHOTO)
    assert da.dims == ("frame", "landmark", "coord") and da.shape == (1, 33, 4)
    assert (da.attrs["kind"], da.attrs["width"], da.attrs["height"]) == ("image", 512, 512)
    v = da.sel(frame=0, coord="visibility")
    assert float(v.sel(landmark=["nose", "left_eye", "right_eye", "left_shoulder", "right_shoulder"]).min()) > 0.9
    assert float(v.sel(landmark=["left_knee", "right_knee", "left_ankle", "right_ankle"]).max()) < 0.3
    x = da.sel(frame=0, coord="x")
    sw = float(x.sel(landmark="left_shoulder") - x.sel(landmark="right_shoulder"))
    assert 0.2 < sw < 0.7  # facing the camera, shoulders across a good part of the picture
    w = world_landmarks(da).sel(frame=0)
    width_m = float(
        np.linalg.norm(
            w.sel(landmark="left_shoulder", coord=["x", "y", "z"])
            - w.sel(landmark="right_shoulder", coord=["x", "y", "z"])
        )
    )
    assert 0.2 < width_m < 0.5 and w.attrs["units"] == "m"


def test_demo_video_pose_is_the_man_on_the_box(demo):
    da = demo
    assert (
        da.shape == (230, 33, 4) and da.attrs["fps"] == 30.0 and (da.attrs["width"], da.attrs["height"]) == (1768, 994)
    )
    assert np.allclose(da.time.values, np.arange(230) / 30, atol=1e-6)
    assert 0.6 < da.attrs["detected"] < 0.95
    hip_x = da.sel(landmark=["left_hip", "right_hip"], coord="x").mean("landmark")
    on_box = hip_x.sel(frame=slice(20, 150))
    assert float(on_box.notnull().mean()) > 0.95 and 0.3 < float(on_box.min()) and float(on_box.max()) < 0.5
    assert bool(hip_x.sel(frame=slice(170, 205)).isnull().all())  # the passer-by is not taken for him
    # plausible body: standing height from the world landmarks, feet below the knees below the hips
    from pitchlab.pose.kinematics import body_height

    assert 1.4 < body_height(da.sel(frame=slice(20, 150)), world=True) < 2.0
    y = da.sel(frame=slice(20, 150), coord="y")
    assert bool((y.sel(landmark="left_ankle") > y.sel(landmark="left_knee")).all())
    assert bool((y.sel(landmark="left_knee") > y.sel(landmark="left_hip")).all())
    # every detected person's face extent is kept for the blur (athlete or not)
    assert len(da.faces.values[185]) >= 1 and len(da.faces.values[0]) == 0


def test_landmarks_table_is_long_and_complete(demo):
    from pitchlab.pose.landmarks import landmarks_table, LANDMARKS

    t = landmarks_table(demo.isel(frame=slice(40, 43)))
    assert len(t) == 3 * 33 and list(t.landmark[:33]) == list(LANDMARKS)
    assert {"frame", "time", "x", "y", "z", "visibility", "world_x", "world_y", "world_z"} <= set(t.columns)
    assert t.frame.tolist()[:33] == [40] * 33


# ---------- phones: rotation and variable frame rate ----------


@pytest.mark.parametrize("degrees", [90, 270])
def test_rotated_phone_video_gives_the_upright_pose(tmp_path, upright, degrees):
    import cv2
    from pitchlab.pose.landmarks import landmarks, video_info

    turn = cv2.ROTATE_90_COUNTERCLOCKWISE if degrees == 90 else cv2.ROTATE_90_CLOCKWISE
    stored = write_clip(tmp_path / "phone.mp4", [cv2.rotate(f, turn) for f in demo_frames()])  # sensor-oriented frames
    set_rotation(stored, degrees)
    info = video_info(stored)
    assert info["rotation"] == degrees and (info["width"], info["height"]) == (480, 270)
    a, b = landmarks(upright), landmarks(stored)
    assert (b.attrs["width"], b.attrs["height"], b.attrs["rotation"]) == (480, 270, degrees)
    assert a.attrs["detected"] > 0.9 and b.attrs["detected"] > 0.9
    pts = ["left_hip", "right_hip", "left_shoulder", "right_shoulder", "left_knee", "right_knee"]
    diff = np.abs(a.sel(landmark=pts, coord=["x", "y"]) - b.sel(landmark=pts, coord=["x", "y"]))
    assert float(diff.median()) < 0.01  # same pose, same upright coordinates


def test_variable_frame_rate_uses_presentation_times(tmp_path, upright):
    from pitchlab.pose.landmarks import landmarks

    clip = write_clip(tmp_path / "vfr.mp4", demo_frames(20, 50))
    ts = timescale(clip)
    durations = (
        [ts // 30] * 10 + [ts // 20] * 10 + [ts // 60] * 10
    )  # 30 fps, a dip to 20 fps, a burst at 60 fps (same total)
    set_frame_durations(clip, durations)
    da = landmarks(clip)
    expected = np.concatenate([[0], np.cumsum(durations)[:-1]]) / ts
    assert np.allclose(da.time.values, expected, atol=2e-3)
    assert np.all(np.diff(da.time.values) > 0) and da.attrs["detected"] > 0.9
    from pitchlab.pose.kinematics import velocity

    v = velocity(da.sel(landmark="nose", coord="x"))
    assert np.isfinite(v.values).sum() > 20  # derivatives use the real times


# ---------- keeping the athlete when others are in view ----------


def _cand(cx, cy, size=0.3):
    """One fake MediaPipe person (33, 4) centred at (cx, cy), normalised."""
    c = np.zeros((33, 4))
    c[:, 0] = cx + np.linspace(-size / 4, size / 4, 33)
    c[:, 1] = cy + np.linspace(-size / 2, size / 2, 33)
    c[23:25, :2] = (cx, cy)
    c[:, 3] = 0.9
    return c


def test_tracks_reject_a_person_appearing_where_the_athlete_vanished():
    from pitchlab.pose.landmarks import _tracks, _select

    cands = []
    for f in range(100):
        if f < 40:
            cands.append(_cand(0.3 + 0.001 * f, 0.4)[None])  # athlete
        elif f < 60:
            cands.append(_cand(0.8, 0.7)[None])  # someone else, the very next frame
        elif f < 80:
            cands.append(np.zeros((0, 33, 4)))  # nobody
        else:
            cands.append(_cand(0.5, 0.4)[None])  # athlete back after a long gap
    pick = _select(_tracks(cands, 640, 480), 100, "first")
    assert (pick[:40] == 0).all() and (pick[40:60] == -1).all() and (pick[60:80] == -1).all() and (pick[80:] == 0).all()


def test_tracks_keep_the_athlete_among_two_people():
    from pitchlab.pose.landmarks import _tracks, _select

    cands = [
        np.stack([_cand(0.2, 0.5), _cand(0.7 - 0.005 * f, 0.5)])
        if f % 2
        else np.stack([_cand(0.7 - 0.005 * f, 0.5), _cand(0.2, 0.5)])
        for f in range(50)
    ]  # MediaPipe's order flips every frame
    tr = _tracks(cands, 640, 480)
    assert len(tr) == 2
    pick = _select(tr, 50, (0.2, 0.5))  # the athlete is the one near (0.2, 0.5)
    chosen = np.array([cands[f][j][23, 0] for f, j in enumerate(pick)])
    assert np.allclose(chosen, 0.2)
    with pytest.raises(ValidationError, match="unknown subject"):
        _select(tr, 50, "tallest")
