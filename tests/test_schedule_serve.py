"""`pitchlab schedule` sets up the daily `pitchlab score` beside the weekly retrain; `pitchlab serve` prints the API's
URL once (the API process it starts prints none of its own)."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

# slow: starts `pitchlab serve` and the scheduler; `make test` (--runslow) runs it, `make test-quick` does not
pytestmark = pytest.mark.slow

PITCHLAB = str(Path(sys.executable).parent / "pitchlab")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_schedule_prints_and_installs_the_daily_score_unit(home, tmp_path):
    env = dict(os.environ, HOME=str(tmp_path))
    out = subprocess.run([PITCHLAB, "schedule"], capture_output=True, text=True, timeout=120, env=env).stdout
    assert out.count("## pitchlab-") == 2 and "## pitchlab-retrain_injury_risk" in out and "## pitchlab-score" in out
    assert "retrain --pipeline retrain_injury_risk\n" in out and "OnCalendar=Mon *-*-* 03:00:00" in out
    score = out[out.index("## pitchlab-score") :]
    assert "ExecStart=" in score and " score\n" in score and "OnCalendar=*-*-* 06:00:00" in score
    assert "0 6 * * *" in score  # the cron line: daily at 06:00
    only = subprocess.run(
        [PITCHLAB, "schedule", "--no-score"], capture_output=True, text=True, timeout=120, env=env
    ).stdout
    assert "## pitchlab-score" not in only and "## pitchlab-retrain_injury_risk" in only
    r = subprocess.run([PITCHLAB, "schedule", "--install"], capture_output=True, text=True, timeout=120, env=env)
    d = tmp_path / ".config" / "systemd" / "user"
    assert r.returncode == 0 and sorted(p.name for p in d.iterdir()) == [
        "pitchlab-retrain_injury_risk.service",
        "pitchlab-retrain_injury_risk.timer",
        "pitchlab-score.service",
        "pitchlab-score.timer",
    ]
    assert (d / "pitchlab-score.service").read_text().rstrip().splitlines()[-2].endswith(" score")


def test_serve_prints_the_api_url_once(home):
    subprocess.run([PITCHLAB, "init"], capture_output=True, timeout=120, check=True)
    port, api = _free_port(), _free_port()
    p = subprocess.Popen(
        [PITCHLAB, "serve", "--port", str(port), "--procs", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, PITCHLAB_API_PORT=str(api)),
        start_new_session=True,  # serve, panel and the API in one process group, stopped together below
    )
    up = False
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 120 and p.poll() is None:  # at most 2 min, polled every 0.5 s
            try:
                up = httpx.get(f"http://127.0.0.1:{api}/api/v1/version", timeout=2).status_code == 200
            except httpx.HTTPError:
                up = False
            if up:
                break
            time.sleep(0.5)
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        out = p.communicate(timeout=30)[0]
    assert up, out[-3000:]
    assert out.count("pitchlab API on") == 1, out
    assert f"pitchlab API on http://127.0.0.1:{api}/api/v1/" in out
