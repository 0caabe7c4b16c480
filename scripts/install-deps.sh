#!/usr/bin/env bash
# Installs the Debian packages strata builds against, when any is missing.
# As root it runs apt-get; otherwise it prints the exact command and fails.
# Usage: scripts/install-deps.sh [--with-mpi] [--with-fuzz] [--with-browser]
set -euo pipefail

packages=(build-essential cmake pkg-config
          libdnnl-dev libopenblas-dev libjansson-dev libpcre2-dev
          libutf8proc-dev zlib1g-dev libcmocka-dev libssl-dev)
for arg in "$@"; do
  case "$arg" in
    --with-mpi)  packages+=(libopenmpi-dev openmpi-bin) ;;
    --with-fuzz) packages+=(clang libclang-rt-dev) ;;
    --with-browser) packages+=(chromium) ;; # the report's render test (headless screenshot)
    *) echo "install-deps.sh: unknown option '$arg'" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [[ $(id -u) -ne 0 ]]; then
  echo "strata needs these Debian packages: ${missing[*]}" >&2
  echo "run as root:  apt-get update && $cmd" >&2
  exit 1
fi
echo "install-deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
$cmd
