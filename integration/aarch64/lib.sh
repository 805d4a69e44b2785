# Sourced by build and test (bash): where things are and the cargo environments of the two
# static builds. Needs $here (this directory) set by the caller.
# shellcheck shell=bash disable=SC2034 # variables for the scripts that source this

repo=$(cd "${here:?}/../.." && pwd -P)
cache=${HARUN_AARCH64_CACHE:-/var/cache/harun-aarch64}
# The cross build has its own target dir: another rustc (Debian's), other build scripts.
aarch64_target_dir=${HARUN_AARCH64_TARGET_DIR:-$repo/target/aarch64}
aarch64_triple=aarch64-unknown-linux-gnu
x86_64_triple=x86_64-unknown-linux-gnu

# cargo/rustc and the variables for an aarch64 build with Debian's rustc-web, the arm64 std
# from setup as sysroot, the cross gcc as linker and static glibc. Run as:
# env "${aarch64_env[@]}" "${aarch64_cargo[@]}" build --target "$aarch64_triple" ...
aarch64_setup() {
    # shellcheck source=/dev/null # SYSROOT RUSTC_WEB_VERSION ..., written by setup
    source "$cache/env" 2>/dev/null ||
        { echo "harun-aarch64: nothing in $cache: run integration/aarch64/setup first" >&2; exit 125; }
    local installed
    installed=$(dpkg-query -W -f='${Version}' rustc-web 2>/dev/null || true)
    [[ $installed == "$RUSTC_WEB_VERSION" ]] ||
        { echo "harun-aarch64: rustc-web is ${installed:-missing}, the aarch64 std is for $RUSTC_WEB_VERSION: run integration/aarch64/setup" >&2; exit 125; }
    aarch64_cargo=(/usr/bin/cargo)
    aarch64_env=(
        RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc CARGO_TARGET_DIR="$aarch64_target_dir"
        CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
        "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS=--sysroot $SYSROOT -C target-feature=+crt-static"
        # No debug info in the VM's test binaries: 5x smaller over 9p, faster links.
        CARGO_PROFILE_DEV_DEBUG=false CARGO_PROFILE_TEST_DEBUG=false
    )
}

# The x86_64 static build: the project's own toolchain (rustup), the default target dir.
# static-pie; its ~10,000 relative relocations packed as RELR (glibc >= 2.36 applies them
# at start-up): 0.07 MiB instead of 0.24 MiB of .rela.dyn.
x86_64_rustflags="-C target-feature=+crt-static -C link-arg=-Wl,-z,pack-relative-relocs"
x86_64_env=("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS=$x86_64_rustflags")

# Flags from the caller's environment would replace the per-target ones above: drop them.
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS CARGO_BUILD_TARGET

mib() { awk -v b="$1" 'BEGIN { printf "%.2f MiB", b / 1048576 }'; }
