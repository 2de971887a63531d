"""Test doubles for the dashboards' plug-in interfaces (never in the package: a served app only uses real backends)."""

import threading
import time
import uuid

import numpy as np
import pandas as pd

from pitchlab.core import NotFoundError, PitchlabError, ValidationError
from pitchlab.dash.pages.models import RetrainBackend
from pitchlab.dash.pages.pose import PoseScorer


class FakeRetrainBackend(RetrainBackend):
    "In-memory stand-in: a run of `steps` steps in a thread; versions and champion in memory."

    def __init__(self, steps: int = 10, step_s: float = 0.2):
        self.steps, self.step_s = steps, step_s
        self._versions, self._jobs, self._history, self._lock = [], {}, [], threading.Lock()

    def versions(self):
        cols = ["version", "created", "champion", "data_first", "data_last", "auc", "brier", "by"]
        return pd.DataFrame(self._versions, columns=cols).assign(champion=lambda d: d.version.isin(self._history[-1:]))

    def start(self, start, end, actor):
        if pd.Timestamp(end) < pd.Timestamp(start):
            raise ValidationError("the date range ends before it starts")
        with self._lock:
            if any(not j["done"] for j in self._jobs.values()):
                raise PitchlabError("a retraining run is already under way", hint="wait for it to finish")
            job = uuid.uuid4().hex[:8]
            self._jobs[job] = dict(progress=0.0, message="queued", done=False, ok=None, error=None)
        threading.Thread(target=self._run, args=(job, start, end, actor), daemon=True).start()
        return job

    def _run(self, job, start, end, actor):
        j = self._jobs[job]
        for i in range(self.steps):
            time.sleep(self.step_s)
            j.update(progress=(i + 1) / self.steps, message=f"step {i + 1} of {self.steps}")
        v = str(len(self._versions) + 1)
        self._versions.append(
            dict(
                version=v,
                created=pd.Timestamp.now().floor("s"),
                champion=False,
                data_first=str(pd.Timestamp(start).date()),
                data_last=str(pd.Timestamp(end).date()),
                auc=np.nan,
                brier=np.nan,
                by=actor,
            )
        )
        j.update(done=True, ok=True, message=f"version {v} registered", version=v)

    def status(self, job):
        return dict(self._jobs[job])

    def promote(self, version, actor):
        if str(version) not in {v["version"] for v in self._versions}:
            raise NotFoundError(f"no version {version}")
        if not self._history or self._history[-1] != str(version):
            self._history.append(str(version))
        return dict(promoted=True, version=str(version), champion=str(version), reasons=[])

    def rollback(self, actor):
        if len(self._history) < 2:
            raise PitchlabError("there is no earlier champion to roll back to", hint="promote a version instead")
        self._history.pop()
        return self._history[-1]


class MissingScorer(PoseScorer):
    "A scorer that cannot run here (its note says why)."

    note = "pose scoring: the pose models are not installed here"

    def score(self, video_path, movement, athlete_id, progress=None):
        raise PitchlabError(self.note)
