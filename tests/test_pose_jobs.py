"""Uploads streamed to the data home and pose jobs: progress by stage, the score before the overlay, bad input refused
before any work with nothing stored, the original deleted unless kept."""

import json
import struct
import tracemalloc
import warnings
import wave
from pathlib import Path

import numpy as np
import pytest

import test_pose_commands
from test_pose_landmarks import DEMO, write_clip

# slow: MediaPipe on video clips, a 60 MB upload; `make test` (--runslow) runs it, `make test-quick` does not
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::RuntimeWarning")]
store_with_athlete = test_pose_commands.store_with_athlete  # the store with athlete A1, as the command's tests use


def _webm(path) -> tuple:
    "A WebM read back with PyAV: (codec, width, height, frames decoded)."
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return s.codec_context.name, s.width, s.height, sum(1 for _ in c.decode(video=0))


def _tiny_mp4(path, n=10, fps=25.0):
    import cv2

    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (64, 48))
    for i in range(n):
        vw.write(np.full((48, 64, 3), 20 * i, np.uint8))
    vw.release()
    return Path(path)


def _tiny_avi(path, n=10, fps=25.0):
    import cv2

    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (64, 48))
    for i in range(n):
        vw.write(np.full((48, 64, 3), 20 * i, np.uint8))
    vw.release()
    return Path(path)


def _no_moov(tmp):
    b = _tiny_mp4(tmp / "whole.mp4").read_bytes()
    cut = b.find(b"moov") - 4
    assert cut > 0 and b.find(b"mdat") < cut  # OpenCV writes the index last, as a phone does
    p = tmp / "unfinished.mp4"
    p.write_bytes(b[:cut])
    return p


