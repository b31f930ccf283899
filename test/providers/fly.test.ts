// `jarvis deploy fly` / `status` / `destroy` against a flyctl stand-in on PATH that answers
// like flyctl does (shapes from flyctl's source, Aug 2026), and a local HTTP server in the
// place of the deployed app (reached through --url).
import {existsSync, readFileSync, statSync} from 'node:fs'
import {mkdir} from 'node:fs/promises'
import {join} from 'node:path'
import {parse as parseToml} from 'smol-toml'
import {beforeAll, describe, expect, it} from 'vitest'
import {parseJson, runCli} from '../helpers/cli.js'
import {createStandIns, type Rule, type StandIns} from '../helpers/standins.js'
import {tempDir} from '../helpers/tmp.js'
import {closedPortUrl, startFakeServer} from './fake-server.js'

const HF = 'hf_testtoken_0123456789abcdef'

// `fly platform vm-sizes --json` today: CPU sizes only (GPU presets are filtered out).
const CPU_SIZES = {
  'shared-cpu-1x': {cpu_kind: 'shared', cpus: 1, memory_mb: 256},
  'performance-4x': {cpu_kind: 'performance', cpus: 4, memory_mb: 8192},
}
// Before the GPU retirement the same map carried gpu_kind entries.
const GPU_SIZES = {...CPU_SIZES, a10: {cpu_kind: 'performance', cpus: 8, memory_mb: 32768, gpu_kind: 'a10', gpus: 1}}

function flyRules(over: {sizes?: object; deploy?: Rule; whoami?: Rule} = {}): Rule[] {
  return [
    {match: ['version'], stdout: 'fly v0.3.214 linux/amd64 Commit: 1a2b3c BuildDate: 2026-08-20T10:00:00Z\n'},
    over.whoami ?? {match: ['auth', 'whoami', '--json'], stdout: {email: 'dev@example.com'}},
    {match: ['platform', 'vm-sizes', '--json'], stdout: over.sizes ?? CPU_SIZES},
    {match: ['apps', 'create'], stdout: 'New app created: test-app\n'},
    {match: ['volumes', 'create'], stdout: {id: 'vol_4y5l2o8qwxzg1mr7', name: 'jarvis_models', state: 'created', size_gb: 30, region: 'ord'}},
    {match: ['secrets', 'import'], stdout: 'Secrets are staged for the first deployment\n'},
    over.deploy ?? {match: ['deploy'], stdout: '==> Building image\n--> Pushing image done\nVisit your newly deployed app at https://test-app.fly.dev/\n'},
    {
      match: ['status'],
      stdout: {ID: 'test-app', Name: 'test-app', Deployed: true, Status: 'deployed', Hostname: 'test-app.fly.dev', Machines: [{id: '148ed599c14189', state: 'stopped', region: 'ord'}]},
    },
    {match: ['apps', 'destroy'], stdout: 'Destroyed app test-app\n'},
  ]
}

async function project(): Promise<string> {
  const dir = join(await tempDir(), 'myproj')
  await mkdir(dir)
  return dir
}

function state(dir: string): any {
  return JSON.parse(readFileSync(join(dir, '.jarvis', 'state.json'), 'utf8'))
}

function assertNoSecret(s: StandIns, texts: string[], secrets: string[]): void {
  for (const secret of secrets) {
    expect(s.argvText()).not.toContain(secret)
    for (const t of texts) expect(t).not.toContain(secret)
  }
}

