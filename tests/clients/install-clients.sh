#!/usr/bin/env bash
# Installs the real S3 clients the client tests (tests/clients) drive, other than the Python SDKs
# that come with the project's `[test]` extras (boto3, minio, s3fs). Idempotent and quiet:
#   aws-cli      PyPI, pinned, in a virtualenv of its own (it pins an exact botocore):
#                tests/clients/.tools/awscli/bin/aws
#   JS clients   npm ci of tests/clients/js (package.json + package-lock.json, exact versions):
#                @aws-sdk/client-s3, @aws-sdk/lib-storage, @aws-sdk/s3-request-presigner, minio
#   s3cmd rclone Debian (normally installed already by tests/upstreams/install-system-deps.sh)
# Needs python3 (with venv) and Node.js >= 20 with npm on PATH. Exits non-zero on failure.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
TOOLS="$HERE/.tools"
AWSCLI_VERSION=1.46.2
PY=${PYTHON:-python3}
LOG=$(mktemp -t install-clients.XXXXXX)
trap 'rm -f "$LOG"' EXIT

fail() {
    echo "install-clients.sh: $1" >&2
    [ -s "$LOG" ] && tail -n 30 "$LOG" >&2
    exit 1
}

# -- s3cmd, rclone (Debian) ---------------------------------------------------------------------
missing=()
for p in s3cmd rclone; do
    command -v "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=()
    [ "$(id -u)" -ne 0 ] && SUDO=(sudo -n)
    export DEBIAN_FRONTEND=noninteractive
    if ! "${SUDO[@]}" apt-get install -qq -y --no-install-recommends "${missing[@]}" >"$LOG" 2>&1; then
        "${SUDO[@]}" apt-get update -qq >"$LOG" 2>&1 || fail "apt-get update failed"
        "${SUDO[@]}" apt-get install -qq -y --no-install-recommends "${missing[@]}" >"$LOG" 2>&1 \
            || fail "apt-get install ${missing[*]} failed"
    fi
fi

# -- aws-cli (PyPI, own virtualenv) ---------------------------------------------------------------
AWS_VENV="$TOOLS/awscli"
if ! "$AWS_VENV/bin/aws" --version 2>/dev/null | grep -q "^aws-cli/$AWSCLI_VERSION "; then
    rm -rf "$AWS_VENV"
    mkdir -p "$TOOLS"
    "$PY" -m venv "$AWS_VENV" >"$LOG" 2>&1 || fail "cannot create $AWS_VENV with $PY"
    "$AWS_VENV/bin/pip" install -q --disable-pip-version-check "awscli==$AWSCLI_VERSION" >"$LOG" 2>&1 \
        || fail "pip install awscli==$AWSCLI_VERSION failed"
    "$AWS_VENV/bin/aws" --version >/dev/null 2>&1 || fail "aws-cli does not run"
fi

# -- JavaScript clients (npm, lockfile) -----------------------------------------------------------
command -v node >/dev/null 2>&1 || fail "node (>= 20) is not on PATH"
command -v npm >/dev/null 2>&1 || fail "npm is not on PATH"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || fail "node $(node --version) is too old: the AWS SDK for JavaScript v3 needs >= 20"
JS="$HERE/js"
stamp="$JS/node_modules/.install-stamp"
if [ ! -f "$stamp" ] || ! cmp -s "$JS/package-lock.json" "$stamp"; then
    (cd "$JS" && npm ci --no-audit --no-fund --loglevel=error) >"$LOG" 2>&1 || fail "npm ci in $JS failed"
    cp "$JS/package-lock.json" "$stamp"
fi
exit 0
