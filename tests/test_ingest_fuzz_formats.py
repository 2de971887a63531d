"""1,000 generated bad inputs per ingest format (Statcast, FIT, WHOOP, Catapult, CSV/Excel; the roster has its own
file), each a real sample file mutated byte by byte (cut, flipped, spliced, junk and delimiters inserted, re-encoded)
or, for FIT, a generated file with arbitrary field values. Properties checked on every input:

- no crash: the reader either refuses the file with a PitchlabError that names it, or returns its rows;
- no lost or changed valid row: every data row that lies wholly before the first mutated byte comes out exactly once
  and equal to the same row read from the unmutated file (nothing after it can change how it parses);
- about one input in 100 also goes through the store twice (a fresh in-memory SQLite store): every row read is inserted or
  quarantined, the store holds exactly the inserted rows, the protected rows are stored exactly once, and loading the
  same file again changes nothing.

Reading is checked on every input and the store on one in 100 because one store load costs about 20 reads (pandas
and pandera overhead per call, not per row); `derandomize=True` makes CI repeatable. Timing: `pytest --durations`."""

import zlib
import os
import struct
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from pitchlab.core import PitchlabError, project_root
from pitchlab.ingest.base import heart_rate_params, match_athletes
from pitchlab.ingest.fit import fit_frames, ingest_fit, read_fit
from pitchlab.ingest.statcast import ingest_statcast, pitches_frame, read_statcast
from pitchlab.ingest.tabular import ingest_table, read_tabular, tabular_frame
from pitchlab.ingest.wearables import (
    catapult_sessions,
    ingest_catapult,
    ingest_whoop,
    read_catapult,
    read_whoop,
    whoop_sessions,
    whoop_sleep,
    whoop_wellness,
)
from pitchlab.store import Store

pytestmark = pytest.mark.slow  # 5 x 1,000 inputs: `make test` (--runslow) runs it, `make test-quick` does not

ROOT = project_root(Path(__file__).parent)
FX = ROOT / "tests/data/ingest"
FIT_DIR = ROOT / "data/samples/fit"
EXAMPLES = int(os.environ.get("PITCHLAB_FUZZ_EXAMPLES", "1000"))  # fewer for a quick local look
STORE_EVERY = 100  # about one input in 100 also goes through the store, twice
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
WORK = Path(tempfile.mkdtemp(prefix="pitchlab-fuzz-formats-"))
MAPPING = FX / "club_sessions.yaml"

TEAMS = pd.DataFrame(
    [dict(team_id="chc", name="Cubs", sport="baseball"), dict(team_id="wfc", name="WFC", sport="football")]
)
ATHLETES = pd.DataFrame(
    [
        dict(athlete_id="mlbam:506433", name="Yu Darvish", sex="M", sport="baseball", role="pitcher", team_id="chc"),
        dict(athlete_id="f01", name="Ann Kerr", sex="F", sport="football", team_id="wfc"),
        dict(athlete_id="f02", name="Bea Moss", sex="F", sport="football", team_id="wfc"),
        dict(athlete_id="f03", name="Cara Lind", sex="F", sport="football", team_id="wfc"),
        dict(athlete_id="f04", name="Eve Park", sex="F", sport="football", team_id="wfc"),
    ]
)
HR = heart_rate_params(None)


def _store() -> Store:
    "A fresh in-memory SQLite store with the teams and athletes the samples name."
    s = Store("sqlite:///:memory:").create()
    s.write("teams", TEAMS)
    s.write("athletes", ATHLETES)
    return s


# ---------------------------------------------------------------- mutations
TOKENS = [
    b'"',
    b'""',
    b",",
    b";",
    b"\t",
    b"\r",
    b"\n",
    b"\r\n",
    b"\x00",
    b"\xff\xfe",
    b"\xef\xbb\xbf",
    b"\xe9",
    b"\xc3",
    b"NaN",
    b"inf",
    b"-1e400",
    b"1e308",
    b"99999999999999999999",
    b" ",
    b"null",
    b"#N/A",
    b"1,5",
    b"\x1a",
    b"'",
    b"=1+1",
    "\u202e\u00e9\u30c0".encode(),
    b"2025-02-30",
    b"-",
]
_pos = st.floats(0, 1, exclude_max=True)
MUTATION = st.one_of(
    st.tuples(st.just("cut"), _pos),
    st.tuples(st.just("flip"), _pos, st.integers(0, 255)),
    st.tuples(st.just("insert"), _pos, st.one_of(st.sampled_from(TOKENS), st.binary(min_size=1, max_size=6))),
    st.tuples(st.just("delete"), _pos, st.integers(1, 40)),
    st.tuples(st.just("splice"), _pos, _pos, st.integers(1, 300)),
    st.tuples(st.just("encode"), st.sampled_from(["utf-16", "utf-16-le", "cp1252", "utf-32", "cp500"])),
)
MUTATIONS = st.lists(MUTATION, min_size=1, max_size=3)


