// Rough edges found by using the CLI as a user: each message says what is wrong and what to do.
import {execa} from 'execa'
import {existsSync} from 'node:fs'
import {mkdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {binPath, parseJson, runCli} from '../helpers/cli.js'
import {json, listen} from '../helpers/servers.js'
import {tempDir} from '../helpers/tmp.js'

describe('usage errors name what is wrong', () => {
  it('a missing argument is named, and flag conflicts say which flags', async () => {
    const dir = await tempDir()
    const deploy = await runCli(['deploy'], {cwd: dir})
    expect(deploy.exitCode).toBe(2)
    expect(deploy.stderr).toContain('Missing 1 required arg: provider')
    const destroy = await runCli(['destroy', '--json'], {cwd: dir})
    expect(destroy.exitCode).toBe(2)
    expect(parseJson(destroy).error.message).toBe('Missing 1 required arg: provider')

    const watch = await runCli(['status', '--watch', '2', '--json'], {cwd: dir})
    expect(watch.exitCode).toBe(2)
    expect(parseJson(watch).error.message).toMatch(/--json.* cannot also be provided when using --watch/)
  })

  it('init refuses a bad --external-url before writing anything, without pointing at lines of a file that does not exist', async () => {
    const dir = await tempDir()
    const r = await runCli(['init', '--yes', '--external-url', 'notaurl'], {cwd: dir})
    expect(r.exitCode).toBe(2)
    expect(r.stderr).toContain('--external-url notaurl is not an http(s) URL')
    const yaml = await runCli(['init', '--yes', '--model', 'a: b'], {cwd: dir})
    expect(yaml.exitCode).toBe(2)
    expect(yaml.stderr).toContain('nothing was written')
    expect(yaml.stderr).not.toMatch(/jarvis\.yaml:\d+:\d+/)
    expect(existsSync(join(dir, 'jarvis.yaml'))).toBe(false)
  })
})

describe('config', () => {
  it('a bad defaults.diarize says which values are allowed', async () => {
    const dir = await tempDir()
    await writeFile(join(dir, 'jarvis.yaml'), 'version: 1\ndefaults:\n  diarize: maybe\n')
    const r = await runCli(['config', 'validate'], {cwd: dir})
    expect(r.exitCode).toBe(1)
    expect(r.stderr).toContain('jarvis.yaml:3:12 defaults.diarize: expected auto, true or false')
  })

  it('a secret-looking ${VAR} stays masked wherever it is used, e.g. inside a URL', async () => {
    const dir = await tempDir()
    await writeFile(join(dir, 'jarvis.yaml'), 'version: 1\nbackends:\n  - {name: a, kind: external, url: "http://u:${QA_PROXY_TOKEN}@example.com:1"}\n')
    const r = await runCli(['config', 'show', '--json'], {cwd: dir, env: {QA_PROXY_TOKEN: 'tok-qa-secret-98765'}})
    expect(r.exitCode).toBe(0)
    expect(r.stdout).not.toContain('tok-qa-secret-98765')
    expect(parseJson(r).backends[0].url).toBe('http://u:****@example.com:1')
  })
})

describe('transcribe --backend', () => {
  it('a known kind with nothing configured says how to set one up (not "unknown backend")', async () => {
    const dir = await tempDir()
    const audio = join(dir, 'a.wav')
    await writeFile(audio, 'RIFF')
    const r = await runCli(['transcribe', audio], {cwd: dir, env: {TRANSCRIPTION_BACKEND: 'modal', EXTERNAL_GPU_URL: undefined}})
    expect(r.exitCode).toBe(1)
    expect(r.stderr).toContain('No modal backend is configured')
    expect(r.stderr).toContain('jarvis deploy modal')
    const bad = await runCli(['transcribe', audio, '--backend', 'nonsense', '--json'], {cwd: dir, env: {EXTERNAL_GPU_URL: undefined}})
    expect(bad.exitCode).toBe(2)
    expect(parseJson(bad).error.message).toBe('Unknown backend "nonsense"')
  })
})

describe('gpu-server start', () => {
  it('refuses a non-loopback --host without an API key before creating anything', async () => {
    const dir = await tempDir()
    const env = {JARVIS_CACHE_DIR: join(dir, 'cache'), JARVIS_DATA_DIR: join(dir, 'data'), EXTERNAL_GPU_API_KEY: undefined, JARVIS_GPU_API_KEY: undefined}
    const r = await runCli(['gpu-server', 'start', '--engine', 'pocketsphinx', '--host', '0.0.0.0', '--port', '18999'], {cwd: dir, env})
    expect(r.exitCode).toBe(1)
    expect(r.stderr).toContain('without an API key')
    expect(r.stderr).toContain('EXTERNAL_GPU_API_KEY')
    expect(r.stderr).not.toContain('--insecure')
    expect(existsSync(join(dir, 'cache', 'gpu-server'))).toBe(false)
  })
})

describe('output into a closed pipe', () => {
  it('stops quietly when the reader goes away (`jarvis cost estimate | head -1`)', async () => {
    const dir = await tempDir()
    const r = await execa('bash', ['-c', `set -o pipefail; "${process.execPath}" "${binPath}" cost estimate --hours 1e9 --provider modal | head -c 10 >/dev/null`], {cwd: dir, env: {NO_COLOR: '1'}, reject: false})
    expect(r.stderr).not.toContain('unsettled top-level await')
    expect(r.exitCode).toBe(0)
  })
})

describe('transcribe outputs', () => {
  /** A backend that transcribes anything as "hello", counting uploads. */
  async function helloServer() {
    let uploads = 0
    const s = await listen((req, res) => {
      if (req.url === '/health') return json(res, 200, {status: 'ok', model_loaded: true, engine: 'pocketsphinx', model: 'en-us', device: 'cpu'})
      if (req.url === '/info') return json(res, 200, {engine: 'pocketsphinx', model: 'en-us', device: 'cpu', diarization_available: false})
      req.resume()
      req.on('end', () => {
        uploads++
        json(res, 200, {text: 'hello', language: 'en', duration: 1, segments: [{start: 0, end: 1, text: 'hello'}], processing_time: 0.1})
      })
    })
    return {...s, uploads: () => uploads}
  }

  it('two inputs with the same name into one --output-dir: the second fails instead of overwriting; a file named twice is done once', async () => {
    const srv = await helloServer()
    const dir = await tempDir()
    await mkdir(join(dir, 'a'))
    await mkdir(join(dir, 'b'))
    await writeFile(join(dir, 'a', 'x.wav'), Buffer.alloc(1024, 1))
    await writeFile(join(dir, 'b', 'x.wav'), Buffer.alloc(1024, 2))
    const env = {EXTERNAL_GPU_URL: srv.url, TRANSCRIPTION_BACKEND: 'external_gpu', JARVIS_CACHE_DIR: join(dir, 'cache'), JARVIS_HISTORY_FILE: join(dir, 'h.jsonl'), JARVIS_CONFIG: ''}
    try {
      const r = await runCli(['transcribe', 'a/x.wav', 'b/x.wav', 'a/x.wav', './a/x.wav', '-o', 'out', '--format', 'txt', '--json'], {cwd: dir, env})
      expect(r.exitCode).toBe(1)
      const files = parseJson(r).files
      expect(files.map((f: {status: string}) => f.status)).toEqual(['done', 'failed'])
      expect(files[1].reason).toContain(`would overwrite those of ${join(dir, 'a', 'x.wav')}`)
      expect(srv.uploads()).toBe(1)

      await writeFile(join(dir, 'not-a-dir'), '')
      const file = await runCli(['transcribe', 'a/x.wav', '-o', 'not-a-dir'], {cwd: dir, env})
      expect(file.exitCode).toBe(2)
      expect(file.stderr).toContain('--output-dir not-a-dir is a file, not a directory')
      expect(srv.uploads()).toBe(1)
    } finally {
      srv.server.close()
    }
  })
})

describe('gpu-server health', () => {
  it('--port checks that port even when jarvis did not start it; an HTML page is named as such; a bad --url is a usage error', async () => {
    const dir = await tempDir()
    const page = await listen((_req, res) => {
      res.writeHead(404, {'content-type': 'text/html'})
      res.end('<!DOCTYPE HTML>\n<html>\n  <head><title>Error response</title></head>\n  <body>\n    <h1>nope</h1>\n  </body>\n</html>\n')
    })
    const env = {JARVIS_DATA_DIR: join(dir, 'data'), EXTERNAL_GPU_URL: 'http://127.0.0.1:1'}
    try {
      const r = await runCli(['gpu-server', 'health', '--port', String(page.port)], {cwd: dir, env})
      expect(r.exitCode).toBe(1)
      expect(r.stdout).toContain(`http://127.0.0.1:${page.port} unhealthy: /health answered 404: an HTML page ("Error response"), not a gpu-server answer`)
      expect(r.stdout).not.toContain('<h1>')
    } finally {
      page.server.close()
    }
    const bad = await runCli(['gpu-server', 'health', '--url', 'notaurl', '--json'], {cwd: dir, env})
    expect(bad.exitCode).toBe(2)
    expect(parseJson(bad).error.message).toBe('notaurl is not an http(s) URL')
  })
})

describe('status', () => {
  it('with only a stopped local server, does not claim every backend is healthy (exit stays 0)', async () => {
    const dir = await tempDir()
    const r = await runCli(['status'], {cwd: dir, env: {JARVIS_DATA_DIR: join(dir, 'data'), EXTERNAL_GPU_URL: '', JARVIS_CONFIG: ''}})
    expect(r.exitCode).toBe(0)
    expect(r.stdout).not.toContain('All backends healthy')
    expect(r.stdout).toContain('No backend is running; the local server starts on demand.')
  })
})
