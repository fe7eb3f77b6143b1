"""The "adding a paper" checklist of CONTRIBUTING.md, followed on a throw-away copy of the
repository: a sixth paper package and its book folder are discovered by the results registry and
the generated table of contents, and its smoke notebook runs and decides its claim."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

PAPER_YML = """\
paper: demo
order: 6
chapter: demo
caption: "Demo: a throw-away sixth paper"
title: "A demo paper"
authors: "Nobody"
reference: "A demo paper, nowhere, 2026"
source: "made up by tests/test_add_a_paper.py"
tables:
  table1:
    caption: "Table 1"
    dataset: "nothing"
    columns:
      accuracy: {unit: "%", decimals: 1}
    rows:
      big model: {accuracy: 90.0}
      small model: {accuracy: 80.0}
claims:
  - id: big-beats-small
    text: "The big model (90.0 %) beats the small one (80.0 %)."
    test: {kind: comparison, table: table1, metric: accuracy, better: big model, worse: small model}
"""

MODEL = '''"""Demo paper: the model (modules only)."""
import torch
from torch import nn


class Scorer(nn.Module):
    """Scores (N, D) -> (N,) with a fixed weight vector of ``strength``."""

    def __init__(self, dim: int, strength: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((dim,), strength))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight
'''

EXPERIMENTS = '''"""Demo paper: runs and recording."""
import numpy as np
import torch

from audiorepro import results
from audiorepro.papers.demo.model import Scorer


def run(n_items: int, profile: str, seed: int = 0) -> dict[str, float]:
    """Accuracy of a strong and a weak scorer on one synthetic task; recorded as table1 rows."""
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.normal(size=(n_items, 4)).astype(np.float32))
    y = (x.sum(1) > 0).numpy()
    out = {}
    for row, strength in (("big model", 1.0), ("small model", -0.2)):
        acc = float(((Scorer(4, strength)(x) > 0).numpy() == y).mean())
        results.record("demo", "table1", {"accuracy": acc}, {"paper_row": row, "seed": seed},
                       dataset="demo data", scale=f"{n_items} items", profile=profile, model=row)
        out[row] = acc
    return out
'''

NOTEBOOK_CELLS = [
    ("markdown", "# Table 1 of the demo paper\n\nThe big model beats the small one.", []),
    ("code", "n_items = 200\nprofile = \"smoke\"", ["parameters"]),
    ("code", "from audiorepro import results\nfrom audiorepro.papers import demo\n"
             "accuracies = demo.run(n_items, profile)\naccuracies", []),
    ("code", "verdict = results.evaluate_claim(\"demo\", \"big-beats-small\", profile=profile, register=True)\n"
             "print(verdict.verdict)", []),
]


def _copy_repository(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, check=True
                           ).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file() and not rel.startswith(("tests/fixtures/reference_state_dicts",)):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def _add_demo_paper(repo: Path) -> None:
    """The checklist of CONTRIBUTING.md, step by step."""
    pkg = repo / "lib" / "audiorepro" / "papers" / "demo"
    pkg.mkdir()
    (pkg / "paper.yml").write_text(PAPER_YML)                                    # 1. numbers and claims
    (pkg / "model.py").write_text(MODEL)                                         # 2. model
    (pkg / "experiments.py").write_text(EXPERIMENTS)                             # 3. experiments
    (pkg / "figures.py").write_text('"""Demo paper: figures (none yet)."""\n')   # 4. figures
    (pkg / "__init__.py").write_text('"""Demo paper."""\nfrom .experiments import run\n\n'
                                     '__all__ = ["run"]\n')
    book = repo / "book" / "demo"
    (book / "params").mkdir(parents=True)                                        # 5. book folder
    (book / "index.md").write_text("# Demo paper\n\nA throw-away chapter.\n")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for kind, src, tags in NOTEBOOK_CELLS:
        cell = nbformat.v4.new_markdown_cell(src) if kind == "markdown" else nbformat.v4.new_code_cell(src)
        if tags:
            cell.metadata["tags"] = tags
        nb.cells.append(cell)
    nbformat.write(nb, book / "01_table1.ipynb")
    (book / "params" / "01_table1.book.yaml").write_text("profile: book\nn_items: 2000\n")


@pytest.mark.slow
def test_a_sixth_paper_is_discovered_and_its_smoke_notebook_runs(tmp_path):
    repo = tmp_path / "repo"
    _copy_repository(repo)
    _add_demo_paper(repo)
    env = {**os.environ, "PYTHONPATH": str(repo / "lib"), "AUDIOREPRO_HOME": str(tmp_path / "home"),
           "PYTHONHASHSEED": "0"}

    def py(*args: str) -> str:
        proc = subprocess.run([sys.executable, *args], cwd=repo, env=env, capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc.stdout

    # 6. the registry discovers it, in book order
    names = py("-c", "import audiorepro, json; from audiorepro import results; "
                     "assert audiorepro.__file__.startswith(%r); print(json.dumps(results.paper_names()))"
               % str(repo / "lib"))
    assert json.loads(names)[-1] == "demo"
    # 7. the table of contents is generated with the new chapter (after the five papers)
    py("-m", "audiorepro.book", "--root", str(repo), "toc")
    toc = yaml.safe_load((repo / "_toc.yml").read_text())
    captions = [part["caption"] for part in toc["parts"]]
    assert "Demo: a throw-away sixth paper" in captions
    demo = toc["parts"][captions.index("Demo: a throw-away sixth paper")]["chapters"][0]
    assert demo["file"] == "book/demo/index" and demo["sections"] == [{"file": "book/demo/01_table1"}]
    assert captions.index("Demo: a throw-away sixth paper") == captions.index("Summary") - 1  # after the papers
    # 8. its smoke notebook runs (plain papermill, parameters-cell defaults) and decides the claim
    out = tmp_path / "out.ipynb"
    proc = subprocess.run([str(Path(sys.executable).parent / "papermill"),
                           str(repo / "book/demo/01_table1.ipynb"), str(out), "--cwd",
                           str(repo / "book/demo")], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = "".join(o.get("text", "") for c in nbformat.read(out, as_version=4).cells
                   for o in c.get("outputs", []))
    assert any(v in text for v in ("reproduced", "inconclusive", "not reproduced"))
    # 9. the summary's claims table lists the new paper's claim with the verdict just registered
    table = py("-c", "from audiorepro import results; t = results.claims_table(); "
                     "print(t[t.paper == 'demo'][['claim_id', 'verdict']].to_json(orient='records'))")
    rows = json.loads(table)
    assert rows[0]["claim_id"] == "big-beats-small" and rows[0]["verdict"] != "not yet measured"
