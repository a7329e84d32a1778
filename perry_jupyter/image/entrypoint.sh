#!/bin/bash
# Perry workspace entrypoint. Runs as root under tini (PID 1), prepares the workspace,
# starts sshd and (unless PERRY_DIND=0) dockerd, then supervises both until SIGTERM.
# It says "perry: ready (dind: starting|ready|off)" once sshd listens: Perry's readiness.
# `perry-entrypoint dockerd` is its own inner step: the socket-activated dockerd (below).
# `perry-entrypoint clone` (as root, e.g. through docker exec) clones PERRY_CLONE_URL
# into the home and prints the clone's path: Perry clones that way, so a credential is
# only in that exec's environment, never in the container's.
#
# Environment:
#   PERRY_DIND=0                 do not start the inner Docker engine (default: start it)
#   PERRY_DOCKER_STORAGE_DRIVER  storage driver for the inner dockerd (default: automatic,
#                                overlay2 where the kernel allows it, else vfs)
#   PERRY_DOCKERD_ARGS           extra arguments for the inner dockerd (split on spaces)
#   PERRY_CLONE_URL              git URL to clone once into /home/workspace/<name>, or the
#                                path of a bind-mounted local repository (/perry/clone-src),
#                                which is read as root whatever its permissions
#   PERRY_CLONE_NAME             directory name for the clone (default: from the URL, or
#                                for a bind-mounted path, the name of the host's folder)
#   PERRY_CLONE_BRANCH           branch to check out (default: the remote's HEAD)
#   PERRY_CLONE_USERNAME, PERRY_CLONE_PASSWORD
#                                a credential git gets from a credential helper for this
#                                clone only (not stored, not in .git/config)
#   PERRY_CLONE_ORIGIN           the origin URL .git/config keeps instead of PERRY_CLONE_URL
#                                (one with its credentials, when the user asks to keep them)
#   PERRY_CLONE_TIMEOUT          seconds the clone may take (default 900; then exit 124)
#
# Files:
#   /run/perry/ready                      exists once sshd accepts connections and the inner
#                                         engine's socket does (the engine may still be starting)
#   /run/perry/dind                       the inner engine: "starting", then "ready" once it answered
#   /home/workspace/.perry/clone.log      output of the clone (also on failure)
#   /home/workspace/.perry/clone.done     marker: the clone succeeded (holds its path)
#   /home/workspace/.perry/clone.failed   marker: the clone failed (holds git's exit status)
#   /var/log/dockerd.log                  the inner dockerd's log

set -u

WS_USER=workspace
WS_UID=1000
WS_GID=1000
WS_HOME=/home/workspace
PERRY_STATE="$WS_HOME/.perry"
READY_FILE=/run/perry/ready
DIND_STATE_FILE=/run/perry/dind
DOCKERD_LOG=/var/log/dockerd.log

SSHD_PID=""
DOCKERD_PID=""
CLONE_PID=""
STOPPING=0
DOCKERD_FAILS=0
DOCKERD_NEXT_START=0

log() { echo "perry: $*"; }

dind_enabled() { [ "${PERRY_DIND:-1}" != "0" ]; }

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

as_user() {
    runuser -u "$WS_USER" -- env HOME="$WS_HOME" USER="$WS_USER" LOGNAME="$WS_USER" \
        SHELL=/bin/bash "$@"
}

# --- the home volume ------------------------------------------------------------------

prepare_home() {
    mkdir -p "$WS_HOME"
    if [ "$(stat -c %u:%g "$WS_HOME")" != "$WS_UID:$WS_GID" ]; then
        chown "$WS_UID:$WS_GID" "$WS_HOME"
    fi
    chmod 0755 "$WS_HOME"
    if [ ! -d "$PERRY_STATE" ]; then
        install -d -o "$WS_UID" -g "$WS_GID" -m 0755 "$PERRY_STATE"
    fi
    if [ ! -e "$PERRY_STATE/home-initialized" ]; then
        # Copy as the user (so the files are theirs), never overwriting what is there.
        as_user cp -rn /etc/skel/. "$WS_HOME/" || log "could not seed $WS_HOME from /etc/skel"
        as_user touch "$PERRY_STATE/home-initialized"
        log "home $WS_HOME initialized"
    fi
}

