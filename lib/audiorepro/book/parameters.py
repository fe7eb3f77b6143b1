"""Notebook parameters checked before anything runs: unknown names, wrong types, values out of range.

The same rules (:func:`parameter_problems`) apply in two places:

* the executor (``python -m audiorepro.book execute``) checks every parameter file against the
  notebook's ``parameters`` cell before a kernel starts (:func:`validate_parameters`);
* a plain ``papermill`` call is checked inside the notebook by the *guard cell* that follows the
  ``parameters`` cell (``tools/add_parameter_guard.py`` inserts it)::

      from audiorepro.book import check_parameters
      check_parameters(positive=("epochs", "batch_size"), fraction=("dropout",))

  papermill runs the ``parameters`` cell, then the cell it injected (its source starts with
  ``# Parameters`` and assigns one literal per line), then the guard. The guard reads both
  sources from the kernel's input history and raises :class:`ParameterError`, shown as one line
  that names the parameter. Without an injected cell (nbval, Jupyter, papermill without
  parameters) there is nothing to check and the guard does nothing.

Types: a value must have the type of the parameter's default. An ``int`` default takes ints only
(not ``1.5``, ``"2"`` or ``True``); a ``float`` default takes floats and ints; a list default
takes lists, whose items follow the same rule when the default's items share one type; a
``None`` default (or one that is not a literal) takes anything. ``types={"scale": ("str",
"float")}`` lets a parameter take several types.

Ranges: ``positive`` (> 0), ``non_negative`` (>= 0) and ``fraction`` (0 to 1) name parameters
whose value, or every item of a list value, must lie in that range; ``choices={"table":
("table2", "table3")}`` lists the values a parameter may take.
"""
from __future__ import annotations

import ast
import difflib
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable, Mapping

from .errors import BookError, ParameterError

PARAMS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
INJECTED_HEADER = "# Parameters"  # first line of the cell papermill injects (Python translator)
GUARD_TAG = "check-parameters"
GUARD_FUNCTION = "check_parameters"
GUARD_COMMENT = "# Stops a papermill run with an unknown parameter, a wrong type or a value out of range."

#: range name -> (test, text of the rule)
RANGES = {"positive": (lambda v: v > 0, "> 0"),
          "non_negative": (lambda v: v >= 0, ">= 0"),
          "fraction": (lambda v: 0 <= v <= 1, "between 0 and 1")}
#: kind of a default -> kinds of value it accepts
ACCEPTS = {"int": {"int"}, "float": {"float", "int"}, "bool": {"bool"}, "str": {"str"},
           "list": {"list"}, "dict": {"dict"}, "None": {"None"}}
_ARTICLE = {"int": "an int", "float": "a float", "bool": "a bool", "str": "a string",
            "list": "a list", "dict": "a mapping", "None": "None"}


class _Unparsed:
    """Default that is not a literal (an expression): its type is not checked."""

    def __repr__(self) -> str:
        return "<expression>"


UNPARSED = _Unparsed()


def _kind(value: Any) -> str:
    if value is None:
        return "None"
    for name, typ in (("bool", bool), ("int", int), ("float", float), ("str", str), ("dict", dict)):
        if isinstance(value, typ):
            return name
    if isinstance(value, (list, tuple)):
        return "list"
    return type(value).__name__


def _a(kind: str) -> str:
    return _ARTICLE.get(kind, f"a {kind}")


