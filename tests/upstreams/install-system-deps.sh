#!/usr/bin/env bash
# Installs the Debian packages the test upstreams and client tests need:
#   ceph-mon ceph-osd radosgw (--no-install-recommends)  -> tests/upstreams/rgw.py
#   s3cmd rclone nginx-light (or nginx)                  -> client and proxy tests
#   prometheus (its promtool)                            -> tests/deploy/test_dashboards.py
#   chromium fonts-dejavu-core                           -> the readiness page rendered headless
# Idempotent and non-interactive: packages already installed are skipped, `apt-get update`
# runs only when a package to install has no candidate (or an install attempt fails).
# Run as root (re-executes itself with sudo otherwise). Quiet; exits non-zero on failure.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        exec sudo -n -E bash "$0" "$@"
    fi
    echo "install-system-deps.sh: must run as root" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-qq -y -o Dpkg::Use-Pty=0 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
LOG=$(mktemp -t install-system-deps.XXXXXX)
POLICY_RC=/usr/sbin/policy-rc.d
CREATED_POLICY=0
cleanup() {
    if [ "$CREATED_POLICY" = 1 ]; then rm -f "$POLICY_RC"; fi
    rm -f "$LOG"
}
trap cleanup EXIT

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

has_candidate() {
    local cand
    cand=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2; exit}')
    [ -n "$cand" ] && [ "$cand" != "(none)" ]
}

UPDATED=0
apt_update() {
    [ "$UPDATED" = 1 ] && return 0
    if ! apt-get update -qq >"$LOG" 2>&1; then
        echo "install-system-deps.sh: apt-get update failed:" >&2
        tail -n 20 "$LOG" >&2
        exit 1
    fi
    UPDATED=1
}

# which nginx package: nginx-light where the distribution still has it, else nginx
nginx_installed() {
    installed nginx-light || installed nginx || installed nginx-core || installed nginx-full \
        || installed nginx-extras
}

NORECS=()   # installed with --no-install-recommends
OTHERS=()
for p in ceph-mon ceph-osd radosgw; do
    installed "$p" || NORECS+=("$p")
done
for p in s3cmd rclone prometheus chromium fonts-dejavu-core; do
    installed "$p" || OTHERS+=("$p")
done
NGINX_NEEDED=0
nginx_installed || NGINX_NEEDED=1

if [ ${#NORECS[@]} -eq 0 ] && [ ${#OTHERS[@]} -eq 0 ] && [ "$NGINX_NEEDED" = 0 ]; then
    exit 0
fi

# refresh the package lists only if something we need has no candidate (e.g. a bare image)
need_update=0
for p in "${NORECS[@]}" "${OTHERS[@]}"; do
    has_candidate "$p" || { need_update=1; break; }
done
if [ "$NGINX_NEEDED" = 1 ] && ! has_candidate nginx-light && ! has_candidate nginx; then
    need_update=1
fi
[ "$need_update" = 1 ] && apt_update

if [ "$NGINX_NEEDED" = 1 ]; then
    if has_candidate nginx-light; then OTHERS+=(nginx-light); else OTHERS+=(nginx); fi
fi

# keep package scripts from starting services (nginx on :80, ceph daemons, prometheus on :9090)
if [ ! -e "$POLICY_RC" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$POLICY_RC"
    chmod 755 "$POLICY_RC"
    CREATED_POLICY=1
fi

install_pkgs() {
    # $1: "norecs" or "recs"; rest: packages
    local mode=$1; shift
    [ $# -eq 0 ] && return 0
    local extra=()
    [ "$mode" = norecs ] && extra=(--no-install-recommends)
    if ! apt-get install "${APT_OPTS[@]}" "${extra[@]}" "$@" >"$LOG" 2>&1; then
        # stale package lists (404 on a superseded version): refresh once and retry
        if [ "$UPDATED" = 0 ]; then
            apt_update
            apt-get install "${APT_OPTS[@]}" "${extra[@]}" "$@" >"$LOG" 2>&1 && return 0
        fi
        echo "install-system-deps.sh: apt-get install $* failed:" >&2
        tail -n 30 "$LOG" >&2
        exit 1
    fi
}

install_pkgs norecs "${NORECS[@]}"
# s3cmd/rclone/nginx/prometheus/chromium: recommends are not needed either; keep the install small
install_pkgs norecs "${OTHERS[@]}"

for p in ceph-mon ceph-osd radosgw s3cmd rclone prometheus chromium fonts-dejavu-core; do
    installed "$p" || { echo "install-system-deps.sh: $p did not install" >&2; exit 1; }
done
nginx_installed || { echo "install-system-deps.sh: nginx did not install" >&2; exit 1; }
for b in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph s3cmd rclone nginx promtool chromium; do
    command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] \
        || { echo "install-system-deps.sh: $b not on PATH after install" >&2; exit 1; }
done
exit 0
