"""The rooms and the arrows between them (docs: README "Layout"): a person's client carries no
partner or server code, the server never imports what partners run, and no package imports in a
circle. Checked twice: by running the client with the other rooms made unimportable, and by
reading every import statement of the source."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.testdata import PDQ_DIR, require_testdata

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("hashing", "txlog", "partner_tools", "store", "partners", "api")
SERVER_ROOMS = {"api", "partners", "store"}
# What only the server or a partner needs: a person's client must run without any of it.
NOT_FOR_A_PERSON = {"cryptography", "sqlalchemy", "fastapi", "pydantic_settings", "psycopg",
                    "alembic", "uvicorn", *SERVER_ROOMS, "partner_tools", "txlog"}

BLOCKING_CLIENT = textwrap.dedent("""
    import importlib.abc, sys

    BLOCKED = set(sys.argv[1].split(","))

    class Unavailable(importlib.abc.MetaPathFinder):
        # As if these were not installed (a person's `pip install hashguard`).
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"not installed here: {name}", name=name)
            return None

    sys.meta_path.insert(0, Unavailable())
    sys.argv = ["hashguard", *sys.argv[2:]]
    from hashing.cli import main
    main()
""")


def run_client(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCKING_CLIENT, ",".join(sorted(NOT_FOR_A_PERSON)), *args],
        cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "COLUMNS": "200"},
        capture_output=True, text=True, timeout=120)


def test_a_persons_client_runs_without_server_or_partner_code_and_offers_no_partner_verbs():
    require_testdata()
    helped = run_client("--help")
    assert helped.returncode == 0, helped.stderr
    for verb in ("hash", "submit", "status", "withdraw"):
        assert verb in helped.stdout
    assert "transparency" not in helped.stdout  # a partner's verb, not a person's
    hashed = run_client("hash", "--json", str(PDQ_DIR / "bridge-mods" / "aaa-orig.jpg"))
    assert hashed.returncode == 0, hashed.stderr
    [record] = [json.loads(line) for line in hashed.stdout.splitlines()]
    assert record["signal_type"] == "pdq" and len(record["value"]) == 64


def _imports(path: Path, top_level_only: bool = False) -> set[str]:
    """Every module an import statement of `path` names (in functions too, unless told)."""
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in (tree.body if top_level_only else ast.walk(tree)):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _rooms_imported(path: Path) -> set[str]:
    return {name.partition(".")[0] for name in _imports(path)}


@pytest.mark.parametrize("room, may_not_import", [
    # The person's device: nothing of the server, of partners, nor what only they need.
    ("hashing", NOT_FOR_A_PERSON),
    # The log's primitives: the standard library only (shared by server and partner tools).
    ("txlog", {"hashing", "partner_tools", *SERVER_ROOMS, "cryptography", "sqlalchemy"}),
    # What partners run never depends on server code ...
    ("partner_tools", SERVER_ROOMS | {"sqlalchemy", "fastapi"}),
    # ... and nothing on the server imports it; arrows go api -> partners -> store -> hashing.
    ("store", {"api", "partners", "partner_tools"}),
    ("partners", {"api", "partner_tools"}),
    ("api", {"partner_tools"}),
])
def test_each_room_imports_only_what_its_audience_has(room, may_not_import):
    wrong = {f"{module} imports {sorted(_rooms_imported(path) & may_not_import)}"
             for module, path in _modules().items()
             if module.partition(".")[0] == room and _rooms_imported(path) & may_not_import}
    assert not wrong


def test_txlog_needs_nothing_beyond_the_standard_library():
    for module, path in _modules().items():
        if module.startswith("txlog"):
            outside = {name.partition(".")[0] for name in _imports(path)} \
                - set(sys.stdlib_module_names) - {"txlog", "__future__"}
            assert not outside, f"{module} imports {outside}"


def test_no_module_imports_in_a_circle():
    """Module-level imports only: a circle there works, when it does, by the order in which the
    modules happen to be imported first (store/models.py and store/transparency_models.py did)."""
    modules = _modules()
    graph = {name: {m for m in _imports(path, top_level_only=True) if m in modules} - {name}
             for name, path in modules.items()}
    state: dict[str, str] = {}
    path: list[str] = []
    circles: list[list[str]] = []

    def visit(name: str) -> None:
        state[name] = "open"
        path.append(name)
        for target in sorted(graph[name]):
            if state.get(target) == "open":
                circles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target)
        path.pop()
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name)
    assert not circles


def test_the_transparency_tables_import_first_and_alone():
    """A fresh interpreter: the transparency models need only the base, not store/models.py;
    store/models.py still registers every table (Alembic's env reads its metadata)."""
    alone = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import sys
        import store.transparency_models as t
        assert "store.models" not in sys.modules, "transparency_models pulled in store.models"
        assert {"transparency_leaves", "transparency_nodes", "transparency_heads"} \\
            <= set(t.Base.metadata.tables)
        import store.models as m
        assert m.Base is t.Base and {"cases", "change_log", "transparency_leaves"} \\
            <= set(m.Base.metadata.tables)
    """)], cwd=ROOT, env={"PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60)
    assert alone.returncode == 0, alone.stderr
    models_only = subprocess.run(
        [sys.executable, "-c", "import store.models as m; print(sorted(m.Base.metadata.tables))"],
        cwd=ROOT, env={"PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60)
    assert models_only.returncode == 0, models_only.stderr
    assert "transparency_heads" in models_only.stdout
