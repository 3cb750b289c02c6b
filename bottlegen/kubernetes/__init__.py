"""The kubernetes target (`bottlegen render --target kubernetes`): the same plan and stages as
the compose target (bottlegen/stages/), rendered through the templates of
`templates-kubernetes/` into Kubernetes objects, then, numbered here:

1. check   what the target cannot express, and the objects' shape: each top-level value of
           the merged document is one object, with a kind, a name, and unique
2. policy  the sandbox's invariants, judged on the objects by allow-list (exit 5)
3. emit    one multi-document YAML, in the order `kubectl apply` should create them

A sibling of bottlegen/compose/; nothing here imports the engine side: there is no `up` for
this target (see the README's Kubernetes section).
"""

ORDER = ("check", "policy", "emit")
