#!/usr/bin/env bash
# The Redis-backed store's tests need a Redis on 127.0.0.1:6379; start a throwaway one when none answers.
set -eu
ping() { (exec 3<>/dev/tcp/127.0.0.1/6379 && printf 'PING\r\n' >&3 && head -c 5 <&3 | grep -q PONG) 2>/dev/null; }
# The binary is needed even when a Redis answers: the session fault tests start and kill their own.
if ! command -v redis-server >/dev/null 2>&1; then
  echo "ensure-redis: redis-server is not installed; installing it from Debian's packages" >&2
  (apt-get update -qq && apt-get install -y -qq redis-server) >&2
fi
ping && exit 0
redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
for _ in $(seq 1 50); do ping && exit 0; sleep 0.1; done
echo "ensure-redis: Redis did not start on 127.0.0.1:6379" >&2
exit 1