# --- sshd -----------------------------------------------------------------------------

# ed25519 and ECDSA keys take milliseconds to make; an RSA key takes 0.1-0.6 s on a small
# machine, most of a first start. So the fast ones are made now and RSA in the background,
# at low priority; sshd offers RSA from the next start (every client since OpenSSH 6.5
# takes ed25519). Each key appears whole (made aside, then renamed), never half-written.
ensure_host_keys() {
    local type made=""
    rm -f /etc/ssh/.perry-new-*  # left by a stop during the making of one
    for type in ed25519 ecdsa; do
        host_key_present "$type" && continue
        make_host_key "$type" && made="$made $type"
    done
    [ -n "$made" ] && log "generated ssh host keys:$made"
    if ! host_key_present rsa; then
        (make_host_key rsa nice -n 19 && log "generated ssh host key: rsa (offered from the next start)") &
    fi
    return 0
}

host_key_present() { [ -s "/etc/ssh/ssh_host_${1}_key" ] && [ -s "/etc/ssh/ssh_host_${1}_key.pub" ]; }

make_host_key() {  # type [a command to run ssh-keygen under, such as nice]
    local type=$1 key="/etc/ssh/ssh_host_${1}_key" aside
    shift
    aside=$(mktemp -u "/etc/ssh/.perry-new-${type}.XXXXXX")
    if ! "$@" ssh-keygen -q -t "$type" -N '' -C "perry@$(hostname)" -f "$aside" </dev/null; then
        log "ssh-keygen $type failed"
        rm -f "$aside" "$aside.pub"
        return 1
    fi
    mv -f "$aside.pub" "$key.pub" && mv -f "$aside" "$key"
}

start_sshd() {
    mkdir -p /run/sshd
    chmod 0755 /run/sshd
    rm -f /run/sshd.pid
    # The keys present now: sshd would complain of each default one that is still missing.
    local args=() type
    for type in ed25519 ecdsa rsa; do
        host_key_present "$type" && args+=(-h "/etc/ssh/ssh_host_${type}_key")
    done
    /usr/sbin/sshd -D -e "${args[@]}" &
    SSHD_PID=$!
    log "sshd started (pid $SSHD_PID)"
}

# sshd writes its pid file once its sockets listen: from then on a connection is accepted
# (queued until sshd takes it), with no probe connection for sshd to fork a child for.
sshd_listens() { [ -s /run/sshd.pid ]; }

# --- dockerd --------------------------------------------------------------------------

# Debian defaults to iptables-nft; a kernel without nf_tables still has the legacy tables.
choose_iptables() {
    if iptables -w -t nat -L -n >/dev/null 2>&1; then
        return 0
    fi
    if [ -x /usr/sbin/iptables-legacy ] && iptables-legacy -w -t nat -L -n >/dev/null 2>&1; then
        update-alternatives --quiet --set iptables /usr/sbin/iptables-legacy || true
        update-alternatives --quiet --set ip6tables /usr/sbin/ip6tables-legacy || true
        log "using iptables-legacy"
    else
        log "warning: iptables does not work here; the inner dockerd may fail"
    fi
}

# overlay2 needs a /var/lib/docker that is not itself on overlayfs (a volume is fine) and
# the right to mount; vfs works everywhere, only slower and bigger. A driver used before
# on this /var/lib/docker is kept, so images already pulled stay visible.
choose_storage_driver() {
    if [ -n "${PERRY_DOCKER_STORAGE_DRIVER:-}" ]; then
        echo "$PERRY_DOCKER_STORAGE_DRIVER"
        return
    fi
    local d
    for d in overlay2 vfs; do
        if [ -d "/var/lib/docker/$d" ] && [ -n "$(ls -A "/var/lib/docker/$d" 2>/dev/null)" ]; then
            echo "$d"
            return
        fi
    done
    mkdir -p /var/lib/docker
    if [ "$(stat -f -c %T /var/lib/docker)" != "overlayfs" ] && overlay_mount_works; then
        echo overlay2
    else
        echo vfs
    fi
}

