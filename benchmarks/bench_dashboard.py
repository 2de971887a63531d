"""Bounded load test of the team risk board on loopback: 20 concurrent sessions of the board of a 50-athlete team.

What it does, all on 127.0.0.1 and bounded in time:

1. a temporary data home with one synthetic team of 50 athletes over two seasons (`pitchlab.synth.make_cohort`) and
   a coach account with an argon2-hashed password;
2. `panel serve dashboards/app.py` with pitchlab's local sign-in (`--plugins pitchlab.dash.auth --oauth-provider
   pitchlab`) in a subprocess on a free port (one process by default; `--procs` sets `--num-procs`);
3. the server warms each process's metric cache at start (`--setup dashboards/warm.py`, as in production); the
   coach signs in over HTTP (Panel's login form, checked against the users table); a few warm-up sessions follow;
4. N sessions start at once (one asyncio client, the server in its own process(es)). Each session does what a
   browser does: requests the page (the server runs the app: the page shell), opens the websocket, pulls the document,
   announces `document_ready` (BokehJS sends it once the page is drawn; the app then loads the data and builds the
   board, `pn.state.onload`), and receives the board's models. A session is timed from its page request until the
   board with one row per athlete (every athlete id in the table's data) has arrived. That is the server's time to a
   rendered board; drawing it in a browser adds a few hundred ms more (see tests/test_dash_browser.py), which this
   test does not multiply by 20 browsers on 2 cores.

5. browser mode (`--browsers K`, default 4): K real Chromium sessions (Playwright, /usr/bin/chromium) sign in as the
   coach at once; each is timed from pressing "Sign in" until every board row is visible with Tabulator's stylesheet
   applied, and from one press of a what-if day slider (one step in the sport's unit: AU, pitches or balls) until the plan summary shows
   a new total. The same K
   sign-ins on an empty Panel page (one HTML pane: the lightest Panel page; a Markdown pane would load
   bokeh-mathjax, 1.8 MB, which the board never loads) served by the same server give the floor;
   floor_ratio = board median / empty median.
   Each browser page also reports its renderer process's CPU seconds until it was ready (Chromium's
   Performance.getMetrics ProcessTime, sign-in form included): the browser's share, as the server's CPU is the server's.

The machine may be shared, so wall times alone mislead: the benchmark also reports the server's CPU seconds (user +
system of every server process, read from /proc) per board session and per browser session, with the load average
before and after.

A session that fails, times out or lacks a row counts as an error. The server is stopped at the end whatever happens.
The last line is machine-readable:

    BENCH dashboard sessions=<n> errors=<n> median_s=<seconds>
    BENCH dashboard_browser sessions=<K> board_visible_median_s=<s> whatif_median_s=<s> floor_ratio=<board/empty>

Run: .venv/bin/python benchmarks/bench_dashboard.py [--sessions 20] [--athletes 50] [--procs 1] [--threads 0] [--timeout 90] [--browsers 4]
"""

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "bench-coach-password"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_home(home: Path, athletes: int, seed: int = 0):
    "One synthetic team of `athletes` over two seasons, and its coach's account."
    import pandas as pd
    from pitchlab.dash.auth import hash_password
    from pitchlab.store import Store
    from pitchlab.synth import make_cohort

    home.mkdir(parents=True, exist_ok=True)
    store = Store(f"sqlite:///{home / 'pitchlab.db'}", actor="bench").create()
    c = make_cohort(n_teams=1, athletes_per_team=athletes, seasons=2, seed=seed)
    for name in ("teams", "athletes", "sessions", "pitches", "wellness", "cycle_logs", "injuries"):
        store.write(name, getattr(c, name), source="synthetic:bench")
    team = c.teams.team_id.iloc[0]
    store.write(
        "users",
        pd.DataFrame(
            [
                dict(
                    username="coach",
                    display_name="Bench Coach",
                    role="coach",
                    team_ids=team,
                    password_hash=hash_password(PASSWORD),
                )
            ]
        ),
        source="bench",
    )
    return list(c.athletes.athlete_id)


