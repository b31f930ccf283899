// Failover cost: a refused backend first in line adds ≤ 50 ms; a black-holed one (accepts,
// never answers) costs at most the health timeout (2 s), and not again within the cache TTL.
import {createServer} from 'node:net'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {bin, discardServer, median, timed} from './lib.mjs'

const dir = mkdtempSync(join(tmpdir(), 'jarvis-bench-failover-'))
const good = await discardServer()
const hole = createServer(() => {}) // accepts connections, never says a word
await new Promise((r) => hole.listen(0, '127.0.0.1', r))
const refused = createServer()
await new Promise((r) => refused.listen(0, '127.0.0.1', r))
const refusedPort = refused.address().port
await new Promise((r) => refused.close(r))
writeFileSync(join(dir, 'a.wav'), Buffer.alloc(64 * 1024, 1))

function config(name, urls) {
  const path = join(dir, `${name}.yaml`)
  writeFileSync(path, ['version: 1', 'backends:', ...urls.map((u, i) => `  - { name: b${i}, kind: external, url: "${u}" }`)].join('\n') + '\n')
  return path
}
async function go(cfg, extraEnv = {}) {
  const r = await timed(process.execPath, [bin, 'transcribe', join(dir, 'a.wav'), '--force', '--format', 'txt', '--config', cfg], {
    env: {JARVIS_CACHE_DIR: join(dir, 'cache'), JARVIS_HISTORY_FILE: join(dir, 'h.jsonl'), EXTERNAL_GPU_URL: '', ...extraEnv},
  })
  if (r.code !== 0) throw new Error(r.stderr)
  return r.ms
}
try {
  const direct = config('direct', [good.url])
  const withRefused = config('refused', [`http://127.0.0.1:${refusedPort}`, good.url])
  const withHole = config('hole', [`http://127.0.0.1:${hole.address().port}`, good.url])
  const N = 7
  const d = []
  const r = []
  for (let i = 0; i < N; i++) {
    d.push(await go(direct, {JARVIS_HEALTH_CACHE_TTL_MS: '0'}))
    r.push(await go(withRefused, {JARVIS_HEALTH_CACHE_TTL_MS: '0'}))
  }
  const first = await go(withHole)
  const second = await go(withHole)
  const base = median(d)
  console.log(`failover direct to a healthy backend     ${base.toFixed(0)} ms (reference)`)
  console.log(`failover refused backend first           +${(median(r) - base).toFixed(0)} ms  (goal ≤ 50 ms)`)
  console.log(`failover black-holed backend first       +${(first - base).toFixed(0)} ms  (goal ≤ 2000 ms, the health timeout)`)
  console.log(`failover the same, again within the TTL  +${(second - base).toFixed(0)} ms  (goal: not paid again)`)
} finally {
  hole.close()
  await good.close()
  rmSync(dir, {recursive: true, force: true})
}
