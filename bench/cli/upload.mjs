// Upload: `jarvis transcribe` of a large file to a loopback server that discards the body,
// against `curl -F` to the same server. Goals: ≥ 0.9× curl's throughput; peak RSS ≤ 150 MB
// and the same for 10 MB and 1 GiB. BENCH_UPLOAD_MB sets the large size (default 1024).
import {mkdtempSync, rmSync, writeFileSync, openSync, writeSync, closeSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {bin, discardServer, median, timed} from './lib.mjs'

const dir = mkdtempSync(join(tmpdir(), 'jarvis-bench-upload-'))
const server = await discardServer()
const env = {EXTERNAL_GPU_URL: server.url, JARVIS_HEALTH_CACHE_TTL_MS: '0', JARVIS_HISTORY_FILE: join(dir, 'history.jsonl'), JARVIS_CONFIG: join(dir, 'none.yaml')}
writeFileSync(join(dir, 'none.yaml'), 'version: 1\nbackends: []\n')

function makeFile(name, mb) {
  const path = join(dir, name)
  const fd = openSync(path, 'w')
  const chunk = Buffer.alloc(1 << 20, 7)
  for (let i = 0; i < mb; i++) writeSync(fd, chunk)
  closeSync(fd)
  return path
}

async function jarvis(file) {
  const r = await timed(process.execPath, [bin, 'transcribe', file, '--backend', 'external_gpu', '--force', '--format', 'txt', '--output-dir', dir], {env})
  if (r.code !== 0) throw new Error(`jarvis failed: ${r.stderr}`)
  return {...r, transfer: server.stats.last}
}
async function curl(file) {
  const r = await timed('curl', ['-sS', '-o', '/dev/null', '-F', `file=@${file}`, '-F', 'response_format=json', `${server.url}/transcribe`])
  if (r.code !== 0) throw new Error(`curl failed: ${r.stderr}`)
  return {...r, transfer: server.stats.last}
}

try {
  const bigMb = Number(process.env.BENCH_UPLOAD_MB ?? 1024)
  const small = makeFile('small.bin', 10)
  const big = makeFile('big.bin', bigMb)
  const rounds = 3
  const j = []
  const c = []
  for (let i = 0; i < rounds; i++) {
    c.push(await curl(big))
    j.push(await jarvis(big))
  }
  const mbps = (r) => r.transfer.bytes / 1048576 / (r.transfer.ms / 1000)
  const jm = median(j.map(mbps))
  const cm = median(c.map(mbps))
  const wall = (xs) => median(xs.map((r) => r.ms))
  const rssBig = Math.max(...j.map((r) => r.rssKb)) / 1024
  const rssSmall = (await jarvis(small)).rssKb / 1024
  console.log(`upload   curl -F ${bigMb} MiB          ${cm.toFixed(0)} MiB/s (reference)`)
  console.log(`upload   jarvis transcribe ${bigMb} MiB  ${jm.toFixed(0)} MiB/s  ${(jm / cm).toFixed(2)}× curl  (goal ≥ 0.9×; transfer time seen by the server)`)
  console.log(`upload   whole command: curl ${wall(c).toFixed(0)} ms, jarvis ${wall(j).toFixed(0)} ms (jarvis adds start-up, health check and a job poll)`)
  console.log(`upload   peak RSS 10 MiB file  ${rssSmall.toFixed(0)} MB; ${bigMb} MiB file ${rssBig.toFixed(0)} MB  (goal ≤ 150 MB, flat)`)
} finally {
  await server.close()
  rmSync(dir, {recursive: true, force: true})
}
