#!/usr/bin/env bash
# A throwaway Ceph RADOS Gateway (real S3) on 127.0.0.1 for the test suite.
#
#   scripts/ceph-rgw.sh [start]   start (or reuse) mon + OSD on memstore + radosgw; write the env file
#   scripts/ceph-rgw.sh stop      stop the daemons and remove the state directory
#   scripts/ceph-rgw.sh status    exit 0 when the gateway answers S3
#
# Runs as root. Uses the Debian packages ceph-mon, ceph-osd and radosgw (installs
# them with apt-get only when missing). No disks: the OSD keeps objects in memory
# (memstore), so a stop loses everything. Nothing listens beyond loopback.
#
# Settings (environment):
#   CEPH_RGW_DIR      state directory            (default /tmp/tubecache-ceph)
#   CEPH_RGW_PORT     gateway port               (default 7480)
#   CEPH_MON_PORT     monitor port, msgr v1; v2 uses CEPH_MON_PORT - 3489 (default 6789 -> 3300)
#   CEPH_RGW_ENV      env file written           (default /tmp/rgw.env)
#   CEPH_MEMSTORE_GB  memory the OSD may hold    (default 6)
#   CEPH_RGW_TIMEOUT  seconds to wait for S3     (default 180)
#
# The env file holds S3_TEST_ENDPOINT, S3_TEST_ACCESS_KEY_ID, S3_TEST_SECRET_ACCESS_KEY
# and S3_TEST_REGION, for `set -a; . /tmp/rgw.env; set +a` before the tests.
set -euo pipefail

DIR=${CEPH_RGW_DIR:-/tmp/tubecache-ceph}
RGW_PORT=${CEPH_RGW_PORT:-7480}
MON_PORT=${CEPH_MON_PORT:-6789}
MON_V2_PORT=$((MON_PORT - 3489))
ENV_FILE=${CEPH_RGW_ENV:-/tmp/rgw.env}
MEMSTORE_GB=${CEPH_MEMSTORE_GB:-6}
TIMEOUT=${CEPH_RGW_TIMEOUT:-180}
CONF=$DIR/ceph.conf
ENDPOINT=http://127.0.0.1:$RGW_PORT
USER_ID=tubecache-test

log() { echo "ceph-rgw: $*" >&2; }
die() { log "$*"; exit 1; }
# Every Ceph command reads our config only, never /etc/ceph.
ceph_() { timeout 30 ceph -c "$CONF" "$@"; }

answers_s3() {
  # An anonymous GET / on RGW answers a ListAllMyBuckets XML document.
  curl -s -m 2 "$ENDPOINT/" 2>/dev/null | grep -q 'ListAllMyBucketsResult'
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop() {
  for daemon in client.rgw osd.0 mon.a; do
    local pidfile=$DIR/run/$daemon.pid
    if pid_alive "$pidfile"; then
      local pid
      pid=$(cat "$pidfile")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$DIR"
  rm -f "$ENV_FILE"
  log "stopped"
}

write_env() {
  local info key secret
  info=$(radosgw-admin -c "$CONF" -n client.admin user info --uid="$USER_ID")
  key=$(printf '%s' "$info" | python3 -c 'import json,sys; print(json.load(sys.stdin)["keys"][0]["access_key"])')
  secret=$(printf '%s' "$info" | python3 -c 'import json,sys; print(json.load(sys.stdin)["keys"][0]["secret_key"])')
  umask 077
  cat >"$ENV_FILE.tmp" <<EOF
S3_TEST_ENDPOINT=$ENDPOINT
S3_TEST_ACCESS_KEY_ID=$key
S3_TEST_SECRET_ACCESS_KEY=$secret
S3_TEST_REGION=us-east-1
EOF
  chmod 644 "$ENV_FILE.tmp"
  mv "$ENV_FILE.tmp" "$ENV_FILE"
  cat "$ENV_FILE"
}

wait_for() { # description, command...
  local what=$1; shift
  local deadline=$((SECONDS + TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "$what not ready within ${TIMEOUT}s; logs in $DIR/log"
    sleep 0.5
  done
}

osd_up() { ceph_ osd dump 2>/dev/null | grep -q '^osd.0 up'; }

start() {
  [ "$(id -u)" = 0 ] || die "run as root (the Ceph daemons and, if needed, apt-get)"
  if answers_s3 && pid_alive "$DIR/run/client.rgw.pid"; then
    log "already running at $ENDPOINT"
    write_env
    return
  fi
  # A half-started or stale cluster (memstore lost its data with the process): start over.
  [ -e "$DIR" ] && stop

  if ! command -v ceph-mon >/dev/null || ! command -v ceph-osd >/dev/null || ! command -v radosgw >/dev/null; then
    log "installing ceph-mon ceph-osd radosgw"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ceph-mon ceph-osd radosgw >/dev/null
  fi

  local started=$SECONDS fsid
  fsid=$(cat /proc/sys/kernel/random/uuid)
  mkdir -p "$DIR"/{run,log,mon,osd}
  cat >"$CONF" <<EOF
[global]
fsid = $fsid
mon initial members = a
mon host = [v2:127.0.0.1:$MON_V2_PORT,v1:127.0.0.1:$MON_PORT]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
# No cephx: loopback only, throwaway data.
auth cluster required = none
auth service required = none
auth client required = none
# radosgw defaults to msgr2 "secure" mode towards the monitor, which auth none cannot give.
ms mon client mode = crc secure
run dir = $DIR/run
pid file = $DIR/run/\$name.pid
admin socket = $DIR/run/\$name.asok
log file = $DIR/log/\$name.log
keyring = $DIR/keyring
# One OSD: pools of size 1, placement across OSDs (not hosts).
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
[mon]
mon data = $DIR/mon/\$cluster-\$id
[osd]
osd data = $DIR/osd/\$cluster-\$id
osd objectstore = memstore
memstore device bytes = $((MEMSTORE_GB * 1024 * 1024 * 1024))
# memstore has no journal and little memory to spare on small machines.
osd memory target = 1073741824
# Quiet daemons: the test machine's CPU goes to the tests, not to log lines.
debug ms = 0/0
debug osd = 0/0
debug mon = 0/0
[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1
rgw thread pool size = 64
rgw enable ops log = false
rgw enable usage log = false
debug rgw = 0/0
EOF
  : >"$DIR/keyring"

  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$MON_V2_PORT,v1:127.0.0.1:$MON_PORT]" "$DIR/monmap" >/dev/null
  ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/keyring"
  ceph-mon -c "$CONF" -i a 2>>"$DIR/log/stderr.log"
  wait_for "monitor" ceph_ mon stat

  local osd_uuid
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  ceph_ osd new "$osd_uuid" >/dev/null
  mkdir -p "$DIR/osd/ceph-0"
  ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$osd_uuid" >"$DIR/log/osd-mkfs.log" 2>&1
  ceph-osd -c "$CONF" -i 0 2>>"$DIR/log/stderr.log"
  wait_for "OSD" osd_up

  radosgw -c "$CONF" -n client.rgw 2>>"$DIR/log/stderr.log"
  wait_for "gateway" answers_s3

  # The suite creates a bucket per test file and more; RGW allows 1,000 per user by default.
  radosgw-admin -c "$CONF" -n client.admin user create --uid="$USER_ID" --display-name="tubecache tests" --max-buckets=100000 >/dev/null
  write_env
  log "S3 at $ENDPOINT, started in $((SECONDS - started)) s"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) answers_s3 ;;
  *) die "usage: $0 [start|stop|status]" ;;
esac
