"""The render stages every output target shares, numbered here, in the order a plan passes
through them (the one place that says so):

1. load        a plan file (YAML or JSON) in, plain data out
2. validate    the plan against its schema and its cross-field rules
3. resolve     schema defaults, host paths, container names, derived facts: the template context
4. layers      a plan's layers (`-f` files, `--set` values) in, one plan out, each value's layer known
5. templating  the one Jinja configuration: context in, one fragment per template out
6. manifest    which templates, in what order, when, with what role; the services a plan enables and the facts that follow
7. merge       fragments in, one document out, each key's template known
8. verdicts    a target's policy findings in, located problems out: the plan's key (exit 3) or the template's (exit 5)
9. emit        a document in, deterministic YAML text out

What a target adds between merge and emit (its checks, its policy) is a package of its own
beside this one: `bottlegen.compose` for the compose file, `bottlegen.kubernetes` for
Kubernetes objects.
"""

ORDER = ("load", "validate", "resolve", "layers", "templating", "manifest", "merge", "verdicts", "emit")
