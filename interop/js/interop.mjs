// interop.mjs: js-libp2p (an independent libp2p implementation) against a
// running fabgossip peer (issue 17). It dials the peer's TCP multiaddr with
// Noise and yamux, completes identify and ping, checks that fabgossip's
// protocols are listed, then opens /fabgossip/hello/1.0.0 twice: once with a
// frame longer than the 4 MiB cap, once with a well-formed hello that carries
// no alive and no certificate. Each must end in a reset or a close without an
// answer; the second makes the peer disconnect (and gate) this js peer.
// Finally a fresh js peer dials and pings it: the peer is still healthy.
//
//   node interop.mjs /ip4/127.0.0.1/tcp/PORT/p2p/12D3KooW...
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { multiaddr } from '@multiformats/multiaddr'

// js-libp2p 3 targets Node.js 22; on Node.js 20 it needs only
// Promise.withResolvers (ES2024), defined here when missing.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function () {
    let resolve, reject
    const promise = new this((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}

const HELLO = '/fabgossip/hello/1.0.0'
const PROTOCOLS = [HELLO, '/fabgossip/push/1.0.0', '/fabgossip/pull/1.0.0']
const STEP_MS = 10_000

function fail (msg) {
  console.error(`interop: FAIL: ${msg}`)
  process.exit(1)
}

function ok (msg) {
  console.log(`interop: ok: ${msg}`)
}

// uvarint is protobuf's unsigned varint, fabgossip's frame length prefix.
function uvarint (n) {
  const out = []
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80)
    n = Math.floor(n / 0x80)
  }
  out.push(n)
  return Uint8Array.from(out)
}

// newPeer is a js-libp2p peer with TCP, Noise, yamux, identify and ping. It
// resets every hello the fabgossip peer opens to it: a peer that does not
// speak hello at all is thrown out at once, which would race the checks.
async function newPeer () {
  const node = await createLibp2p({
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify(), ping: ping() }
  })
  await node.handle(HELLO, (stream) => { stream.abort(new Error('js peer has no certificate')) })
  return node
}

// within rejects after ms with what.
function within (ms, what, promise) {
  let timer
  return Promise.race([
    promise,
    new Promise((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms) })
  ]).finally(() => clearTimeout(timer))
}

// refusedHello opens a hello stream, sends data and closes its side, and
// returns how the peer ended the stream: every byte it answered, and whether
// the read ended in an error (a reset).
async function refusedHello (node, target, data) {
  const stream = await node.dialProtocol(target, HELLO, { signal: AbortSignal.timeout(STEP_MS) })
  stream.send(data)
  let answered = 0
  let reset = null
  try {
    await within(STEP_MS, 'the peer ending the hello stream', (async () => {
      await stream.close().catch((err) => { reset = err })
      for await (const chunk of stream) answered += chunk.byteLength
    })())
  } catch (err) {
    if (/timed out/.test(err.message)) throw err
    reset = err
  }
  return { answered, reset, status: stream.status }
}

const addr = process.argv[2]
if (!addr) fail('usage: node interop.mjs MULTIADDR (ending in /p2p/<peer ID>)')
const target = multiaddr(addr)
const targetID = target.getComponents().find((c) => c.name === 'p2p')?.value
if (!targetID) fail(`${addr} has no /p2p/<peer ID>`)

const js = await newPeer()
const stopAll = [js]
try {
  const identified = new Promise((resolve) => {
    js.addEventListener('peer:identify', (evt) => {
      if (evt.detail.peerId.toString() === targetID) resolve(evt.detail)
    })
  })
  const disconnected = new Promise((resolve) => {
    js.addEventListener('peer:disconnect', (evt) => {
      if (evt.detail.toString() === targetID) resolve()
    })
  })

  await within(STEP_MS, 'dial', js.dial(target))
  ok(`dialled ${targetID} over TCP with Noise and yamux`)

  const id = await within(STEP_MS, 'identify', identified)
  ok(`identify: agent ${JSON.stringify(id.agentVersion)}, protocol version ${JSON.stringify(id.protocolVersion)}`)
  const missing = PROTOCOLS.filter((p) => !id.protocols.includes(p))
  if (missing.length > 0) fail(`identify does not list ${missing.join(', ')}; it lists ${id.protocols.join(', ')}`)
  ok(`identify lists ${PROTOCOLS.join(', ')}`)

  const rtt = await within(STEP_MS, 'ping', js.services.ping.ping(target))
  ok(`ping: ${rtt} ms`)

  // A frame longer than the 4 MiB cap: refused before anything is read.
  const oversize = await refusedHello(js, target, uvarint(5 << 20))
  if (oversize.answered > 0) fail(`the peer answered ${oversize.answered} bytes to an oversized hello frame`)
  ok(`oversized hello frame: stream ${oversize.reset ? `reset (${oversize.reset.name})` : 'closed'} without an answer`)

  const rtt2 = await within(STEP_MS, 'ping after the oversized frame', js.services.ping.ping(target))
  ok(`ping on the same connection after it: ${rtt2} ms`)

  // A well-formed hello (a zero-length Hello message) with no alive and no
  // certificate: the handshake fails, and the peer disconnects this js peer.
  const noCert = await refusedHello(js, target, uvarint(0))
  if (noCert.answered > 0) fail(`the peer answered ${noCert.answered} bytes to a hello without a certificate`)
  ok(`hello without a certificate: stream ${noCert.reset ? `reset (${noCert.reset.name})` : 'closed'} without an answer`)
  await within(STEP_MS, 'the peer disconnecting the js peer that failed the handshake', disconnected)
  ok('the peer disconnected the js peer that failed the handshake')

  // The peer is still healthy: a fresh js peer (new peer ID) dials and pings it.
  const fresh = await newPeer()
  stopAll.push(fresh)
  const rtt3 = await within(STEP_MS, 'ping from a fresh js peer', fresh.services.ping.ping(target))
  ok(`a fresh js peer pings it: ${rtt3} ms`)
} catch (err) {
  fail(err.stack || String(err))
} finally {
  await Promise.all(stopAll.map((n) => n.stop()))
}
console.log('interop: PASS')
