"""POST /api/v1/pose on a real uvicorn server on loopback: a 60 MB phone clip streamed to the data home, scored in a
background job whose status shows the score and then a browser-playable overlay; the Pose page's roles; and bad input
(oversize, not a video, empty, no moov, audio only, 0 fps, 12 hours) refused with a sentence before any work, with no
file, job or row left behind."""

import os
import socket
import time
import tracemalloc
from pathlib import Path

import httpx
import pandas as pd
import pytest

from test_api import Server
from test_pose_jobs import BAD
from test_pose_landmarks import DEMO

# slow: serves the API and scores real clips with MediaPipe; `make test` (--runslow) runs it, `make test-quick` does not
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::RuntimeWarning")]
ROLES = dict(ath="athlete", ath2="athlete", coach="coach", med="medical", adm="admin")


def make_clip60(folder: Path) -> Path:
    "The real demo clip re-encoded frame by frame as Motion-JPEG at quality 100: a 63 MB, 7.7 s 1768x994 phone-sized file."
    import cv2

    out = folder / "phone60.avi"
    if out.is_file():
        return out
    cap = cv2.VideoCapture(str(DEMO))
    fps, w, h = (
        cap.get(cv2.CAP_PROP_FPS),
        int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
        int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
    )
    tmp = folder / "phone60.part.avi"
    vw = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    vw.set(cv2.VIDEOWRITER_PROP_QUALITY, 100)
    for _ in range(400):  # bounded: the clip has 230 frames
        ok, frame = cap.read()
        if not ok:
            break
        vw.write(frame)
    vw.release()
    cap.release()
    tmp.rename(out)
    assert out.stat().st_size > 60_000_000
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    "Two teams with one athlete each, a user and token per role, and the API served on loopback."
    from pitchlab.api import ApiContext, create_app
    from pitchlab.api_tokens import create_token
    from pitchlab.dash.users import add_user
    from pitchlab.store import Store

    tmp = tmp_path_factory.mktemp("api-pose")
    keys = ("PITCHLAB_HOME", "PITCHLAB_DB_URL", "MLFLOW_TRACKING_URI", "PITCHLAB_UPLOAD_MAX_MB")
    old = {k: os.environ.get(k) for k in keys}
    os.environ.update(PITCHLAB_HOME=str(tmp / "home"), MLFLOW_TRACKING_URI=f"sqlite:///{tmp / 'mlflow.db'}")
    os.environ.pop("PITCHLAB_DB_URL", None)
    os.environ.pop("PITCHLAB_UPLOAD_MAX_MB", None)
    st = Store(actor="test").create()
    st.write(
        "teams",
        pd.DataFrame(
            [
                dict(team_id="T1", name="Jumpers", sport="athletics", level="senior"),
                dict(team_id="T2", name="Others", sport="athletics", level="senior"),
            ]
        ),
        source="test",
    )
    base = dict(sex="M", birth_date=pd.Timestamp("2000-01-01"), sport="athletics", role="jumper", position=None)
    st.write(
        "athletes",
        pd.DataFrame(
            [
                dict(athlete_id="A1", name="Box Jumper", team_id="T1", height_cm=178.0, **base),
                dict(athlete_id="B1", name="Other Jumper", team_id="T2", height_cm=170.0, **base),
            ]
        ),
        source="test",
    )
    add_user("ath", "athlete", athlete_id="A1", store=st, actor="test")
    add_user("ath2", "athlete", athlete_id="B1", store=st, actor="test")
    add_user("coach", "coach", team_ids="T1", store=st, actor="test")
    add_user("med", "medical", team_ids="T1", store=st, actor="test")
    add_user("adm", "admin", store=st, actor="test")
    tokens = {u: create_token(u, store=st, actor="test")[0] for u in ROLES}
    ctx = ApiContext(st.url, os.environ["MLFLOW_TRACKING_URI"])
    with Server(create_app(ctx=ctx)) as url, httpx.Client(base_url=url, timeout=120) as client:
        yield dict(client=client, store=st, tokens=tokens, url=url, tmp=tmp, home=tmp / "home")
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def H(w, user):
    return {"Authorization": f"Bearer {w['tokens'][user]}"}