def start_server(home: Path, port: int, procs: int = 1, threads: int = 0, extra_apps: tuple = ()):
    env = dict(
        os.environ,
        PITCHLAB_HOME=str(home),
        PANEL_COOKIE_SECRET="bench-" + os.urandom(16).hex(),
        TF_CPP_MIN_LOG_LEVEL="3",
        PITCHLAB_LOGIN_FREE_ATTEMPTS="100",  # K browsers sign in as one coach at once: not a brute-force attack
    )
    env.pop("PITCHLAB_DB_URL", None)
    cmd = [
        str(Path(sys.executable).parent / "panel"),
        "serve",
        str(ROOT / "dashboards" / "app.py"),
        *map(str, extra_apps),
        "--plugins",
        "pitchlab.dash.auth",
        "--oauth-provider",
        "pitchlab",
        "--address",
        "127.0.0.1",
        "--port",
        str(port),
        "--allow-websocket-origin",
        f"127.0.0.1:{port}",
        "--num-procs",
        str(procs),
        "--num-threads",
        str(threads),
        "--setup",
        str(ROOT / "dashboards" / "warm.py"),
    ]
    log = open(home / "serve.log", "w")
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def server_cpu(pgid: int) -> float:
    "CPU seconds (user + system) used so far by the server's processes: its process group, read from /proc."
    tick, total = os.sysconf("SC_CLK_TCK"), 0
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            f = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        if int(f[2]) == pgid:
            total += int(f[11]) + int(f[12])
    return total / tick


def load_avg() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def stop_server(proc):
    "Stop the server's whole process group, even when its parent has already exited (the forked workers outlive it)."
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            continue
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the parent is gone; wait (bounded) for its group's workers
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


async def wait_up(base, timeout):
    from tornado.httpclient import AsyncHTTPClient, HTTPClientError

    client, t0 = AsyncHTTPClient(), time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            r = await client.fetch(base + "/login", request_timeout=5, raise_error=False)
            if r.code == 200:
                return
        except (OSError, HTTPClientError):
            pass
        await asyncio.sleep(0.3)
    raise RuntimeError(f"the dashboard server did not answer within {timeout} s")


async def sign_in(base):
    "The session cookies of the coach, from Panel's login form (checked against the users table)."
    import re
    from urllib.parse import urlencode
    from tornado.httpclient import AsyncHTTPClient

    form = await AsyncHTTPClient().fetch(base + "/login", request_timeout=30)  # the form's CSRF token and cookie
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.body.decode()).group(1)
    jar = "; ".join(h.split(";", 1)[0] for h in form.headers.get_list("Set-Cookie"))
    r = await AsyncHTTPClient().fetch(
        base + "/login",
        method="POST",
        headers={"Cookie": jar},
        body=urlencode(dict(username="coach", password=PASSWORD, csrf_token=token)),
        follow_redirects=False,
        raise_error=False,
        request_timeout=30,
    )
    cookies = {}
    for h in r.headers.get_list("Set-Cookie"):
        k, v = h.split(";", 1)[0].split("=", 1)
        cookies[k] = v
    if "user" not in cookies:
        raise RuntimeError(f"sign-in failed (HTTP {r.code}): check the users table and the auth plugin")
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


async def one_session(base, cookie, ids, timeout):
    "Seconds from the page request to the board's document over the websocket; raises on failure."
    from bokeh.client.websocket import WebSocketClientConnectionWrapper
    from bokeh.document import Document
    from bokeh.document.events import MessageSentEvent
    from bokeh.events import DocumentReady
    from bokeh.protocol import Protocol
    from bokeh.protocol.receiver import Receiver
    from tornado.httpclient import AsyncHTTPClient, HTTPRequest
    from tornado.websocket import websocket_connect

    t0 = time.perf_counter()
    r = await AsyncHTTPClient().fetch(
        HTTPRequest(base + "/app", headers={"Cookie": cookie}, request_timeout=timeout, follow_redirects=False)
    )
    html = r.body.decode()
    m = re.search(r'"token"\s*:\s*"([^"]+)"', html)
    if not m:
        raise RuntimeError("no session token in the page (not signed in?)")
    ws = await websocket_connect(
        HTTPRequest(base.replace("http", "ws") + "/app/ws", headers={"Cookie": cookie}, request_timeout=timeout),
        subprotocols=["bokeh", m.group(1)],
        max_message_size=100 * 2**20,
    )
    conn, proto = WebSocketClientConnectionWrapper(ws), Protocol()
    recv = Receiver(proto)

    async def read_msg():
        while True:
            frag = await ws.read_message()
            if frag is None:
                raise RuntimeError("websocket closed")
            msg = await recv.consume(frag)
            if msg is not None:
                return msg

    try:
        ack = await asyncio.wait_for(read_msg(), timeout)
        if ack.msgtype != "ACK":
            raise RuntimeError(f"expected ACK, got {ack.msgtype}")
        await proto.create("PULL-DOC-REQ").send(conn)
        while True:
            reply = await asyncio.wait_for(read_msg(), timeout)
            if reply.msgtype == "PULL-DOC-REPLY":
                break
        text = json.dumps(reply.content)
        if any(f'"{a}"' not in text for a in ids):
            # the page shell came first: tell the server the page is ready (as BokehJS does), then wait for the board
            await proto.create("PATCH-DOC", [MessageSentEvent(Document(), "bokeh_event", DocumentReady())]).send(conn)
            deadline = time.monotonic() + timeout
            while any(f'"{a}"' not in text for a in ids):
                msg = await asyncio.wait_for(read_msg(), max(0.1, deadline - time.monotonic()))
                if msg.msgtype == "PATCH-DOC":
                    text += json.dumps(msg.content)
                if msg.msgtype == "ERROR":
                    raise RuntimeError(f"server error: {msg.content}")
        elapsed = time.perf_counter() - t0
        missing = [a for a in ids if f'"{a}"' not in text]
        if missing:
            raise RuntimeError(f"the board lacks {len(missing)} athlete(s), e.g. {missing[:3]}")
        return elapsed
    finally:
        ws.close()


