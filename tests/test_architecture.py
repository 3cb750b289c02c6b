"""The folder listing is the architecture: imports point one way only.

Every module of bottlegen has a place in LAYERS; a module may import only modules placed
before it. So the leaves (errors, key paths, the YAML dialect, schemas) import no stage,
no stage imports a later one, the render side never imports the engine side, and only the
command line sits on top of both.
"""

from __future__ import annotations

import ast

from helpers import REPO

PACKAGE = REPO / "bottlegen"

LEAVES = [
    # what every side shares
    "errors",
    "lints",
    "paths",
    "roles",
    "resources",
    "composefile",
    "host",
    "cachedir",
    "memo",
    "write",
    "_compiled",
    "yamltext",
    "yamlfull",
    "yamlsubset",
    "schemas",
    "project",
    "explain",
    "cache",
]


def package_order(package: str) -> list[str]:
    """A package's modules in the order its __init__ numbers them (ORDER), after the package
    itself: the order is said once, in the package, and the test reads it from there."""
    tree = ast.parse((PACKAGE / package / "__init__.py").read_text(encoding="utf-8"))
    order = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "ORDER" for t in node.targets)
    )
    return [package, *(f"{package}.{name}" for name in order)]


LAYERS = [
    *LEAVES,
    # the render stages every target shares, then the compose target's, as each package numbers them
    *package_order("stages"),
    *package_order("compose"),
    *package_order("kubernetes"),
    # the render as a whole, and what the library builds on it
    "pipeline",
    "starter",
    "batch",
    "goldens",
    # the engine side
    "engine",
    "engine.api",
    "engine.docker",
    "engine.probe",
    "engine.state",
    "engine.networks",
    "engine.firewall",
    "engine.services",
    "engine.lifecycle",
    "engine.listing",
    "engine.drift",
    "engine.hostside",
    "engine.verify",
    "engine.bottles",
    # the command and the public API
    "completion",
    "cli.output",
    "cli.options",
    "cli.render",
    "cli.templates",
    "cli.bottles",
    "cli.commands",
    "cli",
    "cli.__main__",
    "",  # bottlegen/__init__.py
]


def module_name(path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    if parts and parts[0] == "_compiled":
        return "_compiled"
    return ".".join(parts)


def imports_of(path) -> set[str]:
    """The bottlegen modules a file imports (relative imports, at any depth of the file)."""
    here = module_name(path).split(".") if module_name(path) else []
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)]
            target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            if (
                node.module is None
                or target in LAYERS
                or target.split(".")[0] in ("engine", "stages", "compose", "kubernetes", "cli")
            ):
                names = [f"{target}.{a.name}".lstrip(".") for a in node.names] if node.module is None else [target]
                found.update(n if n in LAYERS else target for n in names)
            else:
                found.add(target)
    return {"_compiled" if name.startswith("_compiled") else name for name in found}


def test_every_module_has_a_place():
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    assert modules <= set(LAYERS), f"place these in LAYERS: {sorted(modules - set(LAYERS))}"


def test_imports_point_to_earlier_layers_only():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        if name == "_compiled":
            continue
        for target in imports_of(path):
            assert target in LAYERS, f"{path.relative_to(REPO)} imports {target!r}, which LAYERS does not place"
            if LAYERS.index(target) >= LAYERS.index(name) and target != name:
                wrong.append(f"{path.relative_to(REPO)} imports {target}, a later layer")
    assert not wrong, "\n".join(wrong)


def test_the_check_sees_a_backward_import(tmp_path):
    """The rule above is only as good as imports_of: it must see each form of import."""
    (tmp_path / "bottlegen" / "engine").mkdir(parents=True)
    sample = tmp_path / "bottlegen" / "engine" / "networks.py"
    sample.write_text("from ..errors import X\nfrom . import docker\nfrom .state import Bottle\nfrom .. import cli\n")
    global PACKAGE
    saved, PACKAGE = PACKAGE, tmp_path / "bottlegen"
    try:
        assert imports_of(sample) == {"errors", "engine.docker", "engine.state", "cli"}
    finally:
        PACKAGE = saved


def test_no_assertion_in_the_tests_is_always_true_by_its_shape():
    """`assert x == a if c else b` asserts b when c is false; `assert (x, "why")` is a tuple;
    `assert "text"` is a constant: each passes whatever the code does."""
    found = []
    for path in sorted((REPO / "tests").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Assert) and isinstance(node.test, ast.IfExp | ast.Tuple | ast.Constant):
                found.append(f"{path.name}:{node.lineno}: assert {ast.unparse(node.test)[:80]}")
    assert not found, "\n".join(found)


# --- a render reads this machine only through bottlegen.host -----------------------------
#
# The render memo (memo.py) answers a render again only when everything it read of the
# machine is as it was; it knows what was read because every read goes through host.py's
# observations. A read anywhere else in the render would be one the memo cannot see.

RENDER_MODULES = [
    *sorted((PACKAGE / "stages").glob("*.py")),
    *sorted((PACKAGE / "compose").glob("*.py")),
    *sorted((PACKAGE / "kubernetes").glob("*.py")),
    *(PACKAGE / f"{name}.py" for name in ("pipeline", "lints", "composefile", "paths", "roles", "schemas")),
    *(PACKAGE / f"{name}.py" for name in ("yamltext", "yamlfull", "yamlsubset")),
]
READS = {
    "stat", "lstat", "fstat", "open", "realpath", "exists", "isfile", "isdir", "islink", "getsize",
    "readlink", "listdir", "scandir", "read_text", "read_bytes", "is_file", "is_dir", "is_symlink",
    "iterdir", "glob", "rglob", "access", "samefile", "getpwall", "getpwnam",
}  # fmt: skip
# Reads that are not the render's, or that note what they read themselves.
NOTED = {
    ("stages/load.py", "read_text_file"),  # reads carefully, then host.was_read()
    ("stages/templating.py", "list_templates"),  # `templates list`, not a render
}


def reads_outside_host(path, package=PACKAGE) -> list[str]:
    found = []
    shown = path.relative_to(package).as_posix()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for function in [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef))]:
        name = getattr(function, "name", "<module>")
        if (shown, name) in NOTED:
            continue
        body = function.body if isinstance(function, ast.FunctionDef) else [
            n for n in tree.body if not isinstance(n, ast.FunctionDef | ast.ClassDef)
        ]  # fmt: skip
        for node in (n for statement in body for n in ast.walk(statement)):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            receiver = ast.unparse(func.value) if isinstance(func, ast.Attribute) else ""
            if receiver in ("host", "hosts") or receiver.endswith(".host"):
                continue  # bottlegen.host, or a HostView
            path_resolve = called == "resolve" and not node.args  # Path.resolve()
            if called in READS or path_resolve:
                found.append(f"bottlegen/{shown}:{node.lineno}: {ast.unparse(func)}() in {name}")
    return found


def test_a_render_reads_the_machine_only_through_host():
    found = [line for path in RENDER_MODULES for line in reads_outside_host(path)]
    assert not found, "read through bottlegen.host (so the render memo sees it):\n" + "\n".join(sorted(set(found)))


def test_the_read_check_sees_a_read(tmp_path):
    planted = tmp_path / "bottlegen" / "stages" / "sample.py"
    planted.parent.mkdir(parents=True)
    planted.write_text("import os\ndef f(p):\n    return os.path.exists(p), p.resolve(), host.exists(p), open(p)\n")
    assert len(reads_outside_host(planted, tmp_path / "bottlegen")) == 3
