"""FIT ingestion on the shared Garmin files: NP/TSS against the devices, TRIMP, RR intervals, time zones, refusals."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pitchlab import load
from pitchlab.core import ValidationError, project_root
from pitchlab.ingest.fit import fit_frames, ingest_fit, read_fit, rmssd, session_summary
from pitchlab.ingest.base import heart_rate_params
from pitchlab.store import Store

FIT = project_root(Path(__file__).parent) / "data/samples/fit"
DEVICE = {  # file: (device FTP, device NP, device TSS, recomputed NP, recomputed TSS) from REFERENCES.md
    "sample-activity-indoor-trainer.fit": (250, 228, 50.8, 227.3, 52.0),
    "Edge810-Vector-2013-08-16-15-35-10.fit": (315, 301, 118.7, 301.1, 119.2),
}


@pytest.mark.parametrize("name", list(DEVICE))
def test_np_within_1_w_and_tss_within_3_percent_of_the_device(name):
    ftp, dev_np, dev_tss, ref_np, ref_tss = DEVICE[name]
    fit = read_fit(FIT / name)
    s = session_summary(fit, hr=heart_rate_params())
    assert (s["ftp"], s["ftp_origin"]) == (ftp, "file")
    assert s["device_np"] == dev_np and s["device_tss"] == pytest.approx(dev_tss)
    assert abs(s["np"] - dev_np) <= 1.0
    assert abs(s["tss"] - dev_tss) <= 0.03 * dev_tss
    assert s["np"] == pytest.approx(ref_np, abs=0.06) and s["tss"] == pytest.approx(ref_tss, abs=0.06)
    assert s["intensity_factor"] == pytest.approx(s["np"] / ftp)


def test_records_match_the_expected_parses():
    for name in ["garmin-fenix-5-run", "garmin-edge-820-bike"]:
        ours = read_fit(FIT / f"{name}.fit").records
        want = pd.read_csv(FIT / f"{name}-records.csv")
        local = pd.to_datetime(want.timestamp.str.replace(" PDT ", " -0700 "), format="%a %b %d %H:%M:%S %z %Y")
        assert (ours.timestamp.dt.tz_convert(None).to_numpy() == local.dt.tz_convert(None).to_numpy()).all()
        for c in want.columns.drop("timestamp"):
            np.testing.assert_allclose(ours[c].astype(float), want[c].astype(float), atol=1e-6, err_msg=f"{name}.{c}")


def test_ftp_argument_is_used_only_when_the_file_has_none():
    fit = read_fit(FIT / "sample-activity-indoor-trainer.fit")
    fit.sessions[0]["threshold_power"] = None
    s = session_summary(fit, ftp=300, hr=heart_rate_params())
    assert (s["ftp"], s["ftp_origin"]) == (300, "argument")
    assert s["tss"] == pytest.approx(load.tss(s["np"], 300, 2264))
    n = session_summary(fit, hr=heart_rate_params())
    assert np.isnan(n["tss"]) and n["np"] > 0 and "no FTP" in n["notes"][0]


def test_trimp_uses_device_then_athlete_then_defaults():
    run = read_fit(FIT / "garmin-fenix-5-run.fit")
    frames, notes = fit_frames(run, "r1", athlete=dict(sex="F"))
    s = frames["sessions"].iloc[0]
    hr = run.records[["timestamp", "heart_rate"]]
    secs = (hr.timestamp - hr.timestamp.iloc[0]).dt.total_seconds().to_numpy()
    assert s.trimp == pytest.approx(load.trimp_from_hr(hr.heart_rate.to_numpy(float), secs, 47, 183, "F"))
    assert "HRrest 47 (device), HRmax 183 (device), sex F (athlete)" in notes[0]
    assert s.load == s.trimp and np.isnan(s.tss)


def test_rr_intervals_and_rmssd():
    run = read_fit(FIT / "garmin-fenix-5-run.fit")
    frames, notes = fit_frames(run, "r1")
    rr = frames["rr_intervals"]
    assert len(rr) == 113 and rr.seq.tolist() == list(range(113))
    assert rr.rr_ms.iloc[:3].round(3).tolist() == [1093.0, 1165.0, 1063.0]
    assert rr.source_id.unique().tolist() == frames["sessions"].source_id.tolist()
    assert "rMSSD 35.1 ms" in notes[-1]
    x = np.array([1000, 1010, 990, 1000, 1020, 980])
    assert rmssd(x) == pytest.approx(np.sqrt(np.mean(np.diff(x) ** 2)))
    assert np.isnan(rmssd([800]))


@pytest.mark.slow  # `make test` runs it, `make test-quick` does not
def test_folder_of_fit_files_loads_once_skips_monitoring_and_dates_locally(db_url):
    st = Store(db_url).create()
    st.write("teams", pd.DataFrame([dict(team_id="c", name="Cycling", sport="other")]))
    st.write(
        "athletes",
        pd.DataFrame(
            [dict(athlete_id="r1", name="Rider", sex="M", birth_date="1985-01-01", sport="other", team_id="c")]
        ),
    )
    files = sorted(FIT.glob("*.fit"))
    rep = ingest_fit(st, files, athlete="r1", tz="America/Los_Angeles")
    assert rep.skipped == [
        dict(
            file="MonitoringFile.fit", reason="a monitoring_b file (daily monitoring, no activity): no session to load"
        )
    ]
    assert rep.read == 6 and rep.entities().loc["sessions", "inserted"] == 5 and rep.quarantined == 1
    assert "needs a load" in rep.rejects().reason.iloc[0]  # Activity.fit: no HR, no power
    s = st.read("sessions").set_index("source_id")
    trainer = s.loc["3818583228-20111102T125419Z"]
    assert (trainer.sport, trainer.date, trainer.hr_max) == ("cycling", pd.Timestamp("2011-11-02"), 176.0)
    assert trainer.np == pytest.approx(227.3, abs=0.06) and trainer.load == trainer.tss
    assert trainer.power_mean == pytest.approx(201.4, abs=0.1) and trainer.duration_min == pytest.approx(2261.85 / 60)
    assert s.loc["3945849289-20170611T143409Z", "date"] == pd.Timestamp("2017-06-11")
    assert len(st.read("rr_intervals")) == 113 + 126
    before = st.counts()
    again = ingest_fit(st, files, athlete="r1", tz="America/Los_Angeles")
    assert (again.inserted, again.updated) == (0, 0)
    pd.testing.assert_series_equal(st.counts(), before)


def test_time_zone_moves_the_session_date(tmp_path):
    fit = read_fit(FIT / "garmin-edge-820-bike.fit")  # 16:10 UTC on 12 June 2017
    assert fit_frames(fit, "r1", tz="UTC")[0]["sessions"].date.iloc[0] == pd.Timestamp("2017-06-12")
    assert fit_frames(fit, "r1", tz="Pacific/Kiritimati")[0]["sessions"].date.iloc[0] == pd.Timestamp("2017-06-13")


def test_unknown_athlete_is_listed_and_nothing_created(tmp_path):
    st = Store(f"sqlite:///{tmp_path}/s.db").create()
    rep = ingest_fit(st, FIT / "garmin-fenix-5-run.fit", athlete="ghost")
    assert [u["value"] for u in rep.unknown_athletes] == ["ghost"] and rep.inserted == 0
    assert st.counts()["athletes"] == 0 and rep.quarantined == 1 + 113


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "is empty"),
        (b"date,rpe\n2025-01-01,5\n", "is a text file"),
        (bytes(range(256)), "not a FIT file"),
    ],
)
def test_non_fit_files_are_refused_by_name(tmp_path, content, message):
    p = tmp_path / "ride.fit"
    p.write_bytes(content)
    with pytest.raises(ValidationError, match=f"ride.fit .*{message}|ride.fit {message}"):
        read_fit(p)


@pytest.mark.parametrize("cut", [20, 500, 3000, 5000])
def test_truncated_and_corrupted_fit_files_are_refused_and_the_store_unchanged(tmp_path, cut):
    data = (FIT / "garmin-fenix-5-run.fit").read_bytes()
    p = tmp_path / "cut.fit"
    p.write_bytes(data[:cut])
    st = Store(f"sqlite:///{tmp_path}/s.db").create()
    before = st.counts()
    with pytest.raises(ValidationError, match="cut.fit"):
        ingest_fit(st, p, athlete="r1")
    pd.testing.assert_series_equal(st.counts(), before)