overlay_mount_works() {
    local t rc
    t=$(mktemp -d /var/lib/docker/.perry-overlay-test.XXXXXX) || return 1
    mkdir -p "$t/lower" "$t/upper" "$t/work" "$t/merged"
    mount -t overlay overlay -o "lowerdir=$t/lower,upperdir=$t/upper,workdir=$t/work" "$t/merged" \
        2>/dev/null
    rc=$?
    [ "$rc" = 0 ] && umount "$t/merged"
    rm -rf "$t"
    return "$rc"
}

# Socket activation, as systemd does it for Docker: the socket is made first and handed to
# dockerd (`-H fd://`), so it exists before the workspace is ready and a client that comes
# before the engine serves (`docker`, an SDK, curl) waits in the socket's queue instead of
# failing. Readiness does not wait for the engine (DIND_STATE_FILE says how far it is).
# The socket's maker then runs `perry-entrypoint dockerd`, which settles iptables and the
# storage driver and becomes dockerd (same pid, which LISTEN_PID names), all in the
# background of the start.
LISTEN_AND_EXEC='
import grp, os, socket, sys
path = "/var/run/docker.sock"
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.bind(path)
os.chown(path, 0, grp.getgrnam("docker").gr_gid)
os.chmod(path, 0o660)
sock.listen(socket.SOMAXCONN)
os.dup2(sock.fileno(), 3)
os.set_inheritable(3, True)
os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS="1")
os.execv(sys.argv[1], sys.argv[1:])
'

start_dockerd() {
    echo starting >"$DIND_STATE_FILE"
    rm -f /var/run/docker.pid /var/run/docker.sock /var/run/docker/containerd/containerd.pid
    python3 -c "$LISTEN_AND_EXEC" /usr/local/bin/perry-entrypoint dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
    DOCKERD_PID=$!
    log "dockerd starting (pid $DOCKERD_PID, log $DOCKERD_LOG)"
    mark_dind_ready "$DOCKERD_PID" &
}

# `perry-entrypoint dockerd`, with the socket on fd 3: becomes the inner dockerd.
dockerd_command() {
    local driver
    choose_iptables
    driver=$(choose_storage_driver)
    log "dockerd: storage driver $driver"
    # shellcheck disable=SC2086
    exec dockerd -H fd:// --storage-driver="$driver" --shutdown-timeout=3 ${PERRY_DOCKERD_ARGS:-}
}

# Waits in the socket's queue for the engine's first answer (no polling), then says so in
# DIND_STATE_FILE, which `perry-worker health` reads.
mark_dind_ready() {
    while [ ! -S /var/run/docker.sock ]; do
        alive "$1" || return 1
        sleep 0.01
    done
    if curl -sf -o /dev/null --unix-socket /var/run/docker.sock docker/_ping; then
        echo ready >"$DIND_STATE_FILE"
        log "the inner Docker engine is ready"
    fi
}

# --- clone ----------------------------------------------------------------------------

clone_name() {
    if [ -n "${PERRY_CLONE_NAME:-}" ]; then
        echo "$PERRY_CLONE_NAME"
        return
    fi
    local src="${PERRY_CLONE_URL%/}" root
    # A bind-mounted local repository: name it after the host folder (the mount's root).
    case "$src" in
        /*)
            root=$(awk -v mp="$src" '$5 == mp { print $4 }' /proc/self/mountinfo | tail -n 1)
            root="${root//\\040/ }"
            [ -n "$root" ] && [ "$root" != / ] && src="$root"
            ;;
    esac
    src="${src##*/}"
    src="${src##*:}"
    src="${src%.git}"
    echo "${src:-repo}"
}

