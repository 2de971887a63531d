"""Issue 17 probes that need no served dashboard: an uploaded file's name never becomes part of a path (Pose page), the
API's bearer tokens and the dashboards' sign-in share one failed-attempt limit per address (over the real FastAPI app
and a real SQLite store), and the API's docs page reflects nothing from its URL."""

import re
from pathlib import Path

import pytest

from pitchlab.core import SecuritySettings
from pitchlab.dash.security import Throttle, Throttled

PASSWORD = "units-test-password"
# no waits, a lock after 3 failures per key (account, address or token), addresses as strict as accounts
LIMITS = SecuritySettings(free_attempts=10, lock_after=3, address_factor=1, lock_minutes=1)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    "A store with a small cohort, a coach with a password and a personal API token (each test uses its own addresses)."
    from pitchlab.api_tokens import create_token
    from pitchlab.dash.users import add_user
    from pitchlab.store import Store
    from pitchlab.synth import make_cohort

    tmp = tmp_path_factory.mktemp("security-units")
    mp = pytest.MonkeyPatch()
    mp.setenv("PITCHLAB_HOME", str(tmp / "home"))
    mp.delenv("PITCHLAB_DB_URL", raising=False)
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp / 'mlflow.db'}")
    try:
        store = Store(f"sqlite:///{tmp / 'store.db'}", actor="test").create()
        c = make_cohort(n_teams=1, athletes_per_team=4, seasons=1, seed=7)
        for n in ("teams", "athletes", "sessions"):
            store.write(n, getattr(c, n), source="synthetic")
        add_user("cora", "coach", password=PASSWORD, team_ids=c.teams.team_id.iloc[0], store=store, actor="test")
        token, _ = create_token("cora", store=store, actor="test")
        yield dict(store=store, token=token, cohort=c, tmp=tmp)
    finally:
        mp.undo()


def test_wrong_passwords_lock_the_address_for_api_tokens_too(world):
    "Password guesses from one address lock that address for bearer tokens (even a good one); other addresses work."
    from pitchlab.api_tokens import _VERIFIED, authenticate
    from pitchlab.dash.auth import sign_in

    st, th = world["store"], Throttle(world["store"], LIMITS)
    for i in range(3):  # a different account each time, so only the address adds up
        assert sign_in(f"nobody{i}", "guess-guess-guess", "10.9.9.9", store=st, config=LIMITS) == (None, "invalid")
    _VERIFIED.clear()  # no cached verification: the token is checked against the store
    with pytest.raises(Throttled) as e:
        authenticate(world["token"], st, client="10.9.9.9", throttle=th)
    assert e.value.locked and "this address" in e.value.message
    assert authenticate(world["token"], st, client="10.8.8.8", throttle=th).username == "cora"


def test_wrong_tokens_lock_the_address_for_sign_in_too(world):
    "Token guesses from one address lock it for the dashboards' sign-in (even the right password); audited."
    from pitchlab.api_tokens import authenticate
    from pitchlab.core import AccessDenied
    from pitchlab.dash.auth import sign_in

    st, th = world["store"], Throttle(world["store"], LIMITS)
    for i in range(3):
        with pytest.raises(AccessDenied):
            authenticate(f"plk_guess{i}_secret", st, client="10.7.7.7", throttle=th)
    assert sign_in("cora", PASSWORD, "10.7.7.7", store=st, config=LIMITS) == (None, "locked")
    assert sign_in("cora", PASSWORD, "10.6.6.6", store=st, config=LIMITS)[0].username == "cora"
    audit = st.read("audit")
    mine = audit[audit.actor == "api:10.7.7.7"]
    assert (mine.action == "token_failed").sum() == 3 and (mine.action == "token_throttled").sum() >= 1
    assert (audit.action == "login_throttled").sum() == 1 and "10.7.7.7" in audit.query(
        "action == 'login_throttled'"
    ).detail.iloc[0]


def test_api_over_http_refuses_a_good_token_from_an_address_locked_by_password_guesses(world):
    "The real FastAPI app: after password guesses from its address, a good token gets 429 with Retry-After."
    from fastapi.testclient import TestClient

    from pitchlab.api import ApiContext, create_app
    from pitchlab.api_tokens import _VERIFIED
    from pitchlab.dash.auth import sign_in

    st = world["store"]
    ctx = ApiContext(st.url, f"sqlite:///{world['tmp'] / 'mlflow.db'}", throttle=Throttle(st, LIMITS))
    client = TestClient(create_app(ctx=ctx))  # its requests come from the address 'testclient'
    auth = {"Authorization": f"Bearer {world['token']}"}
    _VERIFIED.clear()
    assert client.get("/api/v1/athletes", headers=auth).status_code == 200  # control
    for i in range(3):
        sign_in(f"nobody{i}", "guess-guess-guess", "testclient", store=st, config=LIMITS)
    _VERIFIED.clear()
    r = client.get("/api/v1/athletes", headers=auth)
    assert r.status_code == 429 and 0 < int(r.headers["retry-after"]) <= 60, r.text
    assert "Traceback" not in r.text and "too many failed" in r.text


