"""bottlegen: a bottle's plan in, its docker-compose.yml out, and the bottle run from it.

The library (docs/api.md):

    import bottlegen
    rendered = bottlegen.render("plan.yml")     # or a mapping; .document, .text, .warnings
    print(rendered.text)

The exception tree is imported with the package; the rest (the render stages, Jinja) is
imported when first used, so `import bottlegen` costs little.
"""

from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from .engine.bottles import Bottle, bottle, bottles, up
    from .pipeline import Rendered, Renderer, render

_LAZY = {
    "Rendered": "pipeline",
    "Renderer": "pipeline",
    "render": "pipeline",
    "Bottle": "engine.bottles",
    "bottle": "engine.bottles",
    "bottles": "engine.bottles",
    "up": "engine.bottles",
}


def __getattr__(name: str) -> object:
    if name == "__version__":  # looked up only when asked for: see resources.version
        from .resources import version

        return version()
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Bottle",
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
    "bottle",
    "bottles",
    "render",
    "up",
]
