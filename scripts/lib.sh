# Shared by the scripts: where caches live (outside the clone, so a fresh clone reuses them) and
# how steps report themselves.

export MCU_CACHE=${MCU_CACHE:-/var/cache/mcu}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$MCU_CACHE/target}
export MCU_TARGET_BIN="$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu"
export PATH="$PATH:/usr/local/go/bin:$HOME/.cargo/bin"
mkdir -p "$MCU_CACHE"

fail() {
    echo "error: $*" >&2
    exit 1
}

# step NAME COMMAND...: runs a step and prints how long it took.
step() {
    local name=$1 start end
    shift
    start=$(date +%s.%N)
    echo "==> $name"
    "$@"
    end=$(date +%s.%N)
    awk -v n="$name" -v s="$start" -v e="$end" 'BEGIN { printf "    %s: %.1f s\n", n, e - s }'
}
