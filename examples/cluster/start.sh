#!/usr/bin/env bash
# A three-node Stowage cluster on one machine: PostgreSQL in ./run/pg, three `stowage serve` nodes on
# 127.0.0.2-4 (same ports, as on three machines), nginx on 127.0.0.1:8080 (main) and :8443 (docker).
# Ctrl-C stops everything. Needs: stowage on PATH (or STOWAGE=...), PostgreSQL's initdb/pg_ctl, nginx.
# With an existing database: STOWAGE_CATALOG=postgresql://user@host/db ./start.sh
set -euo pipefail
cd "$(dirname "$0")"
STOWAGE=${STOWAGE:-stowage}
RUN=$PWD/run
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
mkdir -p "$RUN" "$RUN/blobs"
as_db_user() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pids=()
cleanup() {
    kill "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
    [ -d "$RUN/pg" ] && as_db_user "$PG_BIN/pg_ctl" -D "$RUN/pg" -m fast stop >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM

if [ -z "${STOWAGE_CATALOG:-}" ]; then
    if [ ! -d "$RUN/pg" ]; then
        [ "$(id -u)" = 0 ] && chown postgres "$RUN"
        as_db_user "$PG_BIN/initdb" -D "$RUN/pg" -U stowage --auth=trust --encoding=UTF8 >/dev/null
    fi
    as_db_user "$PG_BIN/pg_ctl" -D "$RUN/pg" -l "$RUN/pg.log" -w \
        -o "-c listen_addresses=127.0.0.1 -p 55432 -c unix_socket_directories=$RUN" start >/dev/null
    "$PG_BIN/psql" -h 127.0.0.1 -p 55432 -U stowage -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = 'stowage'" | grep -q 1 ||
        "$PG_BIN/createdb" -h 127.0.0.1 -p 55432 -U stowage stowage
    export STOWAGE_CATALOG=postgresql://stowage@127.0.0.1:55432/stowage
fi

# The example config's blob store path, moved under ./run for this one-machine set-up.
sed "s#/var/lib/stowage-cluster/blobs#$RUN/blobs#" cluster.toml > "$RUN/cluster.toml"
for node in 2 3 4; do
    "$STOWAGE" serve --config "$RUN/cluster.toml" --data-dir "$RUN/node$node" --host "127.0.0.$node" \
        --port 8081 >"$RUN/node$node.log" 2>&1 &
    pids+=($!)
    sleep 2   # the first node applies the migrations; the others find them done
done
nginx -p "$PWD" -c "$PWD/nginx.conf" &
pids+=($!)
echo "Stowage cluster: http://127.0.0.1:8080 (docker: 127.0.0.1:8443); catalog $STOWAGE_CATALOG"
echo "admin password: $(cat "$RUN"/node2/admin.password 2>/dev/null || echo "the one in STOWAGE_ADMIN_PASSWORD")"
wait
