#!/usr/bin/env bash
# PostgreSQL on the shared stack, unmodified: the postmaster forks a
# backend per connection (the accepted socket crosses fork) and runs as
# its own user, so the stack daemon is started first by root, admitting
# the postgres group (as scripts/ustack --daemon --group does:
# /dev/net/tun is root's). Kernel psql loads 200,000 rows and reads them
# back (the table's md5 against one computed here), COPY moves 8 MiB each
# way, pgbench runs 8 clients at once (8 backends), and psql on the stack
# talks to it too (both ends under the shim). Before: "could not receive
# data from client: File descriptor in bad state".
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need python3 ip ss
pgbin=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
for c in initdb postgres psql pgbench; do
    [[ -n $pgbin && -x $pgbin/$c ]] || {
        echo "shared-postgres: FAIL: PostgreSQL's $c not installed (Debian package postgresql): run scripts/setup.sh --test" >&2
        exit 1
    }
done
id postgres >/dev/null 2>&1 || { echo "shared-postgres: FAIL: no postgres user (Debian package postgresql)" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || { echo "shared-postgres: FAIL: needs root (postgres runs as its own user)" >&2; exit 1; }
source scripts/compat/lib.sh
source scripts/compat/shared.sh

chmod 755 "$WORK"
mkdir -p "$WORK/data" && chown postgres "$WORK/data" && chmod 700 "$WORK/data"
runuser -u postgres -- "$pgbin/initdb" -A trust -U postgres -D "$WORK/data" >"$WORK/initdb.log" 2>&1 || {
    cat "$WORK/initdb.log"
    exit 1
}
mkdir -p "$WORK/sock" && chown postgres "$WORK/sock"
cat >>"$WORK/data/postgresql.conf" <<CONF
listen_addresses = '$ADDR'
port = 5433
unix_socket_directories = '$WORK/sock'
max_connections = 40
fsync = off
CONF
printf 'host all all %s/32 trust\nhost all all %s/32 trust\n' "$PEER" "$ADDR" >>"$WORK/data/pg_hba.conf"

if [[ $COMPAT_MODE == shim ]]; then
    bg "$USTACKD" --persistent --group "$(id -g postgres)" 2>"$WORK/ustackd.log"
    retry 10 daemon_up || fail "the root daemon never answered: $(tail -3 "$WORK/ustackd.log")"
fi
bg timeout 300 runuser -u postgres -- "${STACK[@]}" "$pgbin/postgres" -D "$WORK/data" 2>"$WORK/pg.log"
srv=$bg_pid
sql() { timeout 60 "$pgbin/psql" -X -q -At -h "$ADDR" -p 5433 -U postgres -v ON_ERROR_STOP=1 "$@"; }
if retry 20 sql -c 'select 1' >/dev/null 2>&1; then
    same_text "kernel psql sees the server's and its own address" "$ADDR|$PEER" \
        "$(sql -c 'select host(inet_server_addr()), host(inet_client_addr())')"
    sql -c 'create table t (id int primary key, v text)' \
        -c 'insert into t select i, md5(i::text) from generate_series(1, 200000) i' || fail "load: exit $?"
    want=$("$PY" -c 'import hashlib; print(hashlib.md5("".join(hashlib.md5(str(i).encode()).hexdigest() for i in range(1, 200001)).encode()).hexdigest())')
    same_text "200,000 rows in and their md5 back" "$want" "$(sql -c "select md5(string_agg(v, '' order by id)) from t")"
    random_file "$WORK/blob.bin" 8
    base64 -w 76 "$WORK/blob.bin" >"$WORK/blob.txt"
    sql -c 'create table b (n serial, line text)' -c "\\copy b (line) from '$WORK/blob.txt'" || fail "COPY in: exit $?"
    sql -c "\\copy (select line from b order by n) to '$WORK/back.txt'" || fail "COPY out: exit $?"
    same_file "8 MiB COPY in and out" "$WORK/blob.txt" "$WORK/back.txt"
    if timeout 120 "$pgbin/pgbench" -h "$ADDR" -p 5433 -U postgres -i -q -s 2 postgres >"$WORK/pgbench.log" 2>&1 &&
        timeout 120 "$pgbin/pgbench" -h "$ADDR" -p 5433 -U postgres -c 8 -j 2 -t 100 postgres >>"$WORK/pgbench.log" 2>&1; then
        tps=$(grep -o 'tps = [0-9.]*' "$WORK/pgbench.log" | head -n 1)
        processed=$(grep -o 'actually processed: [0-9/]*' "$WORK/pgbench.log" | grep -o '[0-9/]*$')
        same_text "pgbench, 8 clients at once: every transaction processed ($tps)" "800/800" "$processed"
        same_text "pgbench's history holds every transaction" 800 "$(sql -c 'select count(*) from pgbench_history')"
    else
        fail "pgbench: $(tail -3 "$WORK/pgbench.log")"
    fi
    same_text "psql on the stack too (both ends under the shim)" "200000 $ADDR" \
        "$(timeout 60 "${STACK[@]}" "$pgbin/psql" -X -At -h "$ADDR" -p 5433 -U postgres -F ' ' \
            -c 'select count(*), host(inet_client_addr()) from t' 2>&1)"
else
    fail "postgres on the stack never answered: $(tail -3 "$WORK/pg.log")"
fi
stop "$srv"
if grep -E "FATAL|PANIC|bad state|could not" "$WORK/pg.log" >"$WORK/pg.err"; then
    fail "postgres logged: $(head -3 "$WORK/pg.err")"
else
    pass "postgres logged no error"
fi
no_leak
compat_done
