// `jarvis deploy ssh` against a real OpenSSH server on loopback (test/ssh/sshd.ts): the
// bundled server really uploaded over SFTP, installed in a venv with pip (this machine's
// local index: the "remote" host is this machine), started detached and reached through
// an SSH tunnel by `transcribe` and `status`; `destroy` stops it and removes what it made.
// HOME and JARVIS_SSH_DIR point at temp dirs: nothing of the real ~/.ssh is touched.
import {existsSync, readFileSync, statSync} from 'node:fs'
import {copyFile, mkdir, readFile, writeFile} from 'node:fs/promises'
import {connect} from 'node:net'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {parseJson, repoRoot, runCli, type CliResult} from '../helpers/cli.js'
import {tempDir} from '../helpers/tmp.js'
import {freePort, sshdAvailable, startSshd, type Sshd} from '../ssh/sshd.js'

const HF = 'hf_sshdeploytoken_0123456789abcdef'
const CLIP = 'sense_and_sensibility_01_austen_64kb-0870'

function refuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1')
    s.once('connect', () => (s.destroy(), resolve(false)))
    s.once('error', () => resolve(true))
  })
}

/** Kill a server a failed test left behind (it is detached: sshd stopping does not take it down). */
function killLeftover(remoteDir: string): void {
  try {
    const pid = Number(readFileSync(join(remoteDir, 'server.pid'), 'utf8'))
    if (pid > 1) process.kill(-pid, 'SIGKILL')
  } catch {
    // not started, or already gone
  }
}

