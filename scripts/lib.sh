# shellcheck shell=bash
# Shared by scripts/test, scripts/bench and scripts/serve (sourced, never run):
# the virtualenv, the Debian packages, and the throwaway PostgreSQL and dockerd of
# DESIGN.md section 7. Everything started here listens on 127.0.0.1 or a unix socket
# under its own temp dir, and stop_started_servers removes every trace of it.

# Debian keeps dockerd and runuser in sbin, which a non-login PATH may lack.
[[ ":$PATH:" == *":/usr/sbin:"* ]] || PATH="$PATH:/usr/sbin:/sbin"

APFLOW_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
APFLOW_VENV="$APFLOW_ROOT/.venv"
APFLOW_TEST_IMAGE="apflow-test-busybox:latest"

say() { printf 'apflow: %s\n' "$*" >&2; }
_APFLOW_T0=${EPOCHREALTIME//[!0-9]/}
elapsed() { # seconds since lib.sh was sourced, e.g. 3.2s
    local ms=$(((${EPOCHREALTIME//[!0-9]/} - _APFLOW_T0) / 1000))
    printf '%d.%ds' $((ms / 1000)) $((ms % 1000 / 100))
}
die() {
    say "error: $*"
    exit 1
}

# ---------------------------------------------------------------------------
# Debian packages
# ---------------------------------------------------------------------------

# Our own policy-rc.d, present only while apt runs: installing postgresql or docker.io
# must not start the system's cluster or dockerd (a system dockerd rewrites iptables).
_APFLOW_POLICY_RC=""
_APFLOW_APT_UPDATED=0

_package_missing() { # feature -> prints the Debian package when the feature is missing
    case $1 in
    venv)
        [[ -x $APFLOW_VENV/bin/python ]] || python3 -c 'import ensurepip, venv' 2>/dev/null ||
            echo python3-venv
        ;;
    postgres) postgres_bindir >/dev/null || echo postgresql ;;
    signing) # the webhook-signing snippets we generate are run for real by the tests
        command -v curl >/dev/null || echo curl
        command -v openssl >/dev/null || echo openssl
        ;;
    docker)
        if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then
            echo docker.io
        fi
        [[ $(dpkg-query -W -f='${Status}' busybox-static 2>/dev/null) == "install ok installed" ]] ||
            echo busybox-static
        # docker.io only recommends apparmor, but on a kernel with AppArmor enabled dockerd
        # cannot start a container without apparmor_parser.
        if [[ $(cat /sys/module/apparmor/parameters/enabled 2>/dev/null) == Y ]] &&
            ! command -v apparmor_parser >/dev/null; then
            echo apparmor
        fi
        ;;
    browser) # the dashboard's browser tests drive Debian's chromium, never a downloaded one
        [[ -x /usr/bin/chromium ]] || echo chromium
        ;;
    *) die "unknown feature $1" ;;
    esac
}

_as_root() {
    if ((EUID == 0)); then
        "$@"
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        die "need root to run: $*"
    fi
}

_remove_policy_rc() {
    if [[ -n $_APFLOW_POLICY_RC ]]; then
        _as_root rm -f "$_APFLOW_POLICY_RC"
        _APFLOW_POLICY_RC=""
    fi
}

