#!/usr/bin/env bash
# `buf breaking` for billing.v1: compare protos/ with the contract of a baseline
# commit. Baseline: $PROTO_BASELINE if set, else the newest release tag (v*),
# else the previous commit (HEAD~1: on main, the contract before this change).
# A clone without that history (shallow, single commit) has nothing to compare
# against; it says so and passes rather than failing on something it cannot know.
set -euo pipefail
cd "$(dirname "$0")/.."
BUF="${BUF:-tools/buf/node_modules/.bin/buf}"

baseline="${PROTO_BASELINE:-}"
if [ -z "$baseline" ]; then
  baseline="$(git describe --tags --abbrev=0 --match 'v*' 2>/dev/null || true)"
fi
if [ -z "$baseline" ]; then
  baseline="HEAD~1"
fi
if ! git rev-parse --verify --quiet "${baseline}^{commit}" >/dev/null; then
  echo "proto-lint: no commit '$baseline' in this clone (shallow or first commit); buf breaking skipped"
  exit 0
fi
if ! git cat-file -e "${baseline}:protos" 2>/dev/null; then
  echo "proto-lint: '$baseline' has no protos/; buf breaking skipped"
  exit 0
fi
echo "proto-lint: buf breaking against $baseline ($(git rev-parse --short "$baseline"))"
# subdir=protos: the baseline's own buf.yaml (if any) is not needed to read it.
"$BUF" breaking --against ".git#ref=$(git rev-parse "$baseline"),subdir=protos"