# A bind-mounted local repository belongs to another uid, and git refuses it ("dubious
# ownership"). `git -c` does not reach the upload-pack of a local clone, and later fetches
# from origin need it too: trust that one path system-wide.
trust_local_source() {
    local src="${1#file://}" dir
    case "$src" in /*) ;; *) return 0 ;; esac
    src="${src%/}"
    for dir in "$src" "$src/.git"; do
        git config --system --get-all safe.directory 2>/dev/null | grep -qxF "$dir" ||
            git config --system --add safe.directory "$dir"
    done
}

# Answers git's "get" from the environment and nothing else ("store" and "erase" are no-ops),
# so the credential is used for this clone and kept nowhere.
CREDENTIAL_HELPER='!f() { test "$1" = get || return 0; printf "username=%s\npassword=%s\n" "$PERRY_CLONE_USERNAME" "$PERRY_CLONE_PASSWORD"; }; f'

clone_repo() {
    local name target rc local_src=0
    name=$(clone_name)
    name="${name//\//-}"
    case "$name" in .|..|"") name=repo ;; esac
    target="$WS_HOME/$name"
    case "$PERRY_CLONE_URL" in /*|file://*) local_src=1 ;; esac
    rm -f "$PERRY_STATE/clone.failed"
    {
        echo "perry: cloning $PERRY_CLONE_URL into $target ($(date -u +%FT%TZ))"
        # An empty credential.helper first drops the helpers of the user's git config, one of
        # which could store the credential.
        local git=(git)
        [ -n "${PERRY_CLONE_USERNAME+x}" ] &&
            git+=(-c credential.helper= -c "credential.helper=$CREDENTIAL_HELPER")
        local args=(clone --progress)
        [ -n "${PERRY_CLONE_BRANCH:-}" ] && args+=(--branch "$PERRY_CLONE_BRANCH")
        local run=(timeout -k 10 "${PERRY_CLONE_TIMEOUT:-900}" "${git[@]}" "${args[@]}" --
                   "$PERRY_CLONE_URL" "$target")
        # Nobody can answer a prompt here: fail instead of hanging on a password or on an
        # unknown SSH host key (accepted on first use).
        export GIT_TERMINAL_PROMPT=0
        export GIT_SSH_COMMAND="ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new"
        if [ "$local_src" = 1 ]; then
            # A local repository is often readable by its owner only (mode 700), and that
            # owner is not the workspace user: read it as root, then give the copy to the user.
            trust_local_source "$PERRY_CLONE_URL"
            "${run[@]}" 2>&1 && chown -hR "$WS_UID:$WS_GID" "$target"
        else
            as_user "${run[@]}" 2>&1
        fi
        rc=$?
        if [ "$rc" = 0 ] && [ -n "${PERRY_CLONE_ORIGIN:-}" ]; then
            as_user git -C "$target" remote set-url origin "$PERRY_CLONE_ORIGIN"
            rc=$?
        fi
        if [ "$rc" = 0 ]; then
            echo "perry: clone done"
        elif [ "$rc" = 124 ]; then
            echo "perry: clone timed out after ${PERRY_CLONE_TIMEOUT:-900}s"
        else
            echo "perry: clone failed (exit $rc)"
        fi
    } >"$PERRY_STATE/clone.log" 2>&1 </dev/null
    chown "$WS_UID:$WS_GID" "$PERRY_STATE/clone.log" 2>/dev/null
    if [ "$rc" = 0 ]; then
        as_user sh -c 'printf "%s\n" "$1" > "$2"' sh "$target" "$PERRY_STATE/clone.done"
        log "cloned $PERRY_CLONE_URL into $target"
    else
        # Perry's create reports the log's end.
        as_user sh -c 'printf "%s\n" "$1" > "$2"' sh "$rc" "$PERRY_STATE/clone.failed"
        log "clone of $PERRY_CLONE_URL failed, see $PERRY_STATE/clone.log"
    fi
    return "$rc"
}

# `perry-entrypoint clone`: clone now, print the clone's path (or the log's end on stderr).
clone_command() {
    if [ -z "${PERRY_CLONE_URL:-}" ]; then
        echo "perry: PERRY_CLONE_URL is not set" >&2
        return 2
    fi
    local rc
    clone_repo >/dev/null  # its log lines are for the container's log, when it clones at start
    rc=$?
    if [ "$rc" = 0 ]; then
        cat "$PERRY_STATE/clone.done"
    else
        tail -n 5 "$PERRY_STATE/clone.log" >&2
    fi
    return "$rc"
}

# --- stop -----------------------------------------------------------------------------

wait_gone() {  # pid, tenths of a second
    local i=0
    while alive "$1" && [ "$i" -lt "$2" ]; do
        sleep 0.1
        i=$((i + 1))
    done
    ! alive "$1"
}

shutdown() {
    [ "$STOPPING" = 1 ] && return
    STOPPING=1
    log "stopping"
    rm -f "$READY_FILE" "$DIND_STATE_FILE"
    alive "$CLONE_PID" && kill -TERM "$CLONE_PID" 2>/dev/null
    alive "$SSHD_PID" && kill -TERM "$SSHD_PID" 2>/dev/null
    if alive "$DOCKERD_PID"; then
        # dockerd itself would give each inner container its 10 s stop timeout, which is
        # all `docker stop` grants this container: stop them first with 2 s each.
        local ids
        ids=$(timeout 2 docker ps -q 2>/dev/null)
        if [ -n "$ids" ]; then
            # shellcheck disable=SC2086
            timeout 4 docker stop -t 2 $ids >/dev/null 2>&1
        fi
        kill -TERM "$DOCKERD_PID" 2>/dev/null
    fi
    if alive "$DOCKERD_PID" && ! wait_gone "$DOCKERD_PID" 40; then
        log "dockerd did not stop in time, killing it"
        kill -KILL "$DOCKERD_PID" 2>/dev/null
    fi
    wait_gone "$SSHD_PID" 10 || kill -KILL "$SSHD_PID" 2>/dev/null
    log "stopped"
    exit 0
}

# --- main -----------------------------------------------------------------------------

if [ "${1:-}" = clone ]; then
    clone_command
    exit $?
fi
if [ "${1:-}" = dockerd ]; then
    dockerd_command
    exit $?
fi

trap shutdown TERM INT QUIT HUP

rm -f "$READY_FILE" "$DIND_STATE_FILE"
mkdir -p /run/perry
log "starting workspace $(hostname)"

# All at once: the inner engine (in the background), sshd (what readiness waits for), the home.
if dind_enabled; then
    start_dockerd
else
    log "Docker-in-Docker disabled (PERRY_DIND=0)"
fi
ensure_host_keys
start_sshd
prepare_home

i=0
until sshd_listens && { ! dind_enabled || [ -S /var/run/docker.sock ] || ! alive "$DOCKERD_PID"; }; do
    if ! alive "$SSHD_PID"; then
        log "sshd exited at start, restarting"
        sleep 0.5
        start_sshd
    fi
    i=$((i + 1))
    [ "$i" = 1000 ] && log "sshd is slow to start"
    sleep 0.01
done
touch "$READY_FILE"
# Perry reads this line from the container's attached output: its readiness, no exec needed.
dind_now=off
if dind_enabled; then
    dind_said=""
    [ -r "$DIND_STATE_FILE" ] && read -r dind_said <"$DIND_STATE_FILE"
    dind_now=${dind_said:-starting}  # empty while being rewritten
fi
log "ready (dind: $dind_now)"

if [ -n "${PERRY_CLONE_URL:-}" ]; then
    if [ -e "$PERRY_STATE/clone.done" ]; then
        log "repository already cloned ($(cat "$PERRY_STATE/clone.done"))"
    else
        clone_repo &
        CLONE_PID=$!
    fi
fi

# Supervise. `sleep & wait` keeps the shell responsive to SIGTERM between checks.
while true; do
    sleep 1 &
    wait $! 2>/dev/null
    [ "$STOPPING" = 1 ] && break
    if ! alive "$SSHD_PID"; then
        wait "$SSHD_PID" 2>/dev/null
        log "sshd exited (status $?), restarting"
        start_sshd
    fi
    if dind_enabled && ! alive "$DOCKERD_PID"; then
        now=$(date +%s)
        if [ "$DOCKERD_NEXT_START" = 0 ]; then
            echo starting >"$DIND_STATE_FILE"
            wait "$DOCKERD_PID" 2>/dev/null
            log "dockerd exited (status $?), see $DOCKERD_LOG"
            DOCKERD_FAILS=$((DOCKERD_FAILS + 1))
            # Back off when it keeps failing: 1 s, 2 s, 4 s ... up to 60 s.
            delay=$((1 << (DOCKERD_FAILS > 6 ? 6 : DOCKERD_FAILS - 1)))
            DOCKERD_NEXT_START=$((now + delay))
        elif [ "$now" -ge "$DOCKERD_NEXT_START" ]; then
            DOCKERD_NEXT_START=0
            log "restarting dockerd"
            start_dockerd
        fi
    elif dind_enabled && [ "$DOCKERD_FAILS" -gt 0 ] && [ -S /var/run/docker.sock ]; then
        DOCKERD_FAILS=0
    fi
done
