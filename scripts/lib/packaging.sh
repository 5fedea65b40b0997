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
#   pkg_relink_static MANIFEST BIN EXE OUT [LINKER FLAG...]
#                             links BIN/EXE's objects again into OUT with the Swift runtime linked
#                             statically: SwiftPM's own link command for EXE, read from its build
#                             manifest MANIFEST (.build/debug.yaml), with -static-stdlib added
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

pkg_relink_static() {
  local manifest=$1 bin=$2 exe=$3 out=$4
  shift 4
  # Why not `swift build --static-swift-stdlib` on the debug build: with Swift 6.3.1 it does
  # reuse the objects and only relinks, but the link fails (undefined CoreFoundation and ICU
  # symbols; measured in a fresh clone); newer SwiftPM passes the static -resource-dir to every
  # compile, i.e. compiles everything again. The objects differ only in their autolink
  # entries: a module imported from the static
  # resource directory also names the archives the static library needs (Foundation:
  # CoreFoundation, _FoundationICU, ...; FoundationNetworking: _CFURLSessionInterface, curl).
  # So: SwiftPM's own link command, plus -static-stdlib, plus a probe object that imports the
  # same Foundation modules compiled against the static resource dir (and so names those archives).
  mkdir -p "$(dirname "$out")"
  python3 - "$manifest" "$bin" "$exe" "$out" "$@" >"$out.args" <<'PY'
import json, os, subprocess, sys
manifest, bin_dir, exe, out, *extra = sys.argv[1:]
# The manifest names the build by the path it was made at; find EXE's link command by the
# bin directory's last components and map that path onto this one.
suffix = "/" + "/".join(os.path.realpath(bin_dir).split("/")[-3:]) + "/" + exe
lines = open(manifest, encoding="utf-8").read().split("\n")
found = None
for i, line in enumerate(lines):
    text = line.strip()
    if not text.startswith("outputs: ["):
        continue
    outputs = json.loads(text[len("outputs: "):])
    if len(outputs) == 1 and outputs[0].endswith(suffix):
        for later in lines[i + 1:i + 6]:
            if later.strip().startswith("args: "):
                found = outputs[0], json.loads(later.strip()[len("args: "):])
                break
        if found:
            break
if not found:
    sys.exit(f"no link command for {exe} (*{suffix}) in {manifest}")
output, args = found
old_root = output[: -len(suffix)]
new_root = os.path.realpath(bin_dir)[: -len(suffix) + len(exe) + 1]
def moved(arg):
    return arg.replace(old_root, new_root) if old_root != new_root else arg
swiftc = args[0]
autolink_extract = os.path.join(os.path.dirname(swiftc), "swift-autolink-extract")
static_resources = os.path.join(os.path.dirname(os.path.dirname(swiftc)), "lib", "swift_static")
result, objects, i = [], [], 0
while i < len(args):
    arg = moved(args[i])
    if arg == "-o":
        result += ["-o", out]
        i += 2
        continue
    # The static runtime is inside: no $ORIGIN search path (SwiftPM omits it when linking statically).
    if arg == "-Xlinker" and i + 1 < len(args) and args[i + 1].startswith("-rpath="):
        i += 2
        continue
    if arg.startswith("@"):
        listed = open(arg[1:], encoding="utf-8").read().replace(old_root, new_root)
        objects = [l.strip().strip("'\"") for l in listed.split("\n") if l.strip()]
        if old_root != new_root:
            arg = "@" + out + ".LinkFileList"
            with open(out + ".LinkFileList", "w", encoding="utf-8") as f:
                f.write(listed)
    result.append(arg)
    i += 1
def autolinked(paths):
    run = subprocess.run([autolink_extract, *paths, "-o", "-"], check=True, capture_output=True, text=True)
    return list(dict.fromkeys(run.stdout.split()))
dynamic = autolinked(objects)
modules = [m for m in ("Foundation", "FoundationEssentials", "FoundationInternationalization",
                       "FoundationNetworking", "FoundationXML") if "-l" + m in dynamic]
extra_libs = []
if modules:
    probe = out + ".probe"
    with open(probe + ".swift", "w", encoding="utf-8") as f:
        f.write("".join(f"import {m}\n" for m in modules))
    subprocess.run([swiftc, "-parse-as-library", "-c", "-static-stdlib", "-resource-dir", static_resources,
                    "-module-name", "StaticProbe", probe + ".swift", "-o", probe + ".o"], check=True)
    extra_libs = [l for l in autolinked([probe + ".o"]) if l not in dynamic]
print(f"{exe}: archives the static Foundation adds: {' '.join(extra_libs) or 'none'}", file=sys.stderr)
# The probe's object itself is linked (it holds nothing but those autolink entries): its
# archives then join the objects' in the linker's --start-group, where their order is free.
result += ["-static-stdlib"] + ([probe + ".o"] if modules else []) + extra
print("\0".join(result), end="")
PY
  (($? == 0)) && [[ -s $out.args ]] || return 1
  local cmd=()
  mapfile -d '' -t cmd <"$out.args"
  "${cmd[@]}"
}
