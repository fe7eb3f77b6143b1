"""The fusion chapter's paper profile as paper-check sees it: its claim rows and its override
files (shrink only, data and checkpoints pointed at the miniatures)."""
from __future__ import annotations

from pathlib import Path

import yaml

from audiorepro.book.paper_check import missing_claim_rows
from audiorepro.papers.fusion import EVAR_UNIT_SECONDS

PARAMS = Path(__file__).resolve().parents[1] / "book" / "fusion" / "params"
TASKS = ["ESC-50", "US8K", "SPCV2", "VC1", "VF", "CRM-D", "GTZAN", "NSynth", "Surge"]


def _rec(row, metrics):
    return {"chapter": "fusion", "table": "table3", "params": {"paper_row": row},
            "model": row, "metrics": metrics}


def _paper_rows(with_avg=True):
    m = {t: 0.5 for t in TASKS} | ({"Avg": 0.5} if with_avg else {})
    return [_rec(r, m) for r in ("VGGish", "VGGish-Fusion", "VGGish-Fusion#10#15", "CNN14",
                                 "CNN14-Fusion", "CNN14-Fusion#3#6", "AST", "AST-Fusion",
                                 "AST-Fusion#5#12")]


def test_paper_rows_satisfy_every_claim_of_table3_the_paper_profile_can_decide():
    assert missing_claim_rows(_paper_rows()) == []
    # the verdicts rest on the fusion chosen on validation, not on the paper's fixed layers
    fixed_only = [r for r in _paper_rows() if not r["model"].endswith("-Fusion")]
    lost = {p.split(":")[0].split()[-1] for p in missing_claim_rows(fixed_only)}
    assert {"vggish-fusion-avg", "cnn14-fusion-surge", "ast-fusion-noss", "gtzan-degrades",
            "vggish-fusion-us8k-above-sota"} <= lost
    # without Avg (a task missing), the paper's Avg claims have no record: flagged
    lost = missing_claim_rows(_paper_rows(with_avg=False))
    assert {p.split(":")[0] for p in lost} == {"fusion claim vggish-fusion-avg",
                                               "fusion claim cnn14-fusion-avg",
                                               "fusion claim ast-fusion-avg"}


def test_rows_of_this_run_claims_checked_only_when_their_setup_ran():
    recs = _paper_rows() + [_rec("CREPE-tiny", {t: 0.5 for t in TASKS} | {"Avg": 0.5})]
    lost = missing_claim_rows(recs)          # CREPE-tiny ran, its fused row was not recorded
    assert len(lost) == 1 and "crepe-fusion-avg" in lost[0] and "CREPE-tiny-Fusion" in lost[0]


def test_overrides_only_shrink_and_point_at_miniatures_and_checkpoints():
    for path in sorted(PARAMS.glob("*.papercheck.yaml")):
        paper = yaml.safe_load((PARAMS / path.name.replace(".papercheck", ".paper")).read_text())
        over = yaml.safe_load(path.read_text()) or {}
        assert path.read_text().startswith("# paper-check of"), path.name
        assert over.get("use_folds", True) is True and "profile" not in over
        for key in ("epochs", "patience"):
            if key in over:
                assert over[key] <= paper[key], (path.name, key)
        if "lrs" in over:
            assert set(over["lrs"]) <= set(paper["lrs"]) and set(over["seeds"]) <= set(paper["seeds"])
        if "tasks" in over:
            assert set(over["tasks"]) <= set(paper["tasks"])
        for task, folder in (over.get("download_roots") or {}).items():
            assert task in paper.get("tasks", TASKS) and folder.startswith("data/miniatures/")
        paper_backbones = {b["label"]: b for b in paper.get("backbones", [])}
        for b in over.get("backbones", []):
            ref = paper_backbones[b["label"]]          # the paper's models, no other
            assert (b["backbone"], b["weights"]) == (ref["backbone"], ref["weights"])
            # shrink only: a number no longer than the paper's (its shortest EVAR length when
            # the paper file says "evar"), or the paper's own "evar"
            if b["seconds"] == "evar":
                assert ref["seconds"] == "evar" and b.get("crops") == ref.get("crops")
            else:
                shortest = min(EVAR_UNIT_SECONDS.values()) if ref["seconds"] == "evar" else ref["seconds"]
                assert b["seconds"] <= shortest
            ck = b["build_kw"]["checkpoint"]
            assert ck.startswith("checkpoints/") and Path(ck).name == Path(ref["build_kw"]["checkpoint"]).name
