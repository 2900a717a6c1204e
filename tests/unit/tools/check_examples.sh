#!/usr/bin/env bash
# meshgate check: exit 0 and a summary for every shipped example; exit 1 with
# file:line:column for a broken configuration.
set -euo pipefail
meshgate=$1
examples=$2
for file in "$examples"/*.yaml; do
  "$meshgate" check -c "$file" >/dev/null || { echo "check refused $file"; exit 1; }
done
broken=$(mktemp)
trap 'rm -f "$broken"' EXIT
sed 's/listen_port: 51820/listen_port: 0/' "$examples/default.yaml" >"$broken"
if output=$("$meshgate" check -c "$broken" 2>&1); then
  echo "check accepted listen_port 0"; exit 1
fi
[[ "$output" == "$broken:"*":"*": interface.listen_port: expected an integer from 1 to 65535, got \"0\"" ]] || {
  echo "unexpected message: $output"; exit 1; }
echo "check ok"
