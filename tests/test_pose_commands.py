"""`pitchlab pose score`: the command line, the store, outputs kept (and not kept), bad files, Dask folders."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from test_pose_landmarks import demo_frames, write_clip

# slow: MediaPipe through the pose commands; `make test` (--runslow) runs it, `make test-quick` does not
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::RuntimeWarning")]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("media") / "box.mp4", demo_frames(20, 80))


@pytest.fixture
def store_with_athlete(home):
    from pitchlab.store import Store

    st = Store().create()
    st.write(
        "teams", pd.DataFrame([dict(team_id="T1", name="Jumpers", sport="athletics", level="senior")]), source="test"
    )
    st.write(
        "athletes",
        pd.DataFrame(
            [
                dict(
                    athlete_id="A1",
                    name="Box Jumper",
                    sex="M",
                    birth_date=pd.Timestamp("2000-01-01"),
                    sport="athletics",
                    role="jumper",
                    position=None,
                    team_id="T1",
                    height_cm=178.0,
                )
            ]
        ),
        source="test",
    )
    return st


def run(argv, capsys):
    from pitchlab import cli

    rc = cli.main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_score_stores_one_row_per_video_and_is_idempotent(clip, store_with_athlete, capsys, tmp_path):
    from pitchlab.pose.commands import sha256_file

    rc, out, err = run(
        [
            "pose",
            "score",
            str(clip),
            "--movement",
            "jump",
            "--athlete",
            "A1",
            "--height",
            "1.78",
            "--date",
            "2026-05-01",
            "--out",
            str(tmp_path / "out"),
        ],
        capsys,
    )
    assert rc == 0, err
    assert "box.mp4:" in out and "stored: 1 new" in out
    rows = store_with_athlete.read("pose_results")
    assert len(rows) == 1 and rows.athlete_id[0] == "A1" and rows.movement[0] == "jump"
    assert rows.video_sha256[0] == sha256_file(clip) and rows.date[0] == pd.Timestamp("2026-05-01")
    m = json.loads(rows.metrics[0])
    assert m["movement"] == "jump" and "landing_flexion" in m["measures"] and rows.source[0].startswith("pitchlab.pose")
    assert 0 <= rows.confidence[0] <= 1 and (pd.isna(rows.score[0]) or 0 <= rows.score[0] <= 100)
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["box.jump.angles.png", "box.jump.json", "box.jump.landmarks.parquet"]  # no video by default
    lm = pd.read_parquet(tmp_path / "out" / "box.jump.landmarks.parquet")
    assert len(lm) == 60 * 33 and {"x", "y", "visibility", "world_x"} <= set(lm.columns)
    rc, out, _ = run(
        [
            "pose",
            "score",
            str(clip),
            "--movement",
            "jump",
            "--athlete",
            "A1",
            "--height",
            "1.78",
            "--date",
            "2026-05-01",
        ],
        capsys,
    )
    assert rc == 0 and "stored: 0 new" in out
    assert len(store_with_athlete.read("pose_results")) == 1  # same video, same movement: the same row


def test_json_output_and_overlay(clip, home, capsys, tmp_path):
    rc, out, err = run(
        ["pose", "score", str(clip), "--movement", "squat", "--json", "--out", str(tmp_path), "--overlay"], capsys
    )
    assert rc == 0, err
    res = json.loads(out)
    assert len(res) == 1 and res[0]["file"].endswith("box.mp4") and res[0]["error"] is None
    assert res[0]["metrics"]["movement"] == "squat" and res[0]["frames"] == 60
    ov = tmp_path / "box.squat.overlay.webm"  # what the Pose page and the API write: VP9 WebM at OVERLAY_SIDE at most
    assert str(ov) in res[0]["outputs"] and ov.stat().st_size > 10_000
    assert not list(tmp_path.glob("*.mp4"))
    import av
    import cv2

    src = cv2.VideoCapture(str(clip))
    size = (int(src.get(cv2.CAP_PROP_FRAME_WIDTH)), int(src.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    src.release()
    with av.open(str(ov)) as c:
        s = c.streams.video[0]
        got = (s.codec_context.name, s.width, s.height, sum(1 for _ in c.decode(video=0)))
    assert got == ("vp9", size[0] - size[0] % 2, size[1] - size[1] % 2, 60) and max(size) <= 1280


def test_unknown_athlete_is_not_stored_and_says_why(clip, store_with_athlete, capsys):
    rc, out, err = run(["pose", "score", str(clip), "--movement", "jump", "--athlete", "NOBODY"], capsys)
    assert rc == 1 and "not stored" in err and "add it to athletes first" in err
    assert len(store_with_athlete.read("pose_results")) == 0


def test_bad_files_fail_clearly_and_the_batch_goes_on(clip, home, capsys, tmp_path):
    import numpy as np

    d = tmp_path / "batch"
    d.mkdir()
    write_clip(d / "a_nobody.mp4", [np.full((240, 320, 3), 70, np.uint8)] * 15)
    (d / "b_corrupt.mp4").write_bytes(np.random.default_rng(0).bytes(10_000))
    (d / "c_zero.mp4").write_bytes(b"")
    rc, out, err = run(["pose", "score", str(d), "--movement", "jump", "--serial"], capsys)
    assert rc == 2 and "no video could be scored (3 tried)" in err
    assert (
        "a_nobody.mp4: FAILED: no person was detected" in err
        and "b_corrupt.mp4: FAILED" in err
        and "c_zero.mp4: FAILED: c_zero.mp4 is empty" in err
    )
    (d / "d_good.mp4").write_bytes(clip.read_bytes())
    rc, out, err = run(["pose", "score", str(d), "--movement", "jump", "--serial"], capsys)
    assert rc == 1 and "d_good.mp4:" in out  # partial success: exit 1, the good file scored
    rc, _, err = run(["pose", "score", str(d / "missing.mp4"), "--movement", "jump"], capsys)
    assert rc == 2 and "no such file" in err
    rc, _, err = run(["pose", "score", str(clip), "--movement", "jump", "--overlay"], capsys)
    assert rc == 2 and "--overlay needs --out" in err


def test_command_line_stays_light():
    code = (
        "import sys, pitchlab.cli; pitchlab.cli._parser(); "
        "print(sorted(m for m in ('numpy', 'xarray', 'cv2', 'mediapipe', 'dask', 'tensorflow', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    heavy = set(json.loads(out.replace("'", '"')))
    assert not heavy & {"cv2", "mediapipe", "dask", "tensorflow", "xarray"}, (
        heavy
    )  # pose adds none of these at start-up
    from pitchlab.pose.commands import MOVEMENTS
    from pitchlab.pose.scores import MOVEMENTS as M

    assert MOVEMENTS == M


@pytest.mark.slow
def test_folder_on_a_local_dask_cluster(clip, home, tmp_path):
    from pitchlab.pose.commands import score_files

    d = tmp_path / "folder"
    (d / "sub").mkdir(parents=True)
    (d / "one.mp4").write_bytes(clip.read_bytes())
    (d / "sub" / "two.mp4").write_bytes(clip.read_bytes())
    rows = score_files([d], "jump", progress=False)
    assert [Path(r["file"]).name for r in rows] == ["one.mp4", "two.mp4"]
    assert all(r["error"] is None and r["frames"] == 60 for r in rows)
    assert rows[0]["metrics"] == rows[1]["metrics"]  # same video, same result on either worker
