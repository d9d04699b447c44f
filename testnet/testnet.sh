#!/usr/bin/env bash
# The local multi-node testnet: builds fabgossip, starts a network of peer
# processes on loopback with --keep, prints how to talk to it, and stops
# everything on Ctrl-C. Extra arguments go to `fabgossip testnet`, e.g.
#   testnet/testnet.sh --orgs 2 --peers 3 --quic
#   testnet/testnet.sh --restart     # crash and restart a peer mid-run
# Each peer keeps its blocks in data/ in its directory (see --dir).
set -euo pipefail
cd "$(dirname "$0")/.."

bindir="$(mktemp -d "${TMPDIR:-/tmp}/fabgossip-bin.XXXXXX")"
trap 'rm -rf "$bindir"' EXIT

echo "building fabgossip into $bindir"
go build -o "$bindir/fabgossip" ./cmd/fabgossip
export PATH="$bindir:$PATH"

cat <<MSG
starting the testnet; once it prints the peers' admin URLs, in another shell:
  $bindir/fabgossip status  --admin http://127.0.0.1:PORT
  $bindir/fabgossip publish --admin http://127.0.0.1:PORT --channel ch0 --data hello
  curl -s http://127.0.0.1:PORT/metrics | grep ^fabgossip_
press Ctrl-C here to stop every peer.
MSG

# The testnet stops its peers and removes its files on Ctrl-C; the trap
# removes the binary. Not exec: the trap must run after it.
status=0
fabgossip testnet --keep "$@" || status=$?
exit "$status"
