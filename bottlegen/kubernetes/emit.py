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

from collections.abc import Iterator, Sequence
from typing import Any

from ..stages.emit import header
from ..stages.merge import Merged
from ..yamltext import comment_text, write_mapping
from .check import Object, containers

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
        if located is None:
            continue
        for kind, name, key, optional in _references(located[1]):
            if (kind, name) not in made:
                keys = found.setdefault((kind, name), {})
                keys[key] = keys.get(key, True) and optional
    return found


def _references(spec: dict[str, Any]) -> Iterator[tuple[str, str, str, bool]]:
    volumes: dict[str, tuple[str, str, bool]] = {}
    for volume in spec.get("volumes") or []:
        if not isinstance(volume, dict):
            continue
        for kind, key in (("ConfigMap", "configMap"), ("Secret", "secret")):
            source = volume.get(key)
            if isinstance(source, dict):
                name = source.get("name" if kind == "ConfigMap" else "secretName")
                if isinstance(name, str):
                    volumes[str(volume.get("name"))] = (kind, name, source.get("optional") is True)
    for _, container in containers(spec):
        for mount in container.get("volumeMounts") or []:
            if isinstance(mount, dict) and mount.get("name") in volumes:
                kind, name, optional = volumes[mount["name"]]
                subpath = mount.get("subPath")
                yield kind, name, subpath if isinstance(subpath, str) else "", optional
        for variable in container.get("env") or []:
            ref = (variable.get("valueFrom") or {}).get("secretKeyRef") if isinstance(variable, dict) else None
            if isinstance(ref, dict) and isinstance(ref.get("name"), str):
                yield "Secret", ref["name"], str(ref.get("key")), ref.get("optional") is True
        for source in container.get("envFrom") or []:
            ref = source.get("secretRef") if isinstance(source, dict) else None
            if isinstance(ref, dict) and isinstance(ref.get("name"), str):
                yield "Secret", ref["name"], "", ref.get("optional") is True


def emit(objects: Sequence[Object], merged: Merged, plan_name: str, relaxed: Sequence[str] = ()) -> str:
    text = header(plan_name, relaxed).replace("`bottlegen render`", "`bottlegen render --target kubernetes`")
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
