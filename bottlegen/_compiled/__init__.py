"""Schemas compiled to plain Python by tools/compile_schemas.py (fastjsonschema's code).

Each module here is generated from one schema in schema/ and carries that file's SHA-256;
bottlegen.schemas uses a module only while the digest matches, so an edited schema is never
checked by stale code. The modules import the three names below instead of fastjsonschema.
"""

from __future__ import annotations


class JsonSchemaValueException(ValueError):
    """A compiled check's rejection. Only the verdict and the message are kept."""

    def __init__(self, message: str, value: object = None, name: object = None, definition: object = None, rule: object = None):
        super().__init__(message)
        self.message = message


# The generated code raises this name too when asked to collect all errors (it is not).
JsonSchemaValuesException = JsonSchemaValueException


class Decimal:
    """Stands in for decimal.Decimal in the generated type checks.

    bottlegen's loaders (ruamel.yaml's safe constructor and json) produce int and float, never
    Decimal, so `isinstance(x, Decimal)` is always false for what is checked here; importing
    the real decimal module would cost ~3 ms on every launch for nothing.
    """