# ------------------------------------------------------------------------------- parsing
def parse_assignments(source: str, where: str = "cell") -> dict[str, Any]:
    """``name -> value`` of the top-level ``name = literal`` lines of a cell (in order); a value
    that is not a literal is :data:`UNPARSED`."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ParameterError(f"{where}: not valid Python ({exc.msg}, line {exc.lineno})") from None
    out: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name):
                try:
                    out[target.id] = ast.literal_eval(value)
                except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                    out[target.id] = UNPARSED
    return out


@dataclass
class GuardSpec:
    """The ranges, choices and extra types a notebook declares in its guard call."""

    positive: tuple[str, ...] = ()
    non_negative: tuple[str, ...] = ()
    fraction: tuple[str, ...] = ()
    choices: dict[str, tuple] = field(default_factory=dict)
    types: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def make(cls, where: str = "check_parameters", **kwargs: Any) -> "GuardSpec":
        """Validated spec from the guard call's keywords (errors name ``where``)."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(kwargs) - set(known))
        if unknown:
            raise ParameterError(f"{where}: unknown keyword(s) {unknown}; known {known}")
        spec = cls()
        for key in RANGES:
            names = kwargs.get(key) or ()
            if isinstance(names, str) or not all(isinstance(n, str) for n in names):
                raise ParameterError(f"{where}: {key}= must be a tuple of parameter names, "
                                     f"got {names!r}")
            setattr(spec, key, tuple(names))
        for key in ("choices", "types"):
            mapping = kwargs.get(key) or {}
            if not isinstance(mapping, Mapping):
                raise ParameterError(f"{where}: {key}= must be a mapping name -> tuple, got {mapping!r}")
            out = {}
            for name, values in mapping.items():
                values = (values,) if isinstance(values, str) else tuple(values)
                if key == "types" and not set(values) <= set(ACCEPTS):
                    raise ParameterError(f"{where}: types[{name!r}] = {values!r}: type names are "
                                         f"{sorted(ACCEPTS)}")
                out[str(name)] = values
            setattr(spec, key, out)
        return spec

    def names(self) -> set[str]:
        return {*self.positive, *self.non_negative, *self.fraction, *self.choices, *self.types}

    def call_source(self) -> str:
        """``check_parameters(...)`` with the non-empty keywords (one per line when long)."""
        def fmt(value: Any) -> str:
            if isinstance(value, str):
                return json.dumps(value)
            if isinstance(value, tuple):
                inner = ", ".join(fmt(v) for v in value)
                return f"({inner},)" if len(value) == 1 else f"({inner})"
            if isinstance(value, dict):
                return "{" + ", ".join(f"{fmt(k)}: {fmt(v)}" for k, v in value.items()) + "}"
            return repr(value)

        args = [f"{f.name}={fmt(getattr(self, f.name))}" for f in fields(self) if getattr(self, f.name)]
        line = f"{GUARD_FUNCTION}({', '.join(args)})"
        if len(line) <= 100:
            return line
        return f"{GUARD_FUNCTION}(\n" + "".join(f"    {a},\n" for a in args) + ")"


# ------------------------------------------------------------------------------- rules
def _type_problem(name: str, value: Any, default: Any, types: tuple[str, ...] | None) -> str | None:
    kind = _kind(value)
    if types:
        allowed = set().union(*(ACCEPTS[t] for t in types))
        if kind not in allowed:
            return f"parameter {name!r} = {value!r} is {_a(kind)}, but it takes {' or '.join(types)}"
        return None
    if default is UNPARSED or default is None:
        return None
    dkind = _kind(default)
    if kind not in ACCEPTS.get(dkind, {dkind}):
        return (f"parameter {name!r} = {value!r} is {_a(kind)}, but its default {default!r} is "
                f"{_a(dkind)}")
    if dkind == "list" and default and isinstance(value, (list, tuple)):
        item_kinds = {_kind(v) for v in default}
        if len(item_kinds) == 1 and "None" not in item_kinds:
            ikind = item_kinds.pop()
            for i, item in enumerate(value):
                if _kind(item) not in ACCEPTS.get(ikind, {ikind}):
                    return (f"parameter {name!r} item {i} = {item!r} is {_a(_kind(item))}, but the "
                            f"items of its default {default!r} are {_a(ikind)}")
    return None


def _range_problems(name: str, value: Any, spec: GuardSpec) -> list[str]:
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    label = (lambda i: f"parameter {name!r} item {i}") if isinstance(value, (list, tuple)) else \
        (lambda i: f"parameter {name!r}")
    out = []
    for key, (ok, text) in RANGES.items():
        if name not in getattr(spec, key):
            continue
        for i, item in enumerate(items):
            if _kind(item) in ("int", "float") and not ok(item):  # NaN fails every range
                out.append(f"{label(i)} = {item!r} is out of range: it must be {text}")
                break
    if name in spec.choices and value not in spec.choices[name]:
        out.append(f"parameter {name!r} = {value!r} is not one of {list(spec.choices[name])}")
    return out


def parameter_problems(defaults: Mapping[str, Any], given: Mapping[str, Any],
                       spec: GuardSpec | None = None) -> list[str]:
    """One message per problem of ``given`` against the ``parameters`` cell's ``defaults``:
    unknown names (all in one message), wrong types, values out of range (empty list = fine)."""
    spec = spec or GuardSpec()
    problems = []
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        hints = [f"{m[0]!r} for {u!r}" for u in unknown
                 if (m := difflib.get_close_matches(u, list(defaults), n=1, cutoff=0.7))]
        problems.append(f"unknown parameter(s) {unknown}"
                        + (f" (did you mean {', '.join(hints)}?)" if hints else "")
                        + f"; the parameters cell declares {sorted(defaults)}")
    for name, value in given.items():
        if name not in defaults:
            continue
        wrong = _type_problem(name, value, defaults[name], spec.types.get(name))
        problems += [wrong] if wrong else _range_problems(name, value, spec)
    return problems


