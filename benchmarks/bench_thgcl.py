"""THGCL speed (not a test): ``.venv/bin/python benchmarks/bench_thgcl.py [--quick]``.

1. Training-step time (forward + backward + Adam) of the THGCL model (focal + 0.1 x NT-Xent,
   Hawkes ``xi`` drawn per edge and clip) at the paper's sizes (batch 64, 101 audio x 128 and
   40 video x 1024 nodes, hidden 512, 4 layers, 33 classes) and at the book profile's size
   (19 audio nodes, hidden 64, d 64, batch 32, 44 classes); wall and process CPU seconds.
2. Batch assembly: the DataLoader's default per-item collate (``torch.stack`` of B items) vs.
   the batched fetch of :class:`AVFeatures` (``__getitems__`` + :func:`av_collate`) for one
   epoch of 420 clips of 19 x 128 / 40 x 1024 features.

``--device`` (default ``auto``: a GPU when there is one) sets where the training step runs.
"""
from __future__ import annotations

import argparse
import time

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
    ds = thgcl.AVFeatures(torch.randn(n, 19, 128), torch.randn(n, 40, 1024), torch.zeros(n, 44))

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, mps (default: auto)")
    args = ap.parse_args()
    reps = 2 if args.quick else 5
    print("paper size :", bench_step(64, 33, 101, 40, 512, 128, reps, args.device))
    print("book size  :", bench_step(32, 44, 19, 40, 64, 64, reps, args.device))
    print("collate    :", bench_collate())


if __name__ == "__main__":
    main()
