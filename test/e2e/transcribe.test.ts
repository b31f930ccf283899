// End to end, all real: the CLI starts the bundled gpu-server (pocketsphinx engine) as a
// detached process, checks it, transcribes real speech through it, fails over from dead
// and broken backends, and stops it.
import {existsSync, readdirSync} from 'node:fs'
import {chmod, copyFile, mkdir, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {parseJson, repoRoot, runCli} from '../helpers/cli.js'
import {librivoxClips} from '../helpers/fixtures.js'
import {closedPort, healthyBody, json, listen} from '../helpers/servers.js'
import {tempDir} from '../helpers/tmp.js'
import {wordErrors} from '../helpers/wer.js'

let env: Record<string, string>
let port: number
let work: string
let serverUrl: string

beforeAll(async () => {
  work = await tempDir('jarvis-e2e-')
  port = await closedPort()
  env = {
    // The venv is reused between runs on a developer machine; CI starts from nothing.
    JARVIS_CACHE_DIR: join(repoRoot, '.cache', 'jarvis-test'),
    JARVIS_DATA_DIR: join(work, 'data'),
    JARVIS_HISTORY_FILE: join(work, 'history.jsonl'),
    JARVIS_HEALTH_CACHE_TTL_MS: '0',
    EXTERNAL_GPU_URL: '',
    TRANSCRIPTION_BACKEND: '',
    JARVIS_CONFIG: '',
  }
  serverUrl = `http://127.0.0.1:${port}`
}, 30_000)

afterAll(async () => {
  await runCli(['gpu-server', 'stop', '--port', String(port)], {env, cwd: work})
})

describe('gpu-server start → health → transcribe → stop', () => {
  it('starts the server detached and reports it healthy', async () => {
    const r = await runCli(['gpu-server', 'start', '--engine', 'pocketsphinx', '--port', String(port), '--json'], {env, cwd: work, timeoutMs: 300_000})
    expect(r.exitCode, r.stderr).toBe(0)
    const out = parseJson(r)
    expect(out).toMatchObject({url: serverUrl, engine: 'pocketsphinx', port})
    expect(out.pid).toBeGreaterThan(0)

    const h = await runCli(['gpu-server', 'health', '--port', String(port)], {env, cwd: work})
    expect(h.exitCode).toBe(0)
    expect(h.stdout).toContain(`${serverUrl} healthy`)
    expect(h.stdout).toMatch(/engine\s+pocketsphinx/)

    // Starting again finds it running, and says when it runs something other than what was asked.
    const again = await runCli(['gpu-server', 'start', '--engine', 'pocketsphinx', '--port', String(port), '--model', 'large-v3'], {env, cwd: work})
    expect(again.exitCode).toBe(0)
    expect(again.stderr).toContain('already running')
    expect(again.stderr).toContain('model en-us, not large-v3')

    const st = await runCli(['status', '--json'], {env: {...env, EXTERNAL_GPU_URL: serverUrl}, cwd: work})
    expect(st.exitCode, st.stderr).toBe(0)
    expect(parseJson(st).backends.find((b: any) => b.name === 'external_gpu')).toMatchObject({health: 'healthy', engine: 'pocketsphinx', gpu: 'none (CPU)'})
  }, 300_000)

  it('transcribes real speech to valid SRT and JSON with WER ≤ 0.40', async () => {
    const clips = librivoxClips()
    const dir = join(work, 'clips')
    await mkdir(dir, {recursive: true})
    for (const c of clips) await copyFile(c.path, join(dir, `${c.name}.wav`))
    const r = await runCli(['transcribe', ...clips.map((c) => join(dir, `${c.name}.wav`)), '--format', 'srt,json', '--backend', 'local', '--json'], {env, cwd: work, timeoutMs: 120_000})
    expect(r.exitCode, r.stderr).toBe(0)
    const report = parseJson(r)
    expect(report.files).toHaveLength(clips.length)
    let errors = 0
    let words = 0
    for (const c of clips) {
      const f = report.files.find((x: any) => x.input.endsWith(`${c.name}.wav`))
      expect(f.status).toBe('done')
      expect(f.backend).toBe('local')
      expect(f.audioSeconds).toBeGreaterThan(1)
      const srt = await readFile(join(dir, `${c.name}.srt`), 'utf8')
      const blocks = srt.trim().split(/\n\n/)
      let last = -1
      for (const [i, block] of blocks.entries()) {
        const [num, timing] = block.split('\n')
        expect(Number(num)).toBe(i + 1)
        const m = /^(\d\d):(\d\d):(\d\d),(\d{3}) --> (\d\d):(\d\d):(\d\d),(\d{3})$/.exec(timing)
        expect(m, timing).not.toBeNull()
        const t = (a: number) => Number(m![a]) * 3600 + Number(m![a + 1]) * 60 + Number(m![a + 2]) + Number(m![a + 3]) / 1000
        expect(t(5)).toBeGreaterThanOrEqual(t(1))
        expect(t(1)).toBeGreaterThanOrEqual(last)
        last = t(5)
      }
      const result = JSON.parse(await readFile(join(dir, `${c.name}.json`), 'utf8'))
      expect(result.segments.length).toBeGreaterThan(0)
      const w = wordErrors(c.text, result.text)
      errors += w.errors
      words += w.words
    }
    expect(errors / words).toBeLessThanOrEqual(0.4)
    // The run's speed went into the history that `cost estimate --measured` reads.
    const history = (await readFile(env.JARVIS_HISTORY_FILE, 'utf8')).trim().split('\n')
    expect(history.length).toBe(clips.length)
    expect(JSON.parse(history[0])).toMatchObject({source: 'transcribe', backend: 'local', engine: 'pocketsphinx'})

    // A re-run skips files whose outputs are complete.
    const again = await runCli(['transcribe', join(dir, `${clips[0].name}.wav`), '--format', 'srt,json', '--backend', 'local', '--json'], {env, cwd: work})
    expect(parseJson(again).files[0].status).toBe('skipped')
  }, 120_000)

  it('fails over: a closed port and a 503 are skipped with reasons, the real server does the file', async () => {
    const dead = await closedPort()
    const unhealthy = await listen((_req, res) => json(res, 503, {error: {code: 'overloaded', message: 'GPU out of memory'}}))
    const dir = join(work, 'failover')
    await mkdir(dir, {recursive: true})
    await writeFile(
      join(dir, 'jarvis.yaml'),
      [
        'version: 1',
        'backends:',
        `  - { name: laptop, kind: external, url: "http://127.0.0.1:${dead}" }`,
        `  - { name: flaky, kind: external, url: "${unhealthy.url}" }`,
        `  - { name: real, kind: external, url: "${serverUrl}" }`,
      ].join('\n') + '\n',
    )
    const clip = librivoxClips()[1]
    await copyFile(clip.path, join(dir, 'clip.wav'))
    const r = await runCli(['transcribe', 'clip.wav'], {env, cwd: dir})
    expect(r.exitCode, r.stderr).toBe(0)
    expect(r.stderr).toContain('skipped laptop: connection refused')
    expect(r.stderr).toContain('skipped flaky: /health answered 503: GPU out of memory')
    expect(r.stdout).toMatch(/clip\.wav\s+done\s+real/)
    expect(existsSync(join(dir, 'clip.txt'))).toBe(true)
    expect(existsSync(join(dir, 'clip.srt'))).toBe(true)
  })

  it('a backend that dies mid-upload passes the file to the next one and leaves no partial output', async () => {
    let uploadsCut = 0
    const cutter = await listen((req, res) => {
      if (req.url === '/health') return json(res, 200, JSON.parse(healthyBody))
      if (req.url === '/info') return json(res, 200, {engine: 'whisperx', model: 'large-v3'})
      // Read a little of the upload, then drop the connection like a crashed host.
      let got = 0
      req.on('data', (chunk: Buffer) => {
        got += chunk.length
        if (got > 10_000) {
          uploadsCut++
          req.socket.destroy()
        }
      })
    })
    const dir = join(work, 'midupload')
    await mkdir(dir, {recursive: true})
    await writeFile(
      join(dir, 'jarvis.yaml'),
      ['version: 1', 'backends:', `  - { name: crashy, kind: external, url: "${cutter.url}" }`, `  - { name: real, kind: external, url: "${serverUrl}" }`].join('\n') + '\n',
    )
    const clip = librivoxClips()[0]
    await copyFile(clip.path, join(dir, 'talk.wav'))
    const r = await runCli(['transcribe', 'talk.wav', '--format', 'txt,json', '--json'], {env, cwd: dir})
    expect(r.exitCode, r.stderr).toBe(0)
    const f = parseJson(r).files[0]
    expect(uploadsCut).toBe(1)
    expect(f).toMatchObject({status: 'done', backend: 'real'})
    expect(f.attempts[0]).toMatchObject({backend: 'crashy'})
    expect(f.attempts[0].error).toMatch(/connection reset|upload failed/)
    // Only the finished outputs: no temp or partial files.
    expect(readdirSync(dir).sort()).toEqual(['jarvis.yaml', 'talk.json', 'talk.txt', 'talk.wav'])
  })

  it('long files go through the job API (submit, then poll)', async () => {
    const dir = join(work, 'jobs')
    await mkdir(dir, {recursive: true})
    const clip = librivoxClips()[2]
    await copyFile(clip.path, join(dir, 'long.wav'))
    const r = await runCli(['transcribe', 'long.wav', '--mode', 'job', '--format', 'txt', '--json'], {env: {...env, EXTERNAL_GPU_URL: serverUrl}, cwd: dir})
    expect(r.exitCode, r.stderr).toBe(0)
    expect(parseJson(r).files[0]).toMatchObject({status: 'done', backend: 'external_gpu'})
    expect((await readFile(join(dir, 'long.txt'), 'utf8')).trim().length).toBeGreaterThan(10)
  })

  it('bad input: each file gets a clear reason, non-audio shows the server 415 message', async () => {
    const dir = join(work, 'bad')
    await mkdir(join(dir, 'adir'), {recursive: true})
    await writeFile(join(dir, 'notes.txt'), 'this is not audio\n')
    await writeFile(join(dir, 'secret.wav'), 'x')
    await chmod(join(dir, 'secret.wav'), 0o000)
    // Root reads any file, so the unreadable case only means something for other users.
    const asRoot = process.getuid?.() === 0
    const inputs = ['missing.wav', 'adir', 'notes.txt', ...(asRoot ? [] : ['secret.wav'])]
    const r = await runCli(['transcribe', ...inputs, '--backend', 'local', '--json'], {env, cwd: dir})
    expect(r.exitCode).toBe(1)
    const files = parseJson(r).files
    expect(files[0].reason).toBe('no such file')
    expect(files[1].reason).toMatch(/is a directory/)
    expect(files[2].reason).toMatch(/could not decode|audio/i)
    expect(files[2].reason).toContain('415')
    if (!asRoot) expect(files[3].reason).toMatch(/permission denied/)
    expect(r.stdout).not.toMatch(/Traceback|at .*\.js:\d+/)
  })

  it('an unknown backend name lists the valid ones (exit 2)', async () => {
    const r = await runCli(['transcribe', 'x.wav', '--backend', 'nope'], {env, cwd: work})
    expect(r.exitCode).toBe(2)
    expect(r.stderr).toContain('Unknown backend "nope"')
    expect(r.stderr).toContain('Valid backends: local')
  })

  it('the local backend starts the bundled server on demand when nothing remote is healthy', async () => {
    const dir = join(work, 'ondemand')
    await mkdir(dir, {recursive: true})
    const localPort = await closedPort()
    const dead = await closedPort()
    await writeFile(
      join(dir, 'jarvis.yaml'),
      ['version: 1', 'backends:', `  - { name: gone, kind: external, url: "http://127.0.0.1:${dead}" }`, `  - { name: mine, kind: local, engine: pocketsphinx, port: ${localPort} }`].join('\n') + '\n',
    )
    await copyFile(librivoxClips()[4].path, join(dir, 'c.wav'))
    try {
      const r = await runCli(['transcribe', 'c.wav', '--json'], {env, cwd: dir, timeoutMs: 120_000})
      expect(r.exitCode, r.stderr).toBe(0)
      const out = parseJson(r)
      expect(out.files[0]).toMatchObject({status: 'done', backend: 'mine'})
      expect(out.backends.find((b: any) => b.name === 'gone')).toMatchObject({state: 'skipped', reason: 'connection refused'})
      const h = await runCli(['gpu-server', 'health', '--port', String(localPort)], {env, cwd: dir})
      expect(h.exitCode).toBe(0)
    } finally {
      await runCli(['gpu-server', 'stop', '--port', String(localPort)], {env, cwd: dir})
    }
  }, 120_000)

  it('gpu-server bench measures the realtime factor and records it for cost estimate --measured', async () => {
    const r = await runCli(['gpu-server', 'bench', '--port', String(port), '--runs', '1', '--json'], {env, cwd: work, timeoutMs: 120_000})
    expect(r.exitCode, r.stderr).toBe(0)
    const out = parseJson(r)
    expect(out).toMatchObject({url: serverUrl, engine: 'pocketsphinx'})
    expect(out.audioSeconds).toBeGreaterThan(20)
    expect(out.runs).toHaveLength(1)
    expect(out.medianRealtimeFactor).toBeGreaterThan(0)
    const last = JSON.parse((await readFile(env.JARVIS_HISTORY_FILE, 'utf8')).trim().split('\n').at(-1)!)
    expect(last).toMatchObject({source: 'bench', engine: 'pocketsphinx', model: 'en-us'})
    const est = await runCli(['cost', 'estimate', '--measured', '--model', 'en-us', '--json'], {env, cwd: work})
    expect(est.exitCode, est.stderr).toBe(0)
  }, 120_000)

  it('stop stops it; stopping again is harmless', async () => {
    const r = await runCli(['gpu-server', 'stop', '--port', String(port)], {env, cwd: work})
    expect(r.exitCode).toBe(0)
    expect(r.stdout).toContain('Stopped gpu-server')
    const h = await runCli(['gpu-server', 'health', '--url', serverUrl], {env, cwd: work})
    expect(h.exitCode).toBe(1)
    expect(h.stdout).toContain('unreachable')
    const again = await runCli(['gpu-server', 'stop', '--port', String(port)], {env, cwd: work})
    expect(again.exitCode).toBe(0)
    expect(again.stdout).toContain('No gpu-server is running')
  })
})
