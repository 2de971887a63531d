"""Shared fixtures: a real PostgreSQL server on loopback, stores on both backends, the --runslow flag."""

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


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
