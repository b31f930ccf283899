// `jarvis deploy vast` / `status` / `destroy vast` with `vastai` stood in by an executable
// on PATH that answers like the real CLI (shapes from github.com/vast-ai/vast-cli, Aug 2026:
// `search offers --raw` → a JSON list of offers, `create instance --raw` →
// {"success": true, "new_contract": ID}, `show instance --raw` → the instance row, API
// errors printed as {"error": true, ...} on stderr with exit code 0), and a real OpenSSH
// server on loopback standing in for the rented instance's SSH: the server is really
// installed, started and health-checked through a tunnel.
import {existsSync, readFileSync} from 'node:fs'
import {mkdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {parseJson, runCli, type CliResult} from '../helpers/cli.js'
import {createStandIns, type Rule, type StandIns} from '../helpers/standins.js'
import {tempDir} from '../helpers/tmp.js'
import {freePort, sshdAvailable, startSshd, type Sshd} from '../ssh/sshd.js'

const HF = 'hf_vastdeploytoken_0123456789abcdef'
const VAST_KEY = 'vastkey_0123456789abcdef0123456789abcdef'
const INSTANCE = 7835610
const OFFER = 12_345_678
const IMAGE = 'pytorch/pytorch:2.8.0-cuda12.8-cudnn9-runtime'

// A row of `vastai search offers --raw` (a subset of its many fields).
function offer(id: number, dph: number, over: object = {}): object {
  return {
    id,
    ask_contract_id: id,
    bundle_id: id + 1,
    machine_id: 41_234,
    host_id: 9_876,
    gpu_name: 'RTX 4090',
    num_gpus: 1,
    gpu_ram: 24_564,
    cpu_cores_effective: 16,
    cpu_ram: 64_000,
    disk_space: 120.5,
    cuda_max_good: 12.8,
    driver_version: '570.124.04',
    dph_base: dph - 0.02,
    dph_total: dph,
    reliability: 0.9912,
    reliability2: 0.9912,
    inet_down: 812.3,
    inet_up: 640.1,
    direct_port_count: 20,
    geolocation: 'Sweden, SE',
    verification: 'verified',
    verified: true,
    rentable: true,
    score: 212.4,
    ...over,
  }
}

// A row of `vastai show instance ID --raw`.
function instance(over: object): object {
  return {
    id: INSTANCE,
    machine_id: 41_234,
    actual_status: 'running',
    intended_status: 'running',
    cur_state: 'running',
    status_msg: 'success, running pytorch/pytorch_2.8.0-cuda12.8-cudnn9-runtime',
    label: 'jarvis-proj',
    gpu_name: 'RTX 4090',
    num_gpus: 1,
    dph_total: 0.412,
    image_uuid: IMAGE,
    image_runtype: 'ssh_direc ssh_proxy',
    public_ipaddr: '203.0.113.7',
    ports: {},
    extra_env: [],
    ...over,
  }
}

function vastRules(o: {user?: Rule; offers?: object[]; show?: Rule[]; create?: Rule} = {}): Rule[] {
  return [
    o.user ?? {match: ['show', 'user', '--raw'], stdout: {id: 424_242, username: 'dev', email: 'dev@example.com', credit: 25.5, balance: 0}},
    {match: ['show', 'ssh-keys', '--raw'], stdout: [{id: 31, public_key: 'ssh-ed25519 AAAAC3Nza... dev@laptop', created_at: '2026-08-01T10:00:00Z'}]},
    {match: ['search', 'offers'], stdout: o.offers ?? [offer(OFFER, 0.412), offer(OFFER + 1, 0.55)]},
    o.create ?? {match: ['create', 'instance'], stdout: {success: true, new_contract: INSTANCE}},
    ...(o.show ?? []),
    {match: ['destroy', 'instance'], stdout: `destroying instance ${INSTANCE}.\n`},
  ]
}

function killLeftover(remoteDir: string): void {
  try {
    const pid = Number(readFileSync(join(remoteDir, 'server.pid'), 'utf8'))
    if (pid > 1) process.kill(-pid, 'SIGKILL')
  } catch {
    // not started, or already gone
  }
}

describe('deploy vast', () => {
  let s: StandIns
  let base: string
  let n = 0
  const outputs: CliResult[] = []

  beforeAll(async () => {
    s = await createStandIns({vastai: vastRules()}, {passthrough: ['ssh-keygen']})
    base = await tempDir('jarvis-vast-')
  })

  async function project(config?: string): Promise<{dir: string; env: Record<string, string | undefined>}> {
    const root = join(base, `p${n++}`)
    const dir = join(root, 'proj')
    await mkdir(dir, {recursive: true})
    await mkdir(join(root, 'home'))
    await mkdir(join(root, 'ssh'), {mode: 0o700})
    if (config) await writeFile(join(dir, 'jarvis.yaml'), config)
    return {
      dir,
      env: s.env({
        HOME: join(root, 'home'),
        JARVIS_SSH_DIR: join(root, 'ssh'),
        JARVIS_CONFIG: undefined,
        SSH_AUTH_SOCK: undefined,
        HF_TOKEN: HF,
        VAST_API_KEY: VAST_KEY,
        PIP_RETRIES: '0',
        PIP_TIMEOUT: '2',
      }),
    }
  }

  const cli = async (args: string[], p: {dir: string; env: Record<string, string | undefined>}, timeoutMs = 60_000) => {
    const r = await runCli(args, {cwd: p.dir, env: p.env, timeoutMs})
    outputs.push(r)
    return r
  }
  const state = (dir: string) => JSON.parse(readFileSync(join(dir, '.jarvis', 'state.json'), 'utf8'))
  const argvs = () => s.calls('vastai').map((c) => c.argv)

  it('vastai not installed: the ✗ row carries the install hint, nothing runs', async () => {
    const bare = await createStandIns({})
    const p = await project()
    const r = await runCli(['deploy', 'vast', '--dry-run', '--json'], {cwd: p.dir, env: bare.env({HOME: p.env.HOME})})
    expect(r.exitCode).toBe(0)
    const plan = parseJson(r).plan
    expect(plan.ready).toBe(false)
    expect(plan.checks.find((c: any) => c.id === 'tool:vastai')).toMatchObject({ok: false, fix: expect.stringContaining('pip install vastai')})
    const y = await runCli(['deploy', 'vast', '--yes'], {cwd: p.dir, env: bare.env({HOME: p.env.HOME})})
    expect(y.exitCode).toBe(1)
    expect(y.stderr).toContain('pip install vastai')
    expect(existsSync(join(p.dir, '.jarvis'))).toBe(false)
  })

  it('not logged in (the CLI prints the API error and exits 0): ✗ says `vastai set api-key`; no search, no rental', async () => {
    const p = await project()
    s.rules('vastai', vastRules({user: {match: ['show', 'user'], stderr: '{"error": true, "status_code": 401, "msg": "Please log in or sign up"}\n', exitCode: 0}}))
    s.clearCalls()
    const r = await cli(['deploy', 'vast', '--yes'], p)
    expect(r.exitCode).toBe(1)
    expect(r.stderr).toMatch(/logged in to Vast\.ai/)
    expect(r.stderr).toMatch(/401: Please log in or sign up/)
    expect(r.stderr).toMatch(/vastai set api-key/)
    expect(argvs()).toEqual([['show', 'user', '--raw']])
  })

  it('no offer matches: the message shows the filters and what to relax; nothing is rented', async () => {
    const p = await project()
    s.rules('vastai', vastRules({offers: []}))
    s.clearCalls()
    const r = await cli(['deploy', 'vast', '--gpu', 'RTX 3090', '--max-price', '0.2', '--yes'], p)
    expect(r.exitCode).toBe(1)
    expect(r.stderr).toContain('no offer matches: gpu_name=RTX_3090 num_gpus=1 reliability>0.95 dph_total<=0.2 cuda_vers>=12.8 disk_space>=40')
    expect(r.stderr).toMatch(/Raise --max-price/)
    expect(argvs().some((a) => a[0] === 'create')).toBe(false)
  })

  it('--host deploys onto an existing instance over SSH: no vastai at all', async () => {
    const p = await project()
    s.clearCalls()
    const r = await cli(['deploy', 'vast', '--host', 'ssh4.vast.ai', '--port', '14688', '--dry-run', '--json'], p)
    expect(r.exitCode).toBe(0)
    const plan = parseJson(r).plan
    expect(plan.steps.map((x: any) => x.id)).toEqual(['connect', 'upload', 'install', 'secrets', 'start', 'health'])
    expect(plan.details).toMatchObject({mode: 'host', ssh: {host: 'ssh4.vast.ai', port: 14688, user: 'root'}})
    expect(argvs()).toEqual([])
  })

  it('SSH never comes up: times out with the last error; the instance stays recorded and destroy removes it', async () => {
    const closed = await freePort()
    const p = await project('version: 1\ndeploy:\n  vast:\n    sshTimeoutSeconds: 2\n')
    s.rules('vastai', vastRules({show: [{match: ['show', 'instance'], stdout: instance({ssh_host: '127.0.0.1', ssh_port: closed})}]}))
    s.clearCalls()
    const r = await cli(['deploy', 'vast', '--engine', 'pocketsphinx', '--yes'], p)
    expect(r.exitCode).toBe(1)
    expect(r.stderr).toMatch(new RegExp(`instance ${INSTANCE} did not accept SSH within 2 s \\(last: ssh root@127\\.0\\.0\\.1:${closed}: .*refused`, 'i'))
    expect(r.stderr).toMatch(/jarvis destroy vast/)
    const dep = state(p.dir).deployments.vast
    expect(dep.status).toBe('failed')
    expect(dep.resources).toEqual([expect.objectContaining({kind: 'vast-instance', id: String(INSTANCE)})])
    // Where it was trying to reach is kept too (for `jarvis tunnel vast` and destroy).
    expect(dep.details.ssh).toMatchObject({host: '127.0.0.1', port: closed, user: 'root'})

    s.clearCalls()
    const d = await cli(['destroy', 'vast', '--yes'], p)
    expect(d.exitCode, d.stderr).toBe(0)
    expect(argvs()).toEqual([['destroy', 'instance', String(INSTANCE), '--yes']])
    expect(state(p.dir).deployments.vast).toBeUndefined()
  })

  it('an instance that exits is reported at once with its status message', async () => {
    const p = await project('version: 1\ndeploy:\n  vast:\n    sshTimeoutSeconds: 30\n')
    s.rules('vastai', vastRules({show: [{match: ['show', 'instance'], stdout: instance({actual_status: 'exited', status_msg: 'Error response from daemon: no CUDA-capable device is detected'})}]}))
    const started = Date.now()
    const r = await cli(['deploy', 'vast', '--yes'], p)
    expect(r.exitCode).toBe(1)
    expect(r.stderr).toMatch(/instance 7835610 is exited: Error response from daemon: no CUDA-capable device/)
    expect(Date.now() - started).toBeLessThan(20_000)
  })

  describe.skipIf(!sshdAvailable())('with a real sshd as the instance', () => {
    let sshd: Sshd
    let remoteDir: string
    let remotePort: number
    let p: {dir: string; env: Record<string, string | undefined>}

    beforeAll(async () => {
      sshd = await startSshd()
      remotePort = await freePort()
      p = await project('version: 1\ndeploy:\n  vast:\n    sshTimeoutSeconds: 20\n')
      remoteDir = join(p.dir, '..', 'instance-root', 'jarvis')
    })
    afterAll(async () => {
      if (remoteDir) killLeftover(remoteDir)
      await sshd?.stop()
      sshd?.cleanup()
    })

    it('deploy → status → destroy: exact vastai calls, and no secret in any argv, file, log or output', async () => {
      s.rules(
        'vastai',
        vastRules({
          show: [
            {match: ['show', 'instance'], times: 1, stdout: instance({actual_status: 'loading', status_msg: 'Pulling image'})},
            {match: ['show', 'instance'], stdout: instance({ssh_host: '127.0.0.1', ssh_port: sshd.port})},
          ],
        }),
      )
      s.clearCalls()
      const flags = ['--gpu', 'RTX 4090', '--max-price', '0.6', '--identity', sshd.clientKey, '--engine', 'pocketsphinx', '--remote-dir', remoteDir, '--remote-port', String(remotePort), '--health-timeout', '60']
      const dry = await cli(['deploy', 'vast', ...flags, '--dry-run', '--json'], p)
      expect(dry.exitCode).toBe(0)
      expect(parseJson(dry).plan.steps.map((x: any) => x.id)).toEqual(['create-instance', 'wait-ssh', 'connect', 'upload', 'install', 'secrets', 'start', 'health'])
      s.clearCalls()

      const r = await cli(['deploy', 'vast', ...flags, '--yes', '--json'], p, 120_000)
      expect(r.exitCode, r.stderr).toBe(0)
      const onstart = join(p.dir, '.jarvis', 'deploy', 'vast', 'onstart.sh')
      const query = 'gpu_name=RTX_4090 num_gpus=1 reliability>0.95 dph_total<=0.6 cuda_vers>=12.8 disk_space>=40'
      expect(argvs()).toEqual([
        ['show', 'user', '--raw'],
        ['show', 'ssh-keys', '--raw'],
        ['search', 'offers', query, '-o', 'dph_total', '--storage', '40', '--raw'],
        ['create', 'instance', String(OFFER), '--image', IMAGE, '--disk', '40', '--label', 'jarvis-proj', '--onstart', onstart, '--ssh', '--direct', '--cancel-unavail', '--raw'],
        ['show', 'instance', String(INSTANCE), '--raw'],
        ['show', 'instance', String(INSTANCE), '--raw'],
      ])
      // The onstart script Vast receives restarts the installed server; it holds no secret.
      const create = s.calls('vastai').find((c) => c.argv[0] === 'create')!
      expect(create.files[onstart].content).toContain(`DIR=${remoteDir}`)
      expect(create.files[onstart].content).toContain('start-detached.sh')

      const dep = parseJson(r).deployment
      expect(dep).toMatchObject({
        status: 'ready',
        url: `ssh://root@127.0.0.1:${sshd.port}`,
        details: {mode: 'instance', ssh: {host: '127.0.0.1', port: sshd.port, user: 'root', identity: sshd.clientKey}, remotePort, remoteDir, hostKeyPolicy: 'accept-new', health: {engine: 'pocketsphinx'}},
      })
      expect(dep.resources.map((x: any) => x.kind)).toEqual(['vast-instance', 'remote-dir'])
      expect(dep.resources[0]).toMatchObject({id: String(INSTANCE), details: {offer: OFFER, dph: 0.412}})
      // A new instance's host key is pinned on first sight (no terminal needed).
      expect(readFileSync(join(p.env.JARVIS_SSH_DIR!, 'known_hosts'), 'utf8')).toContain(`[127.0.0.1]:${sshd.port} ${sshd.hostKeyLine}`)

      const apiKey = JSON.parse(readFileSync(join(p.dir, '.jarvis', 'secrets.json'), 'utf8'))['vast.apiKey']
      expect(readFileSync(join(remoteDir, 'server.env'), 'utf8')).toBe(`JARVIS_GPU_API_KEY=${apiKey}\nJARVIS_GPU_HF_TOKEN=${HF}\n`)

      const st = await cli(['status', '--json'], p)
      expect(st.exitCode, st.stdout + st.stderr).toBe(0)
      const row = parseJson(st).backends.find((b: any) => b.name === 'vast')
      expect(row).toMatchObject({kind: 'vast', health: 'healthy', ok: true, engine: 'pocketsphinx', providerStatus: {state: 'running', summary: expect.stringContaining(`instance ${INSTANCE} running (RTX 4090, $0.412/h)`)}})

      s.clearCalls()
      const d = await cli(['destroy', 'vast', '--yes', '--json'], p)
      expect(d.exitCode, d.stderr).toBe(0)
      expect(argvs()).toEqual([['destroy', 'instance', String(INSTANCE), '--yes']])
      expect(state(p.dir).deployments.vast).toBeUndefined()
      // The key pinned for this instance's address is forgotten: the next rental may reuse the address.
      expect(readFileSync(join(p.env.JARVIS_SSH_DIR!, 'known_hosts'), 'utf8')).not.toContain(`[127.0.0.1]:${sshd.port}`)

      for (const secret of [apiKey, HF, VAST_KEY]) {
        expect(s.argvText()).not.toContain(secret)
        for (const c of s.calls()) expect(c.stdin).not.toContain(secret)
        for (const o of outputs) expect(o.stdout + o.stderr).not.toContain(secret)
        expect(readFileSync(join(p.dir, '.jarvis', 'state.json'), 'utf8')).not.toContain(secret)
        expect(create.files[onstart].content).not.toContain(secret)
      }
    })
  })
})