def post(w, user, path: Path | None = None, data=None, name=None, **fields):
    fields = dict(dict(athlete_id="A1", movement="jump"), **fields)
    files = None
    if path is not None:
        files = {"video": (name or path.name, open(path, "rb"), "application/octet-stream")}
    return w["client"].post(
        "/api/v1/pose", headers=H(w, user), data={k: v for k, v in fields.items() if v}, files=files
    )


def nothing_left(w):
    "No upload, no pose job, no stored pose result."
    ups, jobs = w["home"] / "uploads", w["home"] / "pose_jobs"
    return (
        (not ups.exists() or list(ups.iterdir()) == [])
        and (not jobs.exists() or list(jobs.iterdir()) == [])
        and len(w["store"].read("pose_results")) == 0
    )


@pytest.mark.parametrize("make,message", BAD, ids=[m.__name__.strip("_") for m, _ in BAD])
def test_bad_files_are_refused_with_a_sentence_and_nothing_is_kept(world, make, message, tmp_path):
    src = make(tmp_path)
    r = post(world, "coach", src)
    assert r.status_code == 422, r.text
    assert message in r.json()["detail"] and r.json()["hint"]
    assert nothing_left(world)


def test_a_file_that_is_no_video_at_all_is_refused(world, tmp_path):
    notes = tmp_path / "notes.mp4"
    notes.write_bytes(b"%PDF-1.7\n" + b"x" * 5000)
    r = post(world, "coach", notes)
    assert r.status_code == 422 and "is not a video pitchlab can read" in r.json()["detail"]
    assert nothing_left(world)


def test_oversize_is_refused_by_content_length_before_the_body(world):
    head = (
        "POST /api/v1/pose?athlete_id=A1&movement=jump HTTP/1.1\r\n"
        f"Host: x\r\nAuthorization: Bearer {world['tokens']['coach']}\r\n"
        "Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: 600000000\r\n\r\n"
    ).encode()
    status, answer = _raw_post(world, head, [])  # none of the 600 MB announced: the answer comes without it
    assert status.startswith(b"HTTP/1.1 413")
    assert b"the upload is 600 MB; uploads are limited to 500 MB" in answer
    assert nothing_left(world)


def _raw_post(w, head: bytes, body_pieces) -> tuple:
    "Send a request on a raw socket (its body pieces, then no more), and read the answer: (status line, body)."
    host, port = w["url"].removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(head)
        for piece in body_pieces:
            s.sendall(piece)
        answer = b""
        for _ in range(100):  # bounded
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
            if b"\r\n\r\n" in answer and answer.rstrip().endswith(b"}"):
                break
    status, _, body = answer.partition(b"\r\n\r\n")
    return status.split(b"\r\n")[0], body


def test_oversize_is_refused_while_streaming_and_the_partial_file_deleted(world):
    os.environ["PITCHLAB_UPLOAD_MAX_MB"] = "1"
    try:
        pre = b'--xyz\r\nContent-Disposition: form-data; name="video"; filename="big.mp4"\r\n\r\n'
        body = pre + DEMO.read_bytes()[: 2**20 - len(pre)]  # 1 MiB: over the 1 MB limit, no Content-Length
        head = (
            "POST /api/v1/pose?athlete_id=A1&movement=jump HTTP/1.1\r\n"
            f"Host: x\r\nAuthorization: Bearer {world['tokens']['coach']}\r\n"
            "Content-Type: multipart/form-data; boundary=xyz\r\nTransfer-Encoding: chunked\r\n\r\n"
        ).encode()
        pieces = [b"%x\r\n%s\r\n" % (len(body[i : i + 65536]), body[i : i + 65536]) for i in range(0, len(body), 65536)]
        status, answer = _raw_post(world, head, pieces)  # the rest of the body never comes: the answer does
    finally:
        os.environ.pop("PITCHLAB_UPLOAD_MAX_MB")
    assert status.startswith(b"HTTP/1.1 413"), (status, answer)
    assert b"big.mp4 is larger than the upload limit of 1 MB" in answer
    assert nothing_left(world)


