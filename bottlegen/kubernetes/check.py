"""Stage 6 of the kubernetes target: what the plan asks that Kubernetes cannot do, and the
shape of the merged objects.

The merged document is a mapping of handles (a template's names for its objects: two
templates may add to one object under one handle) to objects. Each must be a mapping with
`apiVersion`, `kind` and `metadata.name`, each (kind, name) once, each name one Kubernetes
accepts for its kind. What kinds may appear at all is the policy's to say (policy.py).

Values: a template writes `$` in a value as `$$`, for compose's sake (templating.py). Kubernetes
reads `$$` as `$` only where it expands `$(VAR)`: a container's command, args and env values.
Everywhere else each `$$` is written back as the `$` the plan gave.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, NamedTuple

from .. import resources
from ..errors import DocumentError, PlanError, Problem
from ..paths import json_path, shorten
from ..schemas import describe, violations
from ..stages.merge import Merged

# DNS-1123 subdomain (most objects), DNS-1123 label (Namespace), DNS-1035 label (Service).
SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
LABEL_1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
NAMES = {"Namespace": (LABEL, 63), "Service": (LABEL_1035, 63)}
EXPANDED = ("command", "args")  # with env[].value: where Kubernetes expands $(VAR)
POD_SPEC_AT = {"Pod": ("spec",), "Deployment": ("spec", "template", "spec"), "Sandbox": ("spec", "podTemplate", "spec")}
POD_LABELS_AT = {
    "Pod": ("metadata", "labels"),
    "Deployment": ("spec", "template", "metadata", "labels"),
    "Sandbox": ("spec", "podTemplate", "metadata", "labels"),
}
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


class Object(NamedTuple):
    """One object of the document: its handle (top-level key), kind, name and body."""

    handle: str
    kind: str
    name: str
    body: dict[str, Any]

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"

    def get(self, *keys: Any) -> Any:
        """The value at keys below the object, or None where any is missing."""
        value: Any = self.body
        for key in keys:
            if isinstance(value, dict):
                value = value.get(key)
            elif isinstance(value, list) and isinstance(key, int) and 0 <= key < len(value):
                value = value[key]
            else:
                return None
        return value

    def pod_spec(self) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
        """(its key path, the spec) of the pod this object runs, for a workload kind."""
        at = POD_SPEC_AT.get(self.kind)
        spec = self.get(*at) if at else None
        return ((self.handle, *at), spec) if at and isinstance(spec, dict) else None

    def pod_labels(self) -> dict[str, Any]:
        at = POD_LABELS_AT.get(self.kind)
        labels = self.get(*at) if at else None
        return labels if isinstance(labels, dict) else {}


def containers(spec: dict[str, Any]) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
    """(path below the pod spec, container) for every container of a pod spec, init and
    ephemeral ones included."""
    for key in CONTAINER_LISTS:
        items = spec.get(key)
        if isinstance(items, list):
            for index, container in enumerate(items):
                if isinstance(container, dict):
                    yield (key, index), container


class Reference(NamedTuple):
    """A ConfigMap or Secret a pod takes: where (below the pod spec), which, which key ("" for
    all of it), and whether the pod starts without it."""

    at: tuple[Any, ...]
    kind: str
    name: str
    key: str
    optional: bool


def references(spec: dict[str, Any]) -> Iterator[Reference]:
    """Every ConfigMap and Secret a pod spec takes: volumes (each key a mount takes by
    subPath), projected volumes, env's configMapKeyRef and secretKeyRef, and envFrom."""
    volumes: dict[Any, tuple[str, str, bool]] = {}
    for index, volume in enumerate(spec.get("volumes") or []):
        if not isinstance(volume, dict):
            continue
        sources = [((), volume)] + [
            (("projected", "sources", i), s)
            for i, s in enumerate((volume.get("projected") or {}).get("sources") or [])
            if isinstance(s, dict)
        ]
        for below, source in sources:
            for kind, key, name_key in (("ConfigMap", "configMap", "name"), ("Secret", "secret", "secretName")):
                found = source.get(key)
                if not isinstance(found, dict):
                    continue
                name = found.get(name_key if not below else "name")  # a projected Secret is by `name`
                if isinstance(name, str):
                    optional = found.get("optional") is True
                    volumes[volume.get("name")] = (kind, name, optional)
                    yield Reference(("volumes", index, *below), kind, name, "", optional)
    for path, container in containers(spec):
        for index, mount in enumerate(container.get("volumeMounts") or []):
            if isinstance(mount, dict) and mount.get("name") in volumes and isinstance(mount.get("subPath"), str):
                kind, name, optional = volumes[mount["name"]]
                yield Reference((*path, "volumeMounts", index), kind, name, mount["subPath"], optional)
        for index, variable in enumerate(container.get("env") or []):
            value_from = variable.get("valueFrom") if isinstance(variable, dict) else None
            for kind, key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                ref = value_from.get(key) if isinstance(value_from, dict) else None
                if isinstance(ref, dict) and isinstance(ref.get("name"), str):
                    at = (*path, "env", index)
                    yield Reference(at, kind, ref["name"], str(ref.get("key")), ref.get("optional") is True)
        for index, source in enumerate(container.get("envFrom") or []):
            for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                ref = source.get(key) if isinstance(source, dict) else None
                if isinstance(ref, dict) and isinstance(ref.get("name"), str):
                    at = (*path, "envFrom", index)
                    yield Reference(at, kind, ref["name"], "", ref.get("optional") is True)


