"""The Pose page in a real browser: `pitchlab serve`'s own command line (one process, loopback) and Debian's Chromium.
A 63 MB phone-sized clip is uploaded through the page's streamed HTTP upload (not the websocket, whose limit is 20 MB)
with the server's memory staying flat, scored as a pose job, the score shown and stored, and the WebM overlay played
by Chromium (nonzero videoWidth and duration); an audio file is refused with a sentence before any work."""

import re
import socket
import wave
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from test_api_pose import make_clip60
from test_pose_jobs import BAD
from test_pose_landmarks import DEMO
from conftest import BROWSER_WAIT as WAIT
from conftest import open_context, pitchlab_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "pose-upload-test-password"


def _kib(pid: int, field: str) -> int:
    "A memory figure of a process from /proc (VmRSS: now, VmHWM: its peak), KiB."
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for process {pid}")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    "`pitchlab serve`'s command line, one process, on a data home with athlete A1 and a coach: (base URL, home, pid)."
    from pitchlab.dash.auth import hash_password
    from pitchlab.store import Store

    home = tmp_path_factory.mktemp("pose-browser") / "home"
    home.mkdir()
    st = Store(f"sqlite:///{home / 'pitchlab.db'}", actor="test").create()
    st.write("teams", pd.DataFrame([dict(team_id="T1", name="Jumpers", sport="athletics", level="senior")]), "test")
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
                    team_id="T1",
                    height_cm=178.0,
                )
            ]
        ),
        "test",
    )
    st.write(
        "users",
        pd.DataFrame(
            [
                dict(
                    username="coach",
                    display_name="Cora Coach",
                    role="coach",
                    team_ids="T1",
                    password_hash=hash_password(PASSWORD),
                )
            ]
        ),
        "test",
    )
    with pitchlab_server(home, apps=("app",), procs=1) as server:
        assert "pitchlab.dash.pages.pose" in server.proc.args  # the upload route comes with `pitchlab serve`
        yield server.base, home, server.pid, st


@pytest.fixture(scope="module")
def page(served, browser):
    "A signed-in coach on the Pose page, with every request off 127.0.0.1 aborted."
    base = served[0]
    ctx = open_context(browser, 1400, 1000)  # conftest: requests off 127.0.0.1 aborted, console errors kept
    try:
        pg = ctx.new_page()
        pg.set_default_timeout(WAIT)
        errors = ctx.errors
        pg.goto(base + "/app")
        pg.fill("input[name=username]", "coach")
        pg.fill("input[name=password]", PASSWORD)
        pg.click("button[type=submit]")
        pg.locator(".pitchlab-nav .bk-btn", has_text="Pose").first.click()
        try:
            pg.locator("input.pitchlab-pose-file").wait_for(state="attached")
        except PlaywrightTimeout:
            pg.screenshot(path=str(served[1].parent / "pose.png"))
            pytest.fail(f"the Pose page has no file chooser; console errors {errors} (the server log follows)")
        yield pg
        refusals = "Failed to load resource: the server responded with a status of 4"  # the refused upload's answer
        assert [e for e in errors if not e.startswith(refusals)] == []
    finally:
        ctx.close()


def test_an_audio_file_is_refused_with_a_sentence(page, served, tmp_path):
    home = served[1]
    wav = tmp_path / "voice.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes((np.sin(np.arange(8000) / 5) * 3000).astype("<i2").tobytes())
    page.locator("input.pitchlab-pose-file").set_input_files(str(wav))
    expect(page.locator(".pitchlab-pose-status")).to_contain_text("upload refused: voice.wav is an audio file (WAV)")
    assert list((home / "uploads").iterdir()) == []


def test_a_60_mb_clip_uploads_scores_and_its_overlay_plays(page, served, tmp_path_factory):
    base, home, pid, st = served
    clip = make_clip60(tmp_path_factory.getbasetemp())
    page.locator("select", has=page.locator("option", has_text=re.compile("^shot_put$"))).first.select_option("jump")
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # the peak (VmHWM) starts again from the memory in use now
    rss0 = _kib(pid, "VmRSS")
    page.locator("input.pitchlab-pose-file").set_input_files(str(clip))
    expect(page.locator(".pitchlab-pose-status")).to_contain_text("phone60.avi uploaded (63", timeout=180_000)
    grew = _kib(pid, "VmHWM") - rss0
    print(f"server peak memory grew {grew / 1024:.1f} MiB while a {clip.stat().st_size / 1e6:.0f} MB clip uploaded")
    assert grew < 20_000, f"the server's peak memory grew by {grew} KiB for a 63 MB upload"  # streamed, not held
    kept = list((home / "uploads").iterdir())
    assert len(kept) == 1 and kept[0].stat().st_size == clip.stat().st_size
    page.locator("button", has_text="Score the video").click()
    stage = re.compile(r"\b(decode|pose|clean|overlay) \d+% \(\d+ s\)")  # progress by stage while the job runs
    expect(page.locator(".pitchlab-pose-status")).to_contain_text(stage, timeout=120_000)
    expect(page.locator(".pitchlab-pose-score")).to_contain_text("/ 100", timeout=300_000)
    expect(page.locator(".pitchlab-pose-status")).to_contain_text("stored", timeout=300_000)
    video = page.locator("video.pitchlab-pose-overlay")
    video.wait_for(state="attached", timeout=WAIT)
    meta = video.evaluate(
        """v => new Promise((ok) => {
            const done = () => ok({w: v.videoWidth, h: v.videoHeight, d: v.duration, err: v.error && v.error.code})
            if (v.readyState >= 1) return done()
            v.addEventListener('loadedmetadata', done)
            v.addEventListener('error', done)
            v.load()
            setTimeout(done, 30000)
        })"""
    )
    assert meta["err"] is None and (meta["w"], meta["h"]) == (1280, 720), meta  # VP9 at OVERLAY_SIDE
    assert meta["d"] > 5 or meta["d"] == float("inf"), meta  # a 7.7 s clip
    rows = st.read("pose_results")
    assert len(rows) == 1 and rows["athlete_id"].iloc[0] == "A1" and rows["movement"].iloc[0] == "jump"
    shown = re.search(r"Score (\d+) / 100", page.locator(".pitchlab-pose-score h3").first.inner_text())
    assert shown and re.search(
        rf"score {shown.group(1)} stored", page.locator(".pitchlab-pose-status pre").first.inner_text()
    )
    score = float(shown.group(1))
    assert rows["score"].iloc[0] == pytest.approx(score, abs=0.5)
    audit = st.read("audit")
    assert {"upload", "write"} <= set(
        audit[(audit["actor"] == "coach") & (audit["entity"] == "pose_results")]["action"]
    )
    assert list((home / "uploads").iterdir()) == []  # the original is deleted after scoring


