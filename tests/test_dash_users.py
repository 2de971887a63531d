"""`pitchlab users add|list|set-role|passwd|remove` through the real command line, against a fresh data home."""

import io
import subprocess
import sys

import pytest

from pitchlab import cli
from pitchlab.dash.auth import ROLES, login
from pitchlab.dash.users import _ROLES, list_users


@pytest.fixture
def store(home):
    "A fresh data home (conftest's `home`) with two teams of four."
    from pitchlab.synth import make_cohort

    st = cli.init(quiet=True)
    c = make_cohort(n_teams=2, athletes_per_team=4, seasons=1, seed=5)
    for n in ("teams", "athletes"):
        st.write(n, getattr(c, n), source="synthetic")
    st.cohort = c
    return st


def run(argv, stdin="", monkeypatch=None, capsys=None):
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    rc = cli.main(argv)
    out = capsys.readouterr()
    return rc, out.out + out.err


def test_roles_match_auth():
    assert _ROLES == ROLES


def test_add_list_login_set_role_passwd_remove(store, monkeypatch, capsys):
    t1, t2 = store.cohort.teams.team_id
    a1 = store.cohort.athletes.athlete_id.iloc[0]
    r = lambda argv, stdin="": run(argv, stdin, monkeypatch, capsys)
    assert r(["users", "add", "root", "--role", "admin", "--password-stdin"], "admin-password-1\n")[0] == 0
    rc, out = r(
        [
            "users",
            "add",
            "cora",
            "--role",
            "coach",
            "--teams",
            f"{t1}, {t2}",
            "--display-name",
            "Cora",
            "--password-stdin",
        ],
        "cora-password-1\n",
    )
    assert rc == 0 and "teams" in out
    assert (
        r(["users", "add", "ann", "--role", "athlete", "--athlete-id", a1, "--password-stdin"], "ann-password-12\n")[0]
        == 0
    )
    assert r(["users", "add", "sso@club.org", "--role", "medical", "--teams", t1, "--no-password"])[0] == 0
    rc, out = r(["users", "list"])
    assert rc == 0 and "argon2" not in out and "cora-password" not in out
    assert {"root", "cora", "ann", "sso@club.org"} <= set(out.split())
    lst = list_users(store)
    assert list(lst.local_password) == [True, True, True, False]  # sorted: ann, cora, root, sso
    stored = store.read("users").set_index("username")
    assert stored.loc["cora", "team_ids"] == f"{t1},{t2}"
    assert stored["password_hash"].dropna().str.startswith("$argon2id$").all()
    assert login("cora", "cora-password-1", store).team_ids == (t1, t2)
    assert login("sso@club.org", "", store) is None  # OAuth-only: no local sign-in
    rc, out = r(["users", "list", "--role", "athlete"])
    assert "ann" in out and "cora" not in out
    assert r(["users", "set-role", "cora", "medical", "--teams", t2])[0] == 0
    assert (login("cora", "cora-password-1", store).role, login("cora", "cora-password-1", store).team_ids) == (
        "medical",
        (t2,),
    )
    assert r(["users", "passwd", "cora", "--password-stdin"], "a-new-password-2\n")[0] == 0
    assert login("cora", "cora-password-1", store) is None and login("cora", "a-new-password-2", store) is not None
    assert r(["users", "remove", "ann", "--yes"])[0] == 0
    assert "ann" not in set(store.read("users").username)
    audit = store.read("audit").query("entity == 'users'")
    assert {"user_add", "user_set_role", "user_passwd", "user_remove"} <= set(audit.action)


@pytest.mark.parametrize(
    "argv,stdin,message",
    [
        (["users", "add", "zed", "--role", "coach", "--teams", "no-such-team", "--no-password"], "", "unknown team"),
        (["users", "add", "zed", "--role", "coach", "--no-password"], "", "--teams"),
        (["users", "add", "al", "--role", "athlete", "--no-password"], "", "--athlete-id"),
        (
            ["users", "add", "al", "--role", "athlete", "--athlete-id", "ghost", "--no-password"],
            "",
            "no athlete 'ghost'",
        ),
        (["users", "add", "bo", "--role", "admin", "--password-stdin"], "short\n", "at least"),
        (["users", "add", "bo", "--role", "admin", "--password-stdin"], "", "nothing was read"),
        (["users", "add", "bo b", "--role", "admin", "--no-password"], "", "without spaces"),
        (["users", "set-role", "ghost", "admin"], "", "no user 'ghost'"),
        (["users", "remove", "ghost", "--yes"], "", "no user 'ghost'"),
        (["users", "add", "bo", "--role", "admin"], "", "--password-stdin"),  # no terminal to prompt on
    ],
)
def test_mistakes_exit_2_with_a_message(store, monkeypatch, capsys, argv, stdin, message):
    rc, out = run(argv, stdin, monkeypatch, capsys)
    assert rc == 2 and message in out
    assert "bo" not in set(store.read("users").username)


def test_duplicate_user(store, monkeypatch, capsys):
    assert run(["users", "add", "root", "--role", "admin", "--no-password"], "", monkeypatch, capsys)[0] == 0
    rc, out = run(["users", "add", "ROOT", "--role", "admin", "--no-password"], "", monkeypatch, capsys)
    assert rc == 2 and "already exists" in out


def test_no_store_yet(home, monkeypatch, capsys):
    rc, out = run(["users", "list"], "", monkeypatch, capsys)
    assert rc == 2 and "pitchlab init" in out


def test_cli_import_stays_light():
    "Parsing `pitchlab users` imports neither pandas nor panel (keeps `pitchlab --help` quick)."
    code = (
        "import sys, argparse, pitchlab.dash.users as u; p = argparse.ArgumentParser(); u.register_cli(p.add_subparsers()); "
        "print('pandas' in sys.modules, 'panel' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["users", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for sub in ("add", "list", "set-role", "passwd", "remove"):
        assert sub in out