def infer_types(defaults: Mapping[str, Any],
                values: Iterable[Mapping[str, Any]]) -> dict[str, tuple[str, ...]]:
    """``types=`` a guard needs so that every mapping of ``values`` (e.g. the notebook's parameter
    files) passes: for each parameter given a value of another type than its default's, the
    default's type and the value's (e.g. ``{"scale": ("str", "float")}`` when a file sets a
    width multiplier where the default names a preset)."""
    out: dict[str, list[str]] = {}
    for mapping in values:
        for name, value in mapping.items():
            default = defaults.get(name, UNPARSED)
            if default is UNPARSED or default is None:
                continue
            dkind, kind = _kind(default), _kind(value)
            if kind not in ACCEPTS.get(dkind, {dkind}) and kind in ACCEPTS:
                kinds = out.setdefault(name, [dkind])
                if kind not in kinds:
                    kinds.append(kind)
    return {name: tuple(kinds) for name, kinds in out.items()}


def spec_problems(spec: GuardSpec, defaults: Mapping[str, Any], where: str) -> list[str]:
    """The guard's own mistakes: names it constrains that the parameters cell does not declare,
    and defaults that break its ranges."""
    problems = [f"{where}: {GUARD_FUNCTION}(...) names undeclared parameter(s) "
                f"{sorted(spec.names() - set(defaults))}"] if spec.names() - set(defaults) else []
    known = {k: v for k, v in defaults.items() if v is not UNPARSED}
    problems += [f"{where}: default {p}" for p in parameter_problems(known, known, spec)]
    return problems


# ------------------------------------------------------------------------------- in the kernel
def _executed_parameter_sources() -> tuple[str, str] | None:
    """(parameters cell, injected cell) sources when the two cells just before the running one
    are a cell and papermill's injected cell; None otherwise (no IPython, nothing injected)."""
    try:
        from IPython import get_ipython
    except ImportError:  # plain Python: no kernel, no papermill injection
        return None
    shell = get_ipython()
    if shell is None:
        return None
    history = shell.history_manager.input_hist_raw  # [-1] is the running cell
    if len(history) < 3 or history[-2].split("\n", 1)[0].strip() != INJECTED_HEADER:
        return None
    return history[-3], history[-2]


def check_parameters(*, positive: tuple[str, ...] = (), non_negative: tuple[str, ...] = (),
                     fraction: tuple[str, ...] = (), choices: Mapping[str, tuple] | None = None,
                     types: Mapping[str, tuple[str, ...]] | None = None) -> dict[str, Any]:
    """The guard cell: check the parameters papermill injected against the ``parameters`` cell.

    Must run right after the ``parameters`` cell (papermill puts its injected cell in between).
    Raises :class:`ParameterError` (one line naming the parameter) for an unknown name, a wrong
    type or a value out of range; returns the injected ``name -> value`` ({} when nothing was
    injected: nbval, Jupyter, papermill without parameters).
    """
    spec = GuardSpec.make(GUARD_FUNCTION, positive=positive, non_negative=non_negative,
                          fraction=fraction, choices=choices, types=types)
    sources = _executed_parameter_sources()
    if sources is None:
        return {}
    defaults = parse_assignments(sources[0], "the parameters cell")
    injected = parse_assignments(sources[1], "the cell papermill injected")
    given = {k: v for k, v in injected.items() if not k.startswith("PAPERMILL_")}  # --inject-paths
    problems = [*spec_problems(spec, defaults, "the guard cell"),
                *parameter_problems(defaults, given, spec)]
    if problems:
        raise ParameterError("; ".join(problems))
    return given