def compose_only(context: dict[str, Any], source: str) -> None:
    """A plan this target cannot express is an error at its key, never silently dropped."""
    problems = []
    project = context["project"]
    if len(project) > 63 or not LABEL.fullmatch(project):
        problems.append(
            Problem(
                f"makes the bottle's namespace {shorten(project)} (<settings.project_prefix>-<slug>), which Kubernetes "
                "refuses: at most 63 lowercase letters, digits and '-'. Give the bottle a slug without '_' for this target",
                source,
                "$.slug",
            )
        )
    if context["plan"].get("seal_host"):
        problems.append(
            Problem(
                "seal_host drops what the bottle's network sends to the Docker host itself (iptables on the engine's "
                "host); on Kubernetes the default-deny NetworkPolicy already keeps the agent from its node's "
                "addresses as far as the CNI enforces it, and bottlegen has no node to seal: remove seal_host, or "
                "set it false, for this target",
                source,
                "$.seal_host",
            )
        )
    if problems:
        raise PlanError("invalid plan for the kubernetes target: it asks what Kubernetes cannot do:", problems)


def read_objects(merged: Merged) -> list[Object]:
    """The merged document's objects, checked for shape, with `$$` written back where
    Kubernetes does not read it; DocumentError (exit 5) listing every problem."""
    problems: list[Problem] = []
    objects: list[Object] = []
    seen: dict[tuple[str, str], str] = {}
    for handle, body in merged.document.items():
        if not isinstance(body, dict):
            problems.append(merged.problem((handle,), "each top-level key is one Kubernetes object: a mapping"))
            continue
        kind, meta = body.get("kind"), body.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        missing = [k for k, v in (("apiVersion", body.get("apiVersion")), ("kind", kind)) if not isinstance(v, str)]
        if not isinstance(name, str):
            missing.append("metadata.name")
        if missing:
            problems.append(merged.problem((handle,), f"an object needs {', '.join(missing)} (strings)"))
            continue
        assert isinstance(kind, str) and isinstance(name, str)
        pattern, longest = NAMES.get(kind, (SUBDOMAIN, 253))
        if len(name) > longest or not pattern.fullmatch(name):
            problems.append(
                merged.problem(
                    (handle, "metadata", "name"),
                    f"{kind} {shorten(name)} is not a name Kubernetes takes for a {kind}: at most {longest} "
                    "lowercase letters, digits and '-'"
                    + (", starting with a letter" if pattern is LABEL_1035 else "")
                    + ("" if pattern is not SUBDOMAIN else " ('.' between labels)"),
                )
            )
        first = seen.setdefault((kind, name), handle)
        if first != handle:
            problems.append(
                merged.problem((handle,), f"{kind} {name} is also under {first!r}: each object once (one handle)")
            )
        if kind == "Sandbox":  # agent-sandbox's CRD, vendored (schema/agent-sandbox/PROVENANCE.md)
            for error in violations(resources.SANDBOX_SCHEMA, body):
                problems.append(merged.problem((handle, *error.absolute_path), f"Sandbox: {describe(error)}"))
        objects.append(Object(handle, kind, name, _unescaped(body, ())))
    if problems:
        raise DocumentError("the rendered objects are not Kubernetes objects; fix the template named:", problems)
    return objects


def _unescaped(value: Any, path: tuple[Any, ...]) -> Any:
    """value with each `$$` as `$`, except in containers' command, args and env values."""
    if isinstance(value, str):
        return value.replace("$$", "$") if "$$" in value and not _expanded(path) else value
    if isinstance(value, dict):
        return {k: _unescaped(v, (*path, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_unescaped(v, (*path, i)) for i, v in enumerate(value)]
    return value


def _expanded(path: tuple[Any, ...]) -> bool:
    """Whether Kubernetes expands $(VAR) at path: a container's command, args, env[].value."""
    for i, key in enumerate(path):
        if key in CONTAINER_LISTS and i + 2 < len(path) and isinstance(path[i + 1], int):
            rest = path[i + 2 :]
            return rest[0] in EXPANDED or (len(rest) >= 3 and rest[0] == "env" and rest[2] == "value")
    return False


def where(obj: Object, path: tuple[Any, ...]) -> str:
    """How a message names a field: `Deployment/pipelock spec.template.spec.hostNetwork`."""
    below = json_path(path[1:] if path and path[0] == obj.handle else path).removeprefix("$").removeprefix(".")
    return f"{obj.ref} {below}" if below else obj.ref
