#!/usr/bin/env bash
# Prepares lnd with the fixes of scenarios/lndfix applied, for
# `make regtest-bin LND_FIX=1`, without touching the module cache:
#   scripts/lnd-fixed-src.sh OUTDIR
# copies the pinned lnd module to OUTDIR/lnd-src, applies each
# scenarios/lndfix/*.patch to it, and writes OUTDIR/go.fix.mod (with its
# go.fix.sum): this project's go.mod with lnd replaced by that copy, for
# `go build -modfile`, so every other dependency keeps the version go.mod
# pins. OUTDIR/lnd-fixes lists the fixes applied, one per line; the regtest
# harness reads it (regtest.LndFixed). See scenarios/lndfix/README.md.
set -euo pipefail

out=$(mkdir -p "$1" && cd "$1" && pwd)
go=${GO:-go}
here=$(cd "$(dirname "$0")/.." && pwd)
moddir=$(cd "$here" && $go list -m -f '{{.Dir}}' github.com/lightningnetwork/lnd)

rm -rf "$out/lnd-src"
cp -r "$moddir" "$out/lnd-src"
chmod -R u+w "$out/lnd-src"
: >"$out/lnd-fixes"
for patch in "$here"/scenarios/lndfix/*.patch; do
  patch --quiet --forward -d "$out/lnd-src" -p1 <"$patch"
  basename "$patch" .patch >>"$out/lnd-fixes"
done

cp "$here/go.mod" "$out/go.fix.mod"
cp "$here/go.sum" "$out/go.fix.sum"
(cd "$here" && $go mod edit -modfile "$out/go.fix.mod" \
  -replace "github.com/lightningnetwork/lnd=$out/lnd-src")
echo "lnd with fixes: $(tr '\n' ' ' <"$out/lnd-fixes")-> $out/lnd-src"
