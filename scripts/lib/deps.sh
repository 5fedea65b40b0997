# Installs what FrameFlow needs to build, test and run, if it is missing.
# Sourced by scripts/test, scripts/quickstart and scripts/bench.
# Works as root on a fresh Debian bookworm (uses apt-get); elsewhere it only
# checks and tells what is missing.

FRAMEFLOW_APT_PACKAGES=(
  pkg-config libavformat-dev libavcodec-dev libavutil-dev libswscale-dev
  libzip-dev libpq-dev libdeflate-dev ffmpeg postgresql openssl ca-certificates curl procps iproute2
  unzip python3 bc chromium
)

# Only the tests need these: OpenStack Swift with its s3api middleware, the real S3-compatible server
# the object-storage tests run against (scripts/lib/objectstore.sh starts it; scripts/test installs
# them when missing). The quickstart never needs them.
FRAMEFLOW_OBJECTSTORE_PACKAGES=(swift-proxy swift-object swift-container swift-account memcached)

ff_log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Free space in GiB (one decimal) on the filesystem that holds path $1.
ff_free_gib() { df -Pk "$1" 2>/dev/null | awk 'NR == 2 { printf "%.1f", $4 / 1048576 }'; }

# One line for logs: free space where builds write (the repository) and where tests write
# (TMPDIR), so that a run that fails on a full disk says so beside the failure.
ff_disk_note() {
  local repo=${1:-.} tmp=${TMPDIR:-/tmp}
  if [[ $(df -P "$repo" | awk 'NR == 2 { print $1 }') == $(df -P "$tmp" | awk 'NR == 2 { print $1 }') ]]; then
    echo "disk: $(ff_free_gib "$repo") GiB free (repository and $tmp share one filesystem)"
  else
    echo "disk: $(ff_free_gib "$repo") GiB free for the repository, $(ff_free_gib "$tmp") GiB in $tmp"
  fi
}

ensure_deps() {
  local missing=()
  local pkg
  for pkg in "${FRAMEFLOW_APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
      echo "missing packages: ${missing[*]} (run as root or install them with apt-get)" >&2
      return 1
    fi
    ff_log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  # The notification tests deliver e-mail to a local SMTP sink (PyPI's aiosmtpd).
  if ! python3 -c "import aiosmtpd" >/dev/null 2>&1; then
    ff_log "installing aiosmtpd (SMTP sink for the notification tests)"
    python3 -m pip install -q aiosmtpd >/dev/null 2>&1 \
      || echo "warning: cannot install aiosmtpd; the SMTP notification test will fail" >&2
  fi
  # The tus interop tests upload with an independent client (PyPI's tuspy).
  if ! python3 -c "import tusclient" >/dev/null 2>&1; then
    ff_log "installing tuspy (tus client for the resumable-upload interop tests)"
    python3 -m pip install -q tuspy >/dev/null 2>&1 \
      || echo "warning: cannot install tuspy; the tus interop tests will fail" >&2
  fi
  # The web app's browser test drives Debian's chromium with PyPI's playwright (no browser download).
  if ! python3 -c "import playwright" >/dev/null 2>&1; then
    ff_log "installing playwright (browser test driver)"
    python3 -m pip install -q playwright >/dev/null 2>&1 \
      || echo "warning: cannot install playwright; scripts/webtest will fail" >&2
  fi
  # scripts/contracttest validates openapi.yaml and tests the live API against it.
  if ! command -v openapi-spec-validator >/dev/null 2>&1 || ! command -v schemathesis >/dev/null 2>&1; then
    ff_log "installing openapi-spec-validator and schemathesis (API contract test)"
    python3 -m pip install -q openapi-spec-validator schemathesis >/dev/null 2>&1 \
      || echo "warning: cannot install openapi-spec-validator/schemathesis; scripts/contracttest will fail" >&2
  fi
  if ! command -v swift >/dev/null 2>&1; then
    if [[ -x /opt/swift/usr/bin/swift ]]; then
      export PATH="/opt/swift/usr/bin:$PATH"
    else
      echo "swift is not installed (Swift 6.x toolchain expected on PATH)" >&2
      return 1
    fi
  fi
}

# Prints a free TCP port on 127.0.0.1, starting the search at $1.
ff_free_port() {
  local port=${1:-20000}
  while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    port=$((port + 1))
  done
  echo "$port"
}