def mutate(data: bytes, muts) -> tuple[bytes, int]:
    "Apply the mutations in turn; also return how many leading bytes are still the original's."
    first = len(data)
    for m in muts:
        kind, n = m[0], len(data)
        if kind == "encode":
            try:
                data = data.decode("utf-8").encode(m[1])
            except (UnicodeDecodeError, UnicodeEncodeError):
                continue
            first = 0
            continue
        p = int(m[1] * (n + 1))
        if kind == "cut":
            data = data[:p]
        elif kind == "flip":
            if p >= n:
                continue
            data = data[:p] + bytes([m[2]]) + data[p + 1 :]
        elif kind == "insert":
            data = data[:p] + m[2] + data[p:]
        elif kind == "delete":
            data = data[:p] + data[p + m[2] :]
        elif kind == "splice":  # copy a slice of the file to position p
            q = int(m[2] * n)
            data = data[:p] + data[q : q + m[3]] + data[p:]
        first = min(first, p)
    return data, first


def protected_lines(original: bytes, first: int) -> set:
    "File lines (1-based) that end, newline included, before the first mutated byte."
    ends = [i for i, b in enumerate(original) if b == 0x0A]
    return {k + 1 for k, e in enumerate(ends) if e < first}


def _same(a, b) -> bool:
    "Cell equality across dtypes: both missing, equal numbers, or equal text."
    na, nb = pd.isna(a) if np.ndim(a) == 0 else False, pd.isna(b) if np.ndim(b) == 0 else False
    if na or nb:
        return bool(na and nb)
    try:
        return bool(np.isclose(float(a), float(b), rtol=1e-12, atol=0, equal_nan=True))
    except (TypeError, ValueError):
        return str(a) == str(b)


def assert_rows_equal(got: pd.DataFrame, base: pd.DataFrame, rows, what: str):
    "Each of `rows` is in `got` exactly once, with the values it has in `base`."
    for r in rows:
        assert (got.index == r).sum() == 1, f"{what}: row {r} lost or duplicated"
        g, b = got.loc[r], base.loc[r]
        bad = [c for c in base.columns if not _same(g.get(c), b[c])]
        assert not bad, f"{what}: row {r} changed in {bad}: {[(g.get(c), b[c]) for c in bad]}"


def _write(name: str, data: bytes) -> Path:
    p = WORK / name
    p.write_bytes(data)
    return p


def refused(e: PitchlabError, p: Path):
    "A refusal must name the file."
    assert p.name in str(e), f"error does not name the file: {e}"


# ---------------------------------------------------------------- the store check, every 50th input
def _keys(df: pd.DataFrame, keys: list) -> set:
    "Key tuples as text (the frames hold text, the store typed values)."
    return set(df[keys].astype(str).itertuples(index=False, name=None)) if len(df) else set()


_BASE_KEYS = {}


def _base_keys(name: str, base: bytes, ingest, entity: str, keys: list) -> set:
    "Keys the store keeps from the unmutated file (its own invalid rows are quarantined there too)."
    if name not in _BASE_KEYS:
        s = _store()
        ingest(s, _write("base-" + name, base))
        _BASE_KEYS[name] = _keys(s.read(entity, actor="fuzz"), keys)
    return _BASE_KEYS[name]


