"""Property-based and fuzz tests of the ingesters: truncated files, wrong encodings, shuffled columns, empty and binary
files, huge values, dates in other formats. Each input either loads (every row read is loaded or quarantined, the store
holds exactly the loaded rows) or is refused with a PitchlabError naming the file, leaving the store unchanged."""

import csv
import io
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from pitchlab.core import PitchlabError, project_root
from pitchlab.ingest.statcast import ingest_statcast
from pitchlab.ingest.tabular import ingest_table
from pitchlab.ingest.wearables import ingest_catapult, ingest_whoop
from pitchlab.ingest.fit import ingest_fit
from pitchlab.store import Store

pytestmark = pytest.mark.slow  # fuzzing loads thousands of files: `make test` runs it, `make test-quick` does not

ROOT = project_root(Path(__file__).parent)
FX = ROOT / "tests/data/ingest"
DARVISH = ROOT / "data/samples/statcast/pybaseball_raw_darvish_data.csv"
FUZZ = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)

_LINES = DARVISH.read_text().splitlines(keepends=True)
BASE = "".join(_LINES[:81])  # header + 80 pitches (two games): quick to load 50 times
HEADER = next(csv.reader([_LINES[0]]))
ROWS = [next(csv.reader([l])) for l in _LINES[1:81]]


_TEMPLATE = []


def _template() -> Path:
    "A SQLite store with the Cubs, Darvish and the football squad, made once and copied for every example."
    if not _TEMPLATE:
        d = Path(tempfile.mkdtemp(prefix="pitchlab-fuzz-template-"))
        st = Store(f"sqlite:///{d}/s.db").create()
        st.write(
            "teams",
            pd.DataFrame(
                [dict(team_id="chc", name="Cubs", sport="baseball"), dict(team_id="wfc", name="WFC", sport="football")]
            ),
        )
        st.write(
            "athletes",
            pd.DataFrame(
                [
                    dict(
                        athlete_id="mlbam:506433",
                        name="Yu Darvish",
                        sex="M",
                        sport="baseball",
                        role="pitcher",
                        team_id="chc",
                    ),
                    dict(athlete_id="f01", name="Ann Kerr", sex="F", sport="football", team_id="wfc"),
                    dict(athlete_id="f02", name="Bea Moss", sex="F", sport="football", team_id="wfc"),
                    dict(athlete_id="f03", name="Cara Lind", sex="F", sport="football", team_id="wfc"),
                ]
            ),
        )
        with st.engine.connect() as c:
            c.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        st.engine.dispose()
        _TEMPLATE.append(d / "s.db")
    return _TEMPLATE[0]


_BASE = []


def _baseline():
    "Pitches and appearances of the unmodified 80 rows."
    if not _BASE:
        with Box() as b:
            p = b.dir / "base.csv"
            p.write_text(BASE)
            ingest_statcast(b.st, p)
            _BASE.append((b.st.read("pitches"), b.st.read("appearances")))
    return _BASE[0]


class Box:
    "A fresh copy of the template store in a temporary folder."

    def __enter__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="pitchlab-fuzz-"))
        shutil.copy(_template(), self.dir / "s.db")
        self.st = Store(f"sqlite:///{self.dir}/s.db")
        self.before = self.st.counts()
        return self

    def __exit__(self, *exc):
        self.st.engine.dispose()
        shutil.rmtree(self.dir, ignore_errors=True)


def _csv(header, rows):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _check(box, path, ingest, main_entity):
    "Either a clear refusal that names the file and leaves the store alone, or no row lost."
    try:
        rep = ingest()
    except PitchlabError as e:
        assert path.name in str(e), f"error does not name the file: {e}"
        pd.testing.assert_series_equal(box.st.counts(), box.before)
        return None
    assert rep.errors == []
    main = [r for r in rep.loads if r.entity == main_entity]
    for r in main:
        assert r.read == r.inserted + r.updated + r.unchanged + r.quarantined, (
            "a row was neither loaded nor quarantined"
        )
    stored = box.st.counts()[main_entity] - box.before[main_entity]
    assert stored == sum(r.inserted for r in main), "the store does not hold exactly the loaded rows"
    q = box.st.quarantine(main_entity)
    assert q["row"].nunique() == sum(r.quarantined for r in main)
    return rep


