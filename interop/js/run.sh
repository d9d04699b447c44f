#!/usr/bin/env bash
# js-libp2p interop (issue 17): starts a small kept fabgossip testnet (one
# org, two peers), runs interop.mjs against the first peer's TCP address,
# then checks from the Go side that the peer is still healthy, still sees
# its other peer, and counted the js peer's failed handshake. Every process
# it started is stopped and its files removed on exit, failure and Ctrl-C
# included. Needs Node.js 20+ and npm (the first run installs the pinned
# packages of package-lock.json with npm ci).
#
#   interop/js/run.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/../.."

work="$(mktemp -d "${TMPDIR:-/tmp}/fabgossip-interop.XXXXXX")"
testnet_pid=""
cleanup() {
	status=$?
	trap - EXIT INT TERM
	# SIGINT is the testnet's Ctrl-C: it stops every peer and removes its files.
	if [[ -n "$testnet_pid" ]]; then
		kill -INT -- "$testnet_pid" 2>/dev/null || true
		wait "$testnet_pid" 2>/dev/null || true
	fi
	if [[ $status -ne 0 ]]; then
		echo "interop: FAILED; last lines of the testnet's log:" >&2
		tail -n 20 "$work/testnet.log" >&2 2>/dev/null || true
	fi
	rm -rf "$work"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start=$SECONDS
if [[ ! -d "$here/node_modules" ]]; then
	(cd "$here" && npm ci --no-audit --no-fund)
fi
go build -o "$work/fabgossip" ./cmd/fabgossip

"$work/fabgossip" testnet --orgs 1 --peers 2 --external 0 --channels 1 --count 10 --keep >"$work/testnet.log" 2>&1 &
testnet_pid=$!
end=$((SECONDS + 120))
until grep -q 'running until Ctrl-C' "$work/testnet.log"; do
	kill -0 "$testnet_pid" 2>/dev/null || { echo "interop: the testnet exited" >&2; exit 1; }
	((SECONDS < end)) || { echo "interop: timed out waiting for the testnet" >&2; exit 1; }
	sleep 0.5
done
admin="$(awk '$2 ~ /^http:/ { print $2; exit }' "$work/testnet.log")"
"$work/fabgossip" status --admin "$admin" --json >"$work/status.json"

# The peer's loopback TCP multiaddr with its peer ID.
addr="$(node -e '
	const s = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
	const a = s.addrs.find((a) => /^\/ip4\/127\.0\.0\.1\/tcp\/\d+$/.test(a));
	if (!a) { console.error("no loopback TCP address in " + JSON.stringify(s.addrs)); process.exit(1); }
	console.log(a + "/p2p/" + s.peer_id);
' "$work/status.json")"
echo "interop: fabgossip peer $addr (admin $admin)"

(cd "$here" && node interop.mjs "$addr")

# The Go side: still healthy, still sees its other peer, and counted the
# rejected handshake.
curl -fsS "$admin/healthz" >/dev/null
"$work/fabgossip" status --admin "$admin" --json >"$work/status.json"
node -e '
	const s = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
	const alive = s.peers.filter((p) => p.alive).length;
	if (alive < 1) { console.error("interop: FAIL: the peer sees no live peer after the js checks"); process.exit(1); }
	console.log("interop: ok: the fabgossip peer is healthy and sees " + alive + " live peer(s)");
' "$work/status.json"
rejected="$(curl -fsS "$admin/metrics" | awk '/^fabgossip_handshakes_total\{result="rejected"\}/ { print $2 }')"
if [[ -z "$rejected" || "$rejected" == 0 ]]; then
	echo "interop: FAIL: fabgossip_handshakes_total{result=\"rejected\"} did not count the js peer's hello" >&2
	exit 1
fi
echo "interop: ok: fabgossip_handshakes_total{result=\"rejected\"} = $rejected"
echo "interop: PASS in $((SECONDS - start))s"