def store_check(p: Path, ingest, entity: str, keys: list, want: pd.DataFrame | None, base: bytes):
    """Load `p` twice into a fresh store: refusal names the file and leaves the store alone; otherwise every row read is
    inserted or quarantined, the store holds exactly the inserted rows, `want`'s rows that the unmutated file `base`
    stores are stored once, and the second load changes nothing."""
    s = _store()
    before = s.counts()
    try:
        rep = ingest(s, p)
    except PitchlabError as e:
        refused(e, p)
        pd.testing.assert_series_equal(s.counts(), before)
        return
    assert rep.errors == []
    main = [r for r in rep.loads if r.entity == entity]
    for r in main:
        assert r.read == r.inserted + r.updated + r.unchanged + r.quarantined, "a row neither loaded nor quarantined"
    after = s.counts()
    assert after[entity] - before[entity] == sum(r.inserted for r in main), "store does not hold the inserted rows"
    stored = s.read(entity, actor="fuzz")
    assert not stored.duplicated(keys).any()
    if want is not None:
        missing = (_keys(want, keys) & _base_keys(p.name, base, ingest, entity, keys)) - _keys(stored, keys)
        assert not missing, f"valid rows not stored: {sorted(missing)[:3]}"
    rep2 = ingest(s, p)
    assert sum(r.inserted for r in rep2.loads) == 0, "loading the same file twice inserted rows"
    pd.testing.assert_series_equal(s.counts().drop("audit"), after.drop("audit"))


def every_nth(data: bytes) -> bool:
    "About one input in STORE_EVERY, chosen by content (a replayed example makes the same choice)."
    return zlib.crc32(data) % STORE_EVERY == 0


# ---------------------------------------------------------------- Statcast
_DARVISH = (ROOT / "data/samples/statcast/pybaseball_raw_darvish_data.csv").read_bytes()
STATCAST = b"".join(_DARVISH.splitlines(keepends=True)[:13])  # header + 12 pitches


def _statcast_frame(p):
    return pitches_frame(read_statcast(p))


STATCAST_BASE = _statcast_frame(_write("statcast-base.csv", STATCAST))
PITCH_KEY = ["game_pk", "at_bat_number", "pitch_number"]


@FUZZ
@given(muts=MUTATIONS)
def test_statcast_1000_mutated_files(muts):
    data, first = mutate(STATCAST, muts)
    p = _write("statcast.csv", data)
    try:
        got = _statcast_frame(p)
    except PitchlabError as e:
        refused(e, p)
        return
    keep = sorted(protected_lines(STATCAST, first) & set(STATCAST_BASE.index))
    assert_rows_equal(got, STATCAST_BASE, keep, "statcast")
    if every_nth(data):
        store_check(p, lambda s, f: ingest_statcast(s, f), "pitches", PITCH_KEY, STATCAST_BASE.loc[keep], STATCAST)


# ---------------------------------------------------------------- WHOOP
WHOOP_FILES = ["physiological_cycles.csv", "sleeps.csv", "workouts.csv"]
WHOOP_BYTES = {n: (FX / "whoop" / n).read_bytes() for n in WHOOP_FILES}


def _whoop_frame(p):
    kind, df = read_whoop(p)
    if kind == "cycles":
        return whoop_wellness(df, "f01")[0]
    if kind == "sleeps":
        return whoop_sleep(df, "f01")
    if kind == "workouts":
        return whoop_sessions(df, "f01", HR)
    return df


WHOOP_BASE = {n: _whoop_frame(_write(n, b)) for n, b in WHOOP_BYTES.items()}


@FUZZ
@given(which=st.sampled_from(WHOOP_FILES), muts=MUTATIONS)
def test_whoop_1000_mutated_files(which, muts):
    data, first = mutate(WHOOP_BYTES[which], muts)
    p = _write(which, data)
    try:
        got = _whoop_frame(p)
    except PitchlabError as e:
        refused(e, p)
        return
    base = WHOOP_BASE[which]
    keep = sorted(protected_lines(WHOOP_BYTES[which], first) & set(base.index))
    if which != "sleeps.csv":  # a sleep is dated by the night's main sleep: later rows may hold a longer one
        assert_rows_equal(got, base, keep, which)
    if every_nth(data):
        entity, keys = (
            ("sessions", ["source", "source_id"])
            if which == "workouts.csv"
            else ("wellness", ["athlete_id", "date", "source"])
        )
        want = base.loc[keep] if which != "sleeps.csv" else None
        store_check(p, lambda s, f: ingest_whoop(s, f, athlete="f01"), entity, keys, want, WHOOP_BYTES[which])


