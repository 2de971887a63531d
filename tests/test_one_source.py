"""One source of truth: each shared constant is defined once in pitchlab/ (in the lowest module that owns it) and imported
everywhere else. The check reads the generated library (what users import), not the notebooks' prose."""

import re
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[1] / "pitchlab"

CONSTANTS = {  # what -> (pattern of a definition or literal copy, the one file allowed to hold it)
    "days per year": (r"365\.25", "core.py"),
    "movement list": (r"^MOVEMENTS\s*=|\(\s*\"squat\",\s*\"deadlift\"", "core.py"),
    "role-to-pages table": (r"^(ROLE_PAGES|PAGES)\s*=", "dash/auth.py"),
    "ACWR band edges": (r"\b1\.42\b", "models/baselines.py"),
}


def copies(pattern: str) -> list:
    "Library files (relative) whose code matches `pattern` (comments and the nbdev index left out)."
    out = []
    for p in sorted(LIB.rglob("*.py")):
        if p.name == "_modidx.py":
            continue
        code = "\n".join(line.split("#")[0] for line in p.read_text().splitlines())
        if re.search(pattern, code, flags=re.M):
            out.append(str(p.relative_to(LIB)))
    return out


@pytest.mark.parametrize("what", list(CONSTANTS))
def test_defined_once(what, request):
    pattern, home = CONSTANTS[what]
    assert copies(pattern) == [home]


def test_no_stand_in_backend_in_the_package():
    assert copies(r"^class Stub\w*|RETRAIN_BACKEND") == []


def test_the_check_sees_a_copy(tmp_path, monkeypatch):
    (tmp_path / "a.py").write_text("AGE = days / 365.25\n")
    (tmp_path / "b.py").write_text("x = 1  # 365.25 in a comment does not count\n")
    monkeypatch.setattr(__import__(__name__), "LIB", tmp_path)
    assert copies(r"365\.25") == ["a.py"]
