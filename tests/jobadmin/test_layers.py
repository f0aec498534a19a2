"""The dashboard uses only the engine's public API (DESIGN.md §8.2), checked on jobadmin's source.

Two rules, read off the syntax tree of every module of ``jobadmin``:

* it imports only public engine modules: the root package ``queueengine``, ``queueengine.operator``
  (and its public submodules), ``queueengine.events``, ``queueengine.types``,
  ``queueengine.exceptions``, ``queueengine.conf``, ``queueengine.djtasks_compat``; and no private
  name (``_x``) from them;
* it never reads ``.redis``, ``.keys`` or a ``._private`` attribute of an engine object: a client
  (a parameter annotated with an engine type, a name bound from ``client_for``/``client_of``/
  ``get_client``, any ``.client`` attribute) or anything reached from one
  (``client.operator.live._leader``, ``client.jobs[jid]._full``), nor ``getattr`` them by name.

``import-linter`` checks the first rule by module graph too; this test also sees names and
attributes, and runs without the tool.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

import jobadmin

PUBLIC_MODULES = frozenset({"queueengine", "queueengine.operator", "queueengine.events", "queueengine.types",
                            "queueengine.exceptions", "queueengine.conf", "queueengine.djtasks_compat"})
"""Engine modules the dashboard may import (``queueengine.operator.*`` submodules too)."""
FORBIDDEN_ATTRIBUTES = frozenset({"redis", "keys", "store"})
CLIENT_FACTORIES = frozenset({"client_for", "client_of", "get_client"})


def public_module(name: str) -> bool:
    """An engine module the dashboard may import."""
    if any(part.startswith("_") for part in name.split(".")):
        return False
    return name in PUBLIC_MODULES or name.startswith("queueengine.operator.")


@dataclass(frozen=True)
class Problem:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def private(attr: str) -> bool:
    return attr.startswith("_") and not (attr.startswith("__") and attr.endswith("__"))


class Checker(ast.NodeVisitor):
    """Finds the problems of one module (see the module docstring)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[Problem] = []
        self.engine_types: set[str] = set()        # names imported from queueengine (Client, Job, ...)
        self.engine_names: set[str] = set()        # names bound to engine objects (module-wide, conservative)
        self.engine_attributes: set[str] = {"client"}   # attributes holding one (``bridge.client``)

    def flag(self, node: ast.AST, what: str) -> None:
        self.problems.append(Problem(self.path, getattr(node, "lineno", 0), what))

    # ------------------------------------------------------------------ imports
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name.split(".")[0] == "queueengine":
                if not public_module(alias.name):
                    self.flag(node, f"imports the private engine module {alias.name}")
                self.engine_names.add((alias.asname or alias.name).split(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level == 0 and module.split(".")[0] == "queueengine":
            for alias in node.names:
                full = f"{module}.{alias.name}"
                if private(alias.name):
                    self.flag(node, f"imports the private name {full}")
                elif not public_module(module) and not (module == "queueengine" and public_module(full)):
                    self.flag(node, f"imports from the private engine module {module}")
                self.engine_types.add(alias.asname or alias.name)

    # ------------------------------------------------------------------ engine objects
    def engine_rooted(self, node: ast.AST) -> bool:
        """Whether ``node`` evaluates to an engine object (or something reached from one)."""
        if isinstance(node, ast.Name):
            return node.id in self.engine_names
        if isinstance(node, ast.Attribute):
            return node.attr in self.engine_attributes or self.engine_rooted(node.value)
        if isinstance(node, ast.Subscript):
            return self.engine_rooted(node.value)
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in CLIENT_FACTORIES | self.engine_types:
                return True
            return isinstance(func, ast.Attribute) and self.engine_rooted(func)
        return False

    def annotated_engine(self, annotation: ast.AST | None) -> bool:
        if annotation is None:
            return False
        names = {n.id for n in ast.walk(annotation) if isinstance(n, ast.Name)}
        text = ast.unparse(annotation)
        return bool(names & self.engine_types) or any(t in text for t in self.engine_types)

    def bind(self, target: ast.AST) -> None:
        """``target`` now holds an engine object: a name, or an attribute (``self.client = ...``)."""
        if isinstance(target, ast.Name):
            self.engine_names.add(target.id)
        elif isinstance(target, ast.Attribute):
            self.engine_attributes.add(target.attr)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self.bind(element)
        elif isinstance(target, ast.Starred):
            self.bind(target.value)

    def engine_targets(self, node: ast.AST) -> list[ast.AST]:
        """What ``node`` binds to an engine object (parameters, assignments, loops, ``with``)."""
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            params = node.args.args + node.args.kwonlyargs + node.args.posonlyargs
            return [ast.Name(a.arg) for a in params if self.annotated_engine(a.annotation)]
        if isinstance(node, ast.Assign):
            return list(node.targets) if self.engine_rooted(node.value) else []
        if isinstance(node, ast.AnnAssign):
            engine = self.annotated_engine(node.annotation) or (node.value is not None and self.engine_rooted(node.value))
            return [node.target] if engine else []
        if isinstance(node, ast.NamedExpr):
            return [node.target] if self.engine_rooted(node.value) else []
        if isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
            return [node.target] if self.engine_rooted(node.iter) else []
        if isinstance(node, ast.withitem) and node.optional_vars is not None:
            return [node.optional_vars] if self.engine_rooted(node.context_expr) else []
        return []

    def collect_bindings(self, tree: ast.AST) -> None:
        """Every name that holds an engine object somewhere in the module, found until stable."""
        before = -1
        while before != len(self.engine_names) + len(self.engine_attributes):
            before = len(self.engine_names) + len(self.engine_attributes)
            for node in ast.walk(tree):
                for target in self.engine_targets(node):
                    self.bind(target)

    def check_attribute(self, node: ast.Attribute) -> None:
        if (node.attr in FORBIDDEN_ATTRIBUTES or private(node.attr)) and self.engine_rooted(node.value):
            self.flag(node, f"reads .{node.attr} of an engine object ({ast.unparse(node)})")

    def check_call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name) and func.id in ("getattr", "setattr", "hasattr") and len(node.args) >= 2:
            name = node.args[1]
            if isinstance(name, ast.Constant) and isinstance(name.value, str) and self.engine_rooted(node.args[0]) \
                    and (name.value in FORBIDDEN_ATTRIBUTES or private(name.value)):
                self.flag(node, f"{func.id}(..., {name.value!r}) on an engine object")


def checked(source: str, path: str = "<source>") -> Checker:
    """The checker after reading one module's source (its ``problems`` and what it saw)."""
    tree = ast.parse(source)
    checker = Checker(path)
    for node in ast.walk(tree):     # imports first: they say which names are engine types
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            checker.visit(node)
    checker.collect_bindings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            checker.check_attribute(node)
        elif isinstance(node, ast.Call):
            checker.check_call(node)
    return checker


def problems_of(source: str, path: str = "<source>") -> list[Problem]:
    """Every problem of one module's source."""
    return checked(source, path).problems


def jobadmin_sources() -> list[Path]:
    root = Path(jobadmin.__file__).parent
    return sorted(p for p in root.rglob("*.py") if "migrations" not in p.parts)


def test_jobadmin_uses_only_the_public_engine_api() -> None:
    """No module of jobadmin imports a private engine module or touches an engine object's
    ``.redis``, ``.keys``, ``.store`` or private attributes."""
    sources = jobadmin_sources()
    assert len(sources) > 15, "jobadmin's modules were not found"
    found = [str(p) for path in sources for p in problems_of(path.read_text(), str(path))]
    assert found == [], "jobadmin reaches past the engine's public API:\n" + "\n".join(found)
    # the scan sees the clients it must watch (so an empty result is not for lack of looking)
    root = Path(jobadmin.__file__).parent
    assert "client" in checked((root / "actions.py").read_text()).engine_names
    assert "client" in checked((root / "bulk.py").read_text()).engine_names
    assert "Client" in checked((root / "engine.py").read_text()).engine_types


@pytest.mark.parametrize("source, expected", [
    ("from queueengine import Client\ndef f(client: Client):\n    return client.redis.get('x')", ".redis"),
    ("from jobadmin.engine import client_for\nc = client_for()\nc.keys.job('x')", ".keys"),
    ("def f(request):\n    return client_of(request)._call('get', 'x')", "._call"),
    ("from queueengine import Client\ndef f(client: Client | None):\n    return client.operator.live._leader", "._leader"),
    ("class B:\n    def f(self):\n        return self.client.jobs['x']._full", "._full"),
    ("def f(bridge):\n    getattr(bridge.client, '_pipeline_calls')", "getattr"),
    ("def f(client_for):\n    for job in client_for().jobs.get('a'):\n        job._load({})", "._load"),
    ("from queueengine.store import args", "queueengine.store"),
    ("import queueengine.worker.loop", "queueengine.worker.loop"),
    ("from queueengine.job import Job", "queueengine.job"),
    ("from queueengine import _private_helper", "_private_helper"),
    ("from queueengine.operator.views import _page_args", "_page_args"),
    ("def f():\n    from queueengine.store.pubsub import AsyncSubscriber", "queueengine.store.pubsub"),
])
def test_the_checker_finds_each_kind_of_reach(source: str, expected: str) -> None:
    """The scan itself fails on every kind of reach past the public API."""
    problems = problems_of(source)
    assert problems and any(expected in p.what for p in problems), (source, problems)


def test_the_checker_leaves_jobadmins_own_privates_alone() -> None:
    """Private attributes of jobadmin's own objects, dict ``.keys()`` and public engine imports pass."""
    source = (
        "from queueengine import Client, InvalidArgument\n"
        "from queueengine.operator import check_name\n"
        "from queueengine.operator.views import LIST_KINDS\n"
        "from jobadmin import conf\n"
        "class Bridge:\n"
        "    def f(self, client: Client):\n"
        "        self._sample()\n"
        "        conf._user()\n"
        "        return {}.keys(), client.operator.rows([]), client.events.publish('dashboard.x')\n"
    )
    assert problems_of(source) == []
