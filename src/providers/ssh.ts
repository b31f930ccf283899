// ssh: the bundled server on any host you can SSH into (a workstation with a GPU, a rented
// box, a VM): upload over SFTP, venv + pip there, secrets in a 0600 file there, started
// detached, health-checked through an SSH tunnel. The install itself lives in
// ./remote-server.ts (shared with `deploy vast`).
//
//   jarvis deploy ssh --host gpu.example.com --user ubuntu [--identity KEY] [--accept-new]
//
// Nothing is opened to the network: the server listens on the host's 127.0.0.1, and
// `transcribe`/`status` reach it through a tunnel (details.ssh + details.remotePort).
import {existsSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {z} from 'zod'
import {parseSection} from './engine.js'
import {
  absoluteIdentity,
  applyRemoteDestroy,
  applyRemotePlan,
  DEFAULT_REMOTE_PORT,
  identityCheck,
  pipEnvironment,
  RemoteConnection,
  remoteDestroySteps,
  remoteStatus,
  remoteSteps,
  sshUrl,
  withConnection,
  type RecordedSsh,
} from './remote-server.js'
import type {Check, DeployOptions, DeployPlan, Deployment, PlanSetting, Provider, ProviderContext} from './types.js'

const hostKeyPolicy = z.enum(['ask', 'yes', 'accept-new', 'no'])

/** deploy.ssh in jarvis.yaml; every key also a flag (flags win). */
export const sshSectionSchema = z.strictObject({
  host: z.string().min(1).optional(),
  port: z.number().int().min(1).max(65535).optional(),
  user: z.string().min(1).optional(),
  identity: z.string().min(1).optional(),
  strictHostKey: hostKeyPolicy.optional(),
  remoteDir: z.string().min(1).optional(),
  remotePort: z.number().int().min(1).max(65535).optional(),
  python: z.string().min(1).optional(),
  device: z.string().regex(/^(auto|cpu|cuda(:\d+)?)$/, 'expected auto, cpu, cuda or cuda:N').optional(),
  computeType: z.enum(['auto', 'float16', 'int8', 'int8_float16', 'float32']).optional(),
  batchSize: z.number().int().min(1).optional(),
  /** Extra environment for pip on the host (PIP_INDEX_URL, PIP_FIND_LINKS ...). */
  pipEnv: z.record(z.string().regex(/^PIP_[A-Z0-9_]+$/, 'expected a PIP_* variable name'), z.string()).optional(),
})
type Section = z.infer<typeof sshSectionSchema>

// One connection per apply/destroy run, closed when the run ends.
function source(flag: boolean, config: boolean, state: boolean): PlanSetting['source'] {
  return flag ? 'flag' : config ? 'config' : state ? 'state' : 'default'
}

async function preflight(ctx: ProviderContext, opts: DeployOptions): Promise<Check[]> {
  const section: Section = await parseSection(ctx, 'ssh', sshSectionSchema)
  const prior = opts.existing?.status !== 'destroyed' ? (opts.existing?.details.ssh as RecordedSsh | undefined) : undefined
  const host = opts.ssh?.host ?? section.host ?? prior?.host
  const checks: Check[] = [
    host
      ? {id: 'target', label: 'SSH host given', ok: true, detail: host}
      : {id: 'target', label: 'SSH host given', ok: false, detail: 'no --host, and no deploy.ssh.host in jarvis.yaml', fix: 'Pass --host HOST (and --user, --port, --identity as needed)'},
  ]
  const idCheck = identityCheck(resolveIdentity(ctx, opts, section))
  if (idCheck) checks.push(idCheck)
  const serverDir = join(ctx.packageRoot, 'gpu-server', 'pyproject.toml')
  checks.push(
    existsSync(serverDir)
      ? {id: 'server-source', label: 'gpu-server sources present', ok: true, detail: dirname(serverDir)}
      : {id: 'server-source', label: 'gpu-server sources present', ok: false, detail: `${dirname(serverDir)} is missing from this installation`, fix: 'Reinstall jarvis'},
  )
  return checks
}

/** The identity file: --identity (relative to the working directory), deploy.<provider>.identity (relative to the project), or the recorded one. */
export function resolveIdentity(ctx: ProviderContext, opts: DeployOptions, section: Pick<Section, 'identity'>): string | undefined {
  const prior = opts.existing?.status !== 'destroyed' ? (opts.existing?.details.ssh as RecordedSsh | undefined) : undefined
  if (opts.ssh?.identity) return absoluteIdentity(opts.ssh.identity, process.cwd())
  return absoluteIdentity(section.identity, ctx.projectDir) ?? prior?.identity
}

/** Everything ssh and vast share about the server on a remote host, resolved from flags > jarvis.yaml > the recorded deployment > defaults. */
export function remoteSettings(ctx: ProviderContext, opts: DeployOptions, section: Section, provider: 'ssh' | 'vast', defaults: {user?: string; policy?: 'ask' | 'accept-new'} = {}) {
  const prior = opts.existing?.status !== 'destroyed' ? opts.existing?.details : undefined
  const priorSsh = prior?.ssh as RecordedSsh | undefined
  const identity = resolveIdentity(ctx, opts, section)
  const ssh: RecordedSsh | undefined = (opts.ssh?.host ?? section.host ?? priorSsh?.host)
    ? {
        host: (opts.ssh?.host ?? section.host ?? priorSsh?.host)!,
        port: opts.ssh?.port ?? section.port ?? priorSsh?.port,
        user: opts.ssh?.user ?? section.user ?? priorSsh?.user ?? defaults.user,
        ...(identity ? {identity} : {}),
      }
    : undefined
  const policy = opts.ssh?.hostKeyPolicy ?? section.strictHostKey ?? (prior?.hostKeyPolicy as Section['strictHostKey'] | null | undefined) ?? defaults.policy ?? 'ask'
  const remoteDir = opts.remoteDir ?? section.remoteDir ?? (typeof prior?.remoteDir === 'string' ? prior.remoteDir : undefined) ?? `~/.jarvis-gpu-server/${provider}`
  const remotePort = opts.remotePort ?? section.remotePort ?? (typeof prior?.remotePort === 'number' ? prior.remotePort : undefined) ?? DEFAULT_REMOTE_PORT
  const device = opts.cpu ? 'cpu' : (section.device ?? (typeof prior?.device === 'string' ? prior.device : undefined) ?? 'auto')
  // A redeploy keeps the engine and model it was deployed with unless told otherwise.
  const engine = opts.fromFlags.has('engine') || typeof prior?.engine !== 'string' ? opts.engine : prior.engine
  const model = opts.fromFlags.has('model') || typeof prior?.model !== 'string' ? opts.model : prior.model
  opts = {...opts, engine, model}
  const settings: PlanSetting[] = [
    ...(ssh ? [{key: 'host', value: sshUrl(ssh), source: source(Boolean(opts.ssh?.host), Boolean(section.host), Boolean(priorSsh?.host))} satisfies PlanSetting] : []),
    {key: 'host keys', value: policy, source: source(Boolean(opts.ssh?.hostKeyPolicy), Boolean(section.strictHostKey), Boolean(prior?.hostKeyPolicy))},
    {key: 'remote dir', value: remoteDir, source: source(Boolean(opts.remoteDir), Boolean(section.remoteDir), Boolean(prior?.remoteDir))},
    {key: 'server', value: `127.0.0.1:${remotePort} on the host (reached through an SSH tunnel)`, source: source(Boolean(opts.remotePort), Boolean(section.remotePort), Boolean(prior?.remotePort))},
    {key: 'engine', value: opts.engine, source: opts.fromFlags.has('engine') ? 'flag' : prior?.engine ? 'state' : 'default'},
    {key: 'model', value: opts.engine === 'pocketsphinx' ? 'en-us (pocketsphinx)' : opts.model, source: opts.fromFlags.has('model') ? 'flag' : prior?.model ? 'state' : 'default'},
    {key: 'device', value: device, source: opts.cpu ? 'flag' : section.device ? 'config' : 'default'},
  ]
  const pip = Object.keys(pipEnvironment({pipEnv: section.pipEnv}))
  if (pip.length) settings.push({key: 'pip environment', value: pip.join(', '), source: section.pipEnv ? 'config' : 'env'})
  const spec = {
    name: provider,
    remoteDir,
    remotePort,
    engine: opts.engine,
    model: opts.engine === 'pocketsphinx' ? undefined : opts.model,
    device,
    computeType: section.computeType,
    batchSize: section.batchSize,
    python: section.python,
    apiKey: opts.apiKey,
    hfToken: opts.hfToken,
    healthTimeoutMs: opts.healthTimeoutMs,
    pipEnv: section.pipEnv,
    hostKeyPolicy: policy,
  }
  // One install per deployment: moving it would leave the old one behind, unrecorded.
  const conflicts: Check[] = []
  const installed = prior && opts.existing?.resources.some((x) => x.kind === 'remote-dir')
  if (installed && typeof prior.remoteDir === 'string') {
    const movedHost = ssh && priorSsh && (ssh.host !== priorSsh.host || (ssh.port ?? 22) !== (priorSsh.port ?? 22))
    const movedDir = (opts.remoteDir ?? section.remoteDir) !== undefined && !sameDir(remoteDir, prior.remoteDir)
    if (movedHost || movedDir) {
      conflicts.push({
        id: 'same-install',
        label: 'same host and directory as the recorded deployment',
        ok: false,
        detail: `this project's ${provider} deployment is installed in ${prior.remoteDir} on ${priorSsh ? sshUrl(priorSsh) : 'its host'}`,
        fix: `Run \`jarvis destroy ${provider}\` first, or deploy to the same host and --remote-dir`,
      })
    }
  }
  return {ssh, policy, remoteDir, remotePort, device, engine, settings, spec, conflicts}
}

/** Recorded dirs are absolute (resolved on the host); a given one may be `~/x` or relative to the login dir. */
function sameDir(given: string, recorded: string): boolean {
  const g = given.replace(/\/+$/, '')
  const r = recorded.replace(/\/+$/, '')
  if (g.startsWith('/')) return g === r
  const rel = g.replace(/^~\/?/, '')
  return rel === '' || r.endsWith(`/${rel}`)
}

export function remoteWarnings(opts: DeployOptions, device: string): string[] {
  const w: string[] = []
  if (!opts.hfToken && opts.engine === 'whisperx') w.push('No HUGGINGFACE_TOKEN / HF_TOKEN set: the server will not be able to diarize (speaker labels).')
  if (device === 'cpu' && opts.engine === 'whisperx' && /large|medium/.test(opts.model)) w.push(`${opts.model} on a CPU is slow; --model small or --engine pocketsphinx start faster.`)
  return w
}

async function plan(ctx: ProviderContext, opts: DeployOptions, checks: Check[]): Promise<DeployPlan> {
  const section: Section = await parseSection(ctx, 'ssh', sshSectionSchema)
  const r = remoteSettings(ctx, opts, section, 'ssh')
  const conn = new RemoteConnection()
  const steps = remoteSteps(ctx, r.spec, conn)
  const plan: DeployPlan = {
    provider: 'ssh',
    name: 'ssh',
    settings: r.settings,
    checks: [...checks, ...r.conflicts],
    files: [],
    steps,
    url: r.ssh ? sshUrl(r.ssh) : undefined,
    secrets: ['JARVIS_GPU_API_KEY', ...(opts.hfToken ? ['JARVIS_GPU_HF_TOKEN'] : [])],
    warnings: remoteWarnings({...opts, engine: r.engine}, r.device),
    details: {
      ...(r.ssh ? {ssh: r.ssh} : {}),
      remotePort: r.remotePort,
      engine: r.engine,
      model: r.spec.model ?? null,
      device: r.device,
    },
  }
  return withConnection(plan, conn)
}

const provider: Provider = {
  name: 'ssh',
  description: 'Any host you can SSH into: the bundled server installed in a venv there, reached through an SSH tunnel',
  tools: [],
  capabilities: {
    gpu: 'uses whatever GPU the host has (deploy.ssh.device); there is no GPU kind to choose',
    regions: 'the host is where it is',
    scaleToZero: 'the server runs until `jarvis destroy ssh`',
    customUrl: 'the server listens on the host\'s loopback and is reached through an SSH tunnel',
  },
  configSchema: sshSectionSchema,
  preflight,
  plan,
  apply: applyRemotePlan,
  status: (ctx, dep) => remoteStatus(ctx, dep),
  async planDestroy(_ctx, dep: Deployment) {
    const conn = new RemoteConnection()
    const steps = remoteDestroySteps(dep, conn)
    const p = {provider: 'ssh' as const, name: dep.name, steps, warnings: steps.length ? [] : ['Nothing was installed on a host yet: only the record is removed.']}
    return withConnection(p, conn)
  },
  destroy: applyRemoteDestroy,
}

export default provider
