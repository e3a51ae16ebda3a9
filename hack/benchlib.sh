# benchlib.sh: what hack/bench.sh and hack/bench-router.sh share; sourced,
# with $out set to the run's output folder.

# free_port prints a free loopback port.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# wait_port PORT waits up to 10 s for something to listen on 127.0.0.1:PORT.
wait_port() {
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "bench: nothing listens on $1" >&2; exit 1
}

# record: the commands of this run, for docs/benchmarks.md. Tokens and
# session ids appear as $TOKEN and $SESSION, never their values.
record() { printf '%s\n' "$*" >>"$out/commands.txt"; }

# cpu PID: utime+stime in clock ticks. hwm PID: VmHWM in kB. rss PID: VmRSS in kB.
cpu() { awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$1/stat"; }
hwm() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
