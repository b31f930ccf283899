// What every command owes its users: help with examples, --json on stdout only, exit codes,
// and never a prompt without a terminal.
import {execa} from 'execa'
import {readFileSync} from 'node:fs'
import {writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {Config} from '@oclif/core'
import {describe, expect, it} from 'vitest'
import {binPath, parseJson, repoRoot, runCli} from '../helpers/cli.js'
import {listen} from '../helpers/servers.js'
import {tempDir} from '../helpers/tmp.js'

describe('every command', () => {
  it('has a summary, examples and described flags', async () => {
    const config = await Config.load(repoRoot)
    const ids = config.commands.map((c) => c.id).sort()
    expect(ids).toEqual(expect.arrayContaining(['transcribe', 'status', 'deploy', 'destroy', 'tunnel', 'init', 'config:validate', 'config:show', 'gpu-server:start', 'gpu-server:stop', 'gpu-server:health', 'gpu-server:logs', 'gpu-server:bench', 'cost:estimate', 'cost:gpus']))
    for (const c of config.commands) {
      expect(c.summary, c.id).toBeTruthy()
      expect(c.examples?.length, `${c.id} has examples`).toBeGreaterThan(0)
      expect(c.flags.json, `${c.id} --json`).toBeDefined()
      for (const [name, flag] of Object.entries(c.flags)) expect(flag.description || flag.summary, `${c.id} --${name}`).toBeTruthy()
    }
  })

  it('--help (served from the build-time cache) is exactly what oclif renders', async () => {
    const cached = await runCli(['transcribe', '--help'])
    const live = await runCli(['transcribe', '--help'], {env: {JARVIS_NO_FAST_PATH: '1', COLUMNS: '100'}})
    expect(cached.exitCode).toBe(0)
    expect(cached.stdout).toBe(live.stdout)
    expect(cached.stdout).toContain('EXAMPLES')
    const help = JSON.parse(readFileSync(join(repoRoot, 'dist/help.json'), 'utf8'))
    for (const [id, text] of Object.entries(help)) if (id.includes(' ') || ['transcribe', 'status', 'deploy', 'init', 'tunnel', 'destroy'].includes(id)) expect(text, id).toContain('EXAMPLES')
  })

  it('the README command reference lists every command (regenerate with npm run readme)', async () => {
    const config = await Config.load(repoRoot)
    const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8')
    for (const c of config.commands) expect(readme, c.id).toContain(`## \`jarvis ${c.id.replaceAll(':', ' ')}`)
  })

  it('--version prints name/version platform node', async () => {
    const r = await runCli(['--version'])
    expect(r.exitCode).toBe(0)
    expect(r.stdout).toMatch(/^jarvis-cli\/\d+\.\d+\.\d+ \w+-\w+ node-v\d+/)
  })

  it('an unknown command exits 2', async () => {
    const r = await runCli(['transcibe', 'x.wav'])
    expect(r.exitCode).toBe(2)
    expect(r.stderr).toContain('transcibe')
  })
})

describe('jarvis init', () => {
  it('without a TTY it never prompts: it writes the defaults and the flags, valid on the spot', async () => {
    const dir = await tempDir()
    const r = await runCli(['init', '--external-url', 'http://100.64.0.5:8000', '--modal', '--modal-gpu', 'L4'], {cwd: dir, input: ''})
    expect(r.exitCode, r.stderr).toBe(0)
    const text = readFileSync(join(dir, 'jarvis.yaml'), 'utf8')
    expect(text).toContain('url: http://100.64.0.5:8000')
    expect(text).toContain('apiKey: ${EXTERNAL_GPU_API_KEY}')
    expect(text).toContain('gpu: L4')
    const v = await runCli(['config', 'validate', '--json'], {cwd: dir, env: {EXTERNAL_GPU_API_KEY: 'k-123456'}})
    expect(parseJson(v)).toMatchObject({valid: true, backends: 3})
    const again = await runCli(['init'], {cwd: dir})
    expect(again.exitCode).toBe(1)
    expect(again.stderr).toContain('--force')
  })
})

describe('Ctrl-C', () => {
  it('stops a transcription mid-flight with exit 130 and leaves no output behind', async () => {
    const hang = await listen((req, res) => {
      if (req.url === '/health') return res.writeHead(200, {'content-type': 'application/json'}).end('{"status":"ok","model_loaded":true}')
      if (req.url === '/info') return res.writeHead(200, {'content-type': 'application/json'}).end('{"engine":"whisperx"}')
      req.resume() // take the upload, never answer
    })
    const dir = await tempDir()
    await writeFile(join(dir, 'a.wav'), Buffer.alloc(4096, 1))
    const child = execa(process.execPath, [binPath, 'transcribe', 'a.wav'], {cwd: dir, env: {EXTERNAL_GPU_URL: hang.url, JARVIS_HEALTH_CACHE_TTL_MS: '0', JARVIS_CONFIG: ''}, reject: false})
    await new Promise((r) => setTimeout(r, 1500))
    child.kill('SIGINT')
    const r = await child
    expect(r.exitCode).toBe(130)
    expect(String(r.stderr)).toContain('Interrupted')
    expect(readFileSync(join(dir, 'a.wav')).length).toBe(4096)
    const {readdirSync} = await import('node:fs')
    expect(readdirSync(dir)).toEqual(['a.wav'])
  })
})
