"""A transcription of the seed's `bottle_plan_to_compose` (../shared/reference/, the flattened
original bottlegen replaces), for differential tests only: the same dict code, line for line,
with the constants it imported from modules we do not have taken from bottlegen's settings
defaults (which are those constants), and its plan dataclasses read from a bottlegen plan
resolved as `bottlegen context` shows it. Never imported by bottlegen.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any


def plan_of(context: dict[str, Any]) -> tuple[SimpleNamespace, dict[str, Any]]:
    """The seed's DockerBottlePlan (and its constants) for a bottlegen context."""
    plan, settings = context["plan"], context["settings"]
    git_gate = SimpleNamespace(
        **{**plan["git_gate"], "upstreams": [SimpleNamespace(**u) for u in plan["git_gate"]["upstreams"]]}
    )
    egress = SimpleNamespace(**plan["egress"], token_env_map=dict.fromkeys(plan["egress"]["token_env_names"], "host"))
    supervise = SimpleNamespace(**plan["supervise"]) if plan.get("supervise") is not None else None
    seed_plan = SimpleNamespace(
        slug=plan["slug"],
        runtime_image=plan["runtime_image"],
        container_name=plan["container_name"],
        forwarded_env=dict.fromkeys(plan.get("forwarded_env") or [], "x"),
        use_runsc=plan.get("use_runsc", False),
        env_file=Path(plan["env_file"]) if plan.get("env_file") else None,
        proxy_plan=SimpleNamespace(**plan["proxy"]),
        git_gate_plan=git_gate,
        egress_plan=egress,
        supervise_plan=supervise,
    )
    paths, ports, images, dockerfiles = (
        settings["paths"],
        settings["ports"],
        settings["images"],
        settings["dockerfiles"],
    )
    constants = {
        "PIPELOCK_IMAGE": images["pipelock"],
        "PIPELOCK_PORT": ports["pipelock"],
        "PIPELOCK_CA_CERT_IN_CONTAINER": paths["pipelock_ca_cert"],
        "PIPELOCK_CA_KEY_IN_CONTAINER": paths["pipelock_ca_key"],
        "GIT_GATE_IMAGE": images["git-gate"],
        "GIT_GATE_DOCKERFILE": dockerfiles["git-gate"],
        "GIT_GATE_ENTRYPOINT_IN_CONTAINER": paths["git_gate_entrypoint"],
        "GIT_GATE_HOOK_IN_CONTAINER": paths["git_gate_hook"],
        "GIT_GATE_ACCESS_HOOK_IN_CONTAINER": paths["git_gate_access_hook"],
        "GIT_GATE_CREDS_DIR_IN_CONTAINER": paths["git_gate_creds_dir"],
        "EGRESS_IMAGE": images["egress"],
        "EGRESS_DOCKERFILE": dockerfiles["egress"],
        "EGRESS_HOSTNAME": settings["hostnames"]["egress"],
        "EGRESS_PORT": ports["egress"],
        "EGRESS_ROUTES_IN_CONTAINER": paths["egress_routes"],
        "EGRESS_CA_IN_CONTAINER": paths["egress_ca"],
        "EGRESS_PIPELOCK_CA_IN_CONTAINER": paths["egress_pipelock_ca"],
        "SUPERVISE_IMAGE": images["supervise"],
        "SUPERVISE_DOCKERFILE": dockerfiles["supervise"],
        "SUPERVISE_HOSTNAME": settings["hostnames"]["supervise"],
        "SUPERVISE_PORT": ports["supervise"],
        "QUEUE_DIR_IN_CONTAINER": paths["supervise_queue_dir"],
        "CURRENT_CONFIG_DIR_IN_AGENT": paths["agent_current_config_dir"],
        "AGENT_CA_PATH": paths["agent_ca_path"],
        "AGENT_CA_BUNDLE": paths["agent_ca_bundle"],
        "_REPO_DIR": settings["build_context"],
        "names": context["container_names"],
    }
    return seed_plan, constants


