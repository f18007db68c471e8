#!/usr/bin/env bash
# Start what the tests talk to, when it is down and this machine can start it: PostgreSQL (the
# storage tests run against it for real), Redis (the Celery broker), and Debian's Chromium for
# the browser test. Each step says what it did; none fails the run by itself: the tests decide
# (CI sets SIAGA_REQUIRE_POSTGRES=1 and SIAGA_REQUIRE_BROWSER=1, which make a missing service a
# failure instead of a skip).
set -u

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }
if command -v pg_isready >/dev/null && ! pg_up; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "services: starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  fi
fi
pg_up && echo "services: PostgreSQL is up on 127.0.0.1:5432" || echo "services: no PostgreSQL on 127.0.0.1:5432: its tests will be skipped (or fail under SIAGA_REQUIRE_POSTGRES=1)"

if command -v redis-cli >/dev/null && ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  if command -v redis-server >/dev/null; then
    echo "services: starting Redis"
    mkdir -p /tmp/siaga-redis
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no --dir /tmp/siaga-redis --logfile /tmp/siaga-redis/redis.log || true
    for _ in $(seq 1 20); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.5; done
  fi
fi
redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && echo "services: Redis is up on 127.0.0.1:6379" || echo "services: no Redis on 127.0.0.1:6379"

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "services: installing Debian's chromium and chromium-driver for the browser test"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
      || echo "services: could not install chromium"
  else
    echo "services: no chromium/chromedriver (install Debian's chromium and chromium-driver): the browser test will be skipped"
  fi
fi
exit 0
