# Sourced by integration/vm/run and integration/aarch64/run (bash): what the two test VMs'
# `run` share. The rig sets its name and defaults, checks its cache, says how its guest finds
# the command and which kernel modules it gets, and gives its QEMU command line; this file
# parses the options, builds the guest's environment, writes the control dir (the shares to
# mount, the snapshots, the command as a sh script), relays stdout and stderr from the
# virtio-serial ports and exits with the command's code (124: timeout, 125: the VM failed).
# The guest side is the rig's `init`.
# shellcheck shell=bash disable=SC2034 # variables for the rig's script

# Set by the rig before vm_options: its name (messages, temp dirs) and defaults.
rig=${rig:?}
console=0
dirs=()
snaps=()
envv=()
command_line=()

die() { echo "$rig: $*" >&2; exit 125; }
usage() { sed -n '2,/^set /{/^set /d;s/^# \{0,1\}//;p}' "$0" >&2; exit 125; }

# vm_options STOP_AT_COMMAND ARGS...: the options (README of each rig), then COMMAND [ARGS...]
# into command_line. STOP_AT_COMMAND=1: a word that is no option starts the command (cargo's
# runner form); 0: it is a usage error.
vm_options() {
    local stop_at_command=$1
    shift
    while (($#)); do
        case $1 in
        --timeout) timeout=${2:?}; shift 2 ;;
        --mem) mem=${2:?}; shift 2 ;;
        --cpus) cpus=${2:?}; shift 2 ;;
        --share) dirs+=("$(readlink -f "${2:?}")"); shift 2 ;;
        --snapshot) snaps+=("$(readlink -f "${2:?}")"); shift 2 ;;
        -e | --env) envv+=("${2:?}"); shift 2 ;;
        --console) console=1; shift ;;
        --) shift; break ;;
        *) ((stop_at_command)) && break; usage ;;
        esac
    done
    (($#)) || usage
    [[ $timeout =~ ^[0-9]+$ && $mem =~ ^[0-9]+$ && $cpus =~ ^[0-9]+$ ]] || usage
    [[ $EUID == 0 ]] || die "run as root (the read-write 9p shares keep file ownership)"
    command_line=("$@")
}

# vm_guest_env PATTERN NAME... -- BASE...: the environment the command gets: BASE (HOME,
# PATH), the caller's variables named NAME or matching the extended regex PATTERN, then the
# -e ones. Into guest_env.
vm_guest_env() {
    local pattern=$1 names=() name e
    shift
    while (($#)) && [[ $1 != -- ]]; do names+=("$1"); shift; done
    shift
    guest_env=("$@")
    for name in "${names[@]}" $(compgen -e | grep -E "^($pattern)" || true); do
        [[ -v $name ]] && guest_env+=("$name=${!name}")
    done
    for e in "${envv[@]}"; do
        if [[ $e == *=* ]]; then guest_env+=("$e"); elif [[ -v $e ]]; then guest_env+=("$e=${!e}"); fi
    done
}

# vm_check_shares REPO BAD_PATTERN: the repository is always shared; a share whose path
# matches the glob BAD_PATTERN (besides a newline) is refused; the command runs in the current
# directory if a share holds it, else in REPO (into cwd). Every snapshot must be in a share.
vm_check_shares() {
    local repo=$1 bad=$2 d f shared
    dirs=("$repo" "${dirs[@]}")
    cwd=$repo
    for d in "${dirs[@]}"; do
        # shellcheck disable=SC2053 # $bad is a glob
        [[ $d == /* && $d != *$'\n'* && $d != $bad ]] || die "cannot share $d"
        [[ $PWD == "$d" || $PWD == "$d"/* ]] && cwd=$PWD
    done
    for f in "${snaps[@]}"; do
        [[ -f $f && $f != *$'\n'* ]] || die "cannot snapshot $f: not a file"
        shared=0
        for d in "${dirs[@]}"; do [[ $f == "$d"/* ]] && shared=1; done
        ((shared)) || die "cannot snapshot $f: not in the repository or a --share"
    done
}

qemu_pid=
relays=()
tmp=
# shellcheck disable=SC2317 # called by the EXIT trap
vm_cleanup() {
    [[ -n $qemu_pid ]] && kill -TERM "$qemu_pid" 2>/dev/null && wait "$qemu_pid" 2>/dev/null
    exec 3>&- 4>&-
    ((${#relays[@]})) && wait "${relays[@]}" 2>/dev/null
    if [[ -n $tmp ]]; then rm -rf "${tmp:?}"; fi
}

# vm_control MODULES_LINE COMMAND ARGS...: a temp dir (removed on exit) with the control
# dir ctl/: config (the modules line, "share TAG PATH" per share, "snapshot PATH") and cmd
# (cd, then exec env -i with guest_env and the command, every word single-quoted). Also the
# QEMU arguments of the shares, into share_args.
vm_control() {
    local modules=$1 i a
    shift
    tmp=$(mktemp -d "/tmp/$rig.XXXXXX")
    trap vm_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM HUP
    q() { local s=${1//\'/\'\\\'\'}; printf " '%s'" "$s"; }
    mkdir "$tmp/ctl"
    {
        echo "modules $modules"
        for i in "${!dirs[@]}"; do echo "share share$i ${dirs[i]}"; done
        for a in "${snaps[@]}"; do echo "snapshot $a"; done
    } >"$tmp/ctl/config"
    {
        printf 'cd'; q "$cwd"; printf ' || exit 125\nexec env -i'
        for a in "${guest_env[@]}" "$@"; do q "$a"; done
        echo
    } >"$tmp/ctl/cmd"
    share_args=()
    for i in "${!dirs[@]}"; do
        share_args+=(-fsdev "local,id=share$i,path=${dirs[i]},security_model=passthrough,multidevs=remap"
            -device "virtio-9p-pci,fsdev=share$i,mount_tag=share$i")
    done
}

# vm_kernel_args: the rig-independent kernel command line (quiet, or harun.trace with
# --console; then EXTRA, the rig's HARUN_*_KCMD).
vm_kernel_args() {
    local kcmd=quiet
    ((console)) && kcmd="harun.trace"
    echo "panic=-1 mitigations=off cryptomgr.notests $kcmd ${1:-}"
}

# vm_boot QEMU ARGS...: run QEMU with the rig's ARGS and the output ports, relay the
# command's stdout and stderr, and exit with its code.
vm_boot() {
    # Output relays: QEMU writes each port into a FIFO (a file chardev would truncate our
    # stdout). fds 3 and 4 hold the FIFOs open so the readers never block, and see EOF only
    # once we close them after QEMU is gone.
    mkfifo "$tmp"/{out,err}.{in,out}
    exec 3<>"$tmp/out.out" 4<>"$tmp/err.out"
    cat "$tmp/out.out" 3>&- 4>&- &
    relays+=($!)
    cat "$tmp/err.out" >&2 3>&- 4>&- &
    relays+=($!)
    # `timeout` runs QEMU in its own process group and kills only that.
    timeout --kill-after=10 "$timeout" "$1" \
        -nodefaults -no-user-config -display none -no-reboot -m "$mem" -smp "$cpus" \
        "${@:2}" \
        -serial "file:$tmp/console.log" \
        -device virtio-serial-pci \
        -chardev "pipe,id=out,path=$tmp/out" -device virtserialport,chardev=out,name=harun.stdout \
        -chardev "pipe,id=err,path=$tmp/err" -device virtserialport,chardev=err,name=harun.stderr \
        -chardev "file,id=status,path=$tmp/status" -device virtserialport,chardev=status,name=harun.status \
        </dev/null >"$tmp/qemu.log" 2>&1 3>&- 4>&- &
    qemu_pid=$!
    local qemu_rc=0 ended= rc
    wait -n -p ended "$qemu_pid" "${relays[@]}" || qemu_rc=$?
    if [[ $ended != "$qemu_pid" ]]; then
        # A relay ended first: our stdout or stderr is gone (e.g. `run ... | head -1`). Like
        # SIGPIPE would, stop the command instead of letting it block on a full port until
        # timeout.
        kill -TERM "$qemu_pid"
        wait "$qemu_pid" || true
        qemu_rc=141
    fi
    qemu_pid=
    exec 3>&- 4>&-
    wait "${relays[@]}" || true
    relays=()
    ((qemu_rc == 141)) && exit 141

    show_console() { echo "--- guest console:" >&2; cat "$tmp/console.log" >&2; }
    ((console)) && show_console
    if ((qemu_rc == 124 || qemu_rc == 137)); then
        echo "$rig: timed out after ${timeout}s" >&2
        ((console)) || show_console
        exit 124
    fi
    if [[ ! -s $tmp/status ]]; then
        echo "$rig: the VM ended without reporting an exit code (qemu exit $qemu_rc)" >&2
        cat "$tmp/qemu.log" >&2
        ((console)) || show_console
        exit 125
    fi
    rc=$(<"$tmp/status")
    [[ $rc =~ ^[0-9]+$ ]] || die "bad exit code from the guest: $rc"
    exit "$rc"
}
