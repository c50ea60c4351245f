#!/usr/bin/env bash
# Benchmarks cloister-proxy against socat doing the same relay (UNIX-LISTEN -> TCP, socat's
# defaults) and against a direct TCP connection, all in one run:
#   - throughput of one stream (1 GiB by default),
#   - throughput of 64 parallel streams (1 GiB in total by default),
#   - round-trip latency of small (64-byte) messages, p50 and p99.
# Each figure is the median of REPS runs, interleaved (proxy, socat, direct) so that machine
# noise hits all three alike. Not run by the test suite.
#
#   bench/proxy_bench.sh            # uses $CLOISTER_BUILD_DIR or build/
#   REPS=5 BYTES=$((1<<30)) STREAMS=64 RTT_COUNT=20000 PROXY_ARGS="-w 4" bench/proxy_bench.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${CLOISTER_BUILD_DIR:-$root/build}"
tool="$build/bench/cloister-proxy-bench-tool"
proxy="$build/proxy/cloister-proxy"
REPS="${REPS:-5}"
BYTES="${BYTES:-1073741824}"
STREAMS="${STREAMS:-64}"
RTT_COUNT="${RTT_COUNT:-20000}"
read -r -a proxy_args <<<"${PROXY_ARGS:-}"  # extra cloister-proxy options, e.g. "-w 8"
for f in "$tool" "$proxy"; do
  [[ -x $f ]] || { echo "missing $f: cmake --build $build --target cloister-proxy cloister-proxy-bench-tool" >&2; exit 1; }
done
if ! command -v socat >/dev/null 2>&1; then
  echo "installing socat (Debian package)" >&2
  apt-get install -y -qq socat >&2
fi

tmp="$(mktemp -d /tmp/cloister-proxy-bench-XXXXXX)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for mode in sink echo; do
  "$tool" server --mode "$mode" >"$tmp/server-$mode.port" 2>/dev/null &
  pids+=($!)
done
for mode in sink echo; do
  for _ in $(seq 100); do [[ -s $tmp/server-$mode.port ]] && break; sleep 0.05; done
done
sink_port="$(head -1 "$tmp/server-sink.port")"
echo_port="$(head -1 "$tmp/server-echo.port")"

cat >"$tmp/allow.yaml" <<YAML
allowlist:
- {address: 127.0.0.1, port: $sink_port}
- {address: 127.0.0.1, port: $echo_port}
YAML
export CLOISTER_VSOCK=emulated CLOISTER_VSOCK_DIR="$tmp/vsock" CLOISTER_LOG_LEVEL=warn
"$proxy" "${proxy_args[@]}" --config "$tmp/allow.yaml" 7001 127.0.0.1 "$sink_port" >"$tmp/proxy-sink.out" 2>"$tmp/proxy-sink.err" &
pids+=($!)
proxy_sink_pid=$!
"$proxy" "${proxy_args[@]}" --config "$tmp/allow.yaml" 7002 127.0.0.1 "$echo_port" >"$tmp/proxy-echo.out" 2>"$tmp/proxy-echo.err" &
pids+=($!)
socat -lf /dev/null UNIX-LISTEN:"$tmp/socat-sink.sock",fork,backlog=1024 TCP:127.0.0.1:"$sink_port" &
pids+=($!)
socat_sink_pid=$!
socat -lf /dev/null UNIX-LISTEN:"$tmp/socat-echo.sock",fork,backlog=1024 TCP:127.0.0.1:"$echo_port" &
pids+=($!)
for s in "$tmp/vsock/3_7001.sock" "$tmp/vsock/3_7002.sock" "$tmp/socat-sink.sock" "$tmp/socat-echo.sock"; do
  for _ in $(seq 100); do [[ -S $s ]] && break; sleep 0.05; done
  [[ -S $s ]] || { echo "no listener at $s" >&2; cat "$tmp"/proxy-*.err >&2; exit 1; }
done

declare -A sink_target=([proxy]="unix:$tmp/vsock/3_7001.sock" [socat]="unix:$tmp/socat-sink.sock"
                        [direct]="tcp:127.0.0.1:$sink_port")
declare -A echo_target=([proxy]="unix:$tmp/vsock/3_7002.sock" [socat]="unix:$tmp/socat-echo.sock"
                        [direct]="tcp:127.0.0.1:$echo_port")
