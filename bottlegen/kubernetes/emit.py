"""Stage 8 of the kubernetes target: the checked objects as one multi-document YAML.

Objects in the order `kubectl apply -f` should create them: the Namespace, then the
NetworkPolicies (the default deny before any pod exists), then what pods use (ConfigMaps,
claims), Services, and the workloads, the agent's last; in template order within a kind. A
header says the file is generated, which rules the manifest relaxes, and which ConfigMaps and
Secrets the operator must create first (the pods name them; bottlegen never holds a value).
Each object's comment names the template it came from. The YAML is written by yamltext's
writer, as the compose file is.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..stages.emit import header
from ..stages.merge import Merged
from ..yamltext import comment_text, write_mapping
from .check import Object, references

KIND_ORDER = (
    "Namespace",
    "NetworkPolicy",
    "ConfigMap",
    "PersistentVolumeClaim",
    "Service",
    "Deployment",
    "Pod",
    "Sandbox",
)


def ordered(objects: Sequence[Object]) -> list[Object]:
    rank = {kind: index for index, kind in enumerate(KIND_ORDER)}
    return sorted(objects, key=lambda o: rank.get(o.kind, len(rank)))


def needs(objects: Sequence[Object]) -> dict[tuple[str, str], dict[str, bool]]:
    """The ConfigMaps and Secrets the pods take and this file does not make, with the keys
    they take of each ("" when a pod takes one whole) and whether the pod starts without it:
    (kind, name) -> {key: optional}."""
    made = {(o.kind, o.name) for o in objects}
    found: dict[tuple[str, str], dict[str, bool]] = {}
    for obj in objects:
        located = obj.pod_spec()
        for ref in references(located[1]) if located else ():
            if (ref.kind, ref.name) not in made:
                keys = found.setdefault((ref.kind, ref.name), {})
                keys[ref.key] = keys.get(ref.key, True) and ref.optional
    return found


def emit(objects: Sequence[Object], merged: Merged, plan_name: str, relaxed: Sequence[str] = ()) -> str:
    text = header(plan_name, relaxed, " --target kubernetes")
    required = needs(objects)
    if required:
        text += "\nCreate these first, in the bottle's namespace (the pods take them by name; no value is here):"
        for (kind, name), keys in sorted(required.items()):
            listed = ", ".join(k + (" (optional)" if optional else "") for k, optional in sorted(keys.items()) if k)
            whole = "" in keys and (" (optional)" if keys[""] else "")
            text += f"\n  {kind} {name}" + (whole or "") + (f": {listed}" if listed else "")
    out = [f"# {comment_text(line)}" for line in text.splitlines()]
    for obj in ordered(objects):
        out.append("---")
        source = merged.source_of((obj.handle,))
        out.append(f"# {comment_text(f'{obj.kind} {obj.name}' + (f', from template {source}' if source else ''))}")
        write_mapping(obj.body, 0, out)
    return "\n".join(out) + "\n"
