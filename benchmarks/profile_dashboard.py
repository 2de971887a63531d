"""Where a board session's server CPU goes, in one process (no server, no browser): what bench_dashboard.py times.

1. a temporary data home with one synthetic team (`bench_dashboard.make_home`, 50 athletes by default) and its caches
   warmed as `dashboards/warm.py` does at server start;
2. `--sessions` times: the coach's App built at once (`App(..., defer=False)`: the page shell and the board that a
   served page builds in `pn.state.onload`), its Bokeh models made in a fresh `bokeh.document.Document`
   (`get_root`) and the document serialised (`Document.to_json`, what the websocket sends);
3. the CPU seconds (process time) of each step per session, the document's models by type, and, with `--profile`,
   cProfile's top functions by cumulative time over the same sessions.

A served session costs more than this (the HTTP page, the websocket, Panel's thread pool, a second page shell when
the websocket reaches the other server process): compare the two only as ratios. The machine may be shared: the load
average is printed beside the figures.

    BENCH dashboard_inprocess sessions=<n> models=<n> cpu_s=<seconds a session>

Run: .venv/bin/python benchmarks/profile_dashboard.py [--sessions 20] [--athletes 50] [--profile]
"""

import argparse
import collections
import cProfile
import io
import os
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sessions", type=int, default=20, help="sessions built and serialised (default 20)")
    p.add_argument("--athletes", type=int, default=50, help="athletes in the team (default 50)")
    p.add_argument("--profile", action="store_true", help="also print cProfile's top 40 functions")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pitchlab-profile-dash-"))
    os.environ["PITCHLAB_HOME"] = str(tmp / "home")
    os.environ.pop("PITCHLAB_DB_URL", None)
    try:
        from bench_dashboard import make_home

        make_home(tmp / "home", args.athletes)
        import panel as pn
        from bokeh.document import Document

        from pitchlab.core import settings
        from pitchlab.dash.app import build_app, warm_caches
        from pitchlab.dash.auth import User
        from pitchlab.dash.data import _store, data_token, public_tables

        pn.extension("tabulator", notifications=False, apply_signatures=False, browser_info=False)
        url = settings().db_url
        warm_caches(url)
        store = _store(url)

        def build():
            token = data_token(url, max_age=2.0)
            tables = public_tables(url, token)
            user = User.from_row(tables["users"].iloc[0])
            return build_app(user, store, tables=tables, token=token, defer=False)

        def session():
            doc = Document()
            doc.add_root(pn.panel(build()).get_root(doc))
            doc.to_json()
            return doc

        for _ in range(3):  # first sessions import and compile what later ones reuse
            session()
        n, t = args.sessions, {}
        t0 = time.process_time()
        apps = [build() for _ in range(n)]
        t["App built (Python objects)"] = time.process_time() - t0
        t0 = time.process_time()
        docs = []
        for a in apps:
            d = Document()
            d.add_root(pn.panel(a).get_root(d))
            docs.append(d)
        t["Bokeh models made (get_root)"] = time.process_time() - t0
        t0 = time.process_time()
        for d in docs:
            d.to_json()
        t["document serialised (to_json)"] = time.process_time() - t0
        total = sum(t.values()) / n
        for k, v in t.items():
            print(f"{k}: {v / n * 1000:.1f} ms a session ({v / n / total:.0%})")
        kinds = collections.Counter(type(m).__name__ for m in docs[0].models)
        models = sum(kinds.values())
        print(f"{models} Bokeh models a session: " + ", ".join(f"{k} {c}" for k, c in kinds.most_common()))
        print(f"load average {'/'.join(f'{x:.1f}' for x in os.getloadavg())}")
        if args.profile:
            prof = cProfile.Profile()
            prof.enable()
            for _ in range(n):
                session()
            prof.disable()
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(40)
            print(out.getvalue())
        print(f"BENCH dashboard_inprocess sessions={n} models={models} cpu_s={total:.3f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
