"""pyproject.toml (ranges), requirements.lock (exact versions `make` installs) and environment.yml agree;
torch pins are consistent; every package the library imports is declared."""
from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def _canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pyproject_requirements() -> list[Requirement]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(meta["dependencies"])
    for extra in meta.get("optional-dependencies", {}).values():
        reqs += extra
    return [Requirement(r) for r in reqs]


def _lock() -> dict[str, str]:
    out = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        assert "==" in line and "@" not in line, f"requirements.lock: {line!r} is not an exact pin"
        name, version = line.split("==")
        out[_canon(name)] = version
    return out


def test_lock_pins_every_declared_requirement_within_its_range():
    lock = _lock()
    for req in _pyproject_requirements():
        name = _canon(req.name)
        assert name in lock, f"{req.name} is declared in pyproject.toml but not pinned in requirements.lock"
        assert req.specifier.contains(lock[name], prereleases=True), \
            f"requirements.lock pins {req.name}=={lock[name]}, outside pyproject's range {req.specifier}"


def test_environment_yml_installs_the_package_constrained_by_the_lock():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert "-c requirements.lock" in pip
    assert any(p.startswith("-e .[") and "book" in p and "dev" in p for p in pip)


def test_makefile_installs_with_the_lock_as_constraints():
    make = (ROOT / "Makefile").read_text()
    assert "-c requirements.lock" in make


def test_torch_family_pins_match():
    lock = _lock()
    assert lock["torch"] == "2.11.0" and lock["torchaudio"] == "2.11.0"
    reqs = {_canon(r.name): str(r.specifier) for r in _pyproject_requirements()}
    assert reqs["torch"] == "==2.11.0" and reqs["torchaudio"] == "==2.11.0"
    # anything else that pulls torch is pinned exactly (==), so pip never swaps torch
    for pkg in ("torchvision", "torchcrepe", "transformers"):
        assert reqs[pkg].startswith("=="), f"{pkg} must be pinned exactly in pyproject.toml"


def test_jupyter_book_stays_below_2():
    spec = next(r.specifier for r in _pyproject_requirements() if _canon(r.name) == "jupyter-book")
    assert not spec.contains("2.0.0") and spec.contains("1.0.3")


def test_every_imported_package_is_declared():
    from importlib.metadata import packages_distributions

    imported = set()
    for path in (ROOT / "lib" / "audiorepro").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {m for m in imported if m not in sys.stdlib_module_names and m != "audiorepro"}
    declared = {_canon(r.name) for r in _pyproject_requirements()}
    dists = packages_distributions()
    undeclared = {m: dists.get(m) for m in third_party
                  if not any(_canon(d) in declared for d in dists.get(m, [m]))}
    assert not undeclared, f"imported by lib/ but not declared in pyproject.toml: {undeclared}"
