// Shared bits for the CLI benchmarks: run a command, time it, read its peak RSS.
import {execFile, spawn} from 'node:child_process'
import {createServer} from 'node:http'
import {fileURLToPath} from 'node:url'

export const root = fileURLToPath(new URL('../..', import.meta.url))
export const bin = `${root}/bin/run.js`

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

export function percentile(xs, p) {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]
}

/** Wall time (ms) and peak RSS (KiB, from GNU time) of one process run. */
export function timed(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const started = performance.now()
    const child = spawn('/usr/bin/time', ['-f', '%M', cmd, ...args], {env: {...process.env, ...opts.env}, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe']})
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    child.on('error', reject)
    child.on('exit', (code) => {
      const ms = performance.now() - started
      const rssKb = Number(err.trim().split('\n').at(-1))
      resolve({ms, rssKb, code, stdout: out, stderr: err})
    })
  })
}

export function run(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => execFile(cmd, args, {maxBuffer: 1 << 26, ...opts}, (e, stdout, stderr) => (e ? reject(Object.assign(e, {stderr})) : resolve({stdout, stderr}))))
}

/** A loopback server that answers like a gpu-server but discards uploads: measures the client alone. */
export async function discardServer() {
  const jobs = new Map()
  const result = {text: 'ok', language: 'en', duration: 1, segments: [{start: 0, end: 1, text: 'ok'}], processing_time: 0.001, engine: 'discard', model: 'none', device: 'cpu'}
  const stats = {last: undefined}
  const server = createServer((req, res) => {
    const send = (status, body) => {
      res.writeHead(status, {'content-type': 'application/json'})
      res.end(JSON.stringify(body))
    }
    if (req.method === 'GET' && req.url === '/health') return send(200, {status: 'ok', model_loaded: true, engine: 'discard', model: 'none', device: 'cpu'})
    if (req.method === 'GET' && req.url === '/info') return send(200, {engine: 'discard', model: 'none', diarization_available: false})
    if (req.method === 'GET' && req.url.startsWith('/jobs/')) return send(200, {id: req.url.slice(6), status: 'succeeded', result})
    if (req.method === 'POST') {
      // Transfer throughput as the server sees it: first byte to last, whoever the client is.
      let first
      let bytes = 0
      req.on('data', (c) => {
        first ??= performance.now()
        bytes += c.length
      })
      req.on('end', () => {
        stats.last = {bytes, ms: performance.now() - (first ?? performance.now())}
        if (req.url === '/jobs') {
          const id = String(jobs.size + 1)
          jobs.set(id, true)
          return send(202, {id, status: 'queued'})
        }
        send(200, result)
      })
      return
    }
    send(404, {error: {code: 'not_found', message: 'no'}})
  })
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  return {stats, url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => (server.closeAllConnections(), server.close(r)))}
}
