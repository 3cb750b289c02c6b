"""Where the packaged templates and schemas are.

In a wheel they sit inside the package (`bottlegen/templates`, `bottlegen/schema`, see
pyproject.toml); in a source checkout or an editable install they are the repository's
top-level `templates/` and `schema/`. Nothing is ever fetched over the network.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

PACKAGE = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path:
    packaged = PACKAGE / name
    if packaged.is_dir():
        return packaged
    checkout = PACKAGE.parent / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"bottlegen is installed without its {name}/ directory")


COMPOSE, KUBERNETES = "compose", "kubernetes"  # the targets a plan renders to
TARGETS = (COMPOSE, KUBERNETES)
_TEMPLATE_FOLDERS = {COMPOSE: "templates", KUBERNETES: "templates-kubernetes"}


def templates_dir(target: str = COMPOSE) -> Path:
    """The packaged templates folder of a target."""
    return _data_dir(_TEMPLATE_FOLDERS[target])


def schema_dir() -> Path:
    return _data_dir("schema")


@cache
def schema_bytes(relative: str) -> bytes:
    """A vendored or own JSON schema file's content, read once per process."""
    return (schema_dir() / relative).read_bytes()


@cache
def load_schema(relative: str) -> dict[str, Any]:
    """A vendored or own JSON schema, parsed once per process."""
    schema: dict[str, Any] = json.loads(schema_bytes(relative))
    return schema


PLAN_SCHEMA = "plan.schema.json"
MANIFEST_SCHEMA = "manifest.schema.json"
COMPOSE_SCHEMA = "compose-spec/compose-spec.json"
SANDBOX_SCHEMA = "agent-sandbox/sandbox-v1beta1.json"


def version() -> str:
    """bottlegen's installed version (importlib.metadata costs ~40 ms: only when asked)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("bottlegen")
    except PackageNotFoundError:  # a source checkout that was never installed
        return "0+unknown"
