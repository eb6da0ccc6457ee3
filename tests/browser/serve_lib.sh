# Sourced by the browser tests of `tailor serve`: starts a server and waits until it says where it
# listens. Sets `server` (its pid, for the caller's cleanup) and `url`; exits 1 with its log when
# it does not say so within 30 s.
#   start_serve LOG TAILOR_BINARY SERVE_ARGS...
start_serve() {
  local log=$1
  shift
  : > "$log" # exists before the first poll below reads it (the server's redirect may come later)
  "$@" > "$log" 2>&1 &
  server=$!
  url=
  for _ in $(seq 300); do
    url=$(sed -n 's|^tailor serve: listening on \(http://[^ ]*\)$|\1|p' "$log")
    [[ -n $url ]] && return 0
    if ! kill -0 "$server" 2> /dev/null; then break; fi
    sleep 0.1
  done
  echo "FAIL: tailor serve did not say where it listens within 30 s; its log:"
  cat "$log"
  exit 1
}
