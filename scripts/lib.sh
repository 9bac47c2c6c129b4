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
    local anon=""
    ids=$(docker ps -aq --filter "name=$p" 2>/dev/null || true)
    # A container compose recreated mounts its predecessor's anonymous volumes by name, and
    # `rm -v` keeps those: they go by name (64 hex digits) after their containers.
    [ -n "$ids" ] && anon=$(docker inspect -f '{{range .Mounts}}{{if eq .Type "volume"}}{{.Name}} {{end}}{{end}}' $ids 2>/dev/null |
        tr ' ' '\n' | grep -E '^[0-9a-f]{64}$' || true)
    [ -n "$ids" ] && docker rm -f -v $ids >/dev/null 2>&1 || true
    [ -n "$anon" ] && docker volume rm $anon >/dev/null 2>&1 || true
    ids=$(docker network ls -q --filter "name=$p" 2>/dev/null || true)
    [ -n "$ids" ] && docker network rm $ids >/dev/null 2>&1 || true
    ids=$(docker volume ls -q --filter "name=$p" 2>/dev/null || true)
    [ -n "$ids" ] && docker volume rm -f $ids >/dev/null 2>&1 || true
    return 0
}

# The made-up patch releases of the tests (tests/common/catalog.rs add_patch tags the test-bed
# images `mender-3.6.9N`): a tag left behind (a test binary run by hand, an interrupted run) keeps
# an image the next test-bed build supersedes, and the test run after that leaves it dangling.
remove_test_tags() {
    docker images --format '{{.Repository}}:{{.Tag}}' | grep -E ':mender-3\.6\.9[0-9]$' |
        xargs -r docker rmi >/dev/null 2>&1 || true
}

# What is dangling on the daemon, one "KIND ID" line each: volumes no container uses, containers
# that are not running, networks no container uses, untagged images. The test run compares this
# before and after itself (issue 13: nothing left behind).
leftovers() {
    docker volume ls -q --filter dangling=true | sed 's/^/volume /'
    docker ps -aq --no-trunc --filter status=exited --filter status=created --filter status=dead | sed 's/^/container /'
    docker network ls -q --no-trunc --filter dangling=true | sed 's/^/network /'
    docker images -q --no-trunc --filter dangling=true | sort -u | sed 's/^/image /'
}

# leftovers_since BEFORE: counts per kind before and now, and every new one with what the daemon
# knows of it; returns 1 when anything new dangles (it does not rely on `set -e`).
leftovers_since() {
    local before=$1 now new kind
    now=$(leftovers | sort)
    new=$(comm -13 <(printf '%s\n' "$before" | sed '/^$/d' | sort) <(printf '%s\n' "$now" | sed '/^$/d'))
    for kind in volume container network image; do
        printf '    %-9s dangling: %d before, %d after\n' "$kind" \
            "$(printf '%s\n' "$before" | grep -c "^$kind " || true)" "$(printf '%s\n' "$now" | grep -c "^$kind " || true)"
    done
    [ -z "$new" ] && return 0
    echo "error: the test run left these behind:" >&2
    while read -r kind id; do
        case $kind in
        volume) docker volume inspect -f '  volume {{.Name}} created {{.CreatedAt}} labels {{.Labels}}' "$id" >&2 ;;
        container) docker inspect -f '  container {{.Name}} {{.Config.Image}} {{.State.Status}} labels {{.Config.Labels}}' "$id" >&2 ;;
        network) docker network inspect -f '  network {{.Name}} labels {{.Labels}}' "$id" >&2 ;;
        image) docker image inspect -f '  image {{.Id}} created {{.Created}} labels {{.Config.Labels}}' "$id" >&2 ;;
        esac
    done <<<"$new"
    return 1
}
