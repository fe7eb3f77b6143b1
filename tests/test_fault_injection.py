"""Fault injection: a process that writes features, trains with checkpoints and records results is
killed (SIGKILL) at random moments; a rerun must end with exactly the features, weights and records
of an uninterrupted run, and no temporary file may be left behind or read as a result."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

WORKER = textwrap.dedent('''
    import json, sys, time
    import numpy as np, torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset
    from audiorepro import results
    from audiorepro.frontends import FeatureCache
    from audiorepro.training import fit
    from audiorepro import paths

    print("ready", flush=True)
    t0 = time.perf_counter()
    # 1. a feature cache: 24 clips, each written atomically
    cache = FeatureCache(paths.cache_dir("features"))
    key = {"frontend": "fault-test", "version": 1}
    def compute(clip_id):
        time.sleep(0.01)                       # stands for a front end
        seed = int(clip_id.split("_")[1])
        return np.random.default_rng(seed).standard_normal((50, 16)).astype(np.float32)
    for i in range(24):
        cid = f"clip_{i}"
        if cache.load(key, cid) is None:
            cache.save(key, cid, compute(cid))
    # 2. a training run with a checkpoint every epoch (exact resume)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 6, generator=g); y = (x[:, :3] > 0).float()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    slow = lambda trainer: time.sleep(0.05)    # stands for a longer epoch
    res = fit(model, DataLoader(TensorDataset(x[:48], y[:48]), batch_size=8, shuffle=True),
              DataLoader(TensorDataset(x[48:], y[48:]), batch_size=8), nn.BCEWithLogitsLoss(),
              {"epochs": 8, "lr": 0.01, "monitor": "mAP", "mode": "max", "seed": 3, "progress": False},
              task="tagging", run_dir=paths.cache_dir("runs", "fault"), callbacks=[slow])
    # 3. six result records, one per row; a rerun records only rows not yet recorded
    done = set(results.load_records("atgnn", "fault_test")["model"]) if results.records_dir().is_dir() else set()
    for row in range(6):
        name = f"row{row}"
        if name not in done:
            time.sleep(0.02)
            results.record("atgnn", "fault_test", {"mAP": res.best_metrics["mAP"] + row / 100},
                           {"row": row}, dataset="fault test", scale="tiny", profile="smoke", model=name)
    print(json.dumps({"work_s": time.perf_counter() - t0}), flush=True)
''')


def _run(home: Path, kill_after: float | None = None) -> dict | None:
    env = {**os.environ, "AUDIOREPRO_HOME": str(home), "PYTHONHASHSEED": "0"}
    proc = subprocess.Popen([sys.executable, "-c", WORKER], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "ready"
    if kill_after is not None:
        time.sleep(kill_after)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return None
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0
    return json.loads(out.strip().splitlines()[-1])


def _state(home: Path) -> dict:
    """Everything a later reader would use: features, final weights, latest record values."""
    from audiorepro.frontends import FeatureCache
    os.environ["AUDIOREPRO_HOME"] = str(home)
    try:
        from audiorepro import paths, results
        cache = FeatureCache(paths.cache_dir("features"))
        key = {"frontend": "fault-test", "version": 1}
        feats = {i: cache.load(key, f"clip_{i}") for i in range(24)}
        weights = torch.load(paths.cache_dir("runs", "fault", "result.pt"), weights_only=True)["model"]
        recs = results.load_records("atgnn", "fault_test")
        values = dict(zip(recs["model"], recs["value"]))
        counts = recs["model"].value_counts().to_dict()
    finally:
        os.environ.pop("AUDIOREPRO_HOME", None)
    temporaries = [p for p in home.rglob("*.tmp")]
    return {"feats": feats, "weights": weights, "values": values, "counts": counts, "tmp": temporaries}


@pytest.mark.slow
def test_killed_runs_resume_to_the_uninterrupted_result(tmp_path, monkeypatch):
    monkeypatch.delenv("AUDIOREPRO_HOME", raising=False)
    ref_home = tmp_path / "reference"
    work_s = _run(ref_home)["work_s"]
    ref = _state(ref_home)
    assert ref["tmp"] == [] and len(ref["values"]) == 6
    rng = random.Random(2024)
    interrupted = 0
    for trial in range(3):
        home = tmp_path / f"killed{trial}"
        for _ in range(2):                               # killed twice, at random moments
            # in the first half of the reference run's work time: a rerun skips what is done and
            # a warm process works faster than the cold reference, so later kill times would
            # often land after the work (seen: 1 of 3 trials interrupted on an idle machine)
            _run(home, kill_after=rng.uniform(0.0, 0.5 * work_s))
        interrupted += _unfinished(home)
        _run(home)                                       # then run to the end
        got = _state(home)
        assert got["tmp"] == [], f"trial {trial}: temporary files left: {got['tmp']}"
        for i, a in ref["feats"].items():
            np.testing.assert_array_equal(got["feats"][i], a, err_msg=f"trial {trial} clip_{i}")
        for k, w in ref["weights"].items():
            assert torch.equal(got["weights"][k], w), f"trial {trial}: weight {k} differs"
        assert got["values"] == ref["values"], f"trial {trial}"
        assert set(got["counts"].values()) == {1}, f"trial {trial}: a row recorded twice {got['counts']}"
    assert interrupted >= 2, "the kills landed after the work in most trials: the test proved nothing"


def _unfinished(home: Path) -> bool:
    """True when the killed process left work undone (so the rerun had something to resume)."""
    feats = list((home / "cache" / "features").rglob("*.npy"))
    records = list((home / "results" / "records").glob("*.json"))
    return len(feats) < 24 or not (home / "cache" / "runs" / "fault" / "done.json").is_file() or len(records) < 6
