# bench/lib.sh - what the bench scripts share; sourced, not run.
#
#   bench_init NAME      temp dir $T, the PIDS list and a trap that stops exactly those PIDs
#   up PORT / wait_up PORT [TRIES]
#   free_port VAR FROM   VAR= the first port >= FROM that nobody listens on and no earlier call gave out
#   start_nginx NAME WORKER_CONNECTIONS HTTP_BODY [MAIN_EXTRA]   (master + 1 worker, own prefix)
#   nginx_worker MASTER_PID   the worker's PID, once it exists
#
# Everything listens on 127.0.0.1 only.

bench_init() {
  T=$(mktemp -d "/tmp/$1.XXXXXX"); chmod 755 "$T"; PIDS=(); BENCH_TAKEN=" "
  trap bench_cleanup EXIT; trap 'exit 130' INT TERM
}

bench_cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$T"
}

up() { (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null; }

wait_up() {
  local i
  for i in $(seq "${2:-100}"); do up "$1" && return; sleep 0.1; done
  echo "port $1 not up" >&2; exit 1
}

free_port() {
  local -n port_out=$1
  local p=$2
  while up $p || [[ $BENCH_TAKEN == *" $p "* ]] || ss -Htan "sport = :$p" | grep -q .; do p=$((p+1)); done
  BENCH_TAKEN+="$p "
  port_out=$p
}

# In the style of ../shared/bench/anchors.sh: keep-alive raised so that neither clients nor
# upstream connections get recycled during a run.
start_nginx() {
  local d=$T/$1
  mkdir -p "$d"
  cat > "$d/nginx.conf" <<EOF
daemon off; master_process on; worker_processes 1; user root; pid $d/nginx.pid;
error_log $d/error.log warn; ${4:-}
events { worker_connections $2; }
http {
  access_log off; default_type text/plain; keepalive_requests 1000000; keepalive_timeout 120s;
  client_body_temp_path $d/cb; proxy_temp_path $d/px; fastcgi_temp_path $d/fc;
  uwsgi_temp_path $d/uw; scgi_temp_path $d/sc;
  $3
}
EOF
  nginx -p "$d/" -c "$d/nginx.conf" -e "$d/error.log" & PIDS+=($!)
}

nginx_worker() {
  local w i
  for i in $(seq 50); do
    w=$(pgrep -P "$1" | head -1 || true)
    [[ -n $w ]] && { echo "$w"; return; }
    sleep 0.1
  done
  echo "nginx master $1 has no worker" >&2; exit 1
}
