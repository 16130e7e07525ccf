#!/usr/bin/env bash
# Whole-process latency of release_tool against the AWS emulator answering
# every call a fixed delay late (30 ms by default, like a nearby AWS region):
# `prepare`, `deploy` with one service changed and `deploy` with every
# service changed, for 10, 95 and 300 services, as a table of median times
# and the AWS calls each run made.
#
#   bash scripts/latency.sh                       # this checkout
#   bash scripts/latency.sh --baseline main       # and git revision `main`, in one run
#
# Options:
#   --baseline REV        also build and time revision REV (built in a temporary
#                         git worktree, sharing target/ so dependencies build once)
#   --baseline-binary P   also time the release_tool binary at P
#   --delay-ms MS         the emulator's delay per call (default 30)
#   --runs N              counted runs per command and binary (default 5)
#   --sizes LIST          numbers of services (default 10,95,300)
#   --releases LIST       also time 95 services with this many releases already
#                         in the table (e.g. 1000,10000; default none)
#   --write-quota R       also time a deploy of 95 changed services while the
#                         emulator throttles writes beyond R per second
#
# Needs python3 (with venv/pip), cargo and git; installs the emulator (moto's
# server, from PyPI) into .venv as scripts/test.sh does, builds release builds,
# starts and stops the emulator. Prints times; asserts nothing.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"

# shellcheck source=scripts/emulator.sh
. scripts/emulator.sh
BASELINE=""
BASELINE_BINARY=""
DELAY_MS=30
RUNS=5
SIZES="10,95,300"
RELEASES=""
WRITE_QUOTA=0

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case "$1" in
    --baseline) BASELINE="${2:?--baseline needs a git revision}"; shift 2 ;;
    --baseline-binary) BASELINE_BINARY="${2:?--baseline-binary needs a path}"; shift 2 ;;
    --delay-ms) DELAY_MS="${2:?--delay-ms needs a number}"; shift 2 ;;
    --runs) RUNS="${2:?--runs needs a number}"; shift 2 ;;
    --sizes) SIZES="${2:?--sizes needs a list}"; shift 2 ;;
    --releases) RELEASES="${2:?--releases needs a list}"; shift 2 ;;
    --write-quota) WRITE_QUOTA="${2:?--write-quota needs a number}"; shift 2 ;;
    -h|--help) usage ;;
    *) echo "error: unknown option $1" >&2; usage ;;
  esac
done
if [ -n "$BASELINE" ] && [ -n "$BASELINE_BINARY" ]; then
  echo "error: give --baseline or --baseline-binary, not both" >&2
  exit 2
fi

install_moto

WORK="$(mktemp -d -t release-tracking-latency.XXXXXX)"
MOTO_PID=""
BASELINE_TREE=""
STATUS=1
cleanup() {
  if [ -n "$MOTO_PID" ] && kill -0 "$MOTO_PID" 2>/dev/null; then
    kill "$MOTO_PID" 2>/dev/null || true
    wait "$MOTO_PID" 2>/dev/null || true
  fi
  if [ "$STATUS" -ne 0 ] && [ -f "$WORK/moto.log" ]; then
    echo "== moto server log" >&2
    tail -n 50 "$WORK/moto.log" >&2 || true
  fi
  if [ -n "$BASELINE_TREE" ]; then
    git -C "$ROOT" worktree remove --force "$BASELINE_TREE" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# Release builds: what people run. Both checkouts build in target/, so the
# dependencies build once; but cargo names this crate's artifacts alike in
# both and tells them apart by file times, which would hand one checkout the
# other's binary: its artifacts are cleaned before each build, and each
# binary is copied out.
build() { # SOURCE_DIR DESTINATION
  (cd "$1" && export CARGO_TARGET_DIR="$ROOT/target" \
    && cargo clean --quiet --release -p release-tracking \
    && cargo build --quiet --release --features aws --example release_tool)
  cp "$ROOT/target/release/examples/release_tool" "$2"
}

TOOLS=()
if [ -n "$BASELINE" ]; then
  REV="$(git rev-parse --short "$BASELINE^{commit}")"
  NAME="$BASELINE@$REV"
  case "$REV" in "$BASELINE"*) NAME="$REV" ;; esac
  echo "== building release_tool at $NAME"
  BASELINE_TREE="$WORK/baseline-src"
  git worktree add --quiet --detach "$BASELINE_TREE" "$REV"
  build "$BASELINE_TREE" "$WORK/release_tool-$REV"
  TOOLS+=(--tool "$NAME=$WORK/release_tool-$REV")
elif [ -n "$BASELINE_BINARY" ]; then
  TOOLS+=(--tool "baseline=$BASELINE_BINARY")
fi
HEAD="$(git rev-parse --short HEAD)"
if ! git diff --quiet HEAD -- src examples Cargo.toml Cargo.lock; then
  HEAD="$HEAD+changes"
fi
echo "== building release_tool of this checkout ($HEAD)"
build "$ROOT" "$WORK/release_tool-this"
TOOLS+=(--tool "$HEAD=$WORK/release_tool-this")

PORT="$(free_port)"
echo "== starting moto on 127.0.0.1:$PORT, each call answered ${DELAY_MS} ms late"
start_moto "$PORT" "$WORK/moto.log" --delay-ms "$DELAY_MS"

echo "== timing (machine: $(nproc) CPUs, $(uname -sr))"
"$VENV/bin/python" scripts/latency.py --endpoint "http://127.0.0.1:$PORT" \
  --delay-ms "$DELAY_MS" --runs "$RUNS" --sizes "$SIZES" --releases "$RELEASES" \
  --write-quota "$WRITE_QUOTA" \
  "${TOOLS[@]}"
STATUS=0
