"""Escaping by construction. (1) A static check over pitchlab/dash (the pages, the data store and the app): no f-string
goes into an HTML, Markdown or Alert pane, or into a pane's `.object`, unless each value in it is `esc(...)`, a number
with a format spec, or a count; so a typed value (a name, a position, a note, a file name) cannot reach HTML raw.
(2) The real pages with `<script>` and `<img onerror>` payloads planted in an athlete's name and position and in the
signed-in person's display name: the HTML of every pane contains them escaped, never raw."""

import ast
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKED = [ROOT / "pitchlab" / "dash" / "app.py", ROOT / "pitchlab" / "dash" / "data.py"]
CHECKED += sorted((ROOT / "pitchlab" / "dash" / "pages").glob("*.py"))
PANES = {"HTML", "Markdown", "Alert"}
SAFE_CALLS = {"esc", "len", "int", "round", "_badge"}  # escaped, or numbers, or a badge of a fixed level name
PAYLOADS = ["<script>window.pwned=1</script>", '<img src=x onerror="window.pwned=1">']


def _unsafe_values(node: ast.JoinedStr) -> list:
    "Source of each value in an f-string that is neither esc(...), a formatted number nor a count."
    bad = []
    for v in node.values:
        if not isinstance(v, ast.FormattedValue) or v.format_spec is not None:
            continue
        f = v.value.func if isinstance(v.value, ast.Call) else None
        name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
        if name not in SAFE_CALLS:
            bad.append(ast.unparse(v.value))
    return bad


def _fstrings(expr) -> list:
    "The f-strings an expression puts into a pane (directly, concatenated or in a conditional)."
    if isinstance(expr, ast.JoinedStr):
        return [expr]
    if isinstance(expr, ast.BinOp):
        return _fstrings(expr.left) + _fstrings(expr.right)
    if isinstance(expr, ast.IfExp):
        return _fstrings(expr.body) + _fstrings(expr.orelse)
    return []


def violations(path: Path) -> list:
    "(line, value) of every unescaped value going into an HTML/Markdown/Alert pane in `path`."
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute) and f.attr in PANES and node.args:
                targets.append(node.args[0])
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Attribute) and t.attr == "object" for t in node.targets
        ):
            targets.append(node.value)
        for t in targets:
            for js in _fstrings(t):
                out += [(node.lineno, b) for b in _unsafe_values(js)]
    return out


def test_the_check_finds_a_raw_value(tmp_path):
    p = tmp_path / "page.py"
    p.write_text(
        "pn.pane.HTML(f'<b>{name}</b> {esc(team)} {risk:.1%} {len(rows)}')\n"
        "self._h.object = f'# {athlete.name}' + f' {esc(pos)}'\n"
    )
    assert sorted(violations(p)) == [(1, "name"), (2, "athlete.name")]


@pytest.mark.parametrize("path", CHECKED, ids=lambda p: p.name)
def test_no_raw_value_reaches_an_html_pane(path):
    assert violations(path) == []


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    "A store whose first athlete's name and position, and the coach's display name, are script payloads."
    from pitchlab.store import Store
    from pitchlab.synth import make_cohort

    home = tmp_path_factory.mktemp("dash-xss")
    store = Store(f"sqlite:///{home / 'store.db'}", actor="test").create()
    c = make_cohort(n_teams=1, athletes_per_team=4, seasons=1, seed=5)
    ath = c.athletes.copy()
    ath.loc[0, "name"] = PAYLOADS[0]
    ath.loc[0, "position"] = PAYLOADS[1]
    c.athletes = ath
    for n in ("teams", "athletes", "sessions", "wellness"):
        store.write(n, getattr(c, n), source="synthetic")
    return dict(store=store, team=c.teams.team_id.iloc[0], victim=ath.athlete_id.iloc[0])


def _html_of(viewable) -> list:
    "The text of every HTML, Markdown and Alert pane under `viewable`."
    import panel as pn

    root = viewable.__panel__() if hasattr(viewable, "__panel__") else viewable
    panes = root.select(lambda o: isinstance(o, (pn.pane.HTML, pn.pane.Markdown, pn.pane.Alert)))
    return [str(p.object) for p in panes]


def test_payloads_are_escaped_on_every_page(planted):
    from doubles import FakeRetrainBackend, MissingScorer

    from pitchlab.board import NoRules
    from pitchlab.dash.app import App
    from pitchlab.dash.auth import DataAccess, User

    user = User("cora", "coach", PAYLOADS[1] + " " + PAYLOADS[0], team_ids=planted["team"])
    app = App(
        access=DataAccess(planted["store"], user),
        rules=NoRules(),
        backend=FakeRetrainBackend(),
        scorer=MissingScorer(),
        defer=False,
    )
    app.data.athlete = planted["victim"]
    texts = _html_of(app)
    for page in app.pages:
        app.show(page)
        texts += _html_of(app.component(page))
    blob = "\n".join(texts)
    for p in PAYLOADS:
        assert p not in blob
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in blob  # the name, shown escaped
    assert "&lt;img src=x onerror=&quot;window.pwned=1&quot;&gt;" in blob  # the position / display name, escaped
    assert len(pd.Series(texts)) > 10
