"""bottlegen: a bottle's plan in, its docker-compose.yml out, and the bottle run from it."""

from importlib.metadata import PackageNotFoundError, version

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
    UserError,
)
from .pipeline import Rendered, Renderer

try:
    __version__ = version("bottlegen")
except PackageNotFoundError:  # a source checkout that was never installed
    __version__ = "0+unknown"

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
    "UserError",
    "__version__",
]