def bottle_plan_to_compose(plan: Any, c: dict[str, Any]) -> dict[str, Any]:
    project = f"claude-bottle-{plan.slug}"
    services: dict[str, Any] = {}
    services["pipelock"] = _pipelock_service(plan, c)
    if plan.git_gate_plan.upstreams:
        services["git-gate"] = _git_gate_service(plan, c)
    if plan.egress_plan.routes:
        services["egress"] = _egress_service(plan, c)
    if plan.supervise_plan is not None:
        services["supervise"] = _supervise_service(plan, c)
    services["agent"] = _agent_service(plan, c)
    return {"name": project, "services": services, "networks": _networks(plan)}


def _networks(plan: Any) -> dict[str, Any]:
    return {
        "internal": {"name": plan.proxy_plan.internal_network, "external": True},
        "egress": {"name": plan.proxy_plan.egress_network, "external": True},
    }


def _bind(host: str | Path, target: str, *, read_only: bool = True) -> dict[str, Any]:
    return {"type": "bind", "source": str(host), "target": target, "read_only": read_only}


def _pipelock_service(plan: Any, c: dict[str, Any]) -> dict[str, Any]:
    pp = plan.proxy_plan
    name = c["names"]["pipelock"]
    return {
        "image": c["PIPELOCK_IMAGE"],
        "container_name": name,
        "command": ["run", "--config", "/etc/pipelock.yaml", "--listen", f"0.0.0.0:{c['PIPELOCK_PORT']}"],
        "networks": {"internal": {"aliases": [name]}, "egress": None},
        "volumes": [
            _bind(pp.yaml_path, "/etc/pipelock.yaml"),
            _bind(pp.ca_cert_host_path, c["PIPELOCK_CA_CERT_IN_CONTAINER"]),
            _bind(pp.ca_key_host_path, c["PIPELOCK_CA_KEY_IN_CONTAINER"]),
        ],
    }


def _git_gate_service(plan: Any, c: dict[str, Any]) -> dict[str, Any]:
    gp = plan.git_gate_plan
    name = c["names"]["git-gate"]
    volumes: list[dict[str, Any]] = [
        _bind(gp.entrypoint_script, c["GIT_GATE_ENTRYPOINT_IN_CONTAINER"]),
        _bind(gp.hook_script, c["GIT_GATE_HOOK_IN_CONTAINER"]),
        _bind(gp.access_hook_script, c["GIT_GATE_ACCESS_HOOK_IN_CONTAINER"]),
    ]
    for u in gp.upstreams:
        keypath = u.identity_file  # expand_tilde: bottlegen's context has it expanded already
        volumes.append(_bind(keypath, f"{c['GIT_GATE_CREDS_DIR_IN_CONTAINER']}/{u.name}-key"))
    service: dict[str, Any] = {
        "image": c["GIT_GATE_IMAGE"],
        "build": {"context": c["_REPO_DIR"], "dockerfile": c["GIT_GATE_DOCKERFILE"]},
        "container_name": name,
        "networks": {"internal": {"aliases": [name]}, "egress": None},
        "volumes": volumes,
    }
    extra_hosts: dict[str, str] = {}  # git_gate_aggregate_extra_hosts: the union of the upstreams'
    for u in gp.upstreams:
        extra_hosts.update(getattr(u, "extra_hosts", None) or {})
    if extra_hosts:
        service["extra_hosts"] = [f"{host}:{ip}" for host, ip in sorted(extra_hosts.items())]
    return service


def _egress_service(plan: Any, c: dict[str, Any]) -> dict[str, Any]:
    ep = plan.egress_plan
    name = c["names"]["egress"]
    env: list[str] = [
        f"EGRESS_UPSTREAM_PROXY={ep.pipelock_proxy_url}",
        f"HTTPS_PROXY={ep.pipelock_proxy_url}",
        f"HTTP_PROXY={ep.pipelock_proxy_url}",
        "NO_PROXY=localhost,127.0.0.1",
        f"EGRESS_UPSTREAM_CA={c['EGRESS_PIPELOCK_CA_IN_CONTAINER']}",
    ]
    for token_env in sorted(ep.token_env_map.keys()):
        env.append(token_env)
    return {
        "image": c["EGRESS_IMAGE"],
        "build": {"context": c["_REPO_DIR"], "dockerfile": c["EGRESS_DOCKERFILE"]},
        "container_name": name,
        "networks": {"internal": {"aliases": [c["EGRESS_HOSTNAME"]]}, "egress": None},
        "environment": env,
        "volumes": [
            _bind(ep.routes_path, c["EGRESS_ROUTES_IN_CONTAINER"]),
            _bind(ep.mitmproxy_ca_host_path, c["EGRESS_CA_IN_CONTAINER"]),
            _bind(ep.pipelock_ca_host_path, c["EGRESS_PIPELOCK_CA_IN_CONTAINER"]),
        ],
        "depends_on": ["pipelock"],
    }


