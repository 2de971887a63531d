"""Bounded load test of the HTTP API on loopback: 50 concurrent clients against the team board of a 50-athlete team,
and against a bare FastAPI endpoint that returns the same JSON from memory (the floor), measured in the same run.

What it does, all on 127.0.0.1 and bounded in count and time:

1. a temporary data home with one synthetic team of 50 athletes over two seasons (`pitchlab.synth.make_cohort`), a
   coach account and a personal API token for it (`pitchlab.api_tokens.create_token`);
2. `pitchlab api` (uvicorn, one process) in a subprocess on a free port; one warm-up request computes the board once
   (it is then cached per team and data version, as in production);
3. the floor: a second uvicorn subprocess serving a bare FastAPI app whose one endpoint returns the board's JSON bytes,
   read from a file at start (`async def`, no auth, no lookups: the least any FastAPI endpoint can do);
4. for each server, `--runs` rounds of: `--clients` concurrent clients (one asyncio event loop, one keep-alive
   HTTP/1.1 connection each, a minimal client on asyncio streams: httpx's own cost per request would otherwise be the
   bottleneck on 2 cores), each sending GET requests back to back for `--seconds` seconds or `--max-requests` requests,
   whichever ends first. A response that is not 200 with the full body counts as an error; latency is per request.

Both servers run on the same 2 cores as the load generator, so absolute numbers are the machine's; the ratio of the
floor's throughput to pitchlab's is the figure that travels. The servers are stopped at the end whatever happens.
The last line is machine-readable (medians over the runs):

    BENCH api clients=<n> rps=<requests/s> p95_ms=<ms> errors=<n> floor_ratio=<floor rps / pitchlab rps>

Run: .venv/bin/python benchmarks/bench_api.py [--clients 50] [--athletes 50] [--runs 3] [--seconds 5] [--max-requests 400]
"""

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLOOR = """
import sys
from pathlib import Path
from fastapi import FastAPI
from fastapi.responses import Response
import uvicorn

BODY = Path(sys.argv[1]).read_bytes()
app = FastAPI()


@app.get("/board")
async def board():
    return Response(BODY, media_type="application/json")


uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, proc, timeout: float = 120.0):
    import httpx

    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


async def _get(reader, writer, request: bytes) -> tuple[int, int]:
    "One GET on a keep-alive connection: (status, body length)."
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = next(
        int(v) for k, _, v in (ln.partition(b":") for ln in lines[1:]) if k.strip().lower() == b"content-length"
    )
    body = await reader.readexactly(length)
    return status, len(body)


async def drive(url: str, headers: dict, clients: int, seconds: float, max_requests: int, size: int) -> dict:
    "`clients` concurrent loops of GET `url`, one keep-alive connection each; bounded by `seconds` and `max_requests`."
    from urllib.parse import urlsplit

    u = urlsplit(url)
    request = (
        f"GET {u.path}{'?' + u.query if u.query else ''} HTTP/1.1\r\nHost: {u.netloc}\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        + "\r\n"
    ).encode()
    lat, errors = [], 0

    async def one(deadline):
        nonlocal errors
        reader, writer = await asyncio.open_connection(u.hostname, u.port)
        try:
            for _ in range(max_requests):
                if time.monotonic() >= deadline:
                    break
                t = time.perf_counter()
                try:
                    status, n = await asyncio.wait_for(_get(reader, writer, request), 30)
                    ok = status == 200 and n == size
                except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError, StopIteration):
                    ok = False
                lat.append(time.perf_counter() - t)
                errors += not ok
                if not ok:
                    break
        finally:
            writer.close()

    t0 = time.monotonic()
    await asyncio.gather(*[one(t0 + seconds) for _ in range(clients)])
    wall = time.monotonic() - t0
    lat.sort()
    return dict(rps=len(lat) / wall, p95_ms=1000 * lat[int(0.95 * (len(lat) - 1))], errors=errors, n=len(lat))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--athletes", type=int, default=50)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5.0, help="length of one run per server")
    ap.add_argument("--max-requests", type=int, default=400, help="most requests one client sends in a run")
    a = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-api-"))
    env = dict(os.environ, PITCHLAB_HOME=str(tmp / "home"), TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("PITCHLAB_DB_URL", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    os.environ.update(PITCHLAB_HOME=env["PITCHLAB_HOME"])
    os.environ.pop("PITCHLAB_DB_URL", None)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    import httpx
    from pitchlab.api_tokens import create_token
    from pitchlab.dash.users import add_user
    from pitchlab.store import Store
    from pitchlab.core import settings
    from pitchlab.synth import make_cohort

    t0 = time.perf_counter()
    st = Store(settings().db_url, actor="bench").create()
    co = make_cohort(n_teams=1, athletes_per_team=a.athletes, seasons=2, seed=11)
    for n in ("teams", "athletes", "sessions", "wellness"):
        st.write(n, getattr(co, n), source="synthetic")
    team = co.teams.team_id.iloc[0]
    add_user("coach", "coach", team_ids=team, store=st, actor="bench")
    token, _ = create_token("coach", store=st, actor="bench")
    print(
        f"store ready: {a.athletes} athletes, {len(co.sessions):,} sessions ({time.perf_counter() - t0:.1f} s)",
        flush=True,
    )

    procs = []
    try:
        p_api, p_floor = free_port(), free_port()
        code = f"from pitchlab.cli import main; raise SystemExit(main(['api', '--port', '{p_api}']))"
        procs.append(subprocess.Popen([sys.executable, "-c", code], env=env))
        base = f"http://127.0.0.1:{p_api}"
        wait_up(base + "/api/v1/version", procs[-1])
        hdr = {"Authorization": f"Bearer {token}"}
        t = time.perf_counter()
        r = httpx.get(f"{base}/api/v1/teams/{team}/board", headers=hdr, timeout=300)
        r.raise_for_status()
        body = r.content
        assert len(r.json()["rows"]) == a.athletes
        print(f"first board (computed): {time.perf_counter() - t:.2f} s, {len(body):,} bytes", flush=True)
        (tmp / "board.json").write_bytes(body)
        (tmp / "floor.py").write_text(FLOOR)
        procs.append(
            subprocess.Popen([sys.executable, str(tmp / "floor.py"), str(tmp / "board.json"), str(p_floor)], env=env)
        )
        wait_up(f"http://127.0.0.1:{p_floor}/board", procs[-1])

        res = {"pitchlab": [], "floor": []}
        for i in range(a.runs):
            for name, url, h in (
                ("pitchlab", f"{base}/api/v1/teams/{team}/board", hdr),
                ("floor", f"http://127.0.0.1:{p_floor}/board", {}),
            ):
                m = asyncio.run(drive(url, h, a.clients, a.seconds, a.max_requests, len(body)))
                res[name].append(m)
                print(
                    f"run {i + 1} {name:8s}: {m['rps']:7.1f} req/s  p95 {m['p95_ms']:6.1f} ms  errors {m['errors']}  ({m['n']} requests)",
                    flush=True,
                )
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()

    med = lambda name, k: statistics.median(m[k] for m in res[name])
    rps, p95 = med("pitchlab", "rps"), med("pitchlab", "p95_ms")
    errors = sum(m["errors"] for m in res["pitchlab"])
    ratio = med("floor", "rps") / rps
    print(f"floor: {med('floor', 'rps'):.1f} req/s, p95 {med('floor', 'p95_ms'):.1f} ms (medians of {a.runs} runs)")
    print(f"BENCH api clients={a.clients} rps={rps:.1f} p95_ms={p95:.1f} errors={errors} floor_ratio={ratio:.2f}")


if __name__ == "__main__":
    main()
