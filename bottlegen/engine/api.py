"""What the everyday commands that only look (`ps`, `ls`) ask a local engine, asked over its
own socket in the Engine API, the language the docker CLI and compose speak to it: one
request instead of starting compose (or the docker CLI) to send it for us.

Only an engine on a unix socket is asked so: DOCKER_HOST `unix://...`, or a docker context
whose endpoint is one (read from the CLI's own context store), or the default socket. Any
other address (tcp, ssh: TLS and keys the CLI knows how to use) is asked through the CLI as
before: `client_for` is then None. Nothing here changes the engine: only GET requests.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from ..errors import ComposeError, EngineError

DEFAULT_SOCKET = "/var/run/docker.sock"
# The labels compose gives each container of a project: how bottlegen finds a bottle's own.
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
CONFIG_FILES_LABEL = "com.docker.compose.project.config_files"  # the compose files it was started from
NOT_ONEOFF = "com.docker.compose.oneoff=False"  # a service's container, not one of `compose run`


def config_dir(env: Mapping[str, str]) -> Path:
    """The docker CLI's configuration folder: $DOCKER_CONFIG, else ~/.docker."""
    return Path(env.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker"))


def unreachable(named: str, reason: str) -> EngineError:
    """The error of a daemon that cannot be reached, named as address_in names it."""
    return EngineError(
        f"cannot reach the Docker daemon {named}: {reason}. "
        "Start dockerd (or fix --context, DOCKER_CONTEXT or DOCKER_HOST) and try again; nothing was changed"
    )


def current_context(env: Mapping[str, str]) -> str:
    """The docker CLI's current context (its config's currentContext), "default" when none."""
    try:
        data = json.loads((config_dir(env) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "default"
    name = data.get("currentContext") if isinstance(data, dict) else None
    return name if isinstance(name, str) and name else "default"


def socket_of(env: Mapping[str, str]) -> tuple[str, str] | None:
    """The unix socket a docker command run in env dials, and how messages name it (`at
    unix://...`, or `of context NAME (unix://...)`); None when it dials another kind of
    address or the CLI's context store cannot say."""
    host = env.get("DOCKER_HOST")
    if host:
        return (host.removeprefix("unix://"), f"at {host}") if host.startswith("unix://") else None
    context = env.get("DOCKER_CONTEXT") or current_context(env)
    if context == "default":
        return DEFAULT_SOCKET, f"at unix://{DEFAULT_SOCKET}"
    import hashlib  # the context store names a context's folder by its name's SHA-256

    meta = config_dir(env) / "contexts" / "meta" / hashlib.sha256(context.encode()).hexdigest() / "meta.json"
    try:
        endpoint = json.loads(meta.read_text(encoding="utf-8"))["Endpoints"]["docker"]["Host"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if isinstance(endpoint, str) and endpoint.startswith("unix://"):
        return endpoint.removeprefix("unix://"), f"of context {context} ({endpoint})"
    return None


class Client:
    """GET requests to an engine on a unix socket; each answer's JSON.

    HTTP/1.0 by hand (a request line, an answer read to its end): http.client would cost
    this command more to import (~14 ms, the email parser among it) than the request takes,
    on a path whose whole budget is compose's own ~60-90 ms."""

    def __init__(self, path: str, timeout: float, named: str = ""):
        self.path = path
        self.timeout = timeout
        self.named = named or f"at unix://{path}"

    def get(self, resource: str, **query: str) -> Any:
        target = f"{resource}?{urlencode(query)}" if query else resource
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
                connection.settimeout(self.timeout)
                connection.connect(self.path)
                connection.sendall(f"GET {target} HTTP/1.0\r\nHost: docker\r\n\r\n".encode())
                answer = b"".join(iter(lambda: connection.recv(1 << 16), b""))
        except TimeoutError:
            raise EngineError(
                f"GET {resource} got no answer from the Docker daemon {self.named} within "
                f"{self.timeout:g} s; check that dockerd is healthy (or raise BOTTLEGEN_ENGINE_TIMEOUT)"
            ) from None
        except OSError as e:
            raise unreachable(self.named, str(e.strerror or e)) from None
        status, body = _parsed(answer, resource)
        if status != 200:
            said = body.decode("utf-8", "replace").strip()
            raise ComposeError(f"the Docker daemon answered GET {resource} with {status}", status, [target], said)
        try:
            return json.loads(body)
        except ValueError as e:
            raise ComposeError(f"the Docker daemon's answer to GET {resource} is not JSON ({e})", 1, [target]) from None


def _parsed(answer: bytes, resource: str) -> tuple[int, bytes]:
    """An HTTP answer's status and body (a chunked one put together)."""
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    words = lines[0].split(" ", 2)
    if len(words) < 2 or not words[0].startswith("HTTP/") or not words[1].isdigit():
        raise ComposeError(f"the Docker daemon's answer to GET {resource} is not HTTP", 1, [resource])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if headers.get("transfer-encoding", "").lower() == "chunked":
        whole, rest = [], body
        while rest:
            size, _, rest = rest.partition(b"\r\n")
            length = int(size.split(b";")[0] or b"0", 16)
            if length == 0:
                break
            whole.append(rest[:length])
            rest = rest[length + 2 :]
        body = b"".join(whole)
    return int(words[1]), body


def client_for(env: Mapping[str, str], timeout: float) -> Client | None:
    """A client of the engine a docker command run in env would reach, when it is on a unix socket."""
    found = socket_of(env)
    return None if found is None else Client(found[0], timeout, found[1])


def labelled(*labels: str) -> str:
    """A `filters` query value: objects carrying every one of labels (`key` or `key=value`)."""
    return json.dumps({"label": list(labels)})


def health_of(status: str) -> str:
    """The health a container's Status line tells (`Up 3 minutes (healthy)`), as compose
    says it: healthy, unhealthy, starting, or "" (no healthcheck)."""
    for word, health in (("(healthy)", "healthy"), ("(unhealthy)", "unhealthy"), ("(health: starting)", "starting")):
        if word in status:
            return health
    return ""


def exit_code_of(status: str) -> int:
    """The exit code a stopped container's Status line tells (`Exited (137) 5 seconds ago`)."""
    if status.startswith("Exited ("):
        code = status[len("Exited (") :].split(")", 1)[0]
        if code.lstrip("-").isdigit():
            return int(code)
    return 0