def _supervise_service(plan: Any, c: dict[str, Any]) -> dict[str, Any]:
    sp = plan.supervise_plan
    assert sp is not None
    name = c["names"]["supervise"]
    return {
        "image": c["SUPERVISE_IMAGE"],
        "build": {"context": c["_REPO_DIR"], "dockerfile": c["SUPERVISE_DOCKERFILE"]},
        "container_name": name,
        "networks": {"internal": {"aliases": [c["SUPERVISE_HOSTNAME"]]}},
        "environment": [
            f"SUPERVISE_BOTTLE_SLUG={plan.slug}",
            f"SUPERVISE_QUEUE_DIR={c['QUEUE_DIR_IN_CONTAINER']}",
            f"SUPERVISE_PORT={c['SUPERVISE_PORT']}",
        ],
        "volumes": [
            {"type": "bind", "source": str(sp.queue_dir), "target": c["QUEUE_DIR_IN_CONTAINER"], "read_only": False}
        ],
    }


def _agent_service(plan: Any, c: dict[str, Any]) -> dict[str, Any]:
    proxy_url = _agent_proxy_url(plan, c)
    no_proxy = _agent_no_proxy(plan, c)
    env: list[str] = [
        f"HTTPS_PROXY={proxy_url}",
        f"HTTP_PROXY={proxy_url}",
        f"https_proxy={proxy_url}",
        f"http_proxy={proxy_url}",
        f"NO_PROXY={no_proxy}",
        f"no_proxy={no_proxy}",
        f"NODE_EXTRA_CA_CERTS={c['AGENT_CA_PATH']}",
        f"SSL_CERT_FILE={c['AGENT_CA_BUNDLE']}",
        f"REQUESTS_CA_BUNDLE={c['AGENT_CA_BUNDLE']}",
    ]
    for name in sorted(plan.forwarded_env.keys()):
        env.append(name)
    service: dict[str, Any] = {
        "image": plan.runtime_image,
        "container_name": plan.container_name,
        "command": ["sleep", "infinity"],
        "networks": {"internal": None},
        "environment": env,
    }
    if plan.use_runsc:
        service["runtime"] = "runsc"
    if plan.env_file and plan.env_file.exists() and plan.env_file.stat().st_size > 0:
        service["env_file"] = [str(plan.env_file)]
    volumes: list[dict[str, Any]] = []
    if plan.supervise_plan is not None:
        volumes.append(_bind(plan.supervise_plan.current_config_dir, c["CURRENT_CONFIG_DIR_IN_AGENT"]))
    if volumes:
        service["volumes"] = volumes
    depends_on = ["pipelock"]
    if plan.git_gate_plan.upstreams:
        depends_on.append("git-gate")
    if plan.egress_plan.routes:
        depends_on.append("egress")
    if plan.supervise_plan is not None:
        depends_on.append("supervise")
    service["depends_on"] = depends_on
    return service


def _agent_proxy_url(plan: Any, c: dict[str, Any]) -> str:
    if plan.egress_plan.routes:
        return f"http://{c['EGRESS_HOSTNAME']}:{c['EGRESS_PORT']}"
    return f"http://{c['names']['pipelock']}:{c['PIPELOCK_PORT']}"


def _agent_no_proxy(plan: Any, c: dict[str, Any]) -> str:
    hosts = ["localhost", "127.0.0.1"]
    if plan.supervise_plan is not None:
        hosts.append(c["SUPERVISE_HOSTNAME"])
    return ",".join(hosts)