EMPTY_APP = """import panel as pn

pn.pane.HTML("empty page", css_classes=["pitchlab-empty"]).servable()
"""
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


async def browser_session(browser, base, path, ready, n_rows=0, whatif=False, timeout=90):
    "One browser: sign in at `path`; seconds to `ready` (board: every row and a styled header), to a what-if update, and the page's renderer CPU seconds when ready."
    import re

    ctx = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await ctx.new_page()
    page.set_default_timeout(timeout * 1000)
    cdp = await ctx.new_cdp_session(page)
    await cdp.send("Performance.enable")
    try:
        await page.goto(base + path)
        await page.fill("input[name=username]", "coach")
        await page.fill("input[name=password]", PASSWORD)
        t0 = time.perf_counter()
        await page.click("button[type=submit]")
        await page.locator(ready).first.wait_for()
        if n_rows:
            rows, want = page.locator(".tabulator-row"), min(n_rows, 15)  # Tabulator draws the rows in view
            while await rows.count() < want:
                if time.perf_counter() - t0 > timeout:
                    raise TimeoutError(f"{await rows.count()} board rows after {timeout} s, not {want}")
                await asyncio.sleep(0.05)
            col = page.locator(".tabulator-col:visible").first
            if await col.evaluate("e => getComputedStyle(e).display") != "inline-flex":
                raise RuntimeError("the board's table is unstyled (Tabulator's stylesheet did not load)")
        shown = time.perf_counter() - t0
        metrics = {m["name"]: m["value"] for m in (await cdp.send("Performance.getMetrics"))["metrics"]}
        task = metrics.get("ProcessTime", float("nan"))  # CPU seconds of the page's renderer process so far
        if not whatif:
            return shown, None, task
        await page.locator(".pitchlab-nav .bk-btn", has_text="What-if").first.click()
        handle = page.locator(".pitchlab-day .noUi-handle").first
        await handle.wait_for()
        summary = page.get_by_text(re.compile(r"planned load [\d,]+ AU")).first
        await summary.wait_for()
        total = int(re.search(r"planned load ([\d,]+) AU", await summary.inner_text()).group(1).replace(",", ""))
        await handle.focus()
        t1 = time.perf_counter()
        await handle.press("ArrowRight")  # one step on the first planned day (AU, pitches or balls: the sport's unit)
        while (now := await summary.inner_text()) and f"planned load {total:,} AU" in now:  # until the total moves
            if time.perf_counter() - t1 > timeout:
                raise TimeoutError(f"the what-if summary still reads {now!r} after {timeout} s")
            await asyncio.sleep(0.01)
        return shown, time.perf_counter() - t1, task
    except Exception:
        shot = Path(tempfile.gettempdir()) / f"pitchlab-bench-failed-{os.getpid()}.png"
        await page.screenshot(path=str(shot))
        print(f"browser session failed at {page.url}; screenshot {shot}", flush=True)
        raise
    finally:
        await ctx.close()


