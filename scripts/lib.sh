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

# Removes every container, network and volume the tests named with their prefix (`MCU_TEST_PREFIX`,
# default `mcutest-`), so that a run leaves nothing behind on the daemon, whatever its outcome.
sweep_test_resources() {
    local ids p=${MCU_TEST_PREFIX:-mcutest-}
    ids=$(docker ps -aq --filter "name=$p" 2>/dev/null || true)
    [ -n "$ids" ] && docker rm -f -v $ids >/dev/null 2>&1 || true
    ids=$(docker network ls -q --filter "name=$p" 2>/dev/null || true)
    [ -n "$ids" ] && docker network rm $ids >/dev/null 2>&1 || true
    ids=$(docker volume ls -q --filter "name=$p" 2>/dev/null || true)
    [ -n "$ids" ] && docker volume rm -f $ids >/dev/null 2>&1 || true
    return 0
}