# ---------------------------------------------------------------- Catapult
CATAPULT_FILES = ["catapult_openfield_units.csv", "catapult_openfield_classic.csv"]
CATAPULT_BYTES = {n: (FX / n).read_bytes() for n in CATAPULT_FILES}


def _catapult_frame(p):
    ex = read_catapult(p, None)
    ids, _ = match_athletes(ATHLETES, ex.table[ex.columns["player"]], team="wfc", file=p.name)
    ses, _ = catapult_sessions(ex, ids, "UTC", True, None, "football", None)
    lines = ex.table.index.to_series().groupby(ids.reindex(ex.table.index).astype(str).to_numpy()).agg(list)
    return ses.set_index("athlete_id", drop=False) if len(ses) else ses, lines


CATAPULT_BASE = {n: _catapult_frame(_write(n, b)) for n, b in CATAPULT_BYTES.items()}


@FUZZ
@given(which=st.sampled_from(CATAPULT_FILES), muts=MUTATIONS)
def test_catapult_1000_mutated_files(which, muts):
    data, first = mutate(CATAPULT_BYTES[which], muts)
    p = _write(which, data)
    try:
        got, got_lines = _catapult_frame(p)
    except PitchlabError as e:
        refused(e, p)
        return
    base, lines = CATAPULT_BASE[which]
    prot = protected_lines(CATAPULT_BYTES[which], first)
    # a player's session sums their period rows: it is protected when all of them are and the mutation added none
    # (a splice can copy one of their rows further down)
    whole = [a for a, ls in lines.items() if a in base.index and set(ls) <= prot and got_lines.get(a) == ls]
    assert_rows_equal(got, base, whole, which)
    if every_nth(data):
        store_check(
            p,
            lambda s, f: ingest_catapult(s, f, team="wfc", dayfirst=True),
            "sessions",
            ["source", "source_id"],
            base.loc[whole],
            CATAPULT_BYTES[which],
        )


# ---------------------------------------------------------------- CSV / Excel (a club's own export, mapped)
CLUB = {n: (FX / n).read_bytes() for n in ("club_sessions.csv", "club_sessions.xlsx")}


def _club_frame(p):
    raw = read_tabular(p, MAPPING)
    return tabular_frame(raw, MAPPING, ATHLETES, file=p.name)[0]


CLUB_BASE = {n: _club_frame(_write(n, b)) for n, b in CLUB.items()}


@FUZZ
@given(which=st.sampled_from(list(CLUB)), muts=MUTATIONS)
def test_csv_and_excel_1000_mutated_files(which, muts):
    data, first = mutate(CLUB[which], muts)
    p = _write(which, data)
    try:
        got = _club_frame(p)
    except PitchlabError as e:
        refused(e, p)
        return
    base = CLUB_BASE[which]
    keep = sorted(protected_lines(CLUB[which], first) & set(base.index)) if which.endswith(".csv") else []
    assert_rows_equal(got, base, keep, which)  # (an .xlsx is a zip: no row survives a mutation byte for byte)
    if every_nth(data):
        store_check(
            p,
            lambda s, f: ingest_table(s, f, MAPPING),
            "sessions",
            ["source", "source_id"],
            base.loc[keep],
            CLUB[which],
        )


# ---------------------------------------------------------------- FIT: real files mutated, and generated files
_CRC = [0x0000, 0xCC01, 0xD801, 0x1400, 0xF001, 0x3C00, 0x2800, 0xE401]
_CRC += [0xA001, 0x6C00, 0x7800, 0xB401, 0x5000, 0x9C01, 0x8801, 0x4400]


def fit_crc(data: bytes, crc: int = 0) -> int:
    "The FIT CRC-16 (Garmin's FIT protocol, 'CRC')."
    for b in data:
        t = _CRC[crc & 0xF]
        crc = ((crc >> 4) & 0x0FFF) ^ t ^ _CRC[b & 0xF]
        t = _CRC[crc & 0xF]
        crc = ((crc >> 4) & 0x0FFF) ^ t ^ _CRC[(b >> 4) & 0xF]
    return crc


