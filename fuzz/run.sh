#!/usr/bin/env bash
# Builds the fuzz targets and runs each one, one at a time, for a bounded
# time. See fuzz/README.md.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
#
# SECONDS_PER_TARGET defaults to 60; TARGETs default to all of them.
# Environment:
#   FUZZ_SANITIZER=none|address   (default none; address needs
#                                  RUSTC_BOOTSTRAP=1, which this script sets,
#                                  and builds into target/asan/)
#   FUZZ_SKIP_REGRESSIONS=1       do not replay regressions/<target>/ first
#   FUZZ_EXTRA_ARGS="..."         more libFuzzer flags
#   MCPGATE_FUZZ_KNOWN=a,b        tolerate these reported issues while
#                                 fuzzing (never when replaying regressions/)
#
# Exits non-zero when a target crashes, panics, times out or runs out of
# memory (libFuzzer's reproducer is then in fuzz/artifacts/<target>/), or
# when a committed regression input fails again.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

secs="${1:-60}"
shift || true
all_targets=(access_token sealed_blob form_params registration redirect_uri jsonrpc)
if [ "$#" -gt 0 ]; then targets=("$@"); else targets=("${all_targets[@]}"); fi

case "$secs" in
  ''|*[!0-9]*) echo "run.sh: SECONDS_PER_TARGET must be a whole number, got '$secs'" >&2; exit 2 ;;
esac

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "run.sh: cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
  exit 2
fi

sanitizer="${FUZZ_SANITIZER:-none}"
fuzz_flags=(--sanitizer "$sanitizer")
case "$sanitizer" in
  none) ;;
  address)
    # -Zsanitizer=address is a nightly flag; the stable toolchain accepts it
    # with RUSTC_BOOTSTRAP=1 (and ships the ASan runtime). Separate target
    # dir: changing RUSTC_BOOTSTRAP rebuilds everything.
    export RUSTC_BOOTSTRAP=1
    fuzz_flags+=(--target-dir target/asan)
    ;;
  *) echo "run.sh: FUZZ_SANITIZER must be none or address" >&2; exit 2 ;;
esac

# Largest input per target: a little over what the code under test reads.
max_len() {
  case "$1" in
    access_token) echo 8300 ;;   # MAX_TOKEN_LEN = 8192
    sealed_blob) echo 4200 ;;    # MAX_SEALED_LEN = 4096
    registration) echo 16400 ;;  # register::MAX_BODY = 16 KiB
    redirect_uri) echo 4100 ;;   # two URIs of MAX_REDIRECT_URI_LEN = 2000
    jsonrpc) echo 8192 ;;
    *) echo 4096 ;;
  esac
}

dict_for() {
  case "$1" in
    access_token|sealed_blob) echo dicts/jose.dict ;;
    *) [ -f "dicts/$1.dict" ] && echo "dicts/$1.dict" || true ;;
  esac
}

echo "== building (${sanitizer} sanitizer): cargo fuzz build ${fuzz_flags[*]}"
mkdir -p logs
build() {
  if ! cargo fuzz build "${fuzz_flags[@]}" "$@" >>logs/build.log 2>&1; then
    tail -40 logs/build.log >&2
    exit 1
  fi
}
: >logs/build.log
if [ "${#targets[@]}" -eq "${#all_targets[@]}" ]; then
  build
else
  for t in "${targets[@]}"; do build "$t"; done
fi

failed=0
summary=()
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  # Seeds are tracked; the corpus is scratch that grows between runs.
  if [ -d "seeds/$t" ]; then cp -n "seeds/$t"/* "corpus/$t/" 2>/dev/null || true; fi

  if [ -z "${FUZZ_SKIP_REGRESSIONS:-}" ] && [ -d "regressions/$t" ] \
     && [ -n "$(ls -A "regressions/$t" 2>/dev/null | grep -v '\.md$' || true)" ]; then
    inputs=()
    for f in "regressions/$t"/*; do case "$f" in *.md) ;; *) inputs+=("$f") ;; esac; done
    # Strict: no known issue is tolerated when replaying reproducers.
    if ! env -u MCPGATE_FUZZ_KNOWN cargo fuzz run "${fuzz_flags[@]}" "$t" "${inputs[@]}" \
         -- -runs=1 >"logs/$t.regressions.log" 2>&1; then
      echo "$t: a committed regression input fails (fuzz/logs/$t.regressions.log):" >&2
      grep -m3 -E -A1 "panicked|^ERROR|SUMMARY" "logs/$t.regressions.log" >&2 || true
      summary+=("$t: REGRESSION FAILS (regressions/$t/, see fuzz/logs/$t.regressions.log)")
      failed=1
    fi
  fi

  dict="$(dict_for "$t")"
  args=(-max_total_time="$secs" -rss_limit_mb=2048 -timeout=10
        -max_len="$(max_len "$t")" -print_final_stats=1)
  [ -n "$dict" ] && args+=(-dict="$dict")
  # shellcheck disable=SC2206
  [ -n "${FUZZ_EXTRA_ARGS:-}" ] && args+=(${FUZZ_EXTRA_ARGS})

  log="logs/$t.log"
  echo "== $t: ${secs}s, one job (cargo fuzz run ${fuzz_flags[*]} $t -- ${args[*]})"
  start=$(date +%s)
  rc=0
  cargo fuzz run "${fuzz_flags[@]}" "$t" -- "${args[@]}" >"$log" 2>&1 || rc=$?
  took=$(( $(date +%s) - start ))

  execs=$(grep -oE 'stat::number_of_executed_units: +[0-9]+' "$log" | tail -1 | awk '{print $2}')
  rate=$(grep -oE 'stat::average_exec_per_sec: +[0-9]+' "$log" | tail -1 | awk '{print $2}')
  rss=$(grep -oE 'stat::peak_rss_mb: +[0-9]+' "$log" | tail -1 | awk '{print $2}')
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(grep -o 'cov: [0-9]*' <<<"$last" | awk '{print $2}')
  ft=$(grep -o 'ft: [0-9]*' <<<"$last" | awk '{print $2}')
  corp=$(grep -o 'corp: [^ ]*' <<<"$last" | awk '{print $2}')
  if [ "$rc" -eq 0 ]; then status=ok; else status="FAILED (exit $rc)"; failed=1; fi
  line="$t: $status, ${execs:-?} execs in ${took}s (${rate:-?}/s), cov: ${cov:-?} ft: ${ft:-?} corp: ${corp:-?}, peak rss ${rss:-?} MB"
  echo "$line"
  summary+=("$line")
  if [ "$rc" -ne 0 ]; then
    grep -m5 -E "panicked at|^ERROR|SUMMARY|Test unit written" "$log" >&2 || true
    echo "   full log: fuzz/$log" >&2
  fi
done

echo "== summary"
printf '%s\n' "${summary[@]}"
exit "$failed"