# ------------------------------------------------------------------------------- notebooks
def read_notebook(path: Path) -> dict[str, Any]:
    """The notebook's JSON; :class:`BookError` naming the file when unreadable."""
    try:
        return json.loads(Path(path).read_text(encoding="utf8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BookError(f"unreadable notebook {path}: {exc}") from exc


def _source(cell: Mapping[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _tags(cell: Mapping[str, Any]) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def parameters_cell_index(nb: Mapping[str, Any]) -> int | None:
    """Index of the one cell tagged ``parameters`` (None when there is not exactly one)."""
    tagged = [i for i, c in enumerate(nb.get("cells", [])) if PARAMS_TAG in _tags(c)]
    return tagged[0] if len(tagged) == 1 else None


def notebook_defaults(nb: Mapping[str, Any], where: str = "notebook") -> dict[str, Any]:
    """``name -> default`` of the notebook's ``parameters`` cell (:func:`parse_assignments`)."""
    index = parameters_cell_index(nb)
    if index is None:
        raise ParameterError(f"{where}: no single cell tagged {PARAMS_TAG!r}")
    return parse_assignments(_source(nb["cells"][index]), f"{where}: parameters cell")


def guard_cell_index(nb: Mapping[str, Any]) -> int | None:
    """Index of the guard cell (tagged ``check-parameters`` or calling ``check_parameters``)."""
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") == "code" and (GUARD_TAG in _tags(cell)
                                                or f"{GUARD_FUNCTION}(" in _source(cell)):
            return i
    return None


def guard_spec(nb: Mapping[str, Any], where: str = "notebook") -> GuardSpec | None:
    """The spec of the notebook's guard call (None without guard cell); literal keywords only."""
    index = guard_cell_index(nb)
    if index is None:
        return None
    try:
        tree = ast.parse(_source(nb["cells"][index]))
    except SyntaxError as exc:
        raise ParameterError(f"{where}: guard cell is not valid Python ({exc.msg})") from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and GUARD_FUNCTION in (getattr(node.func, "id", None),
                                                            getattr(node.func, "attr", None)):
            try:
                kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords}
            except ValueError:
                raise ParameterError(f"{where}: the arguments of {GUARD_FUNCTION}(...) must be "
                                     "literals") from None
            if None in kwargs or node.args:
                raise ParameterError(f"{where}: {GUARD_FUNCTION}(...) takes keyword arguments only")
            return GuardSpec.make(f"{where}: {GUARD_FUNCTION}", **kwargs)
    raise ParameterError(f"{where}: guard cell does not call {GUARD_FUNCTION}(...)")


def guard_source(spec: GuardSpec) -> str:
    """Source of the guard cell for ``spec``."""
    return f"{GUARD_COMMENT}\nfrom audiorepro.book import {GUARD_FUNCTION}\n\n{spec.call_source()}"


def guard_problems(nb: Mapping[str, Any], where: str) -> tuple[list[str], list[str]]:
    """(errors, warnings) about the notebook's guard cell. Missing guard: a warning. A guard that
    is not the first code cell after the parameters cell, names undeclared parameters or whose
    defaults break its own ranges, and a parameters cell that starts like papermill's injected
    cell (the guard would mistake one for the other): errors."""
    index = parameters_cell_index(nb)
    if index is None:
        return [], []
    cells = nb["cells"]
    errors: list[str] = []
    if _source(cells[index]).split("\n", 1)[0].strip() == INJECTED_HEADER:
        errors.append(f"{where}: the parameters cell starts with {INJECTED_HEADER!r}, the first line "
                      "of the cell papermill injects; start it differently")
    guard = guard_cell_index(nb)
    if guard is None:
        return errors, [f"{where}: no parameter guard cell after the parameters cell "
                        f"(python tools/add_parameter_guard.py {where})"]
    next_code = next((i for i in range(index + 1, len(cells))
                      if cells[i].get("cell_type") == "code"), None)
    if guard != next_code:
        errors.append(f"{where}: the parameter guard is cell {guard}, it must be the first code "
                      f"cell after the parameters cell {index}")
    try:
        spec = guard_spec(nb, where)
        errors += spec_problems(spec, notebook_defaults(nb, where), where)
    except ParameterError as exc:
        errors.append(str(exc))
    return errors, []


def validate_parameters(notebook: Path, parameters: Mapping[str, Any], source: Path | None,
                        nb: Mapping[str, Any] | None = None) -> None:
    """Raise :class:`ParameterError` naming every parameter of ``parameters`` (from the file
    ``source``) that the notebook does not declare, of the wrong type, or out of the range its
    guard cell declares."""
    nb = read_notebook(notebook) if nb is None else nb
    defaults = notebook_defaults(nb, str(notebook))
    spec = guard_spec(nb, str(notebook)) or GuardSpec()
    problems = parameter_problems(defaults, parameters, spec)
    if problems:
        where = f" (from {source})" if source else ""
        raise ParameterError(f"notebook {notebook}{where}: " + "; ".join(problems))
