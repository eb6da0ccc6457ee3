#!/usr/bin/env bash
# The honest test of the set-up: a bare Debian 12 root (debootstrap, minbase variant), a fresh clone
# of the committed tree in it, and the README's two commands run there as a newcomer runs them.
# Then the package: `make deb` in that root, and the .deb installed with apt-get into a second bare
# root that has no compiler, where `tailor train --epochs 1` and `tailor predict` must run.
#
#   scripts/clean_room.sh [--bench] [--keep]     (`make clean-room`; must run as root)
#     --bench   also run `make bench` in the root (the PyTorch peer exactly as the set-up installs it)
#     --keep    leave the root in place for a look (its path is printed); default: always removed
#
# What the root gets besides minbase: `make` (the newcomer types it) and, only where this machine
# has them, its local CA certificates and proxy variables (any machine on the same network has
# them; without them npm's TLS fails). Everything else comes from scripts/setup.sh, so a package
# that is missing from it fails here even when this machine happens to have it.
#
# Cached between runs, under ${XDG_CACHE_HOME:-~/.cache}/tailor/clean-room (safe: every file there
# is checked by its consumer): the debootstrap tarball (rebuilt after 7 days), apt's downloaded
# .deb files, and npm's content-addressed cache.
set -euo pipefail
# The whole script is one block, read before it runs: editing the file meanwhile cannot derail it.
{

bench=0
keep=0
for arg in "$@"; do
  case $arg in
    --bench) bench=1 ;;
    --keep) keep=1 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "clean-room: unknown option '$arg' (use --bench, --keep or --help)" >&2; exit 2 ;;
  esac
done
if [[ $(id -u) -ne 0 ]]; then
  echo "clean-room: must run as root (debootstrap, mount and chroot need it): sudo make clean-room" >&2
  exit 1
fi

repo=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
suite=bookworm
cache=${XDG_CACHE_HOME:-$HOME/.cache}/tailor/clean-room
mkdir -p "$cache/apt-archives/partial" "$cache/npm"
log() { printf 'clean-room: %s\n' "$*"; }

for tool in debootstrap chroot mountpoint; do
  if ! command -v "$tool" > /dev/null; then
    log "installing debootstrap"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap > /dev/null
    break
  fi
done

