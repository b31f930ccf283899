#!/usr/bin/env node
// `jarvis tunnel` against OpenSSH's `ssh -N -L`, through the same sshd on loopback:
//   throughput: 256 MiB up (client → remote, how audio travels) and down, as a ratio to ssh -L
//               (goal ≥ 0.9×), with each client's default cipher and with both on aes128-gcm;
//   latency:    added per-request time over a direct connection, p50 (goal ≤ 1 ms), for
//               keep-alive HTTP requests (one channel reused) and for a new connection each.
// Standalone: `node bench/tunnel/throughput.mjs` (after `npx tsc -p .`). Needs sshd and ssh
// (apt-get install openssh-server openssh-client). BENCH_MIB, BENCH_ROUNDS, BENCH_REQUESTS tune it.
// The machine is noisy: the two sides run alternately, and the median of the rounds is reported.
import {spawn} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, writeFileSync, rmSync} from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {createRequire} from 'node:module'
import {freePort, sshdAvailable, startSshd} from '../../test/ssh/sshd.ts'

const root = fileURLToPath(new URL('../..', import.meta.url))
const MIB = Number(process.env.BENCH_MIB ?? 256)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 400)
const WARMUP = 32 * 1024 * 1024

if (!sshdAvailable() || !existsSync('/usr/bin/ssh')) {
  console.log('tunnel: sshd/ssh not installed, skipped (apt-get install openssh-server openssh-client)')
  process.exit(0)
}
if (!existsSync(join(root, 'dist/commands/tunnel.js'))) {
  console.log('tunnel: dist/ is missing: run `npx tsc -p .` first')
  process.exit(1)
}

const require = createRequire(import.meta.url)
const nativeCrypto = (() => {
  try {
    return require('ssh2/lib/protocol/crypto.js').bindingAvailable
  } catch {
    return false
  }
})()
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]

// --- the "remote" services (on this machine, reached through sshd) ---
const chunk = Buffer.alloc(1024 * 1024, 0x5a)
const total = MIB * 1024 * 1024

// Upload sink: counts bytes until EOF, then answers with the count.
const sink = net.createServer({allowHalfOpen: true}, (s) => {
  let n = 0
  s.on('data', (d) => (n += d.length))
  s.on('end', () => s.end(String(n)))
})
// Download source: sends as many bytes as the client's first 4 bytes say, then EOF.
const source = net.createServer((s) => {
  s.once('data', (d) => {
    const want = d.readUInt32BE(0)
    let sent = 0
    const pump = () => {
      while (sent < want) {
        sent += chunk.length
        if (!s.write(chunk)) return s.once('drain', pump)
      }
      s.end()
    }
    pump()
  })
})
const web = http.createServer((_req, res) => res.end('ok'))
for (const srv of [sink, source, web]) await new Promise((r) => srv.listen(0, '127.0.0.1', r))
const port = (srv) => srv.address().port

function upload(localPort, bytes = total) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint()
    const s = net.connect(localPort, '127.0.0.1')
    let sent = 0
    let answer = ''
    s.on('error', reject)
    s.on('data', (d) => (answer += d))
    s.on('end', () => {
      if (Number(answer) !== bytes) return reject(new Error(`sink got ${answer} bytes, sent ${bytes}`))
      resolve(Number(process.hrtime.bigint() - t0) / 1e9)
    })
    const pump = () => {
      while (sent < bytes) {
        sent += chunk.length
        if (!s.write(chunk)) return s.once('drain', pump)
      }
      s.end()
    }
    s.on('connect', pump)
  })
}

function download(localPort, bytes = total) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint()
    const s = net.connect(localPort, '127.0.0.1')
    let got = 0
    s.on('error', reject)
    // The source sends as many bytes as the first 4 bytes ask for.
    s.on('connect', () => {
      const ask = Buffer.alloc(4)
      ask.writeUInt32BE(bytes)
      s.write(ask)
    })
    s.on('data', (d) => (got += d.length))
    s.on('end', () => (got === bytes ? resolve(Number(process.hrtime.bigint() - t0) / 1e9) : reject(new Error(`got ${got} of ${bytes}`))))
  })
}

async function latencies(localPort, keepAlive) {
  const agent = keepAlive ? new http.Agent({keepAlive: true, maxSockets: 1}) : false
  const one = () =>
    new Promise((resolve, reject) => {
      const t0 = process.hrtime.bigint()
      http
        .get({host: '127.0.0.1', port: localPort, path: '/', agent}, (res) => {
          res.resume()
          res.on('end', () => resolve(Number(process.hrtime.bigint() - t0) / 1e6))
        })
        .on('error', reject)
    })
  for (let i = 0; i < 20; i++) await one() // warm-up
  const out = []
  for (let i = 0; i < REQUESTS; i++) out.push(await one())
  if (agent) agent.destroy()
  return out
}

// --- the two tunnels ---
const sshd = await startSshd()
const home = mkdtempSync(join(tmpdir(), 'jarvis-bench-'))
mkdirSync(join(home, '.ssh'), {mode: 0o700})
const knownHosts = join(home, '.ssh', 'known_hosts')
writeFileSync(knownHosts, sshd.knownHostsLine() + '\n')

function waitPort(p, child, log) {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + 15_000
    const tryOnce = () => {
      if (child.exitCode !== null) return reject(new Error(`tunnel exited ${child.exitCode}: ${log()}`))
      const s = net.connect(p, '127.0.0.1')
      s.on('connect', () => {
        s.destroy()
        resolve()
      })
      s.on('error', () => (Date.now() > deadline ? reject(new Error(`port ${p} never opened: ${log()}`)) : setTimeout(tryOnce, 50)))
    }
    tryOnce()
  })
}

