// `jarvis deploy modal` / `status` / `destroy` against a `modal` stand-in on PATH that
// answers like the modal CLI (shapes from modal-client's py/modal/cli, Aug 2026). The
// stand-in's `modal deploy` prints the URL of a local HTTP server, as the real one prints
// the *.modal.run URL, so the health wait runs for real.
import {execFileSync} from 'node:child_process'
import {existsSync, readFileSync} from 'node:fs'
import {mkdir} from 'node:fs/promises'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {parseJson, runCli} from '../helpers/cli.js'
import {createStandIns, type Rule} from '../helpers/standins.js'
import {tempDir} from '../helpers/tmp.js'
import {startFakeServer} from './fake-server.js'

const HF = 'hf_modaltest_abcdef0123456789'

function modalRules(url: string, over: {deploy?: Rule; tokenInfo?: Rule} = {}): Rule[] {
  return [
    {match: ['--version'], stdout: 'modal client version: 1.3.2\n'},
    over.tokenInfo ?? {match: ['token', 'info'], stdout: 'Token: ak-1234567890\nWorkspace: acme (ac-abc123)\nUser: dev (us-xyz)\n'},
    {match: ['secret', 'create'], stdout: "Created a new secret 'jarvis-transcribe-secrets' with the keys 'JARVIS_GPU_API_KEY', 'JARVIS_GPU_HF_TOKEN'\n"},
    over.deploy ?? {
      match: ['deploy'],
      stdout: `✓ Created objects.\n├── 🔨 Created mount /opt/gpu-server\n├── 🔨 Created function Jobs.*.\n└── 🔨 Created web function web => ${url}\n✓ App deployed in 41.210s! 🎉\n\nView Deployment: https://modal.com/apps/acme/main/deployed/jarvis-transcribe\n`,
    },
    {match: ['app', 'list', '--json'], stdout: [{app_id: 'ap-Xyz123', description: 'jarvis-transcribe', state: 'deployed', tasks: '1', created_at: '2026-11-22 18:00:00+00:00', stopped_at: null}]},
    {match: ['app', 'stop'], stdout: '', times: 1},
    {match: ['app', 'stop'], stderr: 'App is already stopped. (Stopped at 2026-11-22 18:10 by dev).\n', exitCode: 1},
    {match: ['secret', 'delete'], stdout: ''},
    {match: ['volume', 'delete'], stdout: ''},
  ]
}

async function project(): Promise<string> {
  const dir = join(await tempDir(), 'proj')
  await mkdir(dir)
  return dir
}