_FMT = {0x00: "B", 0x02: "B", 0x84: "H", 0x86: "I", 0x8C: "I"}  # FIT base types: enum, uint8, uint16, uint32, uint32z
FIT_MSGS = {  # message -> (global number, [(field number, base type)])
    "file_id": (0, [(0, 0x00), (1, 0x84), (3, 0x8C), (4, 0x86)]),  # type, manufacturer, serial, time_created
    # timestamp, start_time, sport, elapsed (ms), timer (ms), distance (cm), avg HR, max HR, avg power
    "session": (
        18,
        [(253, 0x86), (2, 0x86), (5, 0x00), (7, 0x86), (8, 0x86), (9, 0x86), (16, 0x02), (17, 0x02), (20, 0x84)],
    ),
    "record": (20, [(253, 0x86), (3, 0x02), (5, 0x86), (7, 0x84)]),  # timestamp, heart rate, distance (cm), power
}


def fit_file(messages) -> bytes:
    "A FIT file from [(message, [field values in FIT_MSGS order])]: header, definitions, data, both CRCs."
    body, defined = b"", {}
    for name, values in messages:
        gnum, fields = FIT_MSGS[name]
        lmt = list(FIT_MSGS).index(name)
        if defined.get(lmt) != name:
            body += struct.pack("<BBBHB", 0x40 | lmt, 0, 0, gnum, len(fields))
            body += b"".join(struct.pack("<BBB", f, struct.calcsize(_FMT[t]), t) for f, t in fields)
            defined[lmt] = name
        body += struct.pack("<B", lmt) + b"".join(struct.pack("<" + _FMT[t], v) for (f, t), v in zip(fields, values))
    head = struct.pack("<BBHI4s", 14, 0x10, 2093, len(body), b".FIT")
    head += struct.pack("<H", fit_crc(head))
    return head + body + struct.pack("<H", fit_crc(head + body))


T0 = 1_060_000_000  # FIT time (seconds since 1989-12-31 UTC): August 2023
_u8, _u16, _u32 = st.integers(0, 0xFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)
_t = st.one_of(st.integers(T0 - 10**6, T0 + 10**6), _u32)  # plausible times, and any (0xFFFFFFFF: invalid)
FIT_RECORD = st.tuples(_t, _u8, _u32, _u16).map(lambda v: ("record", list(v)))
FIT_SESSION = st.tuples(_t, _t, st.integers(0, 60), _u32, _u32, _u32, _u8, _u8, _u16).map(
    lambda v: ("session", list(v))
)
FIT_GENERATED = st.tuples(
    st.tuples(st.sampled_from([4, 4, 4, 32, 255]), _u16, _u32, _t),
    st.lists(st.one_of(FIT_RECORD, FIT_SESSION), min_size=0, max_size=40),
).map(lambda v: fit_file([("file_id", list(v[0]))] + v[1]))
FIT_SAMPLES = {
    n: (FIT_DIR / n).read_bytes() for n in ("Activity.fit", "garmin-fenix-5-run.fit", "garmin-edge-820-bike.fit")
}
FIT_INPUT = st.one_of(
    st.tuples(st.sampled_from(list(FIT_SAMPLES)).map(FIT_SAMPLES.get), MUTATIONS),  # a real file mutated
    st.tuples(FIT_GENERATED, st.just([])),  # a generated file, valid framing, arbitrary values
    st.tuples(FIT_GENERATED, MUTATIONS),  # a generated file mutated
)


def _fit_frames(p):
    f = read_fit(p)
    return (f, fit_frames(f, "f01")[0]) if f.is_activity else (f, None)


@FUZZ
@given(inp=FIT_INPUT)
def test_fit_1000_mutated_and_generated_files(inp):
    data, first = mutate(*inp) if inp[1] else (inp[0], len(inp[0]))
    p = _write("ride.fit", data)
    try:
        f, frames = _fit_frames(p)
    except PitchlabError as e:
        refused(e, p)
        return
    if frames is not None:
        ses = frames["sessions"]
        assert len(ses) == max(len(f.sessions), 1) and ses["source_id"].notna().all()
        if "rr_intervals" in frames:
            assert frames["rr_intervals"]["seq"].is_unique
    if every_nth(data):
        store_check(p, lambda s, x: ingest_fit(s, x, athlete="f01"), "sessions", ["source", "source_id"], None, b"")