async function startTunnel(kind, cipher) {
  const ports = [await freePort(), await freePort(), await freePort()]
  const forwards = [port(sink), port(source), port(web)].flatMap((rp, i) => ['-L', `${ports[i]}:127.0.0.1:${rp}`])
  let child
  let log = ''
  if (kind === 'ssh') {
    const args = ['-N', '-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'ExitOnForwardFailure=yes', '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'IdentitiesOnly=yes', '-i', sshd.clientKey, '-p', String(sshd.port), ...(cipher ? ['-c', cipher] : []), ...forwards, `${sshd.user}@127.0.0.1`]
    child = spawn('ssh', args, {stdio: ['ignore', 'ignore', 'pipe']})
  } else {
    const env = {...process.env, HOME: home, NO_COLOR: '1'}
    delete env.SSH_AUTH_SOCK
    child = spawn(process.execPath, [join(root, 'bin/run.js'), 'tunnel', '--host', '127.0.0.1', '--port', String(sshd.port), '--user', sshd.user, '-i', sshd.clientKey, ...forwards], {cwd: home, env, stdio: ['ignore', 'ignore', 'pipe']})
  }
  child.stderr.on('data', (d) => (log += d))
  await waitPort(ports[2], child, () => log)
  return {
    up: ports[0],
    down: ports[1],
    web: ports[2],
    stop: () =>
      new Promise((r) => {
        if (child.exitCode !== null) return r()
        child.once('exit', r)
        child.kill('SIGINT')
      }),
  }
}

const mbps = (s) => (MIB * 1.048576) / s // MB/s (decimal)
const results = {}

async function throughputRound(label, cipher, round) {
  // Who goes first alternates, so a burst of load on this machine doesn't always hit the same side.
  for (const kind of round % 2 ? ['jarvis', 'ssh'] : ['ssh', 'jarvis']) {
    const t = await startTunnel(kind, cipher)
    try {
      // Steady state, not start-up: a tunnel lives for hours, and node's JIT needs a few MB to warm up.
      await upload(t.up, WARMUP)
      await download(t.down, WARMUP)
      const up = await upload(t.up)
      const down = await download(t.down)
      ;(results[`${label}:${kind}:up`] ??= []).push(up)
      ;(results[`${label}:${kind}:down`] ??= []).push(down)
    } finally {
      await t.stop()
    }
  }
}

try {
  console.log(`tunnel throughput: ${MIB} MiB each way over loopback after a 32 MiB warm-up, ${ROUNDS} rounds (ssh -L and jarvis alternating), median`)
  console.log(`  ssh2 native crypto binding: ${nativeCrypto ? 'loaded' : 'NOT loaded (pure-JS crypto, about half the speed: rebuild ssh2 against this Node, see README)'}`)
  for (let r = 0; r < ROUNDS; r++) {
    await throughputRound('default', undefined, r)
    await throughputRound('aes128-gcm', 'aes128-gcm@openssh.com', r)
  }
  let worst = Infinity
  for (const label of ['default', 'aes128-gcm']) {
    for (const dir of ['up', 'down']) {
      const s = median(results[`${label}:ssh:${dir}`])
      const j = median(results[`${label}:jarvis:${dir}`])
      const ratio = s / j
      if (label === 'default') worst = Math.min(worst, ratio)
      const note = label === 'default' ? ' (each client\'s default cipher: OpenSSH chacha20-poly1305, jarvis aes128-gcm)' : ' (both aes128-gcm@openssh.com)'
      console.log(`  ${dir === 'up' ? 'upload  ' : 'download'} ${label.padEnd(10)} ssh -L ${mbps(s).toFixed(0).padStart(4)} MB/s   jarvis ${mbps(j).toFixed(0).padStart(4)} MB/s   ratio ${ratio.toFixed(2)}×${note}`)
    }
  }
  console.log(`  throughput ratio (jarvis / ssh -L, default ciphers, worst direction): ${worst.toFixed(2)}× (goal ≥ 0.90×) ${worst >= 0.9 ? 'OK' : 'BELOW GOAL'}`)

  console.log(`tunnel latency: ${REQUESTS} sequential HTTP requests, p50 (p90) in ms`)
  const direct = {ka: await latencies(port(web), true), fresh: await latencies(port(web), false)}
  const lat = {}
  for (const kind of ['ssh', 'jarvis']) {
    const t = await startTunnel(kind)
    try {
      lat[kind] = {ka: await latencies(t.web, true), fresh: await latencies(t.web, false)}
    } finally {
      await t.stop()
    }
  }
  let added
  for (const mode of ['ka', 'fresh']) {
    const d = pct(direct[mode], 50)
    const name = mode === 'ka' ? 'keep-alive     ' : 'new connection '
    const fmt = (xs) => `${pct(xs, 50).toFixed(2)} (${pct(xs, 90).toFixed(2)})`
    const addJ = pct(lat.jarvis[mode], 50) - d
    const addS = pct(lat.ssh[mode], 50) - d
    if (mode === 'ka') added = addJ
    console.log(`  ${name} direct ${fmt(direct[mode])}   ssh -L ${fmt(lat.ssh[mode])} (+${addS.toFixed(2)})   jarvis ${fmt(lat.jarvis[mode])} (+${addJ.toFixed(2)})`)
  }
  console.log(`  added per-request latency p50 (keep-alive): ${added.toFixed(2)} ms (goal ≤ 1 ms) ${added <= 1 ? 'OK' : 'ABOVE GOAL'}`)
} finally {
  for (const srv of [sink, source, web]) srv.close()
  await sshd.stop()
  sshd.cleanup()
  rmSync(home, {recursive: true, force: true})
}