async def run_browsers(base, k, n_rows, timeout, pgid):
    "K browsers at once on the board (and the what-if slider), then K on the empty page: medians and the ratio."
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            await browser_session(browser, base, "/app", ".tabulator-row", n_rows, True, timeout)  # warm-up
            await browser_session(browser, base, "/empty", ".pitchlab-empty", 0, False, timeout)
            c0, l0 = server_cpu(pgid), load_avg()
            board = await asyncio.gather(
                *[browser_session(browser, base, "/app", ".tabulator-row", n_rows, True, timeout) for _ in range(k)]
            )
            c1 = server_cpu(pgid)
            empty = await asyncio.gather(
                *[browser_session(browser, base, "/empty", ".pitchlab-empty", 0, False, timeout) for _ in range(k)]
            )
            c2 = server_cpu(pgid)
        finally:
            await browser.close()
    b, w, e = [x[0] for x in board], [x[1] for x in board], [x[0] for x in empty]
    rb, re_ = statistics.median(x[2] for x in board), statistics.median(x[2] for x in empty)
    print(
        f"browser board visible: {', '.join(f'{x:.2f}' for x in sorted(b))} s; what-if update: "
        f"{', '.join(f'{x:.2f}' for x in sorted(w))} s; empty page: {', '.join(f'{x:.2f}' for x in sorted(e))} s"
    )
    print(
        f"server CPU per browser session: board + what-if {(c1 - c0) / k:.3f} s, empty page {(c2 - c1) / k:.3f} s "
        f"(load average {l0} before, {load_avg()} after)"
    )
    print(
        f"browser renderer CPU until visible (Chromium ProcessTime, median): board {rb:.2f} s, empty page {re_:.2f} s"
    )
    return statistics.median(b), statistics.median(w), statistics.median(b) / statistics.median(e)


async def run(args):
    from tornado.httpclient import AsyncHTTPClient

    AsyncHTTPClient.configure(None, max_clients=max(64, 2 * args.sessions))
    tmp = Path(tempfile.mkdtemp(prefix="pitchlab-bench-dash-"))
    home, port = tmp / "home", free_port()
    base = f"http://127.0.0.1:{port}"
    t_setup = time.perf_counter()
    ids = make_home(home, args.athletes)
    (tmp / "empty.py").write_text(EMPTY_APP)
    proc = start_server(home, port, args.procs, args.threads, extra_apps=(tmp / "empty.py",))
    try:
        await wait_up(base, args.timeout)
        cookie = await sign_in(base)
        t_warm = time.perf_counter()
        await asyncio.gather(*[one_session(base, cookie, ids, args.timeout) for _ in range(2 * args.procs)])
        print(
            f"setup {t_warm - t_setup:.1f} s (cohort of {len(ids)} athletes, server start with {args.procs} process(es) and warm caches, "
            f"sign-in); warm-up {time.perf_counter() - t_warm:.2f} s ({2 * args.procs} sessions)"
        )
        c0, l0 = server_cpu(proc.pid), load_avg()
        results = await asyncio.gather(
            *[
                asyncio.wait_for(one_session(base, cookie, ids, args.timeout), args.timeout)
                for _ in range(args.sessions)
            ],
            return_exceptions=True,
        )
        cpu = server_cpu(proc.pid) - c0
        print(
            f"server CPU: {cpu:.2f} s for {args.sessions} sessions, {cpu / args.sessions:.3f} s a session "
            f"(load average {l0} before, {load_avg()} after)"
        )
        times = [r for r in results if isinstance(r, float)]
        errors = [r for r in results if not isinstance(r, float)]
        for e in errors[:5]:
            print(f"error: {type(e).__name__}: {e}")
        if times:
            q = statistics.quantiles(times, n=10) if len(times) >= 2 else [times[0]] * 9
            print(
                f"{len(times)} board sessions at once: median {statistics.median(times):.3f} s, "
                f"p90 {q[8]:.3f} s, min {min(times):.3f} s, max {max(times):.3f} s"
            )
        out = [len(results), len(errors), (statistics.median(times) if times else float("nan"))]
        if args.browsers:
            out.append(await run_browsers(base, args.browsers, len(ids), args.timeout, proc.pid))
        return out
    finally:
        stop_server(proc)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sessions", type=int, default=20, help="concurrent sessions (default 20)")
    p.add_argument("--athletes", type=int, default=50, help="athletes in the team (default 50)")
    p.add_argument(
        "--timeout", type=float, default=90, help="seconds allowed for start-up and for each session (default 90)"
    )
    p.add_argument(
        "--procs",
        type=int,
        default=2,
        help="server processes, `panel serve --num-procs` (default 2, as `pitchlab serve` runs on 2 cores; Bokeh's processes share one socket)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="`panel serve --num-threads` (default 0: Panel then runs each page's load in a thread pool of its "
        "default size, ThreadPoolExecutor(max_workers=None); `pitchlab serve` passes no --num-threads: no pool)",
    )
    p.add_argument(
        "--browsers",
        type=int,
        default=4,
        help="real Chromium sessions at once for the browser mode (default 4; 0 skips it)",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary data home and server log")
    args = p.parse_args()
    n, errors, median, *browser = asyncio.run(run(args))
    print(f"BENCH dashboard sessions={n} errors={errors} median_s={median:.3f}")
    if browser:
        b, w, r = browser[0]
        print(
            f"BENCH dashboard_browser sessions={args.browsers} board_visible_median_s={b:.3f} whatif_median_s={w:.3f} floor_ratio={r:.2f}"
        )
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
