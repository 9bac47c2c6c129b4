#!/bin/sh
# Like the official image: options alone start mongod; any other command runs as given
# (mongodump, mongorestore in sidecars).
set -e
if [ "${1#-}" != "$1" ]; then
    set -- mongod "$@"
fi
exec "$@"