describe('deploy fly', () => {
  let s: StandIns
  beforeAll(async () => {
    s = await createStandIns({fly: flyRules()})
  })

  it('--dry-run works with no config and no flyctl: the ✗ rows carry the fix, nothing is written', async () => {
    const dir = await project()
    const bare = await createStandIns({})
    const r = await runCli(['deploy', 'fly', '--dry-run', '--json'], {cwd: dir, env: bare.env()})
    expect(r.exitCode).toBe(0)
    const out = parseJson(r)
    expect(out.dryRun).toBe(true)
    expect(out.plan.ready).toBe(false)
    const tool = out.plan.checks.find((c: any) => c.id === 'tool:fly')
    expect(tool.ok).toBe(false)
    expect(tool.fix).toMatch(/fly\.io\/install\.sh/)
    // Defaults chosen and shown: app from the directory name, region, org.
    expect(out.plan.settings.find((x: any) => x.key === 'app').value).toMatch(/^myproj-jarvis-[0-9a-f]{6}$/)
    expect(out.plan.settings.find((x: any) => x.key === 'region')).toMatchObject({value: 'ord', source: 'default'})
    expect(out.plan.steps.map((x: any) => x.id)).toEqual(['app-create', 'volume-create', 'secrets', 'deploy', 'health'])
    expect(existsSync(join(dir, '.jarvis'))).toBe(false)
  })

  it('no GPU offered and no --cpu: refuses, says so and names providers with GPUs; nothing created', async () => {
    const dir = await project()
    s.rules('fly', flyRules())
    s.clearCalls()
    const r = await runCli(['deploy', 'fly', '--yes'], {cwd: dir, env: s.env()})
    expect(r.exitCode).toBe(1)
    expect(r.stderr).toMatch(/offers no GPU/)
    expect(r.stderr).toMatch(/--cpu/)
    expect(r.stderr).toMatch(/modal/)
    expect(s.calls('fly').map((c) => c.argv.slice(0, 2).join(' '))).toEqual(['version', 'auth whoami', 'platform vm-sizes'])
  })

  it('where GPU sizes are offered, plans the CUDA image on that size', async () => {
    const dir = await project()
    s.rules('fly', flyRules({sizes: GPU_SIZES}))
    const r = await runCli(['deploy', 'fly', '--dry-run', '--json'], {cwd: dir, env: s.env()})
    const plan = parseJson(r).plan
    expect(plan.checks.find((c: any) => c.id === 'gpu-offered')?.ok).toBe(true)
    expect(plan.details.gpu).toBe('a10')
    const toml = parseToml(plan.files.find((f: any) => f.path.endsWith('fly.toml')).content) as any
    expect(toml.vm[0].size).toBe('a10')
    expect(toml.env.JARVIS_GPU_DEVICE).toBe('cuda')
  })

  it('not logged in: the preflight ✗ says `fly auth login` and nothing runs', async () => {
    const dir = await project()
    s.rules('fly', flyRules({whoami: {match: ['auth', 'whoami'], stderr: "Error: no access token available. Please login with 'flyctl auth login'\n", exitCode: 1}}))
    s.clearCalls()
    const r = await runCli(['deploy', 'fly', '--cpu', '--yes'], {cwd: dir, env: s.env()})
    expect(r.exitCode).toBe(1)
    expect(r.stderr).toMatch(/fly auth login/)
    expect(s.calls('fly').some((c) => c.argv[0] === 'apps')).toBe(false)
  })

  it('without a TTY and without --yes: a usage error naming --yes', async () => {
    const dir = await project()
    s.rules('fly', flyRules())
    const r = await runCli(['deploy', 'fly', '--cpu'], {cwd: dir, env: s.env()})
    expect(r.exitCode).toBe(2)
    expect(r.stderr).toMatch(/--yes/)
  })

  it('deploys the CPU image: exact commands, secrets only on stdin, files parse, state recorded; status and destroy', async () => {
    const dir = await project()
    const server = await startFakeServer()
    s.rules('fly', flyRules())
    s.clearCalls()
    const env = s.env({HF_TOKEN: HF})
    const r = await runCli(['deploy', 'fly', '--cpu', '--model', 'small', '--name', 'test-app', '--url', server.url, '--yes', '--json'], {cwd: dir, env})
    expect(r.exitCode, r.stderr).toBe(0)
    const out = parseJson(r)
    expect(out.deployment).toMatchObject({name: 'fly', provider: 'fly', status: 'ready', url: server.url})

    const calls = s.calls('fly')
    const mutating = calls.filter((c) => !['version', 'auth', 'platform'].includes(c.argv[0]))
    const deployDir = join(dir, '.jarvis', 'deploy', 'fly')
    expect(mutating.map((c) => c.argv)).toEqual([
      ['apps', 'create', 'test-app', '--org', 'personal'],
      ['volumes', 'create', 'jarvis_models', '--size', '30', '--region', 'ord', '--app', 'test-app', '--yes', '--json'],
      ['secrets', 'import', '--app', 'test-app', '--stage'],
      ['deploy', expect.stringMatching(/gpu-server$/), '--app', 'test-app', '--config', join(deployDir, 'fly.toml'), '--dockerfile', join(deployDir, 'Dockerfile'), '--remote-only', '--ha=false', '--yes'],
    ])
    // Secrets travel on stdin, nowhere else.
    const secrets = JSON.parse(readFileSync(join(dir, '.jarvis', 'secrets.json'), 'utf8'))
    const apiKey = secrets['fly.apiKey']
    expect(apiKey).toMatch(/^[\w-]{20,}$/)
    expect(statSync(join(dir, '.jarvis', 'secrets.json')).mode & 0o777).toBe(0o600)
    expect(mutating[2].stdin).toBe(`JARVIS_GPU_API_KEY=${apiKey}\nJARVIS_GPU_HF_TOKEN=${HF}\n`)
    for (const c of calls) expect(Object.values(c.env).join('\n')).not.toContain(apiKey)
    assertNoSecret(s, [r.stdout, r.stderr, readFileSync(join(deployDir, 'fly.toml'), 'utf8'), readFileSync(join(dir, '.jarvis', 'state.json'), 'utf8')], [apiKey, HF])
    // The health wait used the stored key against /info.
    expect(server.keysSeen).toContain(apiKey)

    // Rendered files: TOML that parses, scale to zero, the CPU Dockerfile.
    const toml = parseToml(readFileSync(join(deployDir, 'fly.toml'), 'utf8')) as any
    expect(toml.app).toBe('test-app')
    expect(toml.http_service).toMatchObject({internal_port: 8000, auto_stop_machines: 'stop', auto_start_machines: true, min_machines_running: 0})
    expect(toml.mounts[0]).toEqual({source: 'jarvis_models', destination: '/models'})
    expect(toml.env).toMatchObject({JARVIS_GPU_DEVICE: 'cpu', JARVIS_GPU_COMPUTE_TYPE: 'int8', JARVIS_GPU_MODEL: 'small'})
    expect(toml.vm[0].size).toBe('performance-4x')
    expect(readFileSync(join(deployDir, "Dockerfile"), "utf8")).toMatch(/JARVIS_GPU_DEVICE=cpu[\s\S]*USER root\n$/)

    const st = state(dir).deployments.fly
    expect(st.resources.map((x: any) => `${x.kind}:${x.id}`)).toEqual(['fly-app:test-app', 'fly-volume:vol_4y5l2o8qwxzg1mr7'])
    expect(st.completedSteps).toEqual(['app-create', 'volume-create', 'secrets', 'deploy', 'health'])

    // status: healthy over HTTP, plus Fly's own view from `fly status --json`.
    const stat = await runCli(['status', '--json'], {cwd: dir, env})
    const sj = parseJson(stat)
    const row = sj.backends.find((b: any) => b.name === 'fly')
    expect(row).toMatchObject({health: 'healthy', url: server.url, provider: 'fly'})
    expect(row.providerStatus.summary).toMatch(/1 machine: 1 stopped \(ord\)/)
    expect(s.calls('fly').at(-1)!.argv).toEqual(['status', '--app', 'test-app', '--json'])
    assertNoSecret(s, [stat.stdout, stat.stderr], [apiKey, HF])

    // destroy: `fly apps destroy`, the state entry and the stored key are gone; twice is fine.
    const d = await runCli(['destroy', 'fly', '--yes'], {cwd: dir, env})
    expect(d.exitCode, d.stderr).toBe(0)
    expect(s.calls('fly').at(-1)!.argv).toEqual(['apps', 'destroy', 'test-app', '--yes'])
    expect(state(dir).deployments).toEqual({})
    expect(JSON.parse(readFileSync(join(dir, '.jarvis', 'secrets.json'), 'utf8'))['fly.apiKey']).toBeUndefined()
    const again = await runCli(['destroy', 'fly', '--yes', '--json'], {cwd: dir, env})
    expect(again.exitCode).toBe(0)
    expect(parseJson(again)).toMatchObject({destroyed: false, reason: 'not_recorded'})
  })

  it('a tool failing mid-deploy keeps what was created; a re-run resumes; destroy cleans up', async () => {
    const dir = await project()
    const server = await startFakeServer()
    s.rules('fly', flyRules({deploy: {match: ['deploy'], stderr: 'Error: failed to fetch an image or build from source: error building: exit code 1\n', exitCode: 1}}))
    s.clearCalls()
    const args = ['deploy', 'fly', '--cpu', '--name', 'test-app', '--url', server.url, '--yes']
    const r = await runCli(args, {cwd: dir, env: s.env()})
    expect(r.exitCode).toBe(1)
    expect(r.stderr).toMatch(/fly deploy .* failed \(exit 1\): Error: failed to fetch an image/)
    const st = state(dir).deployments.fly
    expect(st.status).toBe('failed')
    expect(st.completedSteps).toEqual(['app-create', 'volume-create', 'secrets'])
    expect(st.resources.map((x: any) => x.kind)).toEqual(['fly-app', 'fly-volume'])
    expect(st.lastError).toMatch(/Build and deploy/)

    // Re-run: app and volume are not created again.
    s.rules('fly', flyRules())
    s.clearCalls()
    const again = await runCli(args, {cwd: dir, env: s.env()})
    expect(again.exitCode, again.stderr).toBe(0)
    const verbs = s.calls('fly').map((c) => c.argv.slice(0, 2).join(' '))
    expect(verbs).not.toContain('apps create')
    expect(verbs).not.toContain('volumes create')
    expect(verbs).toContain('deploy ' + s.calls('fly').find((c) => c.argv[0] === 'deploy')!.argv[1])
    expect(state(dir).deployments.fly.status).toBe('ready')

    const d = await runCli(['destroy', 'fly', '--yes'], {cwd: dir, env: s.env()})
    expect(d.exitCode).toBe(0)
    expect(state(dir).deployments.fly).toBeUndefined()
  })

  it('health never arriving: times out with the last health error, deployment marked failed', async () => {
    const dir = await project()
    const dead = await closedPortUrl()
    s.rules('fly', flyRules())
    const r = await runCli(['deploy', 'fly', '--cpu', '--name', 'test-app', '--url', dead, '--health-timeout', '2', '--yes'], {cwd: dir, env: s.env()})
    expect(r.exitCode).toBe(1)
    expect(r.stderr).toMatch(/did not become healthy within 2 s \(last: unreachable: connection refused\)/)
    expect(state(dir).deployments.fly).toMatchObject({status: 'failed', completedSteps: ['app-create', 'volume-create', 'secrets', 'deploy']})
  })

  it('a bad deploy.fly section is a config error with file:line and key path', async () => {
    const dir = await project()
    const {writeFile} = await import('node:fs/promises')
    await writeFile(join(dir, 'jarvis.yaml'), 'version: 1\ndeploy:\n  fly:\n    region: chicago\n    volumeGB: 3\n')
    const r = await runCli(['deploy', 'fly', '--dry-run'], {cwd: dir, env: s.env()})
    expect(r.exitCode).toBe(1)
    expect(r.stderr).toMatch(/jarvis\.yaml:4:\d+ deploy\.fly\.region: expected a Fly region code/)
    expect(r.stderr).toMatch(/jarvis\.yaml:5:\d+ deploy\.fly: unknown key "volumeGB"/)
  })
})
