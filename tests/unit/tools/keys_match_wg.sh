#!/usr/bin/env bash
# meshgate genkey/pubkey print keys exactly as wg genkey/pubkey: same format, same public key
# for the same private key, in both directions.
set -euo pipefail
meshgate=$1

private=$("$meshgate" genkey)
[[ "$private" =~ ^[A-Za-z0-9+/]{43}=$ ]] || { echo "genkey printed '$private'"; exit 1; }
[ "$("$meshgate" pubkey <<<"$private")" = "$(wg pubkey <<<"$private")" ] || { echo "pubkey differs from wg"; exit 1; }

private=$(wg genkey)
[ "$("$meshgate" pubkey <<<"$private")" = "$(wg pubkey <<<"$private")" ] || { echo "pubkey differs from wg"; exit 1; }

if "$meshgate" pubkey <<<"not a key" 2>/dev/null; then
  echo "pubkey accepted garbage"; exit 1
fi
echo "keys match wg"
