"""THGCL speed (not a test): ``.venv/bin/python benchmarks/bench_thgcl.py [--quick]``.

1. Training-step time (forward + backward + Adam) of the THGCL model (focal + 0.1 x NT-Xent,
   Hawkes ``xi`` drawn per edge and clip) at the paper's sizes (batch 64, 101 audio x 128 and
   40 video x 1024 nodes, hidden 512, 4 layers, 33 classes) and at the book profile's size
   (101 audio nodes, hidden 64, d 64, batch 32, 44 classes); wall and process CPU seconds.
2. Batch assembly: the DataLoader's default per-item collate (``torch.stack`` of B items) vs.
   the batched fetch of :class:`AVFeatures` (``__getitems__`` + :func:`av_collate`) for one
   epoch of 420 clips of 101 x 128 / 40 x 1024 features (the book profile's node counts).
3. Reading a feature file in the TMac layout (``--rows`` clips, default 3,000, of 101 x 128
   audio and 40 x 1024 video float32 nodes, ~215 kB a clip; generated in a temporary folder):
   the streaming reader of the paper path (:class:`StreamedAVFeatures` over :class:`H5Array`:
   the training split's node statistics computed in chunks, then one epoch in shuffled batches
   of 64, each read from the file and standardised; both in the time) vs.
   loading the whole file first (:func:`audiorepro.data.adapters.read_tmac_features`, then the
   same batches from memory). Each runs in a fresh subprocess; reported: peak RSS of the process
   (``ru_maxrss``), its increase over the RSS after the imports, and rows per second over the
   whole epoch (file reading included). ``--stream-only`` runs only this part.

``--device`` (default ``auto``: a GPU when there is one) sets where the training step runs.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import torch

from audiorepro.papers import thgcl
from audiorepro.training import pick_device


def bench_step(batch: int, classes: int, pa: int, pv: int, hidden: int, embed: int, reps: int,
               device: str = "auto") -> dict:
    dev = pick_device(device)
    model = thgcl.build_variant("THGCL", classes, pa, pv, hidden=hidden, embed_dim=embed,
                                graph={"audio_hop_s": (10 - 0.96) / (pa - 1)}).to(dev)
    fn = thgcl.make_batch_fn("focal+cl")
    opt = torch.optim.Adam(model.parameters(), lr=0.005)
    b = {"audio": torch.randn(batch, pa, 128, device=dev), "video": torch.randn(batch, pv, 1024, device=dev),
         "target": (torch.rand(batch, classes, device=dev) < 0.1).float()}
    fn(model, b)[0].backward()  # warm-up
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    sync()
    w, c = time.time(), time.process_time()
    for _ in range(reps):
        opt.zero_grad(set_to_none=True)
        fn(model, b)[0].backward()
        opt.step()
    sync()
    return {"device": str(dev), "batch": batch, "P_a": pa, "hidden": hidden,
            "wall_s_per_step": (time.time() - w) / reps, "cpu_s_per_step": (time.process_time() - c) / reps}


def bench_collate(n: int = 420, batch: int = 32) -> dict:
    ds = thgcl.AVFeatures(torch.randn(n, 101, 128), torch.randn(n, 40, 1024), torch.zeros(n, 44))

    class PerItem(torch.utils.data.Dataset):  # same items without the batched fetch
        def __len__(self) -> int:
            return len(ds)

        def __getitem__(self, i: int) -> dict:
            return ds[i]

    out = {}
    for name, loader in (("per_item", torch.utils.data.DataLoader(PerItem(), batch_size=batch)),
                         ("batched", torch.utils.data.DataLoader(ds, batch_size=batch, collate_fn=thgcl.av_collate))):
        w = time.time()
        for _ in loader:
            pass
        out[f"{name}_s_per_epoch"] = time.time() - w
    return out


def write_feature_file(path: Path, rows: int, classes: int = 33, chunk: int = 250) -> None:
    """A feature file in the TMac layout with ``rows`` random clips, written ``chunk`` rows at a time."""
    import h5py

    rng = np.random.default_rng(0)
    names = [f"class{i}".encode() for i in range(classes)]
    with h5py.File(path, "w") as hf:
        a = hf.create_dataset("audio", (rows, 101, 128), np.float32)
        v = hf.create_dataset("video", (rows, 40, 1024), np.float32)
        for s in range(0, rows, chunk):
            e = min(rows, s + chunk)
            a[s:e] = rng.standard_normal((e - s, 101, 128), dtype=np.float32)
            v[s:e] = rng.standard_normal((e - s, 40, 1024), dtype=np.float32)
        hf["label"] = np.array([names[i % classes] for i in range(rows)])
        hf["unique_labels"] = np.array(names)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0   # Linux: kB


def read_child(mode: str, path: str, batch: int = 64) -> dict:
    """One epoch over the file in shuffled batches, ``mode`` ``stream`` or ``load``; in the
    calling process (run it in a fresh one: see :func:`bench_reading`)."""
    from audiorepro.data.adapters import read_tmac_features

    base = _rss_mb()
    w = time.time()
    if mode == "stream":
        feats = thgcl.tmac_av_features(path)
        train = np.flatnonzero(feats["split"] == "train")
        stats = [thgcl.node_statistics(feats[m], train) for m in ("audio", "video")]
        ds = thgcl.StreamedAVFeatures(feats["audio"], feats["video"], feats["target"],
                                      audio_stats=stats[0], video_stats=stats[1])
    else:
        feats = read_tmac_features(path)
        ds = thgcl.AVFeatures(feats["audio"], feats["video"], feats["target"])
    order = np.random.default_rng(0).permutation(len(ds))
    total = 0
    for s in range(0, len(order), batch):
        total += len(ds.__getitems__(order[s:s + batch])["audio"])
    secs = time.time() - w
    return {"mode": mode, "rows": total, "rows_per_s": total / secs, "seconds": secs,
            "peak_rss_mb": _rss_mb(), "rss_after_imports_mb": base, "peak_increase_mb": _rss_mb() - base}


def bench_reading(rows: int) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "AudioSet_embedds_all.h5"
        write_feature_file(path, rows)
        size_mb = path.stat().st_size / 2**20
        out = []
        for mode in ("stream", "load"):
            res = subprocess.run([sys.executable, __file__, "--read-child", mode, str(path)],
                                 capture_output=True, text=True)
            if res.returncode:
                raise RuntimeError(f"--read-child {mode} failed:\n{res.stderr}")
            out.append({**json.loads(res.stdout.strip().splitlines()[-1]), "file_mb": round(size_mb, 1)})
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, mps (default: auto)")
    ap.add_argument("--rows", type=int, default=3000, help="clips of the generated feature file")
    ap.add_argument("--stream-only", action="store_true", help="only the feature-file reading part")
    ap.add_argument("--read-child", nargs=2, metavar=("MODE", "FILE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.read_child:
        print(json.dumps(read_child(*args.read_child)))
        return
    for res in bench_reading(args.rows):
        print(f"reading    : {res['mode']:6s} {res['rows']} rows of a {res['file_mb']:.0f} MB file: "
              f"{res['rows_per_s']:.0f} rows/s, peak RSS {res['peak_rss_mb']:.0f} MB "
              f"(+{res['peak_increase_mb']:.0f} MB over the imports)")
    if args.stream_only:
        return
    reps = 2 if args.quick else 5
    print("paper size :", bench_step(64, 33, 101, 40, 512, 128, reps, args.device))
    print("book size  :", bench_step(32, 44, 101, 40, 64, 64, reps, args.device))
    print("collate    :", bench_collate())


if __name__ == "__main__":
    main()
