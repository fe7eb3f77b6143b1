"""environment.yml and pyproject.toml pin the same packages; torch pins are consistent."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _norm(req: str) -> str:
    return re.sub(r"\s+", "", req).lower()


def _pyproject_requirements() -> set[str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(meta["dependencies"])
    for extra in meta.get("optional-dependencies", {}).values():
        reqs += extra
    return {_norm(r) for r in reqs}


def _environment_pip_requirements() -> set[str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return {_norm(r) for r in pip if not r.startswith("-e")}


def test_environment_yml_matches_pyproject():
    py, env = _pyproject_requirements(), _environment_pip_requirements()
    assert py - env == set(), f"in pyproject.toml only: {sorted(py - env)}"
    assert env - py == set(), f"in environment.yml only: {sorted(env - py)}"


def test_python_is_311_and_torch_pins_match():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    reqs = _pyproject_requirements()
    assert "torch==2.11.0" in reqs and "torchaudio==2.11.0" in reqs
    # anything else that pulls torch must be pinned exactly (==), so pip never swaps torch
    for pkg in ("torchvision", "torchcrepe", "transformers"):
        for r in reqs:
            if re.match(rf"^{pkg}\b", r):
                assert "==" in r, f"{r} must be pinned exactly"


def test_jupyter_book_stays_below_2():
    reqs = _pyproject_requirements()
    jb = next(r for r in reqs if r.startswith("jupyter-book"))
    assert "<2" in jb
