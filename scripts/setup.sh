#!/usr/bin/env bash
# setup.sh [--dev]: builds sockeye in this checkout and puts `sockeye` on the PATH, as root.
#
#   (no flag)  a monitored host: the build tools it lacks are installed for the build and
#              removed again afterwards, the npm dev dependencies pruned; what stays is the
#              runtime (scripts/packages.sh: runtime_packages) and the built checkout.
#   --dev      a build and test machine: the build tools stay, and the test and VM tiers'
#              packages are installed too. Services those packages bring (sshd, nats-server,
#              rsyslog, php's session timer) are left disabled: the tests start their own.
#
# Either way no service is started or left enabled by what setup installs, and the packages it
# installed are recorded in /var/lib/sockeye/setup-installed so a later run (and the test that
# checks this) knows which ones are the project's.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

dev=0 plan=0
for arg in "$@"; do
  case "$arg" in
    --dev) dev=1 ;;
    --plan) plan=1 ;;
    *) echo "scripts/setup.sh: unknown option $arg (no option: a monitored host; --dev: a build and test machine; --plan: print what would be kept and removed)" >&2; exit 2 ;;
  esac
done

# shellcheck source=packages.sh
source scripts/packages.sh
wanted=("${runtime_packages[@]}" "${build_packages[@]}")
[ $dev = 0 ] || wanted+=("${test_packages[@]}" "${vm_packages[@]}")
if [ $plan = 1 ]; then
  # What a run would leave installed (of what it installs) and what it would give back.
  if [ $dev = 1 ]; then echo "keep: ${wanted[*]}"; echo "remove-after-build:"
  else echo "keep: ${runtime_packages[*]}"; echo "remove-after-build: ${build_packages[*]}"; fi
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/setup.sh: run as root (it installs Debian packages): sudo bash scripts/setup.sh" >&2
  exit 1
fi

record_dir=/var/lib/sockeye
record=$record_dir/setup-installed

installed_set() { dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' 2>/dev/null | awk '$1 == "ii" { print $2 }' | sort -u; }

# Installs what is missing of the given packages, never starting a service (policy-rc.d), and
# prints the packages this call really installed (dependencies included).
install_missing() {
  local missing=() p before
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  echo "setup: installing ${missing[*]}" >&2
  before=$(installed_set)
  apt-get update -qq
  local own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ $own_policy = 0 ] || rm -f /usr/sbin/policy-rc.d
  comm -13 <(echo "$before") <(installed_set)
}

# Leaves every service unit and init script shipped by the given packages disabled: the
# packages' own scripts enable them on install (on a systemd host they would start at boot).
disable_services() {
  local pkg file unit
  for pkg in "$@"; do
    while IFS= read -r file; do
      case "$file" in
        /lib/systemd/system/*.service|/lib/systemd/system/*.socket|/lib/systemd/system/*.timer|\
        /usr/lib/systemd/system/*.service|/usr/lib/systemd/system/*.socket|/usr/lib/systemd/system/*.timer)
          unit=$(basename -- "$file")
          case "$unit" in *@.*) continue ;; esac
          if command -v deb-systemd-helper >/dev/null; then
            deb-systemd-helper disable "$unit" >/dev/null 2>&1 || true
          fi
          find /etc/systemd/system -path "*.wants/$unit" -type l -delete 2>/dev/null || true
          ;;
        /etc/init.d/*)
          update-rc.d -f "$(basename -- "$file")" remove >/dev/null 2>&1 || true
          ;;
      esac
    done < <(dpkg-query -L "$pkg" 2>/dev/null || true)
  done
}

newly=$(install_missing "${wanted[@]}")

mkdir -p "$record_dir"
touch "$record"
if [ -n "$newly" ]; then
  sort -u -o "$record" "$record" <(echo "$newly")
fi
# Every package setup ever installed here, not only this run's: a --dev run after a monitored
# host's run must not leave the earlier run's services enabled either.
mapfile -t ours < "$record"
[ ${#ours[@]} -eq 0 ] || disable_services "${ours[@]}"

# A monitored host gives back the build tools this run installed, whether the build succeeds
# or not. The runtime packages stay even when apt pulled them in as dependencies.
if [ $dev = 0 ] && [ -n "$newly" ]; then
  remove_build_tools() {
    local keep=" ${runtime_packages[*]} " p to_remove=()
    while IFS= read -r p; do
      [[ "$keep" == *" $p "* ]] || to_remove+=("$p")
    done <<< "$newly"
    apt-mark manual "${runtime_packages[@]}" >/dev/null 2>&1 || true
    if [ ${#to_remove[@]} -gt 0 ]; then
      echo "setup: removing the build tools this run installed (${#to_remove[@]} packages); setup.sh --dev keeps them" >&2
      DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq "${to_remove[@]}" >/dev/null
      local left
      left=$(comm -23 <(sort -u "$record") <(printf '%s\n' "${to_remove[@]}" | sort -u))
      printf '%s\n' "$left" | sed '/^$/d' > "$record"
    fi
  }
  trap remove_build_tools EXIT
fi

# The build fetches it too when it is missing; here a failure to fetch shows as what it is.
bash scripts/fetch-libbpf.sh .cache/libbpf >/dev/null

# `npm ci`: exactly the lock file's versions, and it refuses a lock that is out of step with
# package.json instead of rewriting it. Its `prepare` step builds libbpf, the BPF object, the
# addon and the TypeScript; a monitored host then drops the dev dependencies (compilers of
# TypeScript, the test runner, cmake-js).
npm ci --no-audit --no-fund
[ $dev = 1 ] || npm prune --omit=dev --no-audit --no-fund >/dev/null

bash scripts/install-wrapper.sh "$root"
