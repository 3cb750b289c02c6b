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
    "write",
    "_compiled",
    "yamltext",
    "yamlfull",
    "yamlsubset",
    "schemas",
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
    # the render as a whole, and what the library builds on it
    "pipeline",
    "batch",
    "goldens",
    # the engine side
    "engine",
    "engine.docker",
    "engine.probe",
    "engine.state",
    "engine.networks",
    "engine.firewall",
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
                or target.split(".")[0] in ("engine", "stages", "compose", "cli")
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