@FUZZ
@given(cut=st.integers(0, len(BASE.encode())))
def test_truncated_statcast_files(cut):
    with Box() as b:
        p = b.dir / "darvish_cut.csv"
        p.write_bytes(BASE.encode()[:cut])
        rep = _check(b, p, lambda: ingest_statcast(b.st, p), "pitches")
        if rep is not None and rep.read:  # only the row the cut went through may be incomplete
            assert rep.read <= 80 and rep.entities().loc["pitches", "inserted"] >= rep.read - 1


@FUZZ
@given(order=st.permutations(list(range(len(HEADER)))))
def test_shuffled_statcast_columns_load_the_same_pitches(order):
    with Box() as b:
        p = b.dir / "shuffled.csv"
        p.write_text(_csv([HEADER[i] for i in order], [[r[i] for i in order] for r in ROWS]))
        rep = _check(b, p, lambda: ingest_statcast(b.st, p), "pitches")
        assert rep is not None and rep.quarantined == 0
        pd.testing.assert_frame_equal(b.st.read("pitches"), _baseline()[0])
        pd.testing.assert_frame_equal(b.st.read("appearances"), _baseline()[1])


_BAD_NUMBERS = st.sampled_from(
    [
        "1e308",
        "-1e308",
        "1e400",
        "inf",
        "-inf",
        "NaN",
        "99999999999999999999",
        "-0",
        "1,5",
        "1.234,5",
        "0x1F",
        "",
        "null",
        " 12 ",
        "1_000",
        "\u0661\u0662",
        "3.5",
    ]
)
_FIELDS = [
    "release_speed",
    "release_spin_rate",
    "release_extension",
    "inning",
    "game_pk",
    "at_bat_number",
    "pitch_number",
    "pitcher",
]


@FUZZ
@given(edits=st.lists(st.tuples(st.integers(0, 79), st.sampled_from(_FIELDS), _BAD_NUMBERS), min_size=1, max_size=12))
def test_huge_and_odd_numbers_are_loaded_or_quarantined_never_crash(edits):
    rows = [list(r) for r in ROWS]
    for i, f, v in edits:
        rows[i][HEADER.index(f)] = v
    with Box() as b:
        p = b.dir / "numbers.csv"
        p.write_text(_csv(HEADER, rows))
        rep = _check(b, p, lambda: ingest_statcast(b.st, p), "pitches")
        assert rep is not None and rep.read == 80
        for a in b.st.read("appearances").itertuples():
            assert 1 <= a.pitches <= 80 and (pd.isna(a.release_speed_max) or 30 <= a.release_speed_max <= 110)


_DATE_FORMATS = st.sampled_from(
    ["%Y-%m-%d", "%m/%d/%Y", "%d %b %Y", "%Y%m%d", "%Y-%m-%dT%H:%M:%S", "%B %d, %Y", "%d.%m.%Y", "junk"]
)
_READ = ("%Y-%m-%d", "%m/%d/%Y", "%Y-%m-%dT%H:%M:%S")  # what Savant (and Excel re-saving it) write


@FUZZ
@given(edits=st.lists(st.tuples(st.integers(0, 79), _DATE_FORMATS), min_size=1, max_size=20))
def test_dates_in_other_formats_are_read_exactly_or_quarantined_never_guessed(edits):
    rows = [list(r) for r in ROWS]
    gi = HEADER.index("game_date")
    fmt = {}
    for i, f in edits:
        rows[i][gi] = "31st of Juvember" if f == "junk" else pd.Timestamp(ROWS[i][gi]).strftime(f)
        fmt[i] = f
    with Box() as b:
        p = b.dir / "dates.csv"
        p.write_text(_csv(HEADER, rows))
        rep = _check(b, p, lambda: ingest_statcast(b.st, p), "pitches")
        assert rep is not None
        rej = rep.rejects()
        assert {r - 2 for r in rej[rej.field == "game_date"].row} == {i for i, f in fmt.items() if f not in _READ}
        got = b.st.read("pitches").set_index(["at_bat_number", "pitch_number"]).game_date
        base = _baseline()[0].set_index(["at_bat_number", "pitch_number"]).game_date
        pd.testing.assert_series_equal(got, base.loc[got.index])  # every stored date is the true date


_ENCODINGS = st.sampled_from(
    ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32", "cp1252", "latin-1", "cp500", "utf-7"]
)


