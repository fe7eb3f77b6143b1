"""Insert the parameter guard cell right after a notebook's ``parameters`` cell (idempotent).

Usage::

    python tools/add_parameter_guard.py NOTEBOOK.ipynb [...] [--positive epochs,seeds]
        [--non-negative seed] [--fraction dropout] [--choices profile=smoke,book,paper]
        [--types scale=str,float] [--dry-run]

The guard (``audiorepro.book.check_parameters``, see ``audiorepro.book.parameters``) stops a
papermill run whose parameters have an unknown name, a wrong type or a value out of range, with one
line naming the parameter. Ranges and choices come from the options; an option replaces what an
existing guard declares for that keyword, the other keywords are kept. Types are widened
automatically where the notebook's own parameter files (``params/<stem>.*.yaml``) set a value of
another type than the default (printed, so that you can check it is meant). The cell is tagged
``check-parameters`` and ``remove-cell`` (not shown in the built book), has no outputs, and is
rewritten only when its source or place changes. A notebook whose guard would name undeclared
parameters, or whose defaults break its ranges, is not written (exit status 1).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
import yaml

from audiorepro.book.parameters import (GUARD_TAG, GuardSpec, ParameterError, guard_cell_index,
                                        guard_problems, guard_source, guard_spec, infer_types,
                                        notebook_defaults, parameters_cell_index)

GUARD_TAGS = [GUARD_TAG, "remove-cell"]


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def _mapping(items: list[str], option: str, parse_value) -> dict[str, tuple]:
    out = {}
    for item in items:
        name, sep, values = item.partition("=")
        if not sep or not name.strip():
            raise SystemExit(f"{option} {item!r}: write NAME=VALUE,VALUE")
        out[name.strip()] = tuple(parse_value(v.strip()) for v in values.split(","))
    return out


def _choice(text: str):
    """A choice as YAML reads it (``3`` an int, ``book`` a string); empty = the empty string."""
    return "" if text == "" else yaml.safe_load(text)


def param_file_values(path: Path) -> list[dict]:
    """The mappings of the notebook's parameter files (``params/<stem>.*.yaml``)."""
    out = []
    for pfile in sorted((path.parent / "params").glob(f"{path.stem}.*.yaml")):
        data = yaml.safe_load(pfile.read_text(encoding="utf8")) or {}
        if isinstance(data, dict):
            out.append(data)
    return out


def insert_guard(nb: nbformat.NotebookNode, spec: GuardSpec) -> bool:
    """Put the guard cell for ``spec`` right after the parameters cell; True when ``nb`` changed."""
    params = parameters_cell_index(nb)
    if params is None:
        raise ParameterError("no single cell tagged 'parameters'")
    source = guard_source(spec)
    old = guard_cell_index(nb)
    if old == params + 1 and nb.cells[old].source == source \
            and nb.cells[old].metadata.get("tags") == GUARD_TAGS:
        return False
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = list(GUARD_TAGS)
    if nb.nbformat_minor >= 5:
        cell["id"] = GUARD_TAG
    else:
        cell.pop("id", None)
    if old is not None:
        del nb.cells[old]
    nb.cells.insert(parameters_cell_index(nb) + 1, cell)
    return True


def guard_notebook(path: Path, updates: dict, dry_run: bool = False, log=print) -> bool:
    """Add or update the guard of one notebook; True when it changed (or would, with dry_run)."""
    nb = nbformat.read(str(path), as_version=4)
    where = str(path)
    current = guard_spec(nb, where) or GuardSpec()
    keywords = {k: getattr(current, k) for k in ("positive", "non_negative", "fraction")}
    keywords["choices"] = {**current.choices, **updates.get("choices", {})}
    keywords["types"] = dict(current.types)
    keywords.update({k: v for k, v in updates.items() if k not in ("choices", "types")})
    inferred = infer_types(notebook_defaults(nb, where), param_file_values(path))
    for name, kinds in inferred.items():
        if name not in keywords["types"] and name not in updates.get("types", {}):
            log(f"{path}: types[{name!r}] = {kinds} (its parameter files set such values)")
            keywords["types"][name] = kinds
    keywords["types"].update(updates.get("types", {}))
    spec = GuardSpec.make(where, **keywords)
    changed = insert_guard(nb, spec)
    errors, _ = guard_problems(nb, where)
    if errors:
        raise ParameterError("; ".join(errors))
    if changed and not dry_run:
        nbformat.write(nb, str(path))
    status = ("guard would change" if dry_run else "guard written") if changed else "unchanged"
    log(f"{path}: {status} -> {spec.call_source()}")
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--positive", type=_names, help="comma-separated names: values > 0")
    parser.add_argument("--non-negative", type=_names, help="comma-separated names: values >= 0")
    parser.add_argument("--fraction", type=_names, help="comma-separated names: values in [0, 1]")
    parser.add_argument("--choices", action="append", default=[], metavar="NAME=V1,V2",
                        help="allowed values of a parameter (repeatable)")
    parser.add_argument("--types", action="append", default=[], metavar="NAME=T1,T2",
                        help="types a parameter takes: int, float, bool, str, list, dict, None")
    parser.add_argument("--dry-run", action="store_true", help="report, write nothing")
    args = parser.parse_args(argv)
    updates: dict = {k: getattr(args, k) for k in ("positive", "non_negative", "fraction")
                     if getattr(args, k) is not None}
    if args.choices:
        updates["choices"] = _mapping(args.choices, "--choices", _choice)
    if args.types:
        updates["types"] = _mapping(args.types, "--types", str)
    failed = 0
    for path in args.notebooks:
        try:
            guard_notebook(path, updates, args.dry_run)
        except (ParameterError, OSError) as exc:
            print(f"{path}: not written: {exc}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