def test_api_docs_reflect_nothing_from_the_url(world):
    "/api/docs is the same page whatever the query says, and Swagger UI does not read its config from the URL."
    import swagger_ui_bundle
    from fastapi.testclient import TestClient

    from pitchlab.api import ApiContext, create_app

    st = world["store"]
    client = TestClient(create_app(ctx=ApiContext(st.url, f"sqlite:///{world['tmp'] / 'mlflow.db'}")))
    plain = client.get("/api/docs")
    assert plain.status_code == 200 and "pitchlab API" in plain.text
    evil = "<script>alert(1)</script>"
    for q in (
        {"url": "https://evil.example/spec.json"},
        {"configUrl": "https://evil.example/c.json"},
        {"title": evil},
        {"x": evil},
    ):
        r = client.get("/api/docs", params=q)
        assert r.status_code == 200 and r.text == plain.text, q
    assert "queryConfigEnabled: true" not in plain.text and "queryConfigEnabled:true" not in plain.text
    bundle = (Path(swagger_ui_bundle.swagger_ui_path) / "swagger-ui-bundle.js").read_text()
    assert "queryConfigEnabled:!1" in bundle  # Swagger UI's default: ?url= and ?configUrl= are ignored
    r = client.get("/api/docs/" + evil)
    assert r.status_code == 404 and "<script>" not in r.text


SAMPLE = Path(__file__).resolve().parents[1] / "data" / "samples" / "pose" / "sports2d_demo.mp4"


@pytest.mark.parametrize(
    "filename",
    ["../../../../tmp/pitchlab-evil.mp4", "a/b/c.mp4", "<script>x</script>.MOV", "clip.mp4;rm -rf ~", ""],
)
def test_pose_upload_file_name_never_becomes_part_of_a_path(world, filename):
    "The Pose page's upload (as the browser's streamed upload saves it): a random name in the data home's private"
    "uploads folder; the browser's name is only shown (escaped), never a path."
    from pitchlab.dash.auth import DataAccess, User
    from pitchlab.dash.data import DataStore
    from pitchlab.dash.pages.pose import PosePage
    from pitchlab.pose.jobs import uploads_dir

    st, c = world["store"], world["cohort"]
    data = DataStore(access=DataAccess(st, User("cora", "coach", team_ids=c.teams.team_id.iloc[0])))
    data.athlete = c.athletes.athlete_id.iloc[0]
    page = PosePage(data=data)
    page.take_file(SAMPLE, filename=filename)
    p = Path(page._file["path"])
    try:
        assert p.parent == uploads_dir() and (p.parent.stat().st_mode & 0o777) == 0o700, p
        assert re.fullmatch(r"[0-9a-f]{32}\.(mp4|mov|video)", p.name), p
        for part in p.parts:  # nothing of the browser's name is in the path (beyond a known extension)
            assert "evil" not in part and "script" not in part and part not in ("a", "b") and ";" not in part
        assert (p.stat().st_mode & 0o777) == 0o600 and p.stat().st_size == SAMPLE.stat().st_size
        assert not Path("/tmp/pitchlab-evil.mp4").exists()
    finally:
        p.unlink(missing_ok=True)


def test_pipeline_kernels_talk_over_private_unix_sockets(tmp_path):
    "A pipeline notebook's kernel (papermill, as `pitchlab retrain` runs it) uses IPC sockets in a 0700 folder, no TCP."
    import nbformat

    from pitchlab.pipelines import _execute

    out = tmp_path / "kernel.json"
    probe = f"""import json, os, stat
from ipykernel import get_connection_file
info = json.load(open(get_connection_file()))
mine = set()
for fd in os.listdir("/proc/self/fd"):
    try:
        link = os.readlink(f"/proc/self/fd/{{fd}}")
    except OSError:
        continue
    if link.startswith("socket:["):
        mine.add(link[8:-1])
tcp = []
for table in ("/proc/net/tcp", "/proc/net/tcp6"):
    for line in open(table).read().splitlines()[1:]:
        f = line.split()
        if f[9] in mine:
            tcp.append(" ".join(f[1:4]))
folder = os.path.dirname(info["ip"])
pipe = getattr(get_ipython().kernel.iopub_thread, "_pipe_port", None)
json.dump(dict(transport=info["transport"], ip=info["ip"], mode=stat.S_IMODE(os.stat(folder).st_mode), tcp=tcp,
               pipe=pipe), open({str(out)!r}, "w"))"""
    src = tmp_path / "probe.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(probe)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, src)
    status, error = _execute(src, tmp_path / "probe.out.ipynb", {}, False, 60)
    assert status == "succeeded", error
    got = __import__("json").loads(out.read_text())
    assert got["transport"] == "ipc", got  # shell, control, iopub, stdin and heartbeat: Unix sockets
    # the one TCP socket left is ipykernel's own pipe for output of forked subprocesses (not configurable): it listens
    # on loopback only and drops any message without the kernel's random 16-byte key
    assert got["tcp"] in ([], [f"0100007F:{got['pipe']:04X} 00000000:0000 0A"]), got
    assert got["mode"] == 0o700 and Path(got["ip"]).parent.name.startswith("pitchlab-kernel-"), got
    assert not Path(got["ip"]).parent.exists()  # the sockets' folder is removed after the run


@pytest.mark.slow  # starts MLflow's registry
def test_a_registry_used_first_writes_private_files(tmp_path):
    "A fresh process with the usual umask 022 (a Jupyter kernel, a script) whose first pitchlab call is the registry:"
    "MLflow's database, run folders and artifacts come out 0600/0700."
    import subprocess
    import sys

    home = tmp_path / "home"
    code = (
        "import os; os.umask(0o022)\n"
        "from pitchlab.registry import Registry\n"
        "Registry().log_failure('modes', 'boom')\n"
        "from pitchlab.core import mode_warnings, settings\n"
        "print('WARNINGS', mode_warnings(settings().home, limit=100))\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("MLFLOW_TRACKING_URI", "PITCHLAB_DB_URL")}
    env.update(PITCHLAB_HOME=str(home))
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "WARNINGS []" in r.stdout, r.stdout
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.name == "mlflow.db" for p in files) and any(p.name == "error.txt" for p in files), files
