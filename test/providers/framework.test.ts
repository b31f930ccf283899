// The provider framework: the registry (lazy, unknown names list the valid ones, missing
// modules say so), the engine's plan data and capability check, and the templates.
import {execFileSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {parse as parseToml} from 'smol-toml'
import {parse as parseYaml} from 'yaml'
import {describe, expect, it} from 'vitest'
import {parseJson, repoRoot, runCli} from '../helpers/cli.js'
import {createStandIns} from '../helpers/standins.js'
import {tempDir} from '../helpers/tmp.js'

// The built modules (what the CLI runs): the registry resolves providers next to itself.
const dist = (p: string) => join(repoRoot, 'dist', p)

describe('provider registry', () => {
  it('an unknown provider is a usage error listing the valid ones', async () => {
    const r = await runCli(['deploy', 'heroku', '--dry-run'], {cwd: await tempDir()})
    expect(r.exitCode).toBe(2)
    expect(r.stderr).toMatch(/Unknown provider "heroku"/)
    expect(r.stderr).toMatch(/fly, modal, gcloud, aws, k8s, vast, ssh, local/)
    const j = await runCli(['destroy', 'heroku', '--json'], {cwd: await tempDir()})
    expect(parseJson(j).error.code).toBe('usage')
  })

  it('loads each provider lazily; a module missing from the build is reported, not a crash', async () => {
    const registry = await import(dist('providers/registry.js'))
    const available: string[] = await registry.availableProviders()
    for (const name of ['fly', 'modal', 'local']) expect(available).toContain(name)
    for (const name of available) {
      const p = await registry.loadProvider(name)
      expect(p.name).toBe(name)
      expect(typeof p.plan).toBe('function')
    }
    const missing = registry.providerNames.filter((n: string) => !available.includes(n))
    for (const name of missing) {
      await expect(registry.loadProvider(name)).rejects.toMatchObject({code: 'provider_unavailable', message: expect.stringMatching(/not available in this build/)})
    }
  })

  it('capabilities are data, checked in one place: an unsupported flag names the reason', async () => {
    const r = await runCli(['deploy', 'local', '--region', 'eu', '--dry-run'], {cwd: await tempDir()})
    expect(r.exitCode).toBe(1)
    expect(r.stderr).toMatch(/choosing a region \(--region\): runs on this machine/)
    const engine = await import(dist('providers/engine.js'))
    const local = (await import(dist('providers/local.js'))).default
    const rows = engine.capabilityRows(local)
    expect(rows.find((x: any) => x.feature === 'scaleToZero')).toMatchObject({supported: false})
    expect(rows.find((x: any) => x.feature === 'cpuOnly')).toMatchObject({supported: true})
  })
})

describe('engine helpers', () => {
  it('default names are stable per project directory and valid app names', async () => {
    const engine = await import(dist('providers/engine.js'))
    const a = engine.defaultAppName('/home/me/My Project!')
    expect(a).toBe(engine.defaultAppName('/home/me/My Project!'))
    expect(a).toMatch(/^my-project-jarvis-[0-9a-f]{6}$/)
    expect(engine.defaultAppName('/x/123')).toMatch(/^j-123-jarvis-/)
    expect(engine.defaultAppName('/other/My Project!')).not.toBe(a)
  })

  it('template placeholders must all be filled', async () => {
    const engine = await import(dist('providers/engine.js'))
    expect(engine.fillTemplate('a={{x}} b={{ y }}', {x: 1, y: 'two'})).toBe('a=1 b=two')
    expect(() => engine.fillTemplate('{{missing}}', {})).toThrow(/missing/)
  })

  it('the plan as JSON masks every secret, including stdin and secret files', async () => {
    const dir = await tempDir()
    const s = await createStandIns({
      fly: [
        {match: ['version'], stdout: 'fly v0.3.214\n'},
        {match: ['auth', 'whoami', '--json'], stdout: {email: 'a@b.c'}},
        {match: ['platform', 'vm-sizes', '--json'], stdout: {'performance-4x': {cpu_kind: 'performance', cpus: 4, memory_mb: 8192}}},
      ],
      modal: [
        {match: ['--version'], stdout: 'modal client version: 1.3.2\n'},
        {match: ['token', 'info'], stdout: 'Workspace: acme (ac-1)\n'},
      ],
    })
    const key = 'given-api-key-0123456789'
    const hf = 'hf_secret_for_plan_test_42'
    for (const provider of ['fly', 'modal']) {
      const r = await runCli(['deploy', provider, '--cpu', '--api-key', key, '--dry-run', '--json'], {cwd: dir, env: s.env({HF_TOKEN: hf})})
      expect(r.exitCode, r.stderr).toBe(0)
      expect(r.stdout).not.toContain(key)
      expect(r.stdout).not.toContain(hf)
      const plan = parseJson(r).plan
      const withSecrets = plan.steps.find((x: any) => x.stdin || x.secretFiles)
      expect(JSON.stringify(withSecrets)).toContain('JARVIS_GPU_API_KEY=****')
      expect(plan.secrets).toEqual(['JARVIS_GPU_API_KEY', 'JARVIS_GPU_HF_TOKEN'])
      const human = await runCli(['deploy', provider, '--cpu', '--api-key', key, '--dry-run'], {cwd: dir, env: s.env({HF_TOKEN: hf})})
      expect(human.stdout + human.stderr).not.toContain(key)
    }
  })
})

describe('templates', () => {
  it('docker-compose.yml is valid YAML that reserves a GPU and takes secrets from the environment', () => {
    const text = readFileSync(join(repoRoot, 'templates', 'docker-compose.yml'), 'utf8')
    const doc = parseYaml(text)
    const svc = doc.services['jarvis-gpu-server']
    expect(svc.deploy.resources.reservations.devices[0]).toMatchObject({driver: 'nvidia', capabilities: ['gpu']})
    expect(svc.environment.JARVIS_GPU_API_KEY).toMatch(/^\$\{JARVIS_GPU_API_KEY:\?/)
    expect(svc.ports[0]).toMatch(/^127\.0\.0\.1:/)
  })

  it('fly.toml renders to TOML that parses and modal_app.py compiles, for GPU and CPU variants', async () => {
    const dir = await tempDir()
    const s = await createStandIns({
      fly: [
        {match: ['version'], stdout: 'fly v0.3.214\n'},
        {match: ['auth', 'whoami', '--json'], stdout: {email: 'a@b.c'}},
        {match: ['platform', 'vm-sizes', '--json'], stdout: {l40s: {cpu_kind: 'performance', cpus: 8, memory_mb: 32768, gpu_kind: 'l40s', gpus: 1}}},
      ],
    })
    const fly = parseJson(await runCli(['deploy', 'fly', '--gpu', 'l40s', '--dry-run', '--json'], {cwd: dir, env: s.env()})).plan
    const toml = parseToml(fly.files[0].content) as any
    expect(toml.vm[0].size).toBe('l40s')
    expect(toml.http_service.checks[0]).toMatchObject({path: '/health', method: 'GET'})
    for (const args of [['--gpu', 'H100'], ['--cpu'], ['--engine', 'pocketsphinx']]) {
      const plan = parseJson(await runCli(['deploy', 'modal', ...args, '--dry-run', '--json'], {cwd: dir, env: s.env()})).plan
      const file = join(dir, `modal_app_${args.join('_').replaceAll('-', '')}.py`)
      const {writeFileSync} = await import('node:fs')
      writeFileSync(file, plan.files[0].content)
      execFileSync('python3', ['-m', 'py_compile', file])
      expect(plan.files[0].content).toMatch(args[0] === '--gpu' ? /^GPU = "H100"/m : /^GPU = None/m)
    }
  })
})

describe('status', () => {
  it('an ssh backend is checked through an SSH tunnel; one that cannot be reached is a ✗ row and exit 1', async () => {
    const dir = await tempDir()
    const {createServer} = await import('node:net')
    const srv = createServer()
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
    const port = (srv.address() as {port: number}).port
    await new Promise<void>((r) => srv.close(() => r()))
    const {writeFile} = await import('node:fs/promises')
    await writeFile(join(dir, 'jarvis.yaml'), `version: 1\nbackends:\n  - {name: box, kind: ssh, ssh: {host: 127.0.0.1, port: ${port}, user: root}}\n`)
    const r = await runCli(['status', '--json', '--timeout', '2'], {cwd: dir, env: {HOME: dir, EXTERNAL_GPU_URL: '', JARVIS_CONFIG: ''}})
    expect(r.exitCode).toBe(1)
    const out = parseJson(r)
    expect(out.healthy).toBe(false)
    expect(out.backends).toHaveLength(1)
    expect(out.backends[0]).toMatchObject({name: 'box', kind: 'ssh', health: 'unreachable', ok: false})
    expect(out.backends[0].reason).toMatch(/jarvis tunnel box/)
  })
})
