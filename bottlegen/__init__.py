"""bottlegen: a bottle's plan in, its docker-compose.yml out, and the bottle run from it."""

from .errors import (
    BottlegenError,
    ComposeError,
    DocumentError,
    EngineError,
    ExitCode,
    LintError,
    MergeConflictError,
    OutputError,
    PlanError,
    TemplateError,
    UsageError,
    UserError,
)
from .pipeline import Rendered, Renderer


def __getattr__(name: str) -> object:
    # importlib.metadata costs ~40 ms of start-up: load it only when the version is asked for.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("bottlegen")
        except PackageNotFoundError:  # a source checkout that was never installed
            return "0+unknown"
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BottlegenError",
    "ComposeError",
    "DocumentError",
    "EngineError",
    "ExitCode",
    "LintError",
    "MergeConflictError",
    "OutputError",
    "PlanError",
    "Rendered",
    "Renderer",
    "TemplateError",
    "UsageError",
    "UserError",
    "__version__",
]