def _audio_wav(tmp):
    p = tmp / "voice.wav"
    with wave.open(str(p), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes((np.sin(np.arange(8000) / 5) * 3000).astype("<i2").tobytes())
    return p


def _audio_m4a(tmp):
    p = tmp / "voice.mp4"  # an audio-only MP4 (M4A brand) named like a video
    ftyp = struct.pack(">I4s4sI8s", 24, b"ftyp", b"M4A ", 0, b"M4A mp42")
    p.write_bytes(ftyp + struct.pack(">I4s", 16, b"free") + b"\0" * 8)
    return p


def _zero_fps(tmp):
    b = bytearray(_tiny_mp4(tmp / "ok.mp4").read_bytes())
    i = b.find(b"mdhd") + 4
    b[i + 12 : i + 16] = (0).to_bytes(4, "big")  # the track's timescale: 0 ticks a second
    p = tmp / "zero_fps.mp4"
    p.write_bytes(bytes(b))
    return p


def _twelve_hours(tmp):
    b = bytearray(_tiny_avi(tmp / "ok.avi").read_bytes())
    n = 25 * 3600 * 12
    j = b.find(b"avih") + 8
    b[j + 16 : j + 20] = n.to_bytes(4, "little")  # avih dwTotalFrames
    i = b.find(b"strh") + 8
    b[i + 32 : i + 36] = n.to_bytes(4, "little")  # strh dwLength
    p = tmp / "twelve_hours.avi"
    p.write_bytes(bytes(b))
    return p


def _empty(tmp):
    p = tmp / "empty.mp4"
    p.write_bytes(b"")
    return p


BAD = [
    (_empty, "is empty"),
    (_no_moov, "without its index (no 'moov' atom)"),
    (_audio_wav, "audio file (WAV)"),
    (_audio_m4a, "audio file (M4A)"),
    (_zero_fps, "frame rate of 0"),
    (_twelve_hours, "12.0 h long by its header"),
]


@pytest.mark.parametrize("make,message", BAD, ids=[m.__name__.strip("_") for m, _ in BAD])
def test_bad_input_is_refused_before_any_work_and_nothing_is_stored(make, message, store_with_athlete, tmp_path):
    from pitchlab.core import ValidationError
    from pitchlab.pose.jobs import jobs_dir, save_upload, submit, uploads_dir

    src = make(tmp_path)
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        with open(src, "rb") as f:
            up = save_upload(f, src.name)  # the upload itself refuses what is not a video
        submit(up, "jump", athlete_id="A1")  # the rest is refused before a job exists
    assert list(uploads_dir().iterdir()) == []  # the refused upload is gone
    assert list(jobs_dir().iterdir()) == []  # no job, no result
    assert len(store_with_athlete.read("pose_results")) == 0


def test_oversize_upload_is_refused_at_once_and_mid_stream(home):
    from pitchlab.core import ValidationError
    from pitchlab.pose.jobs import Upload, save_upload, upload_limit, uploads_dir

    assert upload_limit() == 500_000_000
    with pytest.raises(ValidationError, match="is 600 MB; uploads are limited to 500 MB"):
        Upload("big.mp4", size=600_000_000)
    head = DEMO.read_bytes()[:4096]
    with pytest.raises(ValidationError, match="larger than the upload limit of 0 MB"):
        save_upload([head] + [b"\0" * 100_000] * 10, "big.mp4", max_bytes=500_000)
    assert list(uploads_dir().iterdir()) == []


def test_upload_limit_is_a_setting(home, monkeypatch):
    from pitchlab.core import ValidationError
    from pitchlab.pose.jobs import upload_limit

    monkeypatch.setenv("PITCHLAB_UPLOAD_MAX_MB", "60")
    assert upload_limit() == 60_000_000
    monkeypatch.setenv("PITCHLAB_UPLOAD_MAX_MB", "lots")
    with pytest.raises(ValidationError, match="PITCHLAB_UPLOAD_MAX_MB='lots' is not a number"):
        upload_limit()


def test_a_60_mb_clip_streams_to_disk_scores_and_is_stored(store_with_athlete, tmp_path):
    from pitchlab.pose.jobs import save_upload, status, submit, uploads_dir

    big = tmp_path / "phone.mp4"
    pad = 60_000_000 - DEMO.stat().st_size
    with open(big, "wb") as f:  # the real clip plus a top-level 'free' box: a valid 60 MB MP4
        f.write(DEMO.read_bytes())
        f.write(struct.pack(">I4s", pad, b"free"))
        f.write(b"\0" * (pad - 8))
    assert big.stat().st_size == 60_000_000
    with open(DEMO, "rb") as f:  # warm up: first-time imports (capture, sniffing) are not the upload's memory
        save_upload(f, "warm.mp4").unlink()
    tracemalloc.start()
    with open(big, "rb") as f:
        up = save_upload(f, "phone.mp4", size=big.stat().st_size)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8_000_000  # streamed in 1 MB chunks, never held whole
    assert up.parent == uploads_dir() and up.stat().st_size == 60_000_000 and up.name != "phone.mp4"
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # none may leak from the pipeline's threads (All-NaN slice ...)
        jid = submit(up, "jump", athlete_id="A1", date="2026-12-01", filename="phone.mp4", run_now=True)
    st = status(jid)
    assert st["state"] == "done", st.get("error")
    assert st["progress"] == dict(decode=1.0, pose=1.0, clean=1.0, score=1.0, overlay=1.0)
    assert st["score"] == st["result"]["score"] and 0 <= st["score"] <= 100
    assert Path(st["overlay_path"]).stat().st_size > 10_000
    assert Path(st["overlay_path"]).name == "overlay.webm"
    assert _webm(st["overlay_path"]) == ("vp9", 1280, 720, 230)  # every frame of the 1768 x 994 clip, at OVERLAY_SIDE
    assert st["original_deleted"] and not up.exists()
    rows = store_with_athlete.read("pose_results")
    assert len(rows) == 1 and rows["athlete_id"].iloc[0] == "A1"
    assert json.loads(rows["metrics"].iloc[0])["score"] == st["score"]
    assert st["stored"]["inserted"] == 1


def test_background_job_reports_the_score_before_the_overlay(home, tmp_path):
    from test_pose_landmarks import demo_frames

    from pitchlab.pose.jobs import save_upload, status, submit, wait

    clip = write_clip(tmp_path / "box.mp4", demo_frames(20, 80, size=(960, 540)))
    up = save_upload(open(clip, "rb"), "box.mp4")
    jid = submit(up, "jump", keep_original=True)
    seen = []
    for _ in range(4000):  # bounded: 4000 x 0.03 s
        st = status(jid)
        seen.append(st)
        if st["state"] in ("done", "failed"):
            break
        import time

        time.sleep(0.03)
    st = wait(jid, timeout=300)
    assert st["state"] == "done", st.get("error")
    assert any(s["score"] is not None and s["progress"]["overlay"] < 1 for s in seen)  # score first
    assert _webm(st["overlay_path"]) == ("vp9", 960, 540, 60)  # a smaller clip keeps its size: never upscaled
    assert all(s["state"] in ("queued", "running", "done") for s in seen)
    assert up.exists()  # kept, as asked


def test_a_job_that_fails_leaves_no_partial_result(store_with_athlete, tmp_path):
    from pitchlab.pose.jobs import jobs_dir, status, submit

    blank = write_clip(tmp_path / "nobody.mp4", [np.full((270, 480, 3), 90, np.uint8)] * 30)
    jid = submit(blank, "jump", athlete_id="A1", run_now=True)
    st = status(jid)
    assert st["state"] == "failed" and "no person was detected" in st["error"]
    assert st["result"] is None and st["score"] is None
    assert sorted(p.name for p in (jobs_dir() / jid).iterdir()) == ["job.json"]
    assert blank.exists()  # not an upload: the caller's file is left alone
    assert len(store_with_athlete.read("pose_results")) == 0


def test_unknown_job_ids_are_refused(home):
    from pitchlab.core import NotFoundError
    from pitchlab.pose.jobs import status

    with pytest.raises(NotFoundError, match="no pose job"):
        status("../../etc/passwd")
    with pytest.raises(NotFoundError, match="no pose job"):
        status("0" * 32)
