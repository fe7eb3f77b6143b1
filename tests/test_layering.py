"""The layout's arrows: the shared core never imports a paper, a paper never imports another paper,
a paper's model.py imports no results/book/training loop, and no module imports form a cycle."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[1] / "lib"
PKG = LIB / "audiorepro"


def _module_name(path: Path) -> str:
    rel = path.relative_to(LIB).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Absolute names of the audiorepro modules imported by ``path`` (relative imports resolved)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("audiorepro")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.startswith("audiorepro"):
                out.add(mod)
                out |= {f"{mod}.{a.name}" for a in node.names}
    return out


MODULES = {_module_name(p): p for p in PKG.rglob("*.py")}
IMPORTS = {name: {m for m in _imports(p) if m in MODULES} for name, p in MODULES.items()}


def _paper_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[1] == "papers" else None


def test_the_core_never_imports_a_paper():
    bad = {m: sorted(i for i in imps if _paper_of(i)) for m, imps in IMPORTS.items()
           if _paper_of(m) is None and any(_paper_of(i) for i in imps)}
    assert not bad, f"core modules importing a paper: {bad}"


def test_a_paper_never_imports_another_paper():
    bad = {m: sorted(i for i in imps if _paper_of(i) not in (None, _paper_of(m)))
           for m, imps in IMPORTS.items() if _paper_of(m)}
    assert not any(bad.values()), f"papers importing other papers: { {k: v for k, v in bad.items() if v} }"


@pytest.mark.parametrize("paper", sorted({_paper_of(m) for m in MODULES if _paper_of(m)}))
def test_every_paper_has_the_shared_shape_and_a_pure_model(paper):
    folder = PKG / "papers" / paper
    for part in ("__init__.py", "model.py", "experiments.py", "figures.py", "paper.yml"):
        assert (folder / part).is_file(), f"papers/{paper}/ lacks {part}"
    forbidden = ("audiorepro.results", "audiorepro.book", "audiorepro.training",
                 f"audiorepro.papers.{paper}.experiments", f"audiorepro.papers.{paper}.figures",
                 f"audiorepro.papers.{paper}.data")
    imps = IMPORTS[f"audiorepro.papers.{paper}.model"]
    assert not [i for i in imps if i.startswith(forbidden)], f"papers/{paper}/model.py imports {imps}"


def test_no_import_cycles_between_modules():
    # a package's __init__ re-exporting its submodules is not a cycle of logic: edges into a
    # package's own __init__ from its submodules are ignored
    graph = {m: {i for i in imps if not m.startswith(i + ".")} for m, imps in IMPORTS.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if state.get(n) is None:
                found = visit(n)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if state.get(m) is None:
            cycle = visit(m)
            assert cycle is None, "import cycle: " + " -> ".join(cycle)