ways=(proxy socat direct)
for w in "${ways[@]}"; do : >"$tmp/$w.single"; : >"$tmp/$w.multi"; : >"$tmp/$w.p50"; : >"$tmp/$w.p99"; done

# CPU time (utime+stime of the process and its reaped children, in clock ticks) of a relay.
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13 + $14 + $15}'; }
proxy_cpu0="$(cpu_ticks "$proxy_sink_pid")"
socat_cpu0="$(cpu_ticks "$socat_sink_pid")"
echo "cloister-proxy ${PROXY_ARGS:-(defaults)} benchmark: $REPS reps, ${BYTES} bytes per throughput run, $STREAMS streams, $RTT_COUNT round trips; $(nproc) CPUs" >&2
for rep in $(seq "$REPS"); do
  for w in "${ways[@]}"; do
    "$tool" throughput --target "${sink_target[$w]}" --bytes "$BYTES" --streams 1 >>"$tmp/$w.single"
    "$tool" throughput --target "${sink_target[$w]}" --bytes "$BYTES" --streams "$STREAMS" >>"$tmp/$w.multi"
    read -r p50 p99 < <("$tool" rtt --target "${echo_target[$w]}" --count "$RTT_COUNT" --size 64)
    echo "$p50" >>"$tmp/$w.p50"
    echo "$p99" >>"$tmp/$w.p99"
  done
  echo "  rep $rep done (load average $(cut -d' ' -f1 /proc/loadavg))" >&2
done

proxy_cpu1="$(cpu_ticks "$proxy_sink_pid")"
socat_cpu1="$(cpu_ticks "$socat_sink_pid")"
hz="$(getconf CLK_TCK)"
gib_relayed="$(awk -v r="$REPS" -v b="$BYTES" 'BEGIN {print 2 * r * b / 1073741824}')"
cpu_per_gib() { awk -v a="$1" -v b="$2" -v hz="$hz" -v g="$gib_relayed" 'BEGIN {printf "%.3f", (b - a) / hz / g}'; }
proxy_cpu="$(cpu_per_gib "$proxy_cpu0" "$proxy_cpu1")"
socat_cpu="$(cpu_per_gib "$socat_cpu0" "$socat_cpu1")"

median() { sort -g "$1" | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }
declare -A m
for w in "${ways[@]}"; do
  for k in single multi p50 p99; do m[$w.$k]="$(median "$tmp/$w.$k")"; done
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2fx", a/b}'; }

printf '\n%-28s %12s %12s %12s %14s %14s\n' "metric (median of $REPS)" proxy socat direct "proxy/socat" "proxy/direct"
printf '%-28s %12s %12s %12s %14s %14s\n' "1 stream, MB/s" "${m[proxy.single]}" "${m[socat.single]}" "${m[direct.single]}" \
  "$(ratio "${m[proxy.single]}" "${m[socat.single]}")" "$(ratio "${m[proxy.single]}" "${m[direct.single]}")"
printf '%-28s %12s %12s %12s %14s %14s\n' "$STREAMS streams, MB/s" "${m[proxy.multi]}" "${m[socat.multi]}" "${m[direct.multi]}" \
  "$(ratio "${m[proxy.multi]}" "${m[socat.multi]}")" "$(ratio "${m[proxy.multi]}" "${m[direct.multi]}")"
printf '%-28s %12s %12s %12s %14s %14s\n' "RTT 64 B p50, us" "${m[proxy.p50]}" "${m[socat.p50]}" "${m[direct.p50]}" \
  "$(ratio "${m[proxy.p50]}" "${m[socat.p50]}")" "$(ratio "${m[proxy.p50]}" "${m[direct.p50]}")"
printf '%-28s %12s %12s %12s %14s %14s\n' "RTT 64 B p99, us" "${m[proxy.p99]}" "${m[socat.p99]}" "${m[direct.p99]}" \
  "$(ratio "${m[proxy.p99]}" "${m[socat.p99]}")" "$(ratio "${m[proxy.p99]}" "${m[direct.p99]}")"
printf '%-28s %12s %12s %12s %14s %14s\n' "relay CPU s per GiB" "$proxy_cpu" "$socat_cpu" "-" \
  "$(ratio "$proxy_cpu" "$socat_cpu")" "-"
echo
echo "targets: throughput >= 1.5x socat and >= 0.5x direct; p99 <= socat's"