def test_who_may_upload_is_checked_before_the_video_is_kept(world, tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    assert world["client"].post("/api/v1/pose").status_code == 401
    r = post(world, "ath", empty, athlete_id="B1")  # another team's athlete: unknown to this athlete
    assert r.status_code == 404 and "no athlete 'B1'" in r.json()["detail"]
    r = post(world, "coach", empty, athlete_id="B1")
    assert r.status_code == 404
    r = post(world, "coach", empty, movement="dance")
    assert r.status_code == 422 and "unknown movement 'dance'" in r.json()["detail"]
    for user, who in (("ath", "A1"), ("coach", "A1"), ("med", "A1"), ("adm", "B1")):  # allowed: the file is judged
        r = post(world, user, empty, athlete_id=who)
        assert r.status_code == 422 and "is empty (0 bytes)" in r.json()["detail"], (user, r.text)
    r = world["client"].post(  # the file before the fields: refused as it begins
        "/api/v1/pose",
        headers={**H(world, "coach"), "Content-Type": "multipart/form-data; boundary=xyz"},
        content=b'--xyz\r\nContent-Disposition: form-data; name="video"; filename="a.mp4"\r\n\r\nabc\r\n--xyz--\r\n',
    )
    assert r.status_code == 422 and "send athlete_id and movement before the video" in r.json()["detail"]
    r = world["client"].post("/api/v1/pose", headers=H(world, "coach"), json={"athlete_id": "A1"})
    assert r.status_code == 422 and "multipart/form-data" in r.json()["detail"]
    assert nothing_left(world)


@pytest.mark.slow  # about a minute of scoring: CI runs it (--runslow), make test-quick does not
def test_a_60_mb_clip_is_streamed_scored_stored_and_audited(world, tmp_path_factory):
    from pitchlab.pose.jobs import keep_uploads

    assert not keep_uploads()
    clip = make_clip60(tmp_path_factory.getbasetemp())
    tracemalloc.start()
    r = post(world, "coach", clip, name="phone.avi", date="2026-12-01")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert r.status_code == 202, r.text
    assert peak < 20_000_000  # client and server in this process: the 63 MB never sat in memory whole
    jid = r.json()["job_id"]
    assert r.json()["status_url"] == f"/api/v1/jobs/{jid}"
    seen = []
    for _ in range(1200):  # bounded: 1200 x 0.25 s
        st = world["client"].get(f"/api/v1/jobs/{jid}", headers=H(world, "coach")).json()
        seen.append(st)
        if st["state"] in ("done", "failed"):
            break
        time.sleep(0.25)
    assert st["state"] == "done", st.get("error")
    assert 0 <= st["score"] <= 100 and st["score"] == st["result"]["score"]
    assert set(st["progress"]) == {"decode", "pose", "clean", "score", "overlay"}
    assert all(v == 1.0 for v in st["progress"].values())
    assert any(s["state"] == "running" for s in seen)
    assert "path" not in st and "overlay_path" not in st  # no server paths
    assert st["original_deleted"] and list((world["home"] / "uploads").iterdir()) == []
    ov = world["client"].get(st["overlay_url"], headers=H(world, "coach"))
    assert ov.status_code == 200 and ov.headers["content-type"] == "video/webm"
    assert ov.content[:4] == b"\x1a\x45\xdf\xa3" and len(ov.content) > 10_000  # WebM (EBML)
    rows = world["store"].read("pose_results")
    assert len(rows) == 1 and rows["athlete_id"].iloc[0] == "A1" and rows["score"].iloc[0] == st["score"]
    assert str(rows["date"].iloc[0].date()) == "2026-12-01"
    audit = world["store"].read("audit")
    mine = audit[(audit["actor"] == "coach") & (audit["entity"] == "pose_results") & (audit["athlete_id"] == "A1")]
    assert {"upload", "write"} <= set(mine["action"])
    assert mine["detail"].str.contains(jid).all()
    assert world["client"].get(f"/api/v1/jobs/{jid}", headers=H(world, "ath")).json()["score"] == st["score"]
    assert world["client"].get(f"/api/v1/jobs/{jid}", headers=H(world, "ath2")).status_code == 404  # not theirs
    assert world["client"].get(st["overlay_url"], headers=H(world, "ath2")).status_code == 404


def test_the_openapi_document_describes_the_upload(world):
    from openapi_spec_validator import validate

    doc = world["client"].get("/api/v1/openapi.json").json()
    validate(doc)
    body = doc["paths"]["/api/v1/pose"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body["required"] == ["athlete_id", "movement", "video"] and body["properties"]["video"]["format"] == "binary"
    assert "/api/v1/jobs/{job_id}/overlay" in doc["paths"]


def test_the_jobs_route_documents_pose_jobs_and_a_real_one_validates(world, tmp_path):
    "GET /api/v1/jobs/{id} is a union on `kind` (retraining or pose) in the OpenAPI document; a pose job's answers fit it."
    import cv2
    import jsonschema
    from pydantic import TypeAdapter

    from pitchlab.api import JobState, PoseJob
    from pitchlab.pose.pipeline import STAGES

    doc = world["client"].get("/api/v1/openapi.json").json()
    answer = doc["paths"]["/api/v1/jobs/{job_id}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer["discriminator"]["propertyName"] == "kind"
    assert set(answer["discriminator"]["mapping"]) == {"retrain", "pose"}
    pose = doc["components"]["schemas"][answer["discriminator"]["mapping"]["pose"].split("/")[-1]]
    assert {"progress", "warnings", "score", "confidence", "overlay_url", "state", "stage", "result"} <= set(
        pose["properties"]
    )
    warning = doc["components"]["schemas"][pose["properties"]["warnings"]["items"]["$ref"].split("/")[-1]]
    assert {"code", "message", "confidence_factor"} <= set(warning["required"])
    started = doc["paths"]["/api/v1/pose"]["post"]["responses"]["202"]["content"]["application/json"]["schema"]
    assert started["$ref"].endswith("/PoseJobStarted")

    clip = tmp_path / "short.mp4"  # the real clip's first 40 frames at 640 x 360: a job of a few seconds
    cap = cv2.VideoCapture(str(DEMO))
    vw = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), cap.get(cv2.CAP_PROP_FPS), (640, 360))
    for _ in range(40):
        ok, frame = cap.read()
        assert ok
        vw.write(cv2.resize(frame, (640, 360), interpolation=cv2.INTER_AREA))
    vw.release()
    cap.release()
    r = post(world, "coach", clip, date="2026-12-02")
    assert r.status_code == 202, r.text
    validate = jsonschema.Draft202012Validator({**answer, "components": doc["components"]}).validate
    jsonschema.Draft202012Validator({**started, "components": doc["components"]}).validate(r.json())
    seen = []
    for _ in range(600):  # bounded: 600 x 0.2 s
        st = world["client"].get(r.json()["status_url"], headers=H(world, "coach")).json()
        validate(st)  # every answer on the way fits the document: queued, running, done
        seen.append(st["state"])
        if st["state"] in ("done", "failed"):
            break
        time.sleep(0.2)
    assert st["state"] == "done", st.get("error")
    job = TypeAdapter(JobState).validate_python(st)
    assert isinstance(job, PoseJob) and job.kind == "pose" and 0 <= job.score <= 100 and 0 < job.confidence <= 1
    assert job.overlay_url == f"/api/v1/jobs/{job.job_id}/overlay" and set(job.progress) == set(STAGES)
    assert all(w.code and w.message for w in job.warnings)
