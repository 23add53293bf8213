#!/bin/sh
# The local nginx stand-in's entrypoint (deploy/bases/Containerfile): the official image's template
# step. Each /etc/nginx/templates/NAME.template becomes $NGINX_ENVSUBST_OUTPUT_DIR/NAME with the
# environment's variables filled in; any other ${...} (nginx's own $host and the like) stays.
set -eu
out=${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}
defined=$(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/${\1}/p' | tr '\n' ' ')
for template in /etc/nginx/templates/*.template; do
  [ -f "$template" ] || continue
  name=$(basename "$template" .template)
  mkdir -p "$out"
  envsubst "$defined" < "$template" > "$out/$name"
  echo "nginx-entrypoint: $template -> $out/$name"
done
exec "$@"