@FUZZ
@given(
    enc=_ENCODINGS,
    name=st.sampled_from(["Jos\u00e9 Ure\u00f1a", "Yu Darvish", "\u30c0\u30eb\u30d3\u30c3\u30b7\u30e5 \u6709"]),
)
def test_wrong_encodings_are_refused_or_read_correctly(enc, name):
    rows = [list(r) for r in ROWS]
    for r in rows:
        r[HEADER.index("player_name")] = name
    text = _csv(HEADER, rows)
    try:
        data = text.encode(enc)
    except UnicodeEncodeError:
        return
    with Box() as b:
        p = b.dir / f"enc-{enc}.csv"
        p.write_bytes(data)
        rep = _check(b, p, lambda: ingest_statcast(b.st, p), "pitches")
        if rep is not None:  # read: then it was read right, every pitch loaded
            assert rep.entities().loc["pitches", "inserted"] == 80


@FUZZ
@given(data=st.binary(min_size=0, max_size=4000), kind=st.sampled_from(["statcast", "whoop", "catapult", "csv", "fit"]))
def test_binary_and_empty_files_with_a_csv_name_are_refused_by_name(data, kind):
    with Box() as b:
        p = b.dir / ("garbage.fit" if kind == "fit" else "garbage.csv")
        p.write_bytes(data)
        run = dict(
            statcast=lambda: ingest_statcast(b.st, p),
            whoop=lambda: ingest_whoop(b.st, p, athlete="f01"),
            catapult=lambda: ingest_catapult(b.st, p),
            fit=lambda: ingest_fit(b.st, p, athlete="f01"),
            csv=lambda: ingest_table(b.st, p, FX / "club_sessions.yaml"),
        )[kind]
        with pytest.raises(PitchlabError) as e:
            run()
        assert "garbage" in str(e.value)
        pd.testing.assert_series_equal(b.st.counts(), b.before)


_FIXTURES = [
    ("whoop", FX / "whoop/physiological_cycles.csv", "wellness"),
    ("whoop", FX / "whoop/workouts.csv", "sessions"),
    ("catapult", FX / "catapult_openfield_units.csv", "sessions"),
    ("catapult", FX / "catapult_openfield_classic.csv", "sessions"),
    ("csv", FX / "club_sessions.csv", "sessions"),
]


@FUZZ
@given(
    which=st.sampled_from(range(len(_FIXTURES))),
    frac=st.floats(0, 1),
    enc=st.sampled_from(["utf-8", "utf-16", "cp1252"]),
)
def test_truncated_wearable_and_club_files(which, frac, enc):
    kind, src, entity = _FIXTURES[which]
    text = src.read_text()
    cut = text[: int(len(text) * frac)]
    with Box() as b:
        p = b.dir / f"cut-{src.name}"
        p.write_bytes(cut.encode(enc))
        run = dict(
            whoop=lambda: ingest_whoop(b.st, p, athlete="f01"),
            catapult=lambda: ingest_catapult(b.st, p, team="wfc", dayfirst=True),
            csv=lambda: ingest_table(b.st, p, FX / "club_sessions.yaml"),
        )[kind]
        _check(b, p, run, entity)


@FUZZ
@given(
    cells=st.lists(
        st.tuples(
            st.text(max_size=12), st.text(max_size=12), st.text(max_size=8), st.text(max_size=8), st.text(max_size=6)
        ),
        min_size=1,
        max_size=15,
    )
)
def test_club_csv_with_arbitrary_cells(cells):
    header = ["Player", "Session date", "Type", "Minutes", "sRPE (CR-10)"]
    rows = [list(c) for c in cells] + [["Ann Kerr", "04/03/2025", "Training", "60", "6"]]
    with Box() as b:
        p = b.dir / "club.csv"
        try:
            p.write_text(_csv(header, rows), encoding="utf-8")
        except UnicodeEncodeError:
            return  # lone surrogates cannot be written as UTF-8 at all
        rep = _check(b, p, lambda: ingest_table(b.st, p, FX / "club_sessions.yaml"), "sessions")
        if rep is not None:
            got = b.st.read("sessions")
            assert ((got.athlete_id == "f01") & (got.date == pd.Timestamp("2025-03-04"))).any() or rep.quarantined > 0
