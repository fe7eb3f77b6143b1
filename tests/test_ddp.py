"""fit() under torchrun: 2 CPU processes on gloo vs. one process on the same global batches."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).parent / "ddp_script" / "train_tiny.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("train_tiny", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                    reason="torch.distributed with gloo is not available")
def test_ddp_two_processes_match_single_process(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(SCRIPT), str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=150)
    assert proc.returncode == 0, proc.stderr[-3000:]

    r0 = torch.load(tmp_path / "ddp_rank0.pt", weights_only=False)
    r1 = torch.load(tmp_path / "ddp_rank1.pt", weights_only=False)
    # both ranks end with identical weights and identical (reduced / gathered) records
    for k in r0["state"]:
        assert torch.equal(r0["state"][k], r1["state"][k]), k
    assert r0["rows"] == r1["rows"] and r0["best"] == r1["best"]
    # 64 clips, per-rank batch 8, 2 ranks -> 4 steps per epoch, 4 epochs
    assert r0["iterations"] == 16
    # only rank 0 wrote the run directory; it is complete (its resume checkpoint dropped)
    run = tmp_path / "run_ddp"
    assert (run / "done.json").is_file() and (run / "result.pt").is_file()
    assert not (run / "checkpoint.pt").exists()

    # one process, batch 16 = the same global batches (mean of two means of 8 = mean of 16)
    mod = _load_script()
    mod.train(tmp_path, batch_size=16, tag="single")
    single = torch.load(tmp_path / "single_rank0.pt", weights_only=False)
    for k in single["state"]:
        torch.testing.assert_close(r0["state"][k], single["state"][k], atol=1e-5, rtol=1e-4)
    ddp_rows = {(r["iteration"], r["split"], r["metric"]): r["value"] for r in r0["rows"]}
    one_rows = {(r["iteration"], r["split"], r["metric"]): r["value"] for r in single["rows"]}
    assert ddp_rows.keys() == one_rows.keys()
    for key, v in one_rows.items():  # valid metrics gathered over the 30 clips (no padding)
        assert ddp_rows[key] == pytest.approx(v, abs=1e-5), key
    train_loss = [v for (it, s, m), v in sorted(ddp_rows.items()) if s == "train" and m == "loss"]
    assert train_loss[-1] < train_loss[0]
