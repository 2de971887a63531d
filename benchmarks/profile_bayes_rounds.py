"""How the default hierarchical fit samples on the injury benchmark's 300-athlete cell: rounds, draws, seconds.

Fits `HazardModel` at its defaults (plus the sampler settings given as JSON) on the training season of
`bench_injury.make_data(300, 1.0, 0.5, seed)`, one seed after another, and prints one JSON line per seed: wall and CPU
seconds, each round's (draws a chain, target acceptance, seconds, targets missed) and the final diagnostics.
Run on a quiet machine: `.venv/bin/python benchmarks/profile_bayes_rounds.py '{"extend": 1}' 0,1,2,3` (fixed-length
rounds, as before session 8) against `... '{}' 0,1,2,3` (the defaults). `nbs/31_bayes.ipynb` quotes its figures.
"""

import importlib.util
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    from pitchlab.models.bayes import HazardModel

    spec = importlib.util.spec_from_file_location("bench_injury", ROOT / "benchmarks" / "bench_injury.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    variant = json.loads(argv[0]) if argv else {}
    seeds = [int(s) for s in argv[1].split(",")] if len(argv) > 1 else [0, 1, 2, 3]
    for seed in seeds:
        _, _, sp = bench.make_data(300, 1.0, 0.5, seed)
        m = HazardModel({}, {"random_seed": seed, **variant})
        t0, c0 = time.perf_counter(), time.process_time()
        m.fit(sp.train)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        s, d = m.fit_summary(), m.diagnostics()
        rounds = [(r["draws"], r["target_accept"], r["seconds"], r["misses"]) for r in s["rounds"]]
        line = dict(
            variant=variant, seed=seed, wall=round(wall, 1), cpu=round(cpu, 1), rounds=rounds, cells=s["n_cells"]
        )
        print(json.dumps(line | {k: round(v, 3) for k, v in d.items()}), flush=True)


if __name__ == "__main__":
    main()
