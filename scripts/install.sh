#!/usr/bin/env bash
# Installs RingDesk as a systemd service, with upstream rustdesk-server's names and paths:
#   <DESTDIR><PREFIX>/bin/{hbbs,hbbr,rustdesk-utils}
#   <DESTDIR>/etc/systemd/system/rustdesk-{hbbs,hbbr}.service   (ExecStart=<PREFIX>/bin/...)
#   <DESTDIR>/etc/sysusers.d/rustdesk-server.conf                (the `rustdesk` system user)
#   <DESTDIR>/var/lib/rustdesk-server/, <DESTDIR>/var/log/rustdesk-server/
# Idempotent: running it again changes only what differs and says so. Never starts anything.
#
# Usage: scripts/install.sh [--prefix DIR] [--destdir DIR] [--no-build] [--bin-dir DIR]
#   --prefix DIR   installation prefix (default /usr/local; /usr gives upstream's /usr/bin paths,
#                  but overwrites the binaries of upstream's Debian packages if they are installed)
#   --destdir DIR  stage everything under DIR (packaging, tests); nothing outside DIR is touched
#                  and no user is created
#   --no-build     do not run `swift build -c release`; take the binaries from the release build
#   --bin-dir DIR  take hbbs, hbbr and rustdesk-utils from DIR (implies --no-build)
#
# Typical: swift build -c release && sudo scripts/install.sh --no-build
set -euo pipefail

usage() { sed -n '9,16p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "install.sh: $*" >&2; exit 2; }

prefix=/usr/local
destdir=""
build=1
bin_dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#*=}; shift ;;
    --destdir) [ $# -ge 2 ] || die "--destdir needs a directory"; destdir=$2; shift 2 ;;
    --destdir=*) destdir=${1#*=}; shift ;;
    --bin-dir) [ $# -ge 2 ] || die "--bin-dir needs a directory"; bin_dir=$2; build=0; shift 2 ;;
    --bin-dir=*) bin_dir=${1#*=}; build=0; shift ;;
    --no-build) build=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

# The prefix ends up in ExecStart=: absolute, and nothing systemd or sed would interpret
# (whitespace splits the command line, % starts a specifier, \ an escape, | is sed's delimiter).
case "$prefix" in
  /*) ;;
  *) die "--prefix must be an absolute path: $prefix" ;;
esac
case "$prefix" in
  *[[:space:]%\&\\\|\"\']*) die "--prefix must not contain whitespace, quotes, %, &, \\ or |: $prefix" ;;
esac
prefix=${prefix%/}                       # "/usr/" -> "/usr"; "/" -> "" (binaries in /bin)
if [ -n "$destdir" ]; then
  mkdir -p "$destdir"
  destdir=$(cd "$destdir" && pwd)
  [ "$destdir" != / ] || destdir=""
fi

root=$(cd "$(dirname "$0")/.." && pwd)
if [ "$build" = 1 ]; then
  command -v swift >/dev/null || die "swift is not on PATH (or use --no-build / --bin-dir)"
  echo "building: swift build -c release"
  (cd "$root" && swift build -c release)
fi
if [ -z "$bin_dir" ]; then
  bin_dir=$(cd "$root" && swift build -c release --show-bin-path 2>/dev/null) \
    || bin_dir="$root/.build/release"
fi
programs=(hbbs hbbr rustdesk-utils)
for p in "${programs[@]}"; do
  [ -f "$bin_dir/$p" ] && [ -x "$bin_dir/$p" ] \
    || die "$bin_dir/$p is missing or not executable (build with: swift build -c release)"
done

if [ -z "$destdir" ] && [ "$(id -u)" -ne 0 ]; then
  die "installing into the system needs root (sudo $0 ...), or stage with --destdir DIR"
fi

changed=0
say() { printf '  %-10s %s\n' "$1" "$2"; }

# install_file MODE SOURCE TARGET: copies through a temporary file and rename(2), so a running
# binary is replaced, not overwritten in place (which would fail with ETXTBSY).
install_file() {
  local mode=$1 src=$2 dst=$3
  if [ -f "$dst" ] && cmp -s "$src" "$dst" && [ "$(stat -c %a "$dst")" = "${mode#0}" ]; then
    say unchanged "$dst"
    return
  fi
  local verb=installed
  [ -e "$dst" ] && verb=updated
  mkdir -p "$(dirname "$dst")"
  install -m "$mode" "$src" "$dst.tmp.$$"
  mv -f "$dst.tmp.$$" "$dst"
  say "$verb" "$dst"
  changed=1
}

# make_dir MODE DIR: creates DIR; an existing directory (e.g. upstream's data) is left as it is.
make_dir() {
  if [ -d "$2" ]; then
    say exists "$2"
  else
    install -d -m "$1" "$2"
    say created "$2"
    changed=1
  fi
}

echo "installing RingDesk (prefix $prefix${destdir:+, destdir $destdir})"
for p in "${programs[@]}"; do
  install_file 0755 "$bin_dir/$p" "$destdir$prefix/bin/$p"
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for unit in rustdesk-hbbs.service rustdesk-hbbr.service; do
  # Only ExecStart= names the binaries; the templates say /usr/bin/ like upstream's units.
  sed "s|^ExecStart=/usr/bin/|ExecStart=$prefix/bin/|" "$root/deploy/systemd/$unit" > "$work/$unit"
  grep -q "^ExecStart=$prefix/bin/hbb[sr]\$" "$work/$unit" || die "ExecStart substitution failed in $unit"
  install_file 0644 "$work/$unit" "$destdir/etc/systemd/system/$unit"
done
install_file 0644 "$root/deploy/systemd/rustdesk-server.sysusers" "$destdir/etc/sysusers.d/rustdesk-server.conf"
make_dir 0750 "$destdir/var/lib/rustdesk-server"
make_dir 0750 "$destdir/var/log/rustdesk-server"

if [ -z "$destdir" ]; then
  if id rustdesk >/dev/null 2>&1; then
    say exists "user rustdesk"
  elif command -v systemd-sysusers >/dev/null; then
    systemd-sysusers /etc/sysusers.d/rustdesk-server.conf
    say created "user rustdesk (systemd-sysusers)"
    changed=1
  else
    useradd --system --user-group --home-dir /var/lib/rustdesk-server --shell /usr/sbin/nologin \
      --comment "RustDesk server (RingDesk)" rustdesk
    say created "user rustdesk (useradd)"
    changed=1
  fi
fi

[ "$changed" = 1 ] || echo "nothing to do: everything was already installed"
cat <<NEXT

Next (as root):
NEXT
if [ -n "$destdir" ]; then
  echo "  # staged under $destdir: copy it to the target system, then there:"
  echo "  systemd-sysusers /etc/sysusers.d/rustdesk-server.conf"
fi
cat <<NEXT
  systemctl daemon-reload
  systemctl enable --now rustdesk-hbbs rustdesk-hbbr
  systemctl restart rustdesk-hbbs rustdesk-hbbr   # if they were already running (upstream's or older)
  cat /var/lib/rustdesk-server/id_ed25519.pub      # the Key for RustDesk clients
Options: /var/lib/rustdesk-server/.env. Logs: /var/log/rustdesk-server/. Ports: UDP 21116; TCP 21115-21119.
NEXT
