# The AWS emulator for scripts/test.sh and scripts/latency.sh (sourced, from
# the repository's root): moto's server installed into .venv, and
# scripts/moto_server.py started on a free loopback port.

MOTO_VERSION="5.2.5"
VENV=".venv"

# Installs moto[server] into $VENV unless that version is there.
install_moto() {
  if ! "$VENV/bin/python" -c "import moto, flask" >/dev/null 2>&1 \
    || [ "$("$VENV/bin/python" -c 'import moto; print(moto.__version__)' 2>/dev/null)" != "$MOTO_VERSION" ]; then
    echo "== installing moto[server]==$MOTO_VERSION into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "moto[server]==$MOTO_VERSION"
  fi
}

# A free loopback port.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# start_moto PORT LOG [OPTION ...]: starts scripts/moto_server.py (options
# passed on), sets MOTO_PID, and returns once it answers; exits the script
# if it does not within 30 s.
start_moto() {
  local port="$1" log="$2" ready=""
  shift 2
  "$VENV/bin/python" scripts/moto_server.py "$port" "$@" >"$log" 2>&1 &
  MOTO_PID=$!
  for _ in $(seq 1 60); do
    if ! kill -0 "$MOTO_PID" 2>/dev/null; then
      echo "error: moto exited during start-up" >&2
      exit 1
    fi
    if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/', timeout=1)" >/dev/null 2>&1; then
      ready=yes
      break
    fi
    sleep 0.5
  done
  if [ -z "$ready" ]; then
    echo "error: moto did not answer on port $port within 30 s" >&2
    exit 1
  fi
}
