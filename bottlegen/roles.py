"""The roles the sandbox is built from, a leaf every side may import.

A network's role is written in the document itself, `x-bottlegen: {role: internal}` or
`{role: egress}`, so that nothing depends on a network's key; a service's role is given by
the templates' manifest, `role: agent` (exactly one) or `role: gateway` (may join both
networks). The policy checks them on every render; the engine side creates networks by them.
"""

from __future__ import annotations

ROLE_KEY = "x-bottlegen"  # the document's key for a network's role
INTERNAL, EGRESS = "internal", "egress"  # network roles
AGENT, GATEWAY = "agent", "gateway"  # service roles, in the manifest
