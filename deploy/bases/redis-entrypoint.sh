#!/bin/sh
# The local redis stand-in's entrypoint (deploy/bases/Containerfile): as the official image's, a
# redis-server started without a config file is reachable from the other containers (protected mode
# off: only the compose network reaches it, and redis refuses them otherwise).
set -eu
if [ "${1:-}" = redis-server ]; then
  case " $* " in
    *" --protected-mode "*) ;;
    *) shift; set -- redis-server "$@" --protected-mode no ;;
  esac
fi
exec "$@"