def _kept(home: Path, st) -> tuple:
    "Uploads, pose jobs and stored pose results: what a refused file must not add to."
    names = lambda d: sorted(p.name for p in d.iterdir()) if d.exists() else []
    return names(home / "uploads"), names(home / "pose_jobs"), len(st.read("pose_results"))


@pytest.mark.parametrize("make,message", BAD, ids=[m.__name__.strip("_") for m, _ in BAD])
def test_bad_files_are_refused_by_the_upload_route_or_the_page_before_any_work(
    served, make, message, tmp_path, monkeypatch
):
    "What the route can tell from the first bytes it refuses (the ticket records why); the rest the page's submit refuses."
    from pitchlab.dash.auth import DataAccess, User
    from pitchlab.dash.data import DataStore
    from pitchlab.dash.pages.pose import LibraryPoseScorer, PosePage, new_ticket, read_ticket

    base, home, _, st = served
    before = _kept(home, st)
    monkeypatch.setenv("PITCHLAB_HOME", str(home))
    monkeypatch.delenv("PITCHLAB_DB_URL", raising=False)
    src = make(tmp_path)
    t = new_ticket("upload", "coach")
    r = httpx.post(f"{base}/pose-upload?ticket={t}", content=src.read_bytes(), headers={"X-Filename": src.name})
    rec = read_ticket(t, "upload")
    if r.status_code == 422:
        assert message in r.json()["detail"] and rec["error"] == r.json()["detail"] and "path" not in rec
    else:
        assert r.status_code == 200 and Path(rec["path"]).is_file()  # a container that looks right: the page decides
        page = PosePage(data=DataStore(access=DataAccess(st, User("coach", "coach", team_ids="T1"))))
        page.movement = "jump"
        assert isinstance(page.scorer, LibraryPoseScorer)
        page._uploaded(type("E", (), {"new": "uploaded"})())  # what the browser's 'uploaded' does
        assert page._file is None and page.status.startswith("upload refused")  # the ticket was rotated
        page.upload.ticket = t
        page._set_file(dict(path=rec["path"], filename=src.name, size=rec["size"]))
        page.param.trigger("score_video")
        assert page.status.startswith("not scored: ") and message in page.status, page.status
    assert _kept(home, st) == before


def test_the_upload_route_needs_a_live_ticket_and_refuses_oversize_at_once(served, monkeypatch):
    from pitchlab.dash.pages.pose import new_ticket

    base, home, _, st = served
    r = httpx.post(f"{base}/pose-upload?ticket={'0' * 32}", content=DEMO.read_bytes()[:4096])
    assert r.status_code == 404 and "no such upload ticket" in r.json()["detail"]
    r = httpx.post(f"{base}/pose-upload?ticket=../../etc", content=b"x")
    assert r.status_code == 404
    monkeypatch.setenv("PITCHLAB_HOME", str(home))
    t = new_ticket("upload", "coach")
    r = httpx.post(f"{base}/pose-upload?ticket={t}", content=DEMO.read_bytes(), headers={"X-Filename": "demo.mp4"})
    assert r.status_code == 200 and r.json()["size"] == DEMO.stat().st_size
    r = httpx.post(f"{base}/pose-upload?ticket={t}", content=DEMO.read_bytes())  # one file per ticket
    assert r.status_code == 422 and "used already" in r.json()["detail"]
    t2 = new_ticket("upload", "coach")
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:  # announces 600 MB, sends none of it
        sock.sendall(f"POST /pose-upload?ticket={t2} HTTP/1.1\r\nHost: x\r\nContent-Length: 600000000\r\n\r\n".encode())
        answer = b""
        for _ in range(100):  # bounded
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
            if answer.rstrip().endswith(b"}"):
                break
    assert answer.startswith(b"HTTP/1.1 413") and b"uploads are limited to 500 MB" in answer, answer[:300]
    from pitchlab.dash.pages.pose import read_ticket

    assert "uploads are limited to 500 MB" in read_ticket(t2, "upload")["error"]
    for f in (home / "uploads").iterdir():  # the demo upload above (never scored)
        f.unlink()
