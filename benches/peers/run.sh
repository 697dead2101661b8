#!/usr/bin/env bash
# mcpgate against two peers, driven by the same independent load generator
# (wrk) in one run: FastMCP (tools/call whoami behind JWT bearer auth) and
# oidc-provider (token endpoint). See benches/peers/README.md.
#
# usage: bash benches/peers/run.sh [SECONDS]     (timed seconds per case, default 5)
# env:   TOKENS (distinct mcpgate tokens, default 45000*SECONDS), CODES (mcpgate
#        codes, default 45000*SECONDS), OIDC_CODES (default 7000*SECONDS),
#        THREADS (wrk -t, default 2), CONNS (wrk -c, default 64)
set -euo pipefail

SECS=${1:-5}
TOKENS=${TOKENS:-$((45000 * SECS))}
CODES=${CODES:-$((45000 * SECS))}
OIDC_CODES=${OIDC_CODES:-$((7000 * SECS))}
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
WARM=1   # seconds of untimed warm-up before each case, from lists of its own
REPO=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$REPO/benches/peers
OUT=$REPO/target/peers
mkdir -p "$OUT"
cd "$HERE"   # wrk scripts and Lua paths are relative to here

die() { echo "run.sh: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }

# ---- 1. tools, each installed if missing; never a skipped case --------------
if ! command -v wrk >/dev/null; then
  log "installing wrk"
  { apt-get update -qq && apt-get install -y -qq wrk; } >&2 || die "cannot install wrk (apt-get install -y wrk)"
fi
command -v python3 >/dev/null || die "python3 (>= 3.10) is needed for FastMCP"
command -v node >/dev/null && command -v npm >/dev/null || die "Node.js >= 20 and npm are needed for oidc-provider"
# oidc-provider 9 declares no engines and warns below Node 22 LTS; it is run and checked here on 20.
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' \
  || die "oidc-provider 9 needs Node.js >= 20, found $(node -v)"

VENV=$OUT/venv
if ! cmp -s requirements.txt "$VENV/requirements.txt"; then
  log "installing FastMCP into $VENV"
  rm -rf "$VENV"
  { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q -r requirements.txt; } >&2 || die "cannot install requirements.txt into $VENV"
  cp requirements.txt "$VENV/requirements.txt"
fi
PY=$VENV/bin/python

NODE_DIR=$OUT/node
if ! cmp -s package-lock.json "$NODE_DIR/package-lock.json"; then
  log "installing oidc-provider into $NODE_DIR"
  rm -rf "$NODE_DIR"; mkdir -p "$NODE_DIR"
  cp package.json package-lock.json "$NODE_DIR/"
  (cd "$NODE_DIR" && npm ci --no-audit --no-fund >&2) || die "npm ci of oidc-provider failed"
fi
cp oidc_provider.mjs "$NODE_DIR/"   # resolves oidc-provider from its own node_modules

log "cargo build --release"
(cd "$REPO" && cargo build --release -q) || die "cargo build --release failed"

# ---- 2. servers on free loopback ports; all killed on exit ------------------
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM   # exit, so that the EXIT trap cleans up

free_ports() {  # N: the first N ports in 18100-18199 nobody listens on
  local used p n=0
  used=$(ss -Hltn | awk '{print $4}' | sed 's/.*://')
  for p in $(seq 18100 18199); do
    grep -qx "$p" <<<"$used" && continue
    echo "$p"; n=$((n + 1)); [[ $n == "$1" ]] && return
  done
  die "no $1 free ports in 18100-18199"
}
wait_port() {  # PORT PID NAME LOG
  for _ in $(seq 100); do
    ss -Hltn "sport = :$1" | grep -q . && return
    kill -0 "$2" 2>/dev/null || { cat "$4" >&2; die "$3 exited at start (log above)"; }
    sleep 0.1
  done
  die "$3 did not listen on 127.0.0.1:$1 in 10 s (log: $4)"
}

read -r MP FP OP <<<"$(free_ports 3 | tr "\n" " ")"
[[ -n ${OP:-} ]] || die "no 3 free ports in 18100-18199"

rm -rf "$OUT/keys"
"$REPO/target/release/mcpgate" keys generate --dir "$OUT/keys" --config mcpgate.toml >/dev/null
# Listen address and key directory from the environment (figment: env > TOML).
MCPGATE_LISTEN=127.0.0.1:$MP MCPGATE_KEYS__DIR=$OUT/keys \
  "$REPO/target/release/mcpgate" serve --config mcpgate.toml >"$OUT/mcpgate.log" 2>&1 &
MPID=$!; PIDS+=("$MPID")
wait_port "$MP" "$MPID" mcpgate "$OUT/mcpgate.log"

"$PY" fastmcp_server.py "$FP" "$MP" >"$OUT/fastmcp.log" 2>&1 &
FPID=$!; PIDS+=("$FPID")
(cd "$NODE_DIR" && exec node oidc_provider.mjs "$OP") >"$OUT/oidc-provider.log" 2>&1 &
OPID=$!; PIDS+=("$OPID")
wait_port "$FP" "$FPID" FastMCP "$OUT/fastmcp.log"
wait_port "$OP" "$OPID" oidc-provider "$OUT/oidc-provider.log"

# ---- 3. mint tokens and codes through the real endpoints, before any timing --
log "$(date +%T) minting $TOKENS tokens, $CODES codes at mcpgate, $OIDC_CODES codes at oidc-provider"
WT=40000; WC=40000; WO=5000   # warm-up lists: a bit over 1 s of each case
# oidc-provider's codes need its cookie flow: Python, in the background meanwhile.
"$PY" oidc_codes.py "$OP" $(( (OIDC_CODES + WO + 1) / 2 )) "$OUT/oc.a" & OC1=$!; PIDS+=("$OC1")
"$PY" oidc_codes.py "$OP" $(( (OIDC_CODES + WO + 1) / 2 )) "$OUT/oc.b" & OC2=$!; PIDS+=("$OC2")

M=http://127.0.0.1:$MP
CID=$(curl -sf "$M/oauth/register" -H 'Host: mcp.internal.example' -H 'Content-Type: application/json' \
  -d '{"redirect_uris":["http://127.0.0.1:33418/callback"],"client_name":"bench client","grant_types":["authorization_code","refresh_token"],"token_endpoint_auth_method":"none"}' \
  | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["client_id"])') || die "/oauth/register failed"
mint() {  # codes|tokens N NAME [CODES_FILE]: NAME gets N/THREADS*THREADS lines
  local f=$OUT/$3 pid k
  rm -f "$f" "$f".*
  wrk -t"$THREADS" -c16 -d300s -s mint.lua "$M" -- "$1" "$CID" "$2" "$THREADS" "$f" "${4:-}" >/dev/null & pid=$!
  for _ in $(seq 3000); do   # at most 300 s, as wrk's -d
    for ((k = 0; k < THREADS; k++)); do [[ -e $f.$k ]] || break; done
    ((k == THREADS)) && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  for ((k = 0; k < THREADS; k++)); do [[ -e $f.$k ]] || die "minting $3 ($1): thread $k did not finish"; done
  for ((k = 0; k < THREADS; k++)); do cat "$f.$k"; done > "$f"; rm -f "$f".*
}
mint codes $((TOKENS + WT + 1000)) tok-codes
mint tokens $((TOKENS + WT)) tok.all "$OUT/tok-codes"
head -n "$WT" "$OUT/tok.all" > "$OUT/tokens-warm.txt"; tail -n +$((WT + 1)) "$OUT/tok.all" > "$OUT/tokens.txt"
# Codes last (code_ttl 10 min); token.lua wants the client_id first.
mint codes "$WC" c-warm; { echo "$CID"; cat "$OUT/c-warm"; } > "$OUT/codes-warm.txt"
mint codes "$CODES" c-timed; { echo "$CID"; cat "$OUT/c-timed"; } > "$OUT/codes.txt"
wait "$OC1" && wait "$OC2" || die "minting oidc-provider codes failed"
cat "$OUT/oc.a" "$OUT/oc.b" > "$OUT/oc.all"
head -n "$WO" "$OUT/oc.all" > "$OUT/oidc-codes-warm.txt"; tail -n +$((WO + 1)) "$OUT/oc.all" > "$OUT/oidc-codes.txt"
log "$(date +%T) minted: $(wc -l < "$OUT/tokens.txt") tokens, $(($(wc -l < "$OUT/codes.txt") - 1)) codes, $(wc -l < "$OUT/oidc-codes.txt") oidc codes"

# ---- 4. check by hand what is measured: 200 with the claims, 401 for a bad token
mcp_call() {  # PORT TOKEN -> status and body
  curl -s -w '\n%{http_code}' "http://127.0.0.1:$1/mcp" -H 'Host: mcp.internal.example' \
    -H "Authorization: Bearer $2" -H 'Content-Type: application/json' \
    -H 'Accept: application/json, text/event-stream' -H 'MCP-Protocol-Version: 2025-06-18' \
    -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}'
}
T=$(head -1 "$OUT/tokens-warm.txt")
for port in "$MP" "$FP"; do
  r=$(mcp_call "$port" "$T")
  [[ ${r##*$'\n'} == 200 && $r == *'"sub":"user'*'@example.com"'* ]] || die "whoami on :$port: $r"
  c=${T: -10:1}; [[ $c == A ]] && c=B || c=A
  r=$(mcp_call "$port" "${T:0:${#T}-10}$c${T: -9}")   # a signature character changed
  [[ ${r##*$'\n'} == 401 ]] || die "bad token on :$port not refused: $r"
done

# ---- 5. the cases, one after another ----------------------------------------
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }   # utime+stime, all threads, in ticks
TICK=$(getconf CLK_TCK)
RES=$OUT/results.tsv; : > "$RES"
one() {  # NAME PID URL SCRIPT ARGS... : timed run, appended to $RES
  local name=$1 pid=$2 url=$3 script=$4; shift 4
  local c0 c1 out
  c0=$(cpu "$pid")
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --latency -s "$script" "$url" -- "$@" "$THREADS")
  c1=$(cpu "$pid")
  echo "$out" > "$OUT/wrk-$name.txt"
  "$PY" - "$name" "$c0" "$c1" "$TICK" "$OUT/wrk-$name.txt" >>"$RES" <<'PYEOF' || die "$name: see $OUT/wrk-$name.txt"
import re, sys
name, c0, c1, tick, path = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
t = open(path).read()
total = int(re.search(r"(\d+) requests in", t).group(1))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
bad = int((re.search(r"Non-2xx or 3xx responses: (\d+)", t) or [0, 0])[1])
err = re.search(r"Socket errors: (.*)", t)
def ms(p):
    v, u = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\b", t, re.M).groups()
    return float(v) * {"us": 1e-3, "ms": 1, "s": 1e3}[u]
if bad or err:
    sys.exit(f"{name}: {bad} non-2xx responses, socket errors: {err.group(1) if err else 0}"
             " (if a list of tokens or codes ran out: raise TOKENS, CODES or OIDC_CODES)")
print(f"{name}\t{rps:.0f}\t{total}\t{bad}\t{ms(50):.2f}\t{ms(99):.2f}\t{(c1 - c0) / tick * 1e6 / total:.1f}")
PYEOF
  log "$(tail -1 "$RES")"
}
warm() {  # URL SCRIPT ARGS... : untimed
  local url=$1 script=$2; shift 2
  wrk -t"$THREADS" -c"$CONNS" -d"${WARM}s" -s "$script" "$url" -- "$@" "$THREADS" >/dev/null
}

F=http://127.0.0.1:$FP; O=http://127.0.0.1:$OP
log "$(date +%T) timed runs: wrk -t$THREADS -c$CONNS -d${SECS}s each"
warm "$M/mcp" mcp.lua hot "$OUT/tokens-warm.txt"
one mcpgate-b-hot "$MPID" "$M/mcp" mcp.lua hot "$OUT/tokens-warm.txt"
warm "$M/mcp" mcp.lua distinct "$OUT/tokens-warm.txt"
one mcpgate-c-distinct "$MPID" "$M/mcp" mcp.lua distinct "$OUT/tokens.txt"
warm "$M/oauth/token" token.lua mcpgate-code "$OUT/codes-warm.txt"
one mcpgate-d-exchange "$MPID" "$M/oauth/token" token.lua mcpgate-code "$OUT/codes.txt"

warm "$F/mcp" mcp.lua hot "$OUT/tokens-warm.txt"
one fastmcp-hot "$FPID" "$F/mcp" mcp.lua hot "$OUT/tokens-warm.txt"
one fastmcp-distinct "$FPID" "$F/mcp" mcp.lua distinct "$OUT/tokens.txt"

warm "$O/token" token.lua oidc-cc bench
one oidc-cc-jwt "$OPID" "$O/token" token.lua oidc-cc bench
one oidc-cc-opaque "$OPID" "$O/token" token.lua oidc-cc bench-opaque
warm "$O/token" token.lua oidc-code "$OUT/oidc-codes-warm.txt"
one oidc-code-exchange "$OPID" "$O/token" token.lua oidc-code "$OUT/oidc-codes.txt"

# ---- 6. the table ------------------------------------------------------------
"$PY" - "$RES" <<'PYEOF'
import sys
rows = {l.split("\t")[0]: l.rstrip("\n").split("\t")[1:] for l in open(sys.argv[1])}
# Each peer case against mcpgate's matching case.
match = {"fastmcp-hot": "mcpgate-b-hot", "fastmcp-distinct": "mcpgate-c-distinct",
         "oidc-cc-jwt": "mcpgate-d-exchange", "oidc-cc-opaque": "mcpgate-d-exchange",
         "oidc-code-exchange": "mcpgate-d-exchange"}
print(f"\n{'case':<20}{'req/s':>9}{'requests':>10}{'non2xx':>8}{'p50 ms':>9}{'p99 ms':>9}"
      f"{'CPU us/req':>12}{'req/s vs mcpgate':>18}{'CPU vs mcpgate':>16}")
for name, (rps, total, bad, p50, p99, us) in rows.items():
    ref = rows.get(match.get(name))
    r = f"{float(rps) / float(ref[0]):.3f}" if ref else ""
    c = f"{float(us) / float(ref[5]):.1f}x" if ref else ""
    print(f"{name:<20}{rps:>9}{total:>10}{bad:>8}{p50:>9}{p99:>9}{us:>12}{r:>18}{c:>16}")
PYEOF
