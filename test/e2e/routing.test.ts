// Routing decisions a user notices, against small loopback servers that speak the gpu-server
// API: equal-rank backends share a batch, a 4xx is not retried elsewhere, a dead backend is
// remembered between commands, TRANSCRIPTION_BACKEND forces one.
import {createServer as createTcpServer} from 'node:net'
import {mkdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {parseJson, runCli} from '../helpers/cli.js'
import {json, listen} from '../helpers/servers.js'
import {tempDir} from '../helpers/tmp.js'

function fakeServer(name: string, opts: {transcribeStatus?: number} = {}) {
  const seen: string[] = []
  return listen((req, res) => {
    if (req.url === '/health') return json(res, 200, {status: 'ok', model_loaded: true, engine: 'whisperx', model: 'large-v3', device: 'cuda'})
    if (req.url === '/info') return json(res, 200, {engine: 'whisperx', model: 'large-v3', device: 'cuda', gpu_name: 'NVIDIA L4', diarization_available: false})
    let body = ''
    req.on('data', (c) => (body += c.toString('latin1')))
    req.on('end', () => {
      seen.push(/filename="([^"]+)"/.exec(body)?.[1] ?? '?')
      if (opts.transcribeStatus) return json(res, opts.transcribeStatus, {error: {code: 'invalid_audio', message: 'audio is empty'}})
      // Slow enough that a second worker picks up the next file meanwhile.
      setTimeout(() => json(res, 200, {text: `by ${name}`, language: 'en', duration: 2, segments: [{start: 0, end: 2, text: `by ${name}`}], processing_time: 0.1}), 300)
    })
  }).then((s) => ({...s, seen}))
}

async function project(backends: string[]): Promise<string> {
  const dir = await tempDir('jarvis-routing-')
  await writeFile(join(dir, 'jarvis.yaml'), ['version: 1', 'backends:', ...backends].join('\n') + '\n')
  await mkdir(join(dir, 'in'))
  for (let i = 1; i <= 4; i++) await writeFile(join(dir, 'in', `f${i}.wav`), Buffer.alloc(2048, i))
  return dir
}

const env = {JARVIS_HEALTH_CACHE_TTL_MS: '0', EXTERNAL_GPU_URL: '', TRANSCRIPTION_BACKEND: '', JARVIS_CONFIG: ''}

describe('routing', () => {
  it('backends of equal priority share a batch', async () => {
    const a = await fakeServer('a')
    const b = await fakeServer('b')
    const dir = await project([`  - { name: a, kind: external, url: "${a.url}", priority: 1 }`, `  - { name: b, kind: external, url: "${b.url}", priority: 1 }`])
    const r = await runCli(['transcribe', 'in/f1.wav', 'in/f2.wav', 'in/f3.wav', 'in/f4.wav', '--json', '--format', 'txt'], {cwd: dir, env: {...env, JARVIS_HISTORY_FILE: join(dir, 'h.jsonl')}})
    expect(r.exitCode, r.stderr).toBe(0)
    const files = parseJson(r).files
    expect(files.every((f: any) => f.status === 'done')).toBe(true)
    expect(a.seen.length).toBeGreaterThan(0)
    expect(b.seen.length).toBeGreaterThan(0)
    expect(a.seen.length + b.seen.length).toBe(4)
  })

  it('without equal priority, config order wins: everything goes to the first healthy backend', async () => {
    const a = await fakeServer('a')
    const b = await fakeServer('b')
    const dir = await project([`  - { name: a, kind: external, url: "${a.url}" }`, `  - { name: b, kind: external, url: "${b.url}" }`])
    const r = await runCli(['transcribe', 'in/f1.wav', 'in/f2.wav', '--json', '--format', 'txt'], {cwd: dir, env: {...env, JARVIS_HISTORY_FILE: join(dir, 'h.jsonl')}})
    expect(r.exitCode, r.stderr).toBe(0)
    expect(a.seen).toHaveLength(2)
    expect(b.seen).toHaveLength(0)
  })

  it("a 4xx is the user's error: reported, not retried on the next backend", async () => {
    const a = await fakeServer('a', {transcribeStatus: 422})
    const b = await fakeServer('b')
    const dir = await project([`  - { name: a, kind: external, url: "${a.url}" }`, `  - { name: b, kind: external, url: "${b.url}" }`])
    const r = await runCli(['transcribe', 'in/f1.wav', '--json'], {cwd: dir, env: {...env, JARVIS_HISTORY_FILE: join(dir, 'h.jsonl')}})
    expect(r.exitCode).toBe(1)
    const f = parseJson(r).files[0]
    expect(f).toMatchObject({status: 'failed', backend: 'a'})
    expect(f.reason).toBe('audio is empty (HTTP 422)')
    expect(b.seen).toHaveLength(0)
  })

  it('TRANSCRIPTION_BACKEND forces one backend, by name', async () => {
    const a = await fakeServer('a')
    const b = await fakeServer('b')
    const dir = await project([`  - { name: a, kind: external, url: "${a.url}" }`, `  - { name: b, kind: external, url: "${b.url}" }`])
    const r = await runCli(['transcribe', 'in/f1.wav', '--json'], {cwd: dir, env: {...env, TRANSCRIPTION_BACKEND: 'b', JARVIS_HISTORY_FILE: join(dir, 'h.jsonl')}})
    expect(r.exitCode, r.stderr).toBe(0)
    expect(parseJson(r).files[0].backend).toBe('b')
    expect(a.seen).toHaveLength(0)
  })

  it('a black-holed backend costs the health timeout once, then is remembered for the next command', async () => {
    const hole = createTcpServer(() => {}) // accepts, never answers
    await new Promise<void>((r) => hole.listen(0, '127.0.0.1', r))
    const good = await fakeServer('good')
    const dir = await project([`  - { name: hole, kind: external, url: "http://127.0.0.1:${(hole.address() as any).port}" }`, `  - { name: good, kind: external, url: "${good.url}" }`])
    const cacheEnv = {EXTERNAL_GPU_URL: '', TRANSCRIPTION_BACKEND: '', JARVIS_CONFIG: '', JARVIS_CACHE_DIR: join(dir, 'cache'), JARVIS_HISTORY_FILE: join(dir, 'h.jsonl')}
    try {
      const t1 = performance.now()
      const first = await runCli(['transcribe', 'in/f1.wav', '--json', '--health-timeout', '1500'], {cwd: dir, env: cacheEnv})
      const firstMs = performance.now() - t1
      expect(first.exitCode, first.stderr).toBe(0)
      expect(parseJson(first).backends.find((b: any) => b.name === 'hole').reason).toBe('no answer within 1500 ms')
      expect(firstMs).toBeGreaterThan(1500)
      const second = await runCli(['transcribe', 'in/f2.wav', '--json', '--health-timeout', '1500'], {cwd: dir, env: cacheEnv})
      expect(second.exitCode).toBe(0)
      expect(parseJson(second).backends.find((b: any) => b.name === 'hole').reason).toMatch(/no answer within 1500 ms \(remembered from \d+ s ago\)/)
    } finally {
      hole.close()
    }
  })
})
