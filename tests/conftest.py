"""Shared fixtures: a real PostgreSQL server on loopback, stores on both backends, the --runslow flag, dashboard
servers and an offline Chromium for the browser tests, the layout check."""

import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="also run slow scientific checks (CI does)")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: slow scientific check; runs with --runslow (make test and CI pass it)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow (make test does)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def _pg_bin(name):
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        pytest.fail(
            f"PostgreSQL's {name} is not installed: run `make system-deps` (make test does it) "
            "or set PITCHLAB_TEST_PG_URL to a server"
        )
    return found


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def pg_server():
    """URL of a PostgreSQL server on loopback: PITCHLAB_TEST_PG_URL, or a throwaway cluster started here."""
    if os.environ.get("PITCHLAB_TEST_PG_URL"):
        yield os.environ["PITCHLAB_TEST_PG_URL"]
        return
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    root = Path(tempfile.mkdtemp(prefix="pitchlab-pg-"))
    run_as = []
    if os.geteuid() == 0:  # postgres refuses to run as root: use the Debian package's postgres user
        shutil.chown(root, "postgres", "postgres")
        os.chmod(root, 0o700)
        run_as = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", _free_port()
    subprocess.run(
        run_as + [initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    subprocess.run(
        run_as + [pg_ctl, "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "-t", "60", "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(run_as + [pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def _pg_database(server_url):
    import sqlalchemy as sa

    name = "t_" + uuid.uuid4().hex[:12]
    eng = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(sa.text(f"CREATE DATABASE {name}"))
    eng.dispose()
    return server_url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A fresh, empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return _pg_database(request.getfixturevalue("pg_server"))


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh data home for one test (PITCHLAB_HOME), with the default SQLite store inside it."""
    h = tmp_path / "home"
    monkeypatch.setenv("PITCHLAB_HOME", str(h))
    monkeypatch.delenv("PITCHLAB_DB_URL", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return h


# What a browser test checks on every page at every width: the document does not scroll sideways, no readable box
# (text, field, button, chart canvas, table, card) reaches past the viewport's edges, and no two such boxes overlap.
# Boxes inside one another are fine; boxes are collected through every shadow root (Panel renders into shadow DOM).
LAYOUT_JS = """(width) => {
  const all = [];
  const walk = (root) => { for (const e of root.querySelectorAll('*')) { all.push(e); if (e.shadowRoot) walk(e.shadowRoot); } };
  walk(document);
  const tags = new Set(['INPUT', 'SELECT', 'BUTTON', 'H1', 'H2', 'H3', 'P', 'LI', 'LABEL', 'DT', 'DD']);
  const cls = ['tabulator', 'pitchlab-card', 'noUi-target', 'bk-Canvas'];
  const inside = (a, b) => { for (let n = b; n; n = n.parentNode || n.host) if (n === a) return true; return false; };
  const boxes = all.filter(e => tags.has(e.tagName) || cls.some(c => e.classList && e.classList.contains(c)))
    .map(e => [e, e.getBoundingClientRect()])
    .filter(([e, r]) => r.width > 0 && r.height > 0 && e.checkVisibility({checkOpacity: true, checkVisibilityCSS: true}));
  const name = (e) => e.tagName + '.' + ((e.className && e.className.baseVal === undefined ? e.className : '') || '').toString().slice(0, 30) + ':' + (e.textContent || '').trim().slice(0, 30);
  const bad = [];
  const sx = window.scrollX;
  for (const [e, r] of boxes) if (r.left + sx < -1 || r.right + sx > width + 1) bad.push('clipped ' + name(e) + ' ' + Math.round(r.left) + '-' + Math.round(r.right));
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const [a, r] = boxes[i], [b, s] = boxes[j];
    if (inside(a, b) || inside(b, a)) continue;
    const w = Math.min(r.right, s.right) - Math.max(r.left, s.left), h = Math.min(r.bottom, s.bottom) - Math.max(r.top, s.top);
    if (w > 2 && h > 2) bad.push('overlap ' + name(a) + ' / ' + name(b));
  }
  return [boxes.length, document.documentElement.scrollWidth, bad];
}"""


@pytest.fixture
def layout_problems():
    """A function (playwright page, viewport width) -> (number of boxes checked, list of problems): horizontal overflow,
    boxes past the viewport's edges, overlapping boxes."""

    def check(page, width):
        n, scroll, bad = page.evaluate(LAYOUT_JS, width)
        if scroll > width:
            bad = [f"the page is {scroll} px wide in a {width} px viewport", *bad]
        return n, bad

    return check


# ---- Dashboards in a real browser: one server factory and one Chromium set-up for every browser test ----------------
# A server is `pitchlab serve`'s own command line (`pitchlab.cli.serve_command`: `panel serve` with pitchlab's sign-in,
# the Pose upload routes, the warm-up hook, signed session ids, `--num-procs`) on 127.0.0.1 and a free port, or pages
# served in this process (`pn.serve`, threaded) for tests that build the pages with their own stores and users.
# Start-up is bounded; a server that dies or does not answer shows its log; every server is stopped whatever happens,
# and a test that fails while a server runs gets the tail of that server's log in its report.

CHROMIUM = "/usr/bin/chromium"  # Debian's package (.ci/browser-deps.sh); Playwright's own download is never used
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
CHROMIUM_ARGS += ["--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"]
BROWSER_WAIT = 60_000  # ms: the longest an element may take to appear on a busy 2-core machine
SERVER_START = 180  # s: the longest a server may take to answer its sign-in page (a busy 2-core machine)
LOCAL_URL = re.compile(r"^(https?|wss?)://127\.0\.0\.1(:\d+)?/|^(data|blob|about):")  # all a test page may ask for
_RUNNING: dict = {}  # log file -> what runs: the servers up now, whose logs a failing test shows
_SERVER_ENV = ("PITCHLAB_HOME", "PITCHLAB_DB_URL", "MLFLOW_TRACKING_URI", "PITCHLAB_DASH_USER", "PANEL_OAUTH_PROVIDER")
_SERVER_ENV += ("PANEL_BASIC_AUTH", "PITCHLAB_RETRAIN_BACKEND", "PANEL_COOKIE_SECRET", "BOKEH_SECRET_KEY")


def _log_tail(log: Path, n: int = 4000) -> str:
    return log.read_text(errors="replace")[-n:] if log.exists() else "(no log written)"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for log, what in list(_RUNNING.items()):
            report.sections.append((f"{what}: last lines of {log}", _log_tail(log)))


@dataclass
class Server:
    "A dashboard server under test: its base URL, data home, process (None when served in this process) and log."

    base: str
    home: Path
    proc: subprocess.Popen | None = None
    log: Path | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc else os.getpid()


def stop_server(proc: subprocess.Popen | None, wait: float = 20):
    """SIGTERM to the server's process group, SIGKILL after `wait` s; the group is signalled even when its parent has
    exited, since `--num-procs` workers outlive it (a crashed run had left two `panel serve` workers running)."""
    if proc is None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:  # the parent is gone: wait (bounded) for the group's workers
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


def run_cli(*argv) -> tuple:
    "`pitchlab ARGV` in this process: (exit code, stdout, stderr)."
    import contextlib
    import io

    from pitchlab import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def _wait_up(url: str, proc: subprocess.Popen | None, log: Path | None, timeout: float, what: str):
    "Poll `url` (0.3 s apart, at most `timeout` s) until it answers 200; fail with the log if the server dies or is late."
    t0 = time.monotonic()
    while True:
        try:
            if urllib.request.urlopen(url, timeout=5).status == 200:
                return
        except OSError:
            pass
        dead = proc is not None and proc.poll() is not None
        if dead or time.monotonic() - t0 > timeout:
            why = f"exited with code {proc.returncode}" if dead else f"did not answer {url} within {timeout:.0f} s"
            pytest.fail(f"{what} {why}:\n" + (_log_tail(log) if log else ""), pytrace=False)
        time.sleep(0.3)


@contextmanager
def pitchlab_server(home: Path, apps=("app",), procs: int = 1, env: dict | None = None, timeout: float = SERVER_START):
    """`pitchlab serve`'s command line (`--num-procs procs`) on a free loopback port over the data home `home`, with
    this environment's database, MLflow and sign-in settings removed and `env` added; yields a `Server` once /login
    answers, stops it on exit whatever happened. Its log is `home`/../serve-<port>.log."""
    from pitchlab.cli import serve_command

    port = _free_port()
    saved = {k: os.environ.pop(k, None) for k in _SERVER_ENV}
    os.environ["PITCHLAB_HOME"] = str(home)
    try:
        cmd, full = serve_command(port=port, address="127.0.0.1", apps=tuple(apps), procs=procs)
    finally:
        os.environ.pop("PITCHLAB_HOME")
        os.environ.update({k: v for k, v in saved.items() if v is not None})
    full.update(PITCHLAB_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))
    log = Path(home).parent / f"serve-{port}.log"
    what = f"pitchlab serve (port {port}, {procs} process(es))"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=full, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        _RUNNING[log] = what
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_up(base + "/login", proc, log, timeout, what)
            yield Server(base, Path(home), proc, log)
        finally:
            _RUNNING.pop(log, None)
            stop_server(proc)


@contextmanager
def panel_pages(apps: dict, home: Path | None = None, timeout: float = 60):
    """Pages served by this process: `apps` maps a URL path to a function building the page (`pn.serve`, threaded, on a
    free loopback port); yields a `Server` once the port accepts connections, stops the server on exit."""
    import panel as pn

    port = _free_port()
    server = pn.serve(
        apps, port=port, address="127.0.0.1", websocket_origin=[f"127.0.0.1:{port}"], show=False, threaded=True
    )
    try:
        t0 = time.monotonic()
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                break
            except OSError:
                if time.monotonic() - t0 > timeout:
                    pytest.fail(f"pn.serve did not listen on 127.0.0.1:{port} within {timeout} s", pytrace=False)
                time.sleep(0.2)
        yield Server(f"http://127.0.0.1:{port}", Path(home) if home else Path.cwd())
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser():
    "Debian's Chromium through Playwright for one test module (`expect` waits up to BROWSER_WAIT)."
    from playwright.sync_api import expect, sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run .ci/browser-deps.sh (Debian's chromium package)", pytrace=False)
    expect.set_options(timeout=BROWSER_WAIT)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            yield b
        finally:
            b.close()


def open_context(browser, width: int = 1400, height: int = 1000):
    """A browser context of `width` x `height` in which every request that leaves 127.0.0.1 is aborted and recorded in
    `ctx.blocked`, and console errors and uncaught page errors are recorded in `ctx.errors`; pages wait BROWSER_WAIT."""
    ctx = browser.new_context(viewport={"width": width, "height": height})
    ctx.set_default_timeout(BROWSER_WAIT)
    ctx.blocked, ctx.errors = [], []

    def route(r):
        if LOCAL_URL.match(r.request.url):
            return r.continue_()
        ctx.blocked.append(r.request.url)
        return r.abort()

    ctx.route("**/*", route)
    ctx.on("console", lambda m: ctx.errors.append(m.text) if m.type == "error" else None)
    ctx.on("weberror", lambda e: ctx.errors.append(str(e.error)))
    return ctx


@pytest.fixture
def browser_context(browser):
    "A factory (width, height) -> offline browser context (see `open_context`); every context is closed after the test."
    made = []

    def new(width: int = 1400, height: int = 1000):
        made.append(open_context(browser, width, height))
        return made[-1]

    yield new
    for ctx in made:
        ctx.close()
