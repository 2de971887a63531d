"""Benchmark: pose scoring end to end on a 10 s, 30 fps, 640x480 clip, and a folder of 8 clips through Dask.

Run: .venv/bin/python benchmarks/bench_pose.py [--clips 8] [--repeat 3]

The clip is made from the shared video (data/samples/pose/sports2d_demo.mp4): cropped around the man on the box to
4:3, resized to 640x480 and played forwards then backwards to 300 frames, written to a temporary folder.

* one clip: decode, landmarks (MediaPipe VIDEO mode), cleaning, kinematics and score, timed in a warm process
  (MediaPipe already imported: its import, about 3-6 s with TensorFlow installed, is paid once per process and
  reported separately). Target: under 10 s (>= 30 fps).
* a folder: the same 8 clips one after another in this process, then on a dask.distributed LocalCluster of 2 process
  workers with 1 thread each (both warmed up first; cluster start-up reported separately), in interleaved rounds so
  that a change in the machine's load does not favour one side; the speedup is the median of the rounds' ratios,
  and the workers' CPU time over wall time shows how much of the two cores they actually got. Both sides run the same
  code (`pitchlab.pose.commands.score_file`, threads=1: OpenCV and its decoder to one thread, BLAS/OpenMP to one
  thread). MediaPipe's own thread pool cannot be set from Python; the CPU time / wall time of the serial run is
  printed so its real use of the two cores is visible. Target: Dask at least 1.6x faster.

Last line: BENCH pose clip_s=<seconds> fps=<frames/s> dask_speedup=<ratio>
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_clip(path, n=300, size=(640, 480)):
    """The benchmark clip: the shared video cropped to 4:3 around the man on the box, ping-pong looped to n frames."""
    import cv2
    from pitchlab.pose.landmarks import iter_frames

    src = [
        cv2.resize(f[0:750, 250:1250], size, interpolation=cv2.INTER_AREA)
        for _, _, f in iter_frames(ROOT / "data" / "samples" / "pose" / "sports2d_demo.mp4")
    ]
    order = list(range(len(src))) + list(range(len(src) - 2, 0, -1))
    order = (order * (n // len(order) + 1))[:n]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, size)
    for i in order:
        vw.write(src[i])
    vw.release()
    return Path(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=8, help="clips in the folder (default 8)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of the single clip (default 3)")
    ap.add_argument("--workers", type=int, default=2, help="Dask workers (default 2)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved serial / Dask rounds (default 3)")
    a = ap.parse_args()
    load0 = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="pitchlab-bench-pose-"))
    try:
        clip = make_clip(tmp / "clip.mp4")
        import cv2

        cap = cv2.VideoCapture(str(clip))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        w, h = int(cap.get(3)), int(cap.get(4))
        cap.release()
        print(
            f"clip: {n} frames, {w}x{h}, 30 fps ({n / 30:.1f} s) -> {clip.stat().st_size / 1e6:.1f} MB; load average {load0[0]:.2f}"
        )

        t = time.perf_counter()
        from pitchlab.pose.commands import score_file, score_files
        from pitchlab.pose.scores import analyse
        from pitchlab.pose.landmarks import _landmarker

        with _landmarker(None, True, 1, 0.5):
            pass  # imports MediaPipe (and TensorFlow, if installed) and loads the model once
        print(f"one-time import and model load: {time.perf_counter() - t:.1f} s")

        # ---- one clip, end to end, warm process
        runs = []
        for _ in range(a.repeat):
            c0, t0 = time.process_time(), time.perf_counter()
            an = analyse(clip, "jump")
            runs.append((time.perf_counter() - t0, time.process_time() - c0, an.seconds))
        clip_s = statistics.median(r[0] for r in runs)
        best = min(runs, key=lambda r: r[0])
        print(
            f"one clip: median {clip_s:.2f} s (best {best[0]:.2f} s) over {a.repeat} runs = {n / clip_s:.1f} fps; "
            f"CPU/wall {statistics.median(r[1] / r[0] for r in runs):.2f}"
        )
        print("  steps (best run): " + ", ".join(f"{k} {v:.2f} s" for k, v in best[2].items()))
        print(
            f"  result: score {an.result.score}, confidence {an.result.confidence:.2f}, detected {an.raw.attrs['detected']:.2f}"
        )

        # ---- a folder of clips: serial in this process vs Dask LocalCluster, interleaved rounds (the load drifts)
        folder = tmp / "folder"
        folder.mkdir()
        for k in range(a.clips):
            shutil.copy(clip, folder / f"clip{k}.mp4")
        score_file(clip, "jump", threads=1)  # warm, same settings as the workers
        import logging
        from dask.distributed import Client, LocalCluster

        t0 = time.perf_counter()
        cluster = LocalCluster(
            n_workers=a.workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
            env={"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"},
        )
        serial_runs, dask_runs, cpu_share, worker_cores = [], [], [], []
        with Client(cluster) as client:
            client.run(
                lambda: (
                    __import__("pitchlab.pose.commands", fromlist=["score_file"]).score_file(
                        str(clip), "jump", threads=1
                    )
                    and None
                )
            )
            start_s = time.perf_counter() - t0
            for r in range(a.rounds):
                c0, t0 = time.process_time(), time.perf_counter()
                serial = [score_file(folder / f"clip{k}.mp4", "jump", threads=1) for k in range(a.clips)]
                serial_runs.append(time.perf_counter() - t0)
                cpu_share.append((time.process_time() - c0) / serial_runs[-1])
                assert all(x["error"] is None for x in serial), [x["error"] for x in serial if x["error"]]
                w0, t0 = client.run(time.process_time), time.perf_counter()
                par = score_files([folder], "jump", scheduler=cluster.scheduler_address, progress=False)
                dask_runs.append(time.perf_counter() - t0)
                w1 = client.run(time.process_time)
                worker_cores.append(sum(w1[k] - w0[k] for k in w0) / dask_runs[-1])
                assert all(x["error"] is None for x in par), [x["error"] for x in par if x["error"]]
                assert [x["metrics"] for x in par] == [x["metrics"] for x in serial], "Dask and serial results differ"
                print(
                    f"round {r + 1}: {a.clips} clips one after another {serial_runs[-1]:.1f} s (CPU/wall {cpu_share[-1]:.2f}); "
                    f"on Dask {dask_runs[-1]:.1f} s (workers' CPU/wall {worker_cores[-1]:.2f}) -> {serial_runs[-1] / dask_runs[-1]:.2f}x; "
                    f"load {os.getloadavg()[0]:.1f}"
                )
        cluster.close()
        serial_s, dask_s = statistics.median(serial_runs), statistics.median(dask_runs)
        speedup = statistics.median(
            x / y for x, y in zip(serial_runs, dask_runs)
        )  # paired: each round's two runs are adjacent in time
        print(
            f"{a.clips} clips one after another (threads=1, this process): {serial_s:.1f} s ({serial_s / a.clips:.2f} s a clip), "
            f"CPU/wall {statistics.median(cpu_share):.2f} (MediaPipe's own threads included)"
        )
        print(
            f"{a.clips} clips on Dask ({a.workers} process workers x 1 thread): {dask_s:.1f} s, workers' CPU/wall "
            f"{statistics.median(worker_cores):.2f} of {a.workers}; speedup {speedup:.2f}x (median of the {a.rounds} rounds' ratios; "
            f"cluster start and warm-up {start_s:.1f} s, not counted)"
        )
        proj = statistics.median(
            (x * c) / (y * w / a.workers) for x, c, y, w in zip(serial_runs, cpu_share, dask_runs, worker_cores)
        )
        print(
            f"projection, not a measurement: with {a.workers} free cores the same CPU work would give about {proj:.2f}x "
            f"(serial CPU seconds / (Dask workers' CPU seconds / {a.workers}))"
        )
        load1 = os.getloadavg()
        print(f"load average at the end {load1[0]:.2f} (other processes on the machine inflate every figure)")
        ok = clip_s < 10 and speedup >= 1.6
        print(
            f"targets: one clip < 10 s {'met' if clip_s < 10 else 'MISSED'}; Dask >= 1.6x {'met' if speedup >= 1.6 else 'MISSED'}"
        )
        print(f"BENCH pose clip_s={clip_s:.2f} fps={n / clip_s:.1f} dask_speedup={speedup:.2f}")
        return 0 if ok else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