describe.skipIf(!sshdAvailable())('deploy ssh (real sshd)', () => {
  let sshd: Sshd
  let base: string
  let project: string
  let remoteDir: string
  let remotePort: number
  let env: Record<string, string | undefined>
  const outputs: CliResult[] = []

  beforeAll(async () => {
    sshd = await startSshd()
    base = await tempDir('jarvis-ssh-deploy-')
    project = join(base, 'proj')
    remoteDir = join(base, 'remote', 'server')
    await mkdir(project)
    await mkdir(join(base, 'home'))
    await mkdir(join(base, 'ssh'), {mode: 0o700})
    remotePort = await freePort()
    env = {
      HOME: join(base, 'home'),
      JARVIS_SSH_DIR: join(base, 'ssh'),
      JARVIS_CONFIG: undefined,
      SSH_AUTH_SOCK: undefined,
      HF_TOKEN: HF,
      HUGGINGFACE_TOKEN: undefined,
      EXTERNAL_GPU_URL: undefined,
      // The "remote" pip is this machine's: fail fast on the network, use the local index.
      PIP_RETRIES: '0',
      PIP_TIMEOUT: '2',
    }
  })

  afterAll(async () => {
    if (remoteDir) killLeftover(remoteDir)
    await sshd?.stop()
    sshd?.cleanup()
  })

  const cli = async (args: string[], timeoutMs = 60_000) => {
    const r = await runCli(args, {cwd: project, env, timeoutMs})
    outputs.push(r)
    return r
  }
  const target = () => ['--host', '127.0.0.1', '--port', String(sshd.port), '--user', sshd.user, '--identity', sshd.clientKey]
  const state = () => JSON.parse(readFileSync(join(project, '.jarvis', 'state.json'), 'utf8'))

  it('--dry-run prints the plan and contacts no host; without --host the ✗ row names the flag', async () => {
    const r = await cli(['deploy', 'ssh', ...target(), '--engine', 'pocketsphinx', '--remote-dir', remoteDir, '--dry-run', '--json'])
    expect(r.exitCode).toBe(0)
    const plan = parseJson(r).plan
    expect(plan.ready).toBe(true)
    expect(plan.steps.map((s: any) => s.id)).toEqual(['connect', 'upload', 'install', 'secrets', 'start', 'health'])
    expect(plan.settings.find((s: any) => s.key === 'remote dir')).toMatchObject({value: remoteDir, source: 'flag'})
    expect(plan.settings.find((s: any) => s.key === 'pip environment').value.split(', ')).toEqual(expect.arrayContaining(['PIP_RETRIES', 'PIP_TIMEOUT']))
    expect(plan.secrets).toEqual(['JARVIS_GPU_API_KEY', 'JARVIS_GPU_HF_TOKEN'])
    expect(existsSync(join(base, 'ssh', 'known_hosts'))).toBe(false)
    expect(existsSync(join(project, '.jarvis'))).toBe(false)

    const none = await cli(['deploy', 'ssh', '--yes'])
    expect(none.exitCode).toBe(1)
    expect(none.stderr).toMatch(/SSH host given/)
    expect(none.stderr).toMatch(/--host/)

    const wrong = await cli(['deploy', 'fly', '--host', 'x', '--dry-run'])
    expect(wrong.exitCode).toBe(2)
    expect(wrong.stderr).toMatch(/--host is for deploying over SSH/)
  })

  it('an unknown host key without --accept-new (no terminal) stops before anything is installed', async () => {
    const r = await cli(['deploy', 'ssh', ...target(), '--engine', 'pocketsphinx', '--remote-dir', remoteDir, '--remote-port', String(remotePort), '--yes'])
    expect(r.exitCode).toBe(1)
    expect(r.stderr).toMatch(/can't be established/)
    expect(r.stderr).toMatch(/SHA256:/)
    expect(r.stderr).toMatch(/--accept-new/)
    expect(existsSync(remoteDir)).toBe(false)
    expect(state().deployments.ssh).toMatchObject({status: 'failed'})
  })

  it('deploy --accept-new installs and starts the server; secrets only in a 0600 file on the host', async () => {
    const r = await cli(['deploy', 'ssh', ...target(), '--accept-new', '--engine', 'pocketsphinx', '--remote-dir', remoteDir, '--remote-port', String(remotePort), '--health-timeout', '60', '--yes', '--json'], 120_000)
    expect(r.exitCode, r.stderr).toBe(0)
    const out = parseJson(r)
    expect(out.deployment).toMatchObject({
      name: 'ssh',
      provider: 'ssh',
      status: 'ready',
      url: `ssh://${sshd.user}@127.0.0.1:${sshd.port}`,
      details: {ssh: {host: '127.0.0.1', port: sshd.port, user: sshd.user, identity: sshd.clientKey}, remotePort, remoteDir, engine: 'pocketsphinx', health: {engine: 'pocketsphinx'}},
    })
    expect(out.deployment.resources).toEqual([expect.objectContaining({kind: 'remote-dir', id: `${sshd.user}@127.0.0.1:${sshd.port}:${remoteDir}`})])
    // The host key was pinned where JARVIS_SSH_DIR says.
    expect(readFileSync(join(base, 'ssh', 'known_hosts'), 'utf8')).toContain(`[127.0.0.1]:${sshd.port} ${sshd.hostKeyLine}`)

    const apiKey = JSON.parse(readFileSync(join(project, '.jarvis', 'secrets.json'), 'utf8'))['ssh.apiKey']
    expect(apiKey).toMatch(/^[\w-]{20,}$/)
    const envFile = join(remoteDir, 'server.env')
    expect(statSync(envFile).mode & 0o777).toBe(0o600)
    expect(readFileSync(envFile, 'utf8')).toBe(`JARVIS_GPU_API_KEY=${apiKey}\nJARVIS_GPU_HF_TOKEN=${HF}\n`)
    for (const f of ['start.sh', 'start-detached.sh', 'server.log']) {
      const text = readFileSync(join(remoteDir, f), 'utf8')
      expect(text).not.toContain(apiKey)
      expect(text).not.toContain(HF)
    }
    // The running server's command line (what `ps` shows) carries no secret.
    const pid = Number(readFileSync(join(remoteDir, 'server.pid'), 'utf8'))
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ')
    expect(cmdline).toContain(`jarvis_gpu_server --host 127.0.0.1 --port ${remotePort} --engine pocketsphinx`)
    expect(cmdline).not.toContain(apiKey)
    // Only loopback: nothing opened to the network.
    expect(readFileSync(join(remoteDir, 'start.sh'), 'utf8')).toContain('--host 127.0.0.1')
    for (const o of outputs) {
      expect(o.stdout + o.stderr).not.toContain(apiKey)
      expect(o.stdout + o.stderr).not.toContain(HF)
    }
  })

  it('transcribe --backend ssh goes through a tunnel; status shows it healthy', async () => {
    const clip = join(project, 'clip.wav')
    await copyFile(join(repoRoot, 'test', 'fixtures', 'audio', 'librivox', `${CLIP}.wav`), clip)
    const t = await cli(['transcribe', clip, '--backend', 'ssh', '--format', 'txt', '--json'])
    expect(t.exitCode, t.stderr).toBe(0)
    const text = (await readFile(join(project, 'clip.txt'), 'utf8')).toLowerCase()
    // pocketsphinx is rough; the clip says "...had then leisure to consider how much there might be prudently in his power to do for them".
    for (const w of ['leisure', 'consider', 'power']) expect(text).toContain(w)

    const s = await cli(['status', '--json'])
    expect(s.exitCode, s.stdout + s.stderr).toBe(0)
    const row = parseJson(s).backends.find((b: any) => b.name === 'ssh')
    expect(row).toMatchObject({kind: 'ssh', health: 'healthy', ok: true, engine: 'pocketsphinx', provider: 'ssh', providerStatus: {state: 'running'}})
    expect(row.url).toBe(`ssh://${sshd.user}@127.0.0.1:${sshd.port} → 127.0.0.1:${remotePort}`)
  })

  it('a re-run keeps the engine, skips pip (same sources) and restarts the server', async () => {
    const before = Number(readFileSync(join(remoteDir, 'server.pid'), 'utf8'))
    const started = Date.now()
    const r = await cli(['deploy', 'ssh', '--yes', '--json'], 120_000)
    expect(r.exitCode, r.stderr).toBe(0)
    const out = parseJson(r)
    expect(out.plan.settings.find((s: any) => s.key === 'engine')).toMatchObject({value: 'pocketsphinx', source: 'state'})
    expect(Date.now() - started).toBeLessThan(30_000)
    const after = Number(readFileSync(join(remoteDir, 'server.pid'), 'utf8'))
    expect(after).not.toBe(before)
    expect(existsSync(`/proc/${before}/cmdline`) && readFileSync(`/proc/${before}/cmdline`, 'utf8').includes('jarvis_gpu_server')).toBe(false)
  })

  it('destroy stops the server (its port refuses) and removes the directory', async () => {
    const r = await cli(['destroy', 'ssh', '--yes'])
    expect(r.exitCode, r.stderr).toBe(0)
    expect(await refuses(remotePort)).toBe(true)
    expect(existsSync(remoteDir)).toBe(false)
    expect(state().deployments.ssh).toBeUndefined()
  })

  it('refuses to install into a directory jarvis did not make (destroy removes what it installs into)', async () => {
    const foreign = join(base, 'someone-elses')
    await mkdir(foreign)
    await writeFile(join(foreign, 'notes.txt'), 'keep me\n')
    const r = await cli(['deploy', 'ssh', ...target(), '--engine', 'pocketsphinx', '--remote-dir', foreign, '--remote-port', String(remotePort), '--yes'])
    expect(r.exitCode).toBe(1)
    expect(r.stderr).toMatch(/already exists on .* and was not made by jarvis/)
    expect(readFileSync(join(foreign, 'notes.txt'), 'utf8')).toBe('keep me\n')
    // The failed deploy connected but wrote nothing: destroy has nothing to remove there either.
    const d = await cli(['destroy', 'ssh', '--yes'])
    expect(d.exitCode, d.stderr).toBe(0)
    expect(readFileSync(join(foreign, 'notes.txt'), 'utf8')).toBe('keep me\n')
  })
})
