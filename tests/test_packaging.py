"""The project's own files declare and install what it needs, consistently."""

import configparser
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SPLIT = re.compile(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(.*)$")


def _norm(spec):
    name, extras, ver = SPLIT.match(spec.strip()).groups()
    name = name.lower().replace("_", "-")
    return name, ver.replace(" ", "")


def _settings():
    cfg = configparser.ConfigParser(delimiters=["="])
    cfg.read(ROOT / "settings.ini")
    d = cfg["DEFAULT"]
    return d, [_norm(s) for s in (d["requirements"] + " " + d["dev_requirements"]).split()]


def _conda():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    out = []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            out += [_norm(s) for s in dep["pip"]]
        elif dep != "pip" and not dep.startswith("python="):
            out.append(_norm(dep))
    return env, out


def test_environment_yml_declares_the_same_dependencies_as_settings_ini():
    _, ini = _settings()
    env, conda = _conda()
    assert env["name"] == "pitchlab" and "conda-forge" in env["channels"]
    ini_d, conda_d = dict(ini), dict(conda)
    # dask[distributed] in settings.ini is dask + distributed on conda-forge
    ini_d["distributed"] = ini_d["dask"]
    assert sorted(ini_d) == sorted(conda_d), set(ini_d) ^ set(conda_d)
    for name, ver in ini_d.items():
        assert conda_d[name] == ver, f"{name}: settings.ini says {ver!r}, environment.yml {conda_d[name]!r}"


def test_settings_ini_keeps_what_nbdev_and_papermill_need():
    d, reqs = _settings()
    assert d["lib_name"] == "pitchlab"
    assert "tags" in d["allowed_cell_metadata_keys"].split()
    assert "slow" in d["tst_flags"].split()
    pins = dict(reqs)
    assert pins["nbdev"].startswith("==2."), "nbdev 3 no longer reads settings.ini"
    assert "tensorflow-cpu" in pins and "tensorflow" not in pins
    assert "opencv-python-headless" not in pins, "mediapipe pulls opencv-contrib-python; the two overwrite each other"


def test_the_installed_package_matches_its_settings():
    import importlib.metadata as md

    d, _ = _settings()
    assert md.version("pitchlab") == d["version"]
    eps = {e.name: e.value for e in md.entry_points(group="console_scripts") if e.name == "pitchlab"}
    assert eps == {"pitchlab": "pitchlab.cli:main"}


def test_readme_opens_with_the_two_commands_and_ci_calls_the_test_command():
    readme = (ROOT / "README.md").read_text()
    head = readme[:1500]
    assert "make demo" in head and "make test" in head
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci and "nbdev_export" in ci and "nbdev_clean" in ci
