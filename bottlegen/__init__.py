"""bottlegen: a bottle's plan in, its docker-compose.yml out, and the bottle run from it."""

from .errors import (
    BottlegenError,
    ComposeError,
    ConflictError,
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
    if name == "__version__":  # looked up only when asked for: see resources.version
        from .resources import version

        return version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BottlegenError",
    "ComposeError",
    "ConflictError",
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
