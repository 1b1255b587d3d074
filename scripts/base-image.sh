#!/usr/bin/env bash
# Print the name of a Debian image with systemd as PID 1, building it first when needed.
#   scripts/base-image.sh [SUITE]    SUITE: trixie (Debian 13, the default) or bookworm (Debian 12);
#                                    ETERNA_DEBIAN_SUITE sets it when no argument is given.
#
# No registry is reachable here, so the image comes from debootstrap + docker import. The tag is a
# hash of this script, so the image is rebuilt only when the recipe changes. Set ETERNA_BASE_IMAGE
# to use a registry image instead (it must run systemd as /lib/systemd/systemd).
set -euo pipefail

if [ -n "${ETERNA_BASE_IMAGE:-}" ]; then
  echo "$ETERNA_BASE_IMAGE"
  exit 0
fi

suite=${1:-${ETERNA_DEBIAN_SUITE:-trixie}}
case "$suite" in
  bookworm) release=12 ;;
  trixie) release=13 ;;
  *) echo "base-image: unsupported Debian suite '$suite' (ETERNA_DEBIAN_SUITE): bookworm or trixie" >&2; exit 2 ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
recipe_hash=$(sha256sum "$here/base-image.sh" | cut -c1-12)
image="eterna/debian$release-systemd:$recipe_hash"

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "$image"
  exit 0
fi

# The Debian mirror this host already uses: first URI of a deb822 source or a one-line source.
mirror=$(
  { grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}'
    grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{print $2}'
  } | grep -v -- '-security' | head -n 1 || true
)
[ -n "$mirror" ] || { echo "base-image: no Debian mirror found in this host's apt sources" >&2; exit 1; }
security_mirror=$(
  { grep -hE '^URIs:.*security|^deb .*security' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
    | awk '{print $2}' | head -n 1; } || true
)

command -v debootstrap >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
}

root=$(mktemp -d /var/tmp/eterna-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "base-image: debootstrap $suite from $mirror into $root" >&2
debootstrap --variant=minbase \
  --include=python3,python3-apt,systemd,systemd-sysv,dbus,sudo,iproute2,procps,ca-certificates,gnupg,apt-transport-https \
  "$suite" "$root" "$mirror" >&2

# Apt sources inside the image: the same mirrors, including security updates.
{
  echo "deb $mirror $suite main"
  echo "deb $mirror $suite-updates main"
  [ -z "$security_mirror" ] || echo "deb $security_mirror $suite-security main"
} >"$root/etc/apt/sources.list"

# Keep images small and quiet; systemd units that make no sense in a container are masked.
printf 'path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\npath-exclude /usr/share/locale/*\n' \
  >"$root/etc/dpkg/dpkg.cfg.d/01-nodoc"
for unit in getty.target console-getty.service systemd-udevd.service systemd-udev-trigger.service \
  systemd-modules-load.service sys-kernel-config.mount sys-kernel-debug.mount systemd-remount-fs.service \
  systemd-firstboot.service; do
  ln -sf /dev/null "$root/etc/systemd/system/$unit"
done
# The updates published since the release, as in a current cloud image (debootstrap installs the release's own
# versions only): a lab host then starts where a fresh VM starts, and every converge does not apply them again.
# No service starts in the chroot (no init runs there; policy-rc.d refuses besides).
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
mount -t proc proc "$root/proc"
trap 'umount "$root/proc" 2>/dev/null || true; rm -rf "$root"' EXIT
chroot "$root" apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get upgrade -y -qq --with-new-pkgs -o Dpkg::Options::=--force-confold >&2
umount "$root/proc"
rm -f "$root/usr/sbin/policy-rc.d"
# Empty: systemd gives each container its own at first boot.
: >"$root/etc/machine-id"
# Package lists stay: apt in a fresh container needs no update for an hour (cache_valid_time).
rm -rf "$root"/var/cache/apt/archives/*.deb

tar -C "$root" -c . | docker import \
  --change 'ENV container=docker' \
  --change 'CMD ["/lib/systemd/systemd"]' \
  - "$image" >/dev/null
echo "$image"