describe('deploy modal', () => {
  it('deploys: Secret from a 0600 dotenv file (never argv), modal deploy, URL from its output, health; status; destroy twice', async () => {
    const dir = await project()
    const server = await startFakeServer({device: 'cuda'})
    const s = await createStandIns({modal: modalRules(server.url)})
    const env = s.env({HUGGINGFACE_TOKEN: HF})
    const r = await runCli(['deploy', 'modal', '--gpu', 'l4', '--yes', '--json'], {cwd: dir, env})
    expect(r.exitCode, r.stderr).toBe(0)
    const out = parseJson(r)
    expect(out.deployment).toMatchObject({provider: 'modal', status: 'ready', url: server.url})

    const apiKey = JSON.parse(readFileSync(join(dir, '.jarvis', 'secrets.json'), 'utf8'))['modal.apiKey']
    const calls = s.calls('modal')
    const file = join(dir, '.jarvis', 'deploy', 'modal', 'modal_app.py')
    const [secretCall, deployCall] = calls.filter((c) => c.argv[0] === 'secret' || c.argv[0] === 'deploy')
    expect(secretCall.argv.slice(0, 4)).toEqual(['secret', 'create', 'jarvis-transcribe-secrets', '--from-dotenv'])
    expect(secretCall.argv.slice(5)).toEqual(['--force'])
    const dotenvPath = secretCall.argv[4]
    expect(secretCall.files[dotenvPath]).toEqual({mode: 0o600, content: `JARVIS_GPU_API_KEY=${apiKey}\nJARVIS_GPU_HF_TOKEN=${HF}\n`})
    expect(existsSync(dotenvPath)).toBe(false) // removed right after
    expect(dotenvPath.startsWith(dir)).toBe(false)
    expect(deployCall.argv).toEqual(['deploy', file, '--name', 'jarvis-transcribe'])
    for (const secret of [apiKey, HF]) {
      expect(s.argvText()).not.toContain(secret)
      expect(r.stdout + r.stderr).not.toContain(secret)
      expect(readFileSync(file, 'utf8')).not.toContain(secret)
    }

    // The rendered app compiles and carries the chosen GPU, volume and secret names.
    execFileSync('python3', ['-m', 'py_compile', file])
    const py = readFileSync(file, 'utf8')
    expect(py).toMatch(/^GPU = "L4"/m)
    expect(py).toMatch(/VOLUME_NAME = "jarvis-transcribe-models"/)
    expect(py).toMatch(/modal\.FunctionCall\.from_id\(job_id\)/)
    expect(py).toMatch(/\.spawn\.aio\(/)

    const st = parseJson(await runCli(['status', '--json'], {cwd: dir, env}))
    const row = st.backends.find((b: any) => b.name === 'modal')
    expect(row).toMatchObject({kind: 'modal', health: 'healthy', url: server.url, device: 'cuda'})
    expect(row.providerStatus).toMatchObject({state: 'running'})
    expect(row.providerStatus.summary).toMatch(/deployed, 1 container running/)

    const d = await runCli(['destroy', 'modal', '--yes', '--json'], {cwd: dir, env})
    expect(d.exitCode, d.stderr).toBe(0)
    const tail = s.calls('modal').slice(-3).map((c) => c.argv)
    expect(tail).toEqual([
      ['app', 'stop', 'jarvis-transcribe', '--yes'],
      ['secret', 'delete', 'jarvis-transcribe-secrets', '--yes', '--allow-missing'],
      ['volume', 'delete', 'jarvis-transcribe-models', '--yes', '--allow-missing'],
    ])
    const again = await runCli(['destroy', 'modal', '--yes', '--json'], {cwd: dir, env})
    expect(parseJson(again)).toMatchObject({destroyed: false, reason: 'not_recorded'})
  })

  it('an interrupted destroy can be re-run: an app already stopped counts as removed', async () => {
    const dir = await project()
    const server = await startFakeServer()
    const s = await createStandIns({modal: modalRules(server.url)})
    expect((await runCli(['deploy', 'modal', '--yes'], {cwd: dir, env: s.env()})).exitCode).toBe(0)
    // First destroy: the secret deletion fails after the app was stopped.
    s.rules('modal', [
      {match: ['app', 'stop'], stdout: ''},
      {match: ['secret', 'delete'], stderr: 'Error: connection reset by peer\n', exitCode: 1},
    ])
    const first = await runCli(['destroy', 'modal', '--yes'], {cwd: dir, env: s.env()})
    expect(first.exitCode).toBe(1)
    const state = JSON.parse(readFileSync(join(dir, '.jarvis', 'state.json'), 'utf8'))
    expect(state.deployments.modal.status).toBe('destroying')
    s.rules('modal', modalRules(server.url).filter((x) => !(x.match?.[1] === 'stop' && x.times)))
    const second = await runCli(['destroy', 'modal', '--yes'], {cwd: dir, env: s.env()})
    expect(second.exitCode, second.stderr).toBe(0)
    expect(JSON.parse(readFileSync(join(dir, '.jarvis', 'state.json'), 'utf8')).deployments).toEqual({})
  })

  it('dry-run: not logged in and an unknown GPU show as ✗ rows; --region is refused with the reason', async () => {
    const dir = await project()
    const s = await createStandIns({modal: modalRules('https://x.modal.run', {tokenInfo: {match: ['token', 'info'], stderr: 'Token missing. Could not authenticate client.\n', exitCode: 1}})})
    const r = await runCli(['deploy', 'modal', '--gpu', 'V100', '--dry-run', '--json'], {cwd: dir, env: s.env()})
    expect(r.exitCode).toBe(0)
    const plan = parseJson(r).plan
    expect(plan.checks.find((c: any) => c.id === 'auth')).toMatchObject({ok: false, fix: expect.stringMatching(/modal setup/)})
    expect(plan.checks.find((c: any) => c.id === 'gpu')).toMatchObject({ok: false, fix: expect.stringMatching(/--gpu/)})
    // The plan shows the GPU asked for, not a CPU deployment nobody asked for.
    expect(plan.settings.find((x: any) => x.key === 'gpu').value).toBe('V100 (unknown to Modal)')
    expect(s.calls('modal').map((c) => c.argv[0])).toEqual(['--version', 'token'])

    const region = await runCli(['deploy', 'modal', '--region', 'us-east', '--dry-run'], {cwd: dir, env: s.env()})
    expect(region.exitCode).toBe(1)
    expect(region.stderr).toMatch(/choosing a region \(--region\): Modal schedules containers itself/)
  })

  it('without modal installed: the install hint, and --yes refuses to start', async () => {
    const dir = await project()
    const s = await createStandIns({})
    const r = await runCli(['deploy', 'modal', '--yes'], {cwd: dir, env: s.env()})
    expect(r.exitCode).toBe(1)
    expect(r.stderr).toMatch(/pip install modal/)
    expect(existsSync(join(dir, '.jarvis', 'state.json'))).toBe(false)
  })
})
