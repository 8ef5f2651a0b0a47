#!/usr/bin/env bash
# Builds the gateway's image with podman where no image registry is reachable: the base is a
# Debian (python3 + venv) made here with debootstrap from the machine's own apt mirror, imported
# as a local image and passed to infra/Dockerfile as BASE_IMAGE.
#
#   infra/build-image.sh base                    # the base image only (cached; tests/peers/image.sh)
#   infra/build-image.sh build [TAG] [EXTRAS]    # e.g. build erp-gateway:dev  /  build erp-gateway-emulator:dev '[emulator]'
#   infra/build-image.sh containers-conf         # path of the podman settings this machine needs
#
# Needs root, podman, runc and debootstrap (tests/peers/apt.txt). Caches, outside the repo, in
# $ERP_GATEWAY_CACHE (default ~/.cache/erp-gateway): the debootstrap tarball (~130 MB, about 3 min
# to make) and a podman settings file. pip inside the build reaches the index the way pip on
# this machine does: its effective settings are passed as build secrets, never written to the repo.
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${ERP_GATEWAY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/erp-gateway}"
mkdir -p "$cache"
codename="$(. /etc/os-release && echo "$VERSION_CODENAME")"
base_tag="localhost/erp-gateway-base:$codename"

# Podman's defaults that a sandboxed host refuses, written once per machine into a
# containers.conf (used through CONTAINERS_CONF by every podman call below and by the tests):
# - the default rlimits (nofile/nproc 1048576) are above this process's hard limits and raising
#   them needs CAP_SYS_RESOURCE: use the hard limits we have (nproc no higher than pid_max);
# - crun 1.8 refuses hybrid cgroups (v1 controllers + a cgroup2 mount): runc accepts them.
containers_conf() {
  local conf="$cache/containers.conf" nproc pid_max
  nproc="$(ulimit -Hu)"
  pid_max="$(cat /proc/sys/kernel/pid_max)"
  if [[ "$nproc" == unlimited ]] || ((nproc > pid_max)); then nproc="$pid_max"; fi
  {
    echo "# Written by infra/build-image.sh for this machine."
    echo "[containers]"
    echo "default_ulimits = [\"nofile=$(ulimit -Hn):$(ulimit -Hn)\", \"nproc=$nproc:$nproc\"]"
    echo "[engine]"
    echo "runtime = \"runc\""
  } > "$conf.new"
  mv "$conf.new" "$conf"
  echo "$conf"
}

# The first deb822 or one-line apt source of the machine's Debian suite: the mirror it already uses.
apt_mirror() {
  local file uri
  for file in /etc/apt/sources.list.d/*.sources; do
    [[ -e "$file" ]] || continue
    uri="$(awk -v suite="$codename" '
      BEGIN { RS = ""; FS = "\n" }
      {
        types = ""; uris = ""; suites = ""
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^Types:/) types = $i
          if ($i ~ /^URIs:/) uris = $i
          if ($i ~ /^Suites:/) suites = $i
        }
        if (types ~ /(^|[ \t])deb([ \t]|$)/ && (" " suites " ") ~ ("[ \t]" suite "[ \t]")) {
          sub(/^URIs:[ \t]*/, "", uris); split(uris, u, /[ \t]+/); print u[1]; exit
        }
      }' "$file")"
    [[ -n "$uri" ]] && { echo "$uri"; return; }
  done
  for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -e "$file" ]] || continue
    uri="$(awk -v suite="$codename" '$1 == "deb" {
      for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) { if ($(i + 1) == suite) { print $i; exit } break }
    }' "$file")"
    [[ -n "$uri" ]] && { echo "$uri"; return; }
  done
  echo "no apt source for $codename found in /etc/apt" >&2
  return 1
}

# A minimal Debian with python3 and venv, trimmed of docs, locales and apt lists, as a tarball.
base_tarball() {
  local tarball="$cache/debian-$codename-python3.tar" root
  if [[ ! -s "$tarball" ]]; then
    root="$(mktemp -d "$cache/rootfs.XXXXXX")"
    trap 'rm -rf "$root"' RETURN
    debootstrap --variant=minbase --include=python3,python3-venv "$codename" "$root" "$(apt_mirror)" \
      > "$cache/debootstrap.log" 2>&1 || { tail -20 "$cache/debootstrap.log" >&2; return 1; }
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/* \
      "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/*
    tar --numeric-owner -C "$root" -cf "$tarball.new" .
    mv "$tarball.new" "$tarball"
  fi
  echo "$tarball"
}

base() {
  exec 9> "$cache/base.lock"
  flock 9  # two runs at once make the tarball once
  podman image exists "$base_tag" && return
  podman import --quiet --change 'CMD ["python3"]' "$(base_tarball)" "$base_tag" > /dev/null
}

# pip's effective settings on this machine (files and PIP_* variables) as a pip.conf for the
# build, with the CA bundle pip trusts (a TLS-inspecting proxy's, say) passed as a second secret.
pip_secrets() {
  local conf="$1" line key value
  local -A settings=()
  while IFS= read -r line; do  # files first, then PIP_* variables: the later one wins, as in pip
    key="${line%%=*}"; key="${key#*.}"
    value="${line#*=}"; value="${value#\'}"; value="${value%\'}"
    case "$key" in
      index-url|extra-index-url|trusted-host|proxy|timeout|default-timeout|retries|cert) settings[$key]="$value" ;;
    esac
  done < <(python3 -m pip config list 2>/dev/null | grep -v '^:env:'
           python3 -m pip config list 2>/dev/null | grep '^:env:')
  secrets=(--secret "id=pip.conf,src=$conf")
  if [[ -n "${settings[cert]:-}" && -r "${settings[cert]}" ]]; then
    secrets+=(--secret "id=pip-cert,src=${settings[cert]}")
    settings[cert]=/run/secrets/pip-cert
  else
    unset 'settings[cert]'
  fi
  echo "[global]" > "$conf"
  for key in "${!settings[@]}"; do echo "$key = ${settings[$key]}" >> "$conf"; done
}

build() {
  local tag="${1:-erp-gateway:dev}" extras="${2:-}" conf
  base
  conf="$(mktemp)"
  trap 'rm -f "$conf"' RETURN
  pip_secrets "$conf"
  podman build --quiet --file infra/Dockerfile --tag "$tag" --format docker --network host --build-arg "BASE_IMAGE=$base_tag" \
    --build-arg "EXTRAS=$extras" --ignorefile infra/Dockerfile.dockerignore "${secrets[@]}" . > /dev/null
  echo "$tag"
}

CONTAINERS_CONF="${CONTAINERS_CONF:-$(containers_conf)}"
export CONTAINERS_CONF
case "${1:-build}" in
  base) base ;;
  build) shift; build "$@" ;;
  containers-conf) echo "$CONTAINERS_CONF" ;;
  *) echo "usage: $0 base | build [TAG] [EXTRAS] | containers-conf" >&2; exit 2 ;;
esac
