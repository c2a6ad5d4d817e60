# tests/pg.sh - start a throwaway PostgreSQL server for one test. Source it after
# tests/lib.sh: it starts Debian's server (initdb + pg_ctl) in $T/pg on a free loopback
# port, as the postgres user when run as root (PostgreSQL refuses root), stops it at
# exit, and sets PG_URL. Exits 0 with "SKIP: ..." where the server cannot exist.
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/initdb" ]; then
  echo "SKIP: PostgreSQL server binaries not found (install Debian's postgresql)"; exit 0
fi
as_pg=()
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || { echo "SKIP: running as root and there is no postgres user"; exit 0; }
  as_pg=(runuser -u postgres --)
fi
chmod 755 "$T"
PGDATA=$T/pg
mkdir -p "$PGDATA" "$T/sock"
[ "$(id -u)" = 0 ] && chown postgres "$PGDATA" "$T/sock"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"${as_pg[@]}" "$PGBIN/initdb" -D "$PGDATA" -U wfh -A trust --no-sync -E UTF8 >"$T/initdb.log" 2>&1 ||
  { cat "$T/initdb.log" >&2; fail "initdb"; done_testing; }
pg_stop() { "${as_pg[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate stop >/dev/null 2>&1; }
trap 'pg_stop; rm -rf "$T"' EXIT
"${as_pg[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -w -t 60 -l "$T/sock/pg.log" \
  -o "-p $PORT -k $T/sock -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null ||
  { cat "$T/sock/pg.log" >&2; fail "pg_ctl start"; done_testing; }
PG_URL="postgresql://wfh@127.0.0.1:$PORT/postgres"