# The Debian mirror this machine already uses for $suite (deb822 .sources or one-line .list files):
# an http(s) address ending in /debian (not a third-party repository that also serves bookworm,
# nor apt's mirror+file: lists, which debootstrap cannot read).
debian_uri='^https?://[^ ]*/debian/?$'
mirror=$(
  { cat /etc/apt/sources.list.d/*.sources 2>/dev/null; echo; } | awk -v s="$suite" -v d="$debian_uri" '
    /^[[:space:]]*$/ {
      if (suites ~ "(^| )" s "( |$)" && (key == "" || key ~ /debian-archive-keyring/))
        for (i = 1; i <= n; i++) if (uris[i] ~ d) { print uris[i]; exit }
      n = 0; suites = ""; key = ""; next }
    /^URIs:/ { for (i = 2; i <= NF; i++) uris[++n] = $i } /^Suites:/ { $1 = ""; suites = $0 " " }
    /^Signed-By:/ { key = $0 " " }'
)
lists=()
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do [[ -f $f ]] && lists+=("$f"); done
if [[ -z $mirror && ${#lists[@]} -gt 0 ]]; then
  # One-line form: a source signed by a key other than Debian's is skipped, then [options] removed.
  mirror=$(awk -v s="$suite" -v d="$debian_uri" '
    $1 != "deb" { next }
    { opts = "" }
    match($0, /\[[^]]*\]/) { opts = substr($0, RSTART, RLENGTH); $0 = substr($0, 1, RSTART - 1) substr($0, RSTART + RLENGTH) }
    opts ~ /signed-by=/ && opts !~ /debian-archive-keyring/ { next }
    $3 == s && $2 ~ d { print $2; exit }' "${lists[@]}")
fi
if [[ -z $mirror ]]; then
  echo "clean-room: no apt source for Debian '$suite' in /etc/apt/sources.list{,.d/}: this needs a Debian 12 host" >&2
  exit 1
fi

new_root() {  # a fresh empty folder to unpack a root into
  local r
  r=$(realpath "$(mktemp -d "${TMPDIR:-/var/tmp}/tailor-clean-room.XXXXXX")")
  chmod 755 "$r"  # it becomes /: mktemp's 0700 would lock out every user but root (apt's _apt too)
  echo "$r"
}
root=$(new_root)
roots=("$root")
mounts=(proc sys dev dev/pts dev/shm var/cache/apt/archives root/.npm)
cleanup() {
  local status=$?
  trap - EXIT
  trap '' INT TERM  # a second Ctrl-C must not stop the unmounting half-way
  local r p i busy
  for r in "${roots[@]}"; do
    # Processes left in the root (a server of a test that was interrupted) hold its mounts.
    for p in /proc/[0-9]*; do
      [[ $(readlink "$p/root" 2>/dev/null) == "$r" ]] && kill -9 "${p#/proc/}" 2>/dev/null || true
    done
    busy=0
    for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
      if mountpoint -q "$r/${mounts[i]}"; then
        umount "$r/${mounts[i]}" 2>/dev/null || umount -l "$r/${mounts[i]}" 2>/dev/null || busy=1
      fi
    done
    if ((keep)); then
      log "root kept at $r (mounts released)"
    elif ((busy)) || grep -q " $r/" /proc/mounts; then
      # Never delete through a mount: with /dev bound in, that would delete the host's /dev.
      echo "clean-room: could not unmount everything under $r; left it in place" >&2
      status=1
    else
      rm -rf --one-file-system "$r"
    fi
  done
  exit "$status"
}
trap cleanup EXIT
trap 'echo "clean-room: interrupted" >&2; exit 130' INT TERM

start=$(date +%s)
tarball=$cache/$suite-minbase.tgz
if [[ -f $tarball && -n $(find "$tarball" -mtime +7) ]]; then rm -f "$tarball"; fi
if [[ ! -f $tarball ]]; then
  log "downloading a minbase $suite from $mirror (cached in $tarball)"
  debootstrap --variant=minbase --make-tarball="$tarball.tmp" "$suite" "$root/tarball" "$mirror" > "$cache/debootstrap.log" 2>&1 ||
    { tail -5 "$cache/debootstrap.log" >&2; echo "clean-room: debootstrap --make-tarball failed (log: $cache/debootstrap.log)" >&2; exit 1; }
  mv "$tarball.tmp" "$tarball"
  rm -rf "$root/tarball"
fi
# prepare_root DIR: a minbase root unpacked in DIR, with this machine's Debian apt sources, its DNS,
# and the mounts a newcomer's machine has (proc, sys, dev) plus the caches.
prepare_root() {
  local r=$1 f
  log "unpacking a minbase $suite root in $r"
  debootstrap --variant=minbase --unpack-tarball="$tarball" "$suite" "$r" "$mirror" > "$cache/debootstrap.log" 2>&1 ||
    { tail -5 "$cache/debootstrap.log" >&2; echo "clean-room: debootstrap failed (log: $cache/debootstrap.log)" >&2; exit 1; }
  # The host's apt sources for Debian (not third-party ones: a bare machine has none), and its DNS.
  rm -f "$r/etc/apt/sources.list"
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    if grep -q 'debian-archive-keyring' "$f" ||
       ! grep -vE '^[[:space:]]*(#|$)' "$f" | grep -E '^(deb|URIs:)' | grep -qvE '//(deb|security)\.debian\.org/'; then
      cp "$f" "$r$f"  # signed by Debian's keyring, or naming only Debian's own hosts
    fi
  done
  cp -L /etc/resolv.conf "$r/etc/resolv.conf"
  mkdir -p "$r/root/.npm" "$r/dev/pts" "$r/dev/shm"
  mount -t proc proc "$r/proc"
  mount -t sysfs -o ro sysfs "$r/sys"
  mount --bind /dev "$r/dev"
  mount --make-rslave "$r/dev"  # on a shared / the mounts below would show over the host's /dev too
  mount --bind /dev/pts "$r/dev/pts"
  mount -t tmpfs -o mode=1777 tmpfs "$r/dev/shm"
  mount --bind "$cache/apt-archives" "$r/var/cache/apt/archives"
  mount --bind "$cache/npm" "$r/root/.npm"
  chroot "$r" chown _apt:root /var/cache/apt/archives/partial  # apt downloads as _apt
}
prepare_root "$root"
log "root ready in $(( $(date +%s) - start )) s"

# The environment a newcomer's login shell has, plus this network's proxy settings if any.
env_vars=(HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 TERM=dumb)
for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
  [[ -n ${!v:-} ]] && env_vars+=("$v=${!v}")
done
# In the background and waited for, so that a TERM or Ctrl-C reaches the trap at once (bash runs a
# trap only after a foreground child ends) and the root is unmounted and removed.
in_root() {  # in_root COMMAND [ROOT]
  chroot "${2:-$root}" /usr/bin/env -i "${env_vars[@]}" /bin/bash -c "$1" &
  wait $!
}

prereq=(make)
if compgen -G "/usr/local/share/ca-certificates/*.crt" > /dev/null; then
  prereq+=(ca-certificates)
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  log "carrying this machine's local CA certificates: $(cd /usr/local/share/ca-certificates && echo *.crt)"
fi
log "installing the newcomer's prerequisites: ${prereq[*]}"
in_root "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${prereq[*]} > /dev/null" ||
  { echo "clean-room: apt-get in the root failed" >&2; exit 1; }
[[ ${prereq[*]} == *ca-certificates* ]] && in_root "update-ca-certificates > /dev/null"

commit=$(git -C "$repo" rev-parse --short HEAD)
if [[ -n $(git -C "$repo" status --porcelain --untracked-files=no) ]]; then
  log "note: $repo has uncommitted changes; the clean room tests the committed tree ($commit) only"
fi
git clone --quiet --no-local "$repo" "$root/root/tailor"
log "cloned $commit into the root"

logs=$cache/logs
mkdir -p "$logs"
run_step() {  # run_step NAME COMMAND: runs it in the clone, records its time, keeps its log
  local name=$1 t0 status=0
  log "running '$2' in the root (log: $logs/$name.log)"
  t0=$(date +%s)
  in_root "cd /root/tailor && $2" > "$logs/$name.log" 2>&1 || status=$?
  eval "time_$name=\$(( \$(date +%s) - t0 ))"
  if ((status)); then
    tail -40 "$logs/$name.log" >&2
    echo "clean-room: '$2' failed in the bare root (exit $status, log: $logs/$name.log)" >&2
    exit 1
  fi
}
run_step run "make run"
accuracy=$(grep -o 'test accuracy: [0-9.]*%' "$logs/run.log" | tail -1 || true)
[[ -n $accuracy ]] || accuracy="(no test accuracy printed)"

run_step test "make test"
ctest_line=$(grep -E 'tests passed, [0-9]+ tests failed out of' "$logs/test.log" | tail -1 || true)
if [[ -z $ctest_line ]]; then
  echo "clean-room: 'make test' printed no CTest summary line (no tests ran?); log: $logs/test.log" >&2
  exit 1
fi
if ((bench)); then
  run_step bench "make bench"
fi

# The package, built in the root, installed into a second bare root that has no compiler.
run_step deb "make deb"
deb=$(cd "$root/root/tailor/build" && ls tailor_*_amd64.deb)
pkg_root=$(new_root)
roots+=("$pkg_root")
prepare_root "$pkg_root"
cp "$root/root/tailor/build/$deb" "$pkg_root/root/"
pkg_log=$logs/package.log
log "installing $deb with apt-get into a second bare root (log: $pkg_log)"
t0=$(date +%s)
{
  in_root "command -v cc c++ gcc g++ clang > /dev/null && { echo 'the root has a compiler'; exit 1; }
    cd /root && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ./$deb > /dev/null &&
    echo \"installed: \$(dpkg-query -W -f='\${Package} \${Version}' tailor); compiler: \$(command -v cc gcc g++ || echo none)\" &&
    tailor train --epochs 1 --out /root/run &&
    { echo P2; echo 28 28; echo 255; zcat /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz |
      tail -c +17 | head -c 784 | od -An -v -tu1; } > /root/first-test-image.pgm &&
    tailor predict /root/run /root/first-test-image.pgm" "$pkg_root"
} > "$pkg_log" 2>&1 || {
  tail -40 "$pkg_log" >&2
  echo "clean-room: the package failed in the second root (log: $pkg_log)" >&2
  exit 1
}
time_package=$(( $(date +%s) - t0 ))
package_lines=$(grep -E '^installed: |^tailor [0-9.]+ \(|test accuracy: |first-test-image.pgm|^ +[0-9.]+% ' "$pkg_log" || true)

echo
echo "clean room ($suite minbase, commit $commit):"
printf '  make run    %5d s   %s\n' "$time_run" "$accuracy"
printf '  make test   %5d s   %s\n' "$time_test" "$ctest_line"
printf '  make deb    %5d s   %s\n' "$time_deb" "$deb"
printf '  package     %5d s   apt-get install ./%s in a bare root, then train --epochs 1 and predict:\n' "$time_package" "$deb"
printf '%s\n' "$package_lines" | sed 's/^/    /'
if ((bench)); then
  printf '  make bench  %5d s   its output:\n' "$time_bench"
  # The comparison's own lines: everything after make echoes its command (the build is above it).
  sed -n '/^bench\/compare_pytorch.sh/,$p' "$logs/bench.log" | tail -n +2 | sed 's/^/    /'
fi
printf '  in all      %5d s\n' "$(( $(date +%s) - start ))"
exit
}
