#!/usr/bin/env bash
# The project's one test command: every test, the AWS ones against a local
# moto emulator that this script installs (into .venv) and starts, and the
# checks that run the real weco-deploy 4.1.6 (installed into .venv-weco)
# against records this crate wrote.
#
# Needs python3 (with venv/pip) and cargo. Idempotent; works from any
# directory.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=scripts/emulator.sh
. scripts/emulator.sh
# The last weco-deploy that kept labels in SSM; its own venv, as its boto3
# need not match moto's. boto3 >= 1.28 reads AWS_ENDPOINT_URL, which is how
# the tests point it at the emulator (weco-deploy has no endpoint option).
WECO_DEPLOY_VERSION="4.1.6"
WECO_VENV=".venv-weco"

install_moto

if [ "$("$WECO_VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("weco-deploy"))' 2>/dev/null)" != "$WECO_DEPLOY_VERSION" ] \
  || ! "$WECO_VENV/bin/python" -c 'import boto3, sys; sys.exit(tuple(map(int, boto3.__version__.split(".")[:2])) < (1, 28))' >/dev/null 2>&1 \
  || [ ! -x "$WECO_VENV/bin/weco-deploy" ]; then
  echo "== installing weco-deploy==$WECO_DEPLOY_VERSION into $WECO_VENV"
  python3 -m venv "$WECO_VENV"
  "$WECO_VENV/bin/pip" install --quiet "weco-deploy==$WECO_DEPLOY_VERSION" "boto3>=1.28"
fi

PORT="$(free_port)"
MOTO_LOG="$(mktemp -t release-tracking-moto.XXXXXX)"
MOTO_PID=""
STATUS=1

cleanup() {
  if [ -n "$MOTO_PID" ] && kill -0 "$MOTO_PID" 2>/dev/null; then
    kill "$MOTO_PID" 2>/dev/null || true
    wait "$MOTO_PID" 2>/dev/null || true
  fi
  if [ "$STATUS" -ne 0 ]; then
    echo "== moto server log ($MOTO_LOG)" >&2
    tail -n 200 "$MOTO_LOG" >&2 || true
  else
    rm -f "$MOTO_LOG"
  fi
}
trap cleanup EXIT

# scripts/moto_server.py: moto's app one request at a time (as DynamoDB
# applies each write to an item atomically), with per-access-key call counts.
echo "== starting moto on 127.0.0.1:$PORT (log: $MOTO_LOG)"
start_moto "$PORT" "$MOTO_LOG"

export RELEASE_TRACKING_TEST_ENDPOINT="http://127.0.0.1:$PORT"
RELEASE_TRACKING_WECO_DEPLOY="$(pwd)/$WECO_VENV/bin/weco-deploy"
export RELEASE_TRACKING_WECO_DEPLOY
export AWS_EC2_METADATA_DISABLED=true
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=eu-west-1
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_DEFAULT_PROFILE

# The command-line tests run the example programs as processes: `cargo test`
# builds examples only as test harnesses, so build the programs themselves.
echo "== cargo build --all-features --examples"
cargo build --all-features --examples
echo "== cargo test --all-features --all-targets"
cargo test --all-features --all-targets
echo "== cargo test --all-features --doc"
cargo test --all-features --doc
STATUS=0
