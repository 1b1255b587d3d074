#!/usr/bin/env bash
# Make sure a Docker engine answers. On a Debian host without one, install docker.io and start
# dockerd in the background, then wait until it answers (at most 60 s).
set -euo pipefail

# Every systemd container takes inotify instances from the host's pool; the default 128 runs out
# at about two dozen containers (units then crash-loop). Raise it when it is lower.
if [ "$(cat /proc/sys/fs/inotify/max_user_instances 2>/dev/null || echo 1024)" -lt 1024 ]; then
  sysctl -qw fs.inotify.max_user_instances=1024 || echo "docker-engine: could not raise fs.inotify.max_user_instances" >&2
fi

if docker info >/dev/null 2>&1; then
  exit 0
fi
if ! command -v dockerd >/dev/null 2>&1; then
  echo "docker-engine: installing docker.io" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
  echo "docker-engine: starting dockerd (log: /var/log/dockerd.log)" >&2
  nohup dockerd >/var/log/dockerd.log 2>&1 &
fi
for _ in $(seq 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 1
done
echo "docker-engine: dockerd did not answer within 60 s; see /var/log/dockerd.log" >&2
exit 1
