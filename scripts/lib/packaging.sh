# shellcheck shell=bash
#
# scripts/lib/packaging.sh: helpers for scripts/package and scripts/test-packages.
#
#   pkg_ensure_tools          installs dpkg-dev (dpkg-shlibdeps), lintian and debootstrap when missing
#   pkg_debian_sources SUITE  prints "URI SUITE COMPONENT" lines, one per Debian archive this machine's
#                             apt uses for SUITE and its -updates/-security companions (read from apt
#                             itself, so no archive host is written in this repository)
#   pkg_bookworm_root DIR     prints the path of a pristine minimal bookworm root (debootstrap
#                             --variant=minbase), creating it under DIR on first use; later calls reuse it
#
# Source scripts/lib/deps.sh first (ff_log).

# libcurl4-openssl-dev: the static FoundationNetworking (the CLI's HTTP client) links libcurl.
FRAMEFLOW_PACKAGING_APT_PACKAGES=(dpkg-dev lintian debootstrap fakeroot xz-utils libcurl4-openssl-dev)

pkg_ensure_tools() {
  local missing=() pkg
  for pkg in "${FRAMEFLOW_PACKAGING_APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  if [[ $(id -u) -ne 0 ]]; then
    echo "missing packages: ${missing[*]} (run as root or install them with apt-get)" >&2
    return 1
  fi
  ff_log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

pkg_debian_sources() {
  local suite=$1
  # apt's own view of its sources (one-line and deb822 files alike): the
  # binary-package indexes of every archive, with the suite and component.
  apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT) $(TARGET_OF)' 'Created-By: Packages' 2>/dev/null |
    awk -v s="$suite" '$4 == "deb" && $3 == "main" && ($2 == s || $2 == s "-updates" || $2 == s "-security") { print $1, $2, $3 }' |
    sort -u
}

pkg_bookworm_root() {
  local cache=$1
  local root=$cache/bookworm-minbase
  if [[ -f $root/.frameflow-complete ]]; then
    echo "$root"
    return 0
  fi
  local mirror
  mirror=$(pkg_debian_sources bookworm | awk '$2 == "bookworm" { print $1; exit }')
  if [[ -z $mirror ]]; then
    echo "no apt source on this machine serves bookworm main (apt-get indextargets); cannot debootstrap" >&2
    return 1
  fi
  rm -rf "$root"
  mkdir -p "$cache"
  ff_log "debootstrap: minimal bookworm from $mirror into $root (once; cached)"
  if ! debootstrap --variant=minbase bookworm "$root" "$mirror" >"$cache/debootstrap.log" 2>&1; then
    tail -20 "$cache/debootstrap.log" >&2
    return 1
  fi
  # The root's apt uses the same archives as this machine's (main, updates, security).
  pkg_debian_sources bookworm | awk '{ print "deb", $1, $2, $3 }' >"$root/etc/apt/sources.list"
  # This machine's apt settings (e.g. a snapshot archive whose Release files are old).
  cp /etc/apt/apt.conf.d/* "$root/etc/apt/apt.conf.d/" 2>/dev/null || true
  rm -f "$root/etc/apt/apt.conf.d/docker-clean"   # keep downloaded .debs: they are cached between runs
  rm -rf "$root/var/cache/apt/archives"/*.deb
  touch "$root/.frameflow-complete"
  echo "$root"
}