# ensure_packages FEATURE...: install (once, non-interactively) the Debian packages that
# venv | postgres | docker | signing | browser need and that are not there yet. Fast no-op
# when all are.
ensure_packages() {
    local feature missing=()
    for feature in "$@"; do
        # shellcheck disable=SC2207 # package names have no spaces
        missing+=($(_package_missing "$feature"))
    done
    ((${#missing[@]} == 0)) && return 0
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
    export DEBIAN_FRONTEND=noninteractive
    if ((_APFLOW_APT_UPDATED == 0)); then
        say "apt-get update"
        _as_root apt-get update -qq </dev/null || die "apt-get update failed"
        _APFLOW_APT_UPDATED=1
    fi
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        _APFLOW_POLICY_RC=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\n# written by apflow scripts/lib.sh during apt-get install\nexit 101\n' |
            _as_root tee "$_APFLOW_POLICY_RC" >/dev/null
        _as_root chmod 755 "$_APFLOW_POLICY_RC"
    fi
    say "installing ${missing[*]}"
    local rc=0
    _as_root apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${missing[@]}" </dev/null >/dev/null || rc=$?
    _remove_policy_rc
    ((rc == 0)) || die "apt-get install ${missing[*]} failed (exit $rc)"
}

# ---------------------------------------------------------------------------
# Virtualenv
# ---------------------------------------------------------------------------

# ensure_venv: .venv with apflow installed editable, with its dev extras. pip runs only
# when pyproject.toml, the interpreter or the checkout's path changed since the last run.
ensure_venv() {
    if [[ -x $APFLOW_VENV/bin/python ]] && ! "$APFLOW_VENV/bin/python" -c '' 2>/dev/null; then
        say "the virtualenv's interpreter is gone; recreating .venv"
        rm -rf "$APFLOW_VENV"
    fi
    if [[ ! -x $APFLOW_VENV/bin/python ]]; then
        ensure_packages venv
        say "creating .venv"
        python3 -m venv "$APFLOW_VENV" || die "python3 -m venv failed"
    fi
    local stamp_file="$APFLOW_VENV/.apflow-install-stamp" stamp
    stamp=$({
        cat "$APFLOW_ROOT/pyproject.toml"
        "$APFLOW_VENV/bin/python" -VV
        echo "$APFLOW_ROOT"
    } | sha256sum | cut -d' ' -f1)
    if [[ -f $stamp_file && $(<"$stamp_file") == "$stamp" ]]; then
        return 0
    fi
    say "pip install -e '.[dev]'"
    rm -f "$stamp_file"
    (cd "$APFLOW_ROOT" && PIP_NO_INPUT=1 "$APFLOW_VENV/bin/python" -m pip install -q \
        --disable-pip-version-check -e '.[dev]') || die "pip install failed"
    echo "$stamp" >"$stamp_file"
}

# ---------------------------------------------------------------------------
# Throwaway PostgreSQL
# ---------------------------------------------------------------------------

_APFLOW_PG_DIR=""
_APFLOW_PG_BIN=""

postgres_bindir() { # newest /usr/lib/postgresql/<ver>/bin with initdb and pg_ctl
    local dir
    for dir in $(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null | sort -rV); do
        if [[ -x $dir/initdb && -x $dir/pg_ctl ]]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

free_port() { # a TCP port on 127.0.0.1 that nothing listens on right now
    local python=python3
    [[ -x $APFLOW_VENV/bin/python ]] && python=$APFLOW_VENV/bin/python # skips pyenv shims
    "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

_as_postgres() { # PostgreSQL refuses to run as root
    if ((EUID == 0)); then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# start_postgres: initdb a fresh cluster and start it on a free port; exports
# APFLOW_TEST_POSTGRES_DSN. max_connections is raised for the multi-node chaos tests.
start_postgres() {
    _APFLOW_PG_BIN=$(postgres_bindir) || die "no PostgreSQL under /usr/lib/postgresql"
    _APFLOW_PG_DIR=$(mktemp -d /tmp/apflow-pg.XXXXXX) || die "mktemp failed"
    ((EUID == 0)) && chown postgres: "$_APFLOW_PG_DIR"
    local data="$_APFLOW_PG_DIR/data" log="$_APFLOW_PG_DIR/postgres.log"
    if ! _as_postgres "$_APFLOW_PG_BIN/initdb" -D "$data" -A trust -U postgres -E UTF8 \
        --locale=C --no-sync >"$_APFLOW_PG_DIR/initdb.log" 2>&1; then
        tail -n 20 "$_APFLOW_PG_DIR/initdb.log" >&2
        die "initdb failed"
    fi
    local attempt port
    # A free port can be taken between choosing it and binding it; try a few.
    for attempt in 1 2 3; do
        port=$(free_port) || die "no free port"
        if _as_postgres "$_APFLOW_PG_BIN/pg_ctl" -D "$data" -l "$log" -w -t 30 start \
            -o "-p $port -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" \
            >/dev/null; then
            export APFLOW_TEST_POSTGRES_DSN="postgresql://postgres@127.0.0.1:$port/postgres"
            say "PostgreSQL $(basename "$(dirname "$_APFLOW_PG_BIN")") on 127.0.0.1:$port"
            return 0
        fi
        say "PostgreSQL did not start on port $port (attempt $attempt)"
    done
    tail -n 20 "$log" >&2
    die "PostgreSQL did not start; log above"
}

stop_postgres() {
    [[ -n $_APFLOW_PG_DIR ]] || return 0
    local data="$_APFLOW_PG_DIR/data" pid
    if [[ -f $data/postmaster.pid ]]; then
        if ! _as_postgres "$_APFLOW_PG_BIN/pg_ctl" -D "$data" -m fast -w -t 20 stop >/dev/null 2>&1; then
            pid=$(head -n 1 "$data/postmaster.pid" 2>/dev/null)
            [[ $pid =~ ^[0-9]+$ ]] && kill -KILL "$pid" 2>/dev/null
            say "PostgreSQL did not stop in time; killed $pid"
        fi
    fi
    rm -rf "$_APFLOW_PG_DIR"
    _APFLOW_PG_DIR=""
    unset APFLOW_TEST_POSTGRES_DSN
}

# ---------------------------------------------------------------------------
# Throwaway dockerd
# ---------------------------------------------------------------------------

_APFLOW_DOCKER_DIR=""
_APFLOW_DOCKERD_PID=""
APFLOW_DOCKER_UNAVAILABLE="" # why dockerd could not be used, when it could not

_pid_alive() { # running and not a zombie
    local state
    state=$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $state && $state != Z && $state != X ]]
}

_wait_gone() { # pid tenths-of-seconds
    local i
    for ((i = 0; i < $2; i++)); do
        _pid_alive "$1" || return 0
        sleep 0.1
    done
    return 1
}

_docker() { DOCKER_HOST="unix://$_APFLOW_DOCKER_DIR/docker.sock" docker "$@"; }

_docker_unavailable() { # reason: record it, show dockerd's last words, stop what we started
    APFLOW_DOCKER_UNAVAILABLE=$1
    say "dockerd unavailable: $1"
    if [[ -n $_APFLOW_DOCKER_DIR && -f $_APFLOW_DOCKER_DIR/dockerd.log ]]; then
        tail -n 5 "$_APFLOW_DOCKER_DIR/dockerd.log" >&2
    fi
    stop_dockerd
    return 1
}

# launch_dockerd: start dockerd on a private socket, with no bridge and no iptables or
# forwarding changes, without waiting for it (start_dockerd waits), so that it boots
# while PostgreSQL does. Returns 1 (and sets APFLOW_DOCKER_UNAVAILABLE) if it cannot.
launch_dockerd() {
    [[ -z $_APFLOW_DOCKER_DIR ]] || return 0
    [[ -z $APFLOW_DOCKER_UNAVAILABLE ]] || return 1
    local dockerd
    if ((EUID != 0)); then
        _docker_unavailable "dockerd needs root"
        return 1
    fi
    dockerd=$(command -v dockerd) || {
        _docker_unavailable "no dockerd binary"
        return 1
    }
    _APFLOW_DOCKER_DIR=$(mktemp -d /tmp/apflow-docker.XXXXXX) || die "mktemp failed"
    local dir=$_APFLOW_DOCKER_DIR
    echo '{}' >"$dir/daemon.json" # never read the host's /etc/docker/daemon.json
    # setsid: a Ctrl-C in the terminal must not reach dockerd before our own cleanup does.
    setsid "$dockerd" --config-file "$dir/daemon.json" \
        --bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
        --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$dir/dockerd.pid" \
        --shutdown-timeout 2 -H "unix://$dir/docker.sock" \
        </dev/null >"$dir/dockerd.log" 2>&1 &
    _APFLOW_DOCKERD_PID=$!
    _prepare_rootfs 2>"$dir/rootfs.log" || {
        _docker_unavailable "no busybox rootfs: $(tail -n 1 "$dir/rootfs.log")"
        return 1
    }
}

# start_dockerd: launch dockerd if not yet done, wait (30 s at most) until it answers and
# import the busybox test image. Exports DOCKER_HOST and APFLOW_TEST_DOCKER_IMAGE; returns
# 1 (and sets APFLOW_DOCKER_UNAVAILABLE) when this machine cannot run containers.
start_dockerd() {
    launch_dockerd || return 1
    local i
    for ((i = 0; i < 300; i++)); do
        _docker version >/dev/null 2>&1 && break
        _pid_alive "$_APFLOW_DOCKERD_PID" || {
            _docker_unavailable "dockerd exited while starting"
            return 1
        }
        sleep 0.1
    done
    ((i < 300)) || {
        _docker_unavailable "dockerd did not answer within 30 s"
        return 1
    }
    _build_test_image || return 1
    export DOCKER_HOST="unix://$_APFLOW_DOCKER_DIR/docker.sock"
    export APFLOW_TEST_DOCKER_IMAGE=$APFLOW_TEST_IMAGE
    say "dockerd $(_docker version --format '{{.Server.Version}}') on $DOCKER_HOST, image $APFLOW_TEST_IMAGE"
}

# There is no registry to pull from: the image is Debian's static busybox, one symlink
# per applet (sh, echo, sleep, cat, env, true, false, wget, ...). The rootfs is laid out
# while dockerd boots; _build_test_image imports it once dockerd answers.
_prepare_rootfs() {
    local rootfs="$_APFLOW_DOCKER_DIR/rootfs" applet
    mkdir -p "$rootfs"/{bin,dev,etc,proc,root,sys,tmp}
    chmod 1777 "$rootfs/tmp"
    cp /bin/busybox "$rootfs/bin/busybox" || return 1
    for applet in $("$rootfs/bin/busybox" --list); do
        [[ $applet == busybox ]] || ln -sf busybox "$rootfs/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$rootfs/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
}

_build_test_image() {
    local rootfs="$_APFLOW_DOCKER_DIR/rootfs"
    tar -C "$rootfs" -c . | _docker import -c 'ENV PATH=/bin' -c 'CMD ["/bin/sh"]' \
        - "$APFLOW_TEST_IMAGE" >/dev/null 2>"$_APFLOW_DOCKER_DIR/import.log" || {
        _docker_unavailable "docker import failed: $(tail -n 1 "$_APFLOW_DOCKER_DIR/import.log")"
        return 1
    }
    local out
    out=$(_docker run --rm --network none "$APFLOW_TEST_IMAGE" echo ok 2>"$_APFLOW_DOCKER_DIR/run.log") || true
    if [[ $out != ok ]]; then
        _docker_unavailable "a container does not run: $(tail -n 1 "$_APFLOW_DOCKER_DIR/run.log")"
        return 1
    fi
}

stop_dockerd() {
    [[ -n $_APFLOW_DOCKER_DIR ]] || return 0
    local dir=$_APFLOW_DOCKER_DIR pid containerd_pid
    pid=$(cat "$dir/dockerd.pid" 2>/dev/null) || pid=$_APFLOW_DOCKERD_PID
    containerd_pid=$(cat "$dir/exec/containerd/containerd.pid" 2>/dev/null) || containerd_pid=""
    if [[ $pid =~ ^[0-9]+$ ]] && _pid_alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null
        if ! _wait_gone "$pid" 200; then
            say "dockerd did not stop within 20 s; killing it"
            kill -KILL "$pid" 2>/dev/null
            _wait_gone "$pid" 50
        fi
    fi
    # dockerd stops the containerd it started, except when it was killed.
    if [[ $containerd_pid =~ ^[0-9]+$ ]] && _pid_alive "$containerd_pid"; then
        kill -KILL "$containerd_pid" 2>/dev/null
        _wait_gone "$containerd_pid" 50
    fi
    # A killed dockerd leaves its bind and overlay mounts behind.
    local mounts
    mounts=$(awk -v d="$dir/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r)
    [[ -n $mounts ]] && xargs -r umount -l <<<"$mounts"
    rm -rf "$dir"
    _APFLOW_DOCKER_DIR=""
    _APFLOW_DOCKERD_PID=""
    unset DOCKER_HOST APFLOW_TEST_DOCKER_IMAGE
}

# ---------------------------------------------------------------------------
# Cleanup on every exit path
# ---------------------------------------------------------------------------

stop_started_servers() {
    local rc=$?
    trap - EXIT INT TERM HUP
    set +e
    stop_dockerd
    stop_postgres
    _remove_policy_rc
    return "$rc"
}

# install_cleanup_trap: call once, before starting anything.
install_cleanup_trap() {
    trap stop_started_servers EXIT
    trap 'exit 129' HUP
    trap 'exit 130' INT
    trap 'exit 143' TERM
}
