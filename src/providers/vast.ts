// vast: rent a GPU on Vast.ai with the `vastai` CLI, then install and start the bundled
// server on it over SSH (./remote-server.ts, the same install as `deploy ssh`).
//
//   search offers → create instance (CUDA image, no secrets) → wait for SSH →
//   upload + venv + pip → server.env (0600, SFTP) → start detached → /health via tunnel
//
// Secrets: nothing secret goes to Vast. `--env '-e HF_TOKEN=...'` would put the token on
// argv (visible in `ps`) and in the instance record (`vastai show instance` prints
// extra_env), so the instance is created bare and the API key / HF token are written over
// SFTP into a 0600 file that only the server's start script reads.
// `jarvis deploy vast --host H --port P` installs onto an instance you already have (no
// vastai needed; destroy then leaves the instance alone).
//
// Checked against the vastai CLI source (github.com/vast-ai/vast-cli, vastai/cli/commands/
// {offers,instances,auth,billing,keys}.py and vastai/cli/main.py, Aug 2026) and
// https://docs.vast.ai/cli/reference/create-instance.md :
//   - `vastai search offers 'QUERY' -o dph_total --storage GB --raw` prints a JSON list of
//     offers (id, gpu_name, num_gpus, dph_total, reliability, cuda_max_good, geolocation,
//     gpu_ram, ...); `dph` is an alias of dph_total, `cuda_vers` of cuda_max_good; the
//     default query adds verified=true external=false rentable=true; --storage prices the disk in.
//   - `vastai create instance OFFER --image IMG --disk GB --label L --onstart FILE --ssh
//     --direct --cancel-unavail --raw` → {"success": true, "new_contract": INSTANCE_ID}.
//   - `vastai show instance ID --raw` → the instance row: actual_status (null, created,
//     loading, running, stopped, exited, unknown, offline), status_msg, ssh_host, ssh_port,
//     public_ipaddr, ports {"22/tcp": [{"HostPort": "..."}]} for direct SSH (the same
//     choice as `vastai ssh-url`), gpu_name, dph_total; {"instances": null} once gone.
//   - `vastai destroy instance ID --yes` (without --yes it asks on stdin).
//   - `vastai show user --raw` (account; the API key is removed) checks the login;
//     `vastai show ssh-keys --raw` lists the keys Vast puts on new instances.
//   - API errors do NOT set the exit code: the CLI prints them (with --raw, as
//     {"error": true, "status_code": N, "msg": "..."} on stderr) and exits 0. So every
//     call here is judged by its output, not only by its exit code.
import {existsSync} from 'node:fs'
import {join} from 'node:path'
import {z} from 'zod'
import {errorMessage, ExternalError, InterruptedError, ToolMissingError, UserError} from '../lib/errors.js'
import {registerSecret} from '../lib/secrets.js'
import {parseSection, renderTemplate, skippedCheck, toolCheck} from './engine.js'
import {applyRemoteDestroy, applyRemotePlan, DEFAULT_REMOTE_PORT, identityCheck, RemoteConnection, remoteDestroySteps, remoteDirShellExpr, remoteStatus, remoteSteps, targetOf, withConnection, type RecordedSsh} from './remote-server.js'
import {remoteSettings, remoteWarnings, resolveIdentity, sshSectionSchema} from './ssh.js'
import type {HostKeyPolicy} from '../ssh/index.js'
import type {Check, CommandStep, DeployOptions, DeployPlan, Deployment, PlanSetting, Provider, ProviderContext, ProviderStatus, Step} from './types.js'

const DEFAULTS = {
  gpu: 'RTX_4090',
  numGpus: 1,
  maxPrice: 1.0,
  minReliability: 0.95,
  // The image's CUDA (12.8) needs a driver that supports it.
  minCuda: 12.8,
  diskGb: 40,
  image: 'pytorch/pytorch:2.8.0-cuda12.8-cudnn9-runtime',
  sshTimeoutSeconds: 600,
}

const sectionSchema = z.strictObject({
  ...sshSectionSchema.shape,
  /** GPU model as Vast names it: RTX_4090, RTX_3090, A100_SXM4, H100_SXM ... ("RTX 4090" works too). */
  gpu: z.string().min(1).optional(),
  numGpus: z.number().int().min(1).max(16).optional(),
  maxPrice: z.number().positive().optional(),
  minReliability: z.number().min(0).max(1).optional(),
  minCuda: z.number().min(0).optional(),
  diskGb: z.number().int().min(10).max(2000).optional(),
  image: z.string().min(1).optional(),
  /** Extra `vastai search offers` filters, e.g. "inet_down>500 geolocation in [US,CA]". */
  query: z.string().min(1).optional(),
  label: z.string().min(1).optional(),
  /** How long to wait for a new instance to accept SSH. */
  sshTimeoutSeconds: z.number().int().min(1).optional(),
})
type Section = z.infer<typeof sectionSchema>

const tool = {
  command: 'vastai',
  purpose: 'searching offers, renting and destroying the instance',
  installHint: 'Install the Vast.ai CLI: pip install vastai (then `vastai set api-key KEY`, a key from https://console.vast.ai/manage-keys/)',
}

interface Offer {
  id: number
  gpu_name?: string
  num_gpus?: number
  dph_total?: number
  reliability?: number
  reliability2?: number
  cuda_max_good?: number
  geolocation?: string
  gpu_ram?: number
  machine_id?: number
}

interface Instance {
  id?: number
  actual_status?: string | null
  intended_status?: string | null
  status_msg?: string | null
  ssh_host?: string | null
  ssh_port?: number | string | null
  public_ipaddr?: string | null
  ports?: Record<string, {HostIp?: string; HostPort?: string}[] | null> | null
  gpu_name?: string
  num_gpus?: number
  dph_total?: number
  label?: string | null
}

// ---------------------------------------------------------------- calling vastai

interface VastAnswer {
  ok: boolean
  json?: unknown
  /** Why it failed (the API's message), or the last output line. */
  message: string
  status?: number
  missing?: boolean
  stdout: string
}

/** The error a vastai call printed: `{"error": true, "status_code": N, "msg": ...}` (--raw) or "Failed with error N: msg". */
function vastError(stdout: string, stderr: string): {message: string; status?: number} | undefined {
  for (const line of `${stderr}\n${stdout}`.split('\n')) {
    const t = line.trim()
    if (t.startsWith('{') && t.includes('"error"')) {
      try {
        const e = JSON.parse(t) as {error?: unknown; status_code?: number; msg?: string}
        if (e.error) return {message: `${e.status_code ? `${e.status_code}: ` : ''}${e.msg ?? 'error'}`, status: e.status_code}
      } catch {
        // not JSON after all
      }
    }
    const m = /^Failed with error (\d+): (.*)$/.exec(t)
    if (m) return {message: `${m[1]}: ${m[2]}`, status: Number(m[1])}
  }
  return undefined
}

async function vast(ctx: ProviderContext, cmd: string, args: string[], opts: {json?: boolean; timeoutMs?: number} = {}): Promise<VastAnswer> {
  // The CLI may read its key from VAST_API_KEY: masked wherever output is shown.
  registerSecret(process.env.VAST_API_KEY)
  try {
    // JSON answers are read, not streamed into the deploy log.
    const r = await ctx.run(cmd, args, {allowFailure: true, timeoutMs: opts.timeoutMs ?? 60_000, ...(opts.json ? {onLine: () => {}} : {})})
    const err = vastError(r.stdout, r.stderr)
    const last = (r.stderr || r.stdout).trim().split('\n').filter(Boolean).at(-1) ?? `exit ${r.exitCode}`
    if (err) return {ok: false, message: err.message, status: err.status, stdout: r.stdout}
    if (r.exitCode !== 0) return {ok: false, message: last, stdout: r.stdout}
    if (!opts.json) return {ok: true, message: last, stdout: r.stdout}
    try {
      return {ok: true, json: JSON.parse(r.stdout), message: last, stdout: r.stdout}
    } catch {
      return {ok: false, message: `unreadable answer from \`vastai ${args.slice(0, 2).join(' ')}\`: ${last}`, stdout: r.stdout}
    }
  } catch (error) {
    return {ok: false, message: errorMessage(error), missing: error instanceof ToolMissingError, stdout: ''}
  }
}

// ---------------------------------------------------------------- settings

/** "RTX 4090" → "RTX_4090": search queries write spaces as underscores. */
export function vastGpuName(gpu: string): string {
  return gpu.trim().replace(/\s+/g, '_')
}

interface Search {
  gpu: string
  numGpus: number
  maxPrice: number
  minReliability: number
  minCuda: number
  diskGb: number
  region?: string
  extra?: string
}

export function offerQuery(s: Search): string {
  const parts = [`gpu_name=${s.gpu}`, `num_gpus=${s.numGpus}`, `reliability>${s.minReliability}`, `dph_total<=${s.maxPrice}`, `cuda_vers>=${s.minCuda}`, `disk_space>=${s.diskGb}`]
  if (s.region) parts.push(`geolocation=${s.region.toUpperCase()}`)
  if (s.extra) parts.push(s.extra)
  return parts.join(' ')
}

function searchSettings(opts: DeployOptions, section: Section): Search {
  return {
    gpu: vastGpuName(opts.gpu ?? section.gpu ?? DEFAULTS.gpu),
    numGpus: section.numGpus ?? DEFAULTS.numGpus,
    maxPrice: opts.maxPrice ?? section.maxPrice ?? DEFAULTS.maxPrice,
    minReliability: section.minReliability ?? DEFAULTS.minReliability,
    minCuda: section.minCuda ?? DEFAULTS.minCuda,
    diskGb: section.diskGb ?? DEFAULTS.diskGb,
    region: opts.region,
    extra: section.query,
  }
}

function searchArgs(s: Search): string[] {
  return ['search', 'offers', offerQuery(s), '-o', 'dph_total', '--storage', String(s.diskGb), '--raw']
}

/** Host mode: install onto an instance the user already has (--host, or deploy.vast.host). */
function hostMode(opts: DeployOptions, section: Section): boolean {
  const prior = opts.existing?.status !== 'destroyed' ? opts.existing : undefined
  return Boolean(opts.ssh?.host ?? section.host ?? (prior?.details.mode === 'host' ? 'yes' : undefined))
}

function recordedInstance(dep: Deployment | undefined): string | undefined {
  if (!dep || dep.status === 'destroyed') return undefined
  return dep.resources.find((r) => r.kind === 'vast-instance')?.id
}

function describeOffer(o: Offer): string {
  const rel = o.reliability ?? o.reliability2
  return `#${o.id} ${o.num_gpus && o.num_gpus > 1 ? `${o.num_gpus}× ` : ''}${o.gpu_name ?? '?'} $${(o.dph_total ?? 0).toFixed(3)}/h` +
    (rel !== undefined ? `, reliability ${rel.toFixed(3)}` : '') + (o.geolocation ? `, ${o.geolocation}` : '') + (o.cuda_max_good ? `, CUDA ${o.cuda_max_good}` : '')
}

// ---------------------------------------------------------------- preflight

async function preflight(ctx: ProviderContext, opts: DeployOptions): Promise<Check[]> {
  const section: Section = await parseSection(ctx, 'vast', sectionSchema)
  const serverSource: Check = existsSync(join(ctx.packageRoot, 'gpu-server', 'pyproject.toml'))
    ? {id: 'server-source', label: 'gpu-server sources present', ok: true}
    : {id: 'server-source', label: 'gpu-server sources present', ok: false, detail: 'missing from this installation', fix: 'Reinstall jarvis'}
  const idCheck = identityCheck(resolveIdentity(ctx, opts, section))

  if (hostMode(opts, section)) {
    const host = opts.ssh?.host ?? section.host ?? (opts.existing?.details.ssh as RecordedSsh | undefined)?.host
    return [{id: 'target', label: 'existing instance (SSH)', ok: true, detail: `${host}: installing onto it; vastai is not needed`}, ...(idCheck ? [idCheck] : []), serverSource]
  }

  const installed = await toolCheck(tool)
  if (!installed.ok) {
    return [installed, skippedCheck('auth', 'logged in to Vast.ai', 'vastai is missing'), skippedCheck('offers', 'GPU offers', 'vastai is missing'), ...(idCheck ? [idCheck] : []), serverSource]
  }
  const cmd = String(installed.data?.command ?? 'vastai')
  const user = await vast(ctx, cmd, ['show', 'user', '--raw'], {json: true})
  const account = user.json as {email?: string; username?: string; id?: number; credit?: number; balance?: number} | undefined
  const auth: Check =
    user.ok && account && typeof account === 'object' && (account.id !== undefined || account.email)
      ? {id: 'auth', label: 'logged in to Vast.ai', ok: true, detail: `${account.email ?? account.username ?? `user ${account.id}`}${typeof account.credit === 'number' ? ` (credit $${account.credit.toFixed(2)})` : ''}`}
      : {
          id: 'auth',
          label: 'logged in to Vast.ai',
          ok: false,
          detail: user.ok ? 'unreadable answer from `vastai show user --raw`' : user.message,
          fix: 'Run `vastai set api-key KEY` with a key from https://console.vast.ai/manage-keys/ (or set VAST_API_KEY)',
        }
  if (!auth.ok) return [installed, auth, skippedCheck('offers', 'GPU offers', 'not logged in'), ...(idCheck ? [idCheck] : []), serverSource]

  const keys = await vast(ctx, cmd, ['show', 'ssh-keys', '--raw'], {json: true})
  const keyList = Array.isArray(keys.json) ? keys.json : Array.isArray((keys.json as {ssh_keys?: unknown[]} | undefined)?.ssh_keys) ? (keys.json as {ssh_keys: unknown[]}).ssh_keys : undefined
  const sshKeys: Check =
    keyList && keyList.length > 0
      ? {id: 'ssh-keys', label: 'SSH key in the Vast account', ok: true, detail: `${keyList.length} key${keyList.length === 1 ? '' : 's'}`}
      : {
          id: 'ssh-keys',
          label: 'SSH key in the Vast account',
          ok: false,
          // An empty list means the instance will not let jarvis in; an unreadable answer is only a warning.
          severity: keyList ? 'error' : 'warning',
          detail: keyList ? 'none: new instances would accept no key' : keys.message,
          fix: 'Add your public key: vastai create ssh-key ~/.ssh/id_ed25519.pub',
        }

  const instanceId = recordedInstance(opts.existing)
  if (instanceId) {
    return [installed, auth, sshKeys, {id: 'offers', label: 'GPU offers', ok: true, detail: `instance ${instanceId} is already rented for this project: reusing it`}, ...(idCheck ? [idCheck] : []), serverSource]
  }
  const search = searchSettings(opts, section)
  const found = await vast(ctx, cmd, searchArgs(search), {json: true})
  const offers = Array.isArray(found.json) ? (found.json as Offer[]).filter((o) => o && typeof o.id === 'number') : undefined
  let offersCheck: Check
  if (!found.ok || !offers) offersCheck = {id: 'offers', label: 'GPU offers', ok: false, detail: found.ok ? 'unreadable answer from `vastai search offers`' : found.message}
  else if (offers.length === 0) {
    offersCheck = {
      id: 'offers',
      label: `GPU offers (${search.gpu})`,
      ok: false,
      detail: `no offer matches: ${offerQuery(search)}`,
      fix: `Raise --max-price (now ${search.maxPrice}), pick another --gpu (RTX_3090, RTX_A6000, L40S ...), or relax deploy.vast.minReliability / minCuda / diskGb in jarvis.yaml`,
    }
  } else {
    const best = offers[0]
    offersCheck = {id: 'offers', label: `GPU offers (${search.gpu})`, ok: true, detail: `${offers.length} found; cheapest ${describeOffer(best)}`, data: {offer: best, count: offers.length, command: cmd}}
  }
  return [installed, auth, sshKeys, offersCheck, ...(idCheck ? [idCheck] : []), serverSource]
}

// ---------------------------------------------------------------- plan

/** Where SSH answers for an instance: direct (public ip + mapped 22/tcp) when offered, else the proxy (ssh_host:ssh_port). */
export function instanceSshAddress(i: Instance): {host: string; port: number; direct: boolean} | undefined {
  const direct = i.ports?.['22/tcp']?.[0]?.HostPort
  if (direct && i.public_ipaddr) return {host: i.public_ipaddr.trim(), port: Number(direct), direct: true}
  if (i.ssh_host && i.ssh_port) return {host: i.ssh_host.trim(), port: Number(i.ssh_port), direct: false}
  return undefined
}

const DEAD_STATES = new Set(['exited', 'offline', 'unknown'])

function waitForSshStep(cmd: string, section: Section, policy: HostKeyPolicy, identity: string | undefined): Step {
  const timeoutMs = (section.sshTimeoutSeconds ?? DEFAULTS.sshTimeoutSeconds) * 1000
  return {
    kind: 'task',
    id: 'wait-ssh',
    title: 'Wait for the instance to run and accept SSH',
    describe: `polls \`${cmd} show instance ID --raw\` until it is running, then connects as root (direct port when offered, else Vast's SSH proxy); up to ${Math.round(timeoutMs / 1000)} s`,
    always: true,
    async run(c, dep) {
      const id = recordedInstance(dep)
      if (!id) throw new UserError('No Vast.ai instance is recorded for this deployment', {code: 'no_instance'})
      const {connectSsh} = await import('../ssh/index.js')
      const deadline = Date.now() + timeoutMs
      const interval = Math.min(5000, Math.max(250, Math.floor(timeoutMs / 20)))
      let lastError = 'no answer yet'
      let lastStatus = ''
      for (;;) {
        if (c.signal.aborted) throw new InterruptedError()
        const shown = await vast(c, cmd, ['show', 'instance', id, '--raw'], {json: true})
        const inst = shown.json as (Instance & {instances?: null}) | undefined
        if (!shown.ok) lastError = `vastai show instance: ${shown.message}`
        else if (inst && 'instances' in inst && inst.instances === null) {
          throw new UserError(`Vast.ai instance ${id} no longer exists`, {code: 'instance_gone', suggestion: 'Run `jarvis destroy vast` to forget it, then deploy again.'})
        } else if (inst) {
          const status = inst.actual_status ?? 'provisioning'
          if (status !== lastStatus) c.log(`instance ${id}: ${status}${inst.status_msg ? ` (${inst.status_msg})` : ''}`)
          lastStatus = status
          if (DEAD_STATES.has(status)) {
            throw new UserError(`Vast.ai instance ${id} is ${status}${inst.status_msg ? `: ${inst.status_msg}` : ''}; it will not come up`, {
              code: 'instance_dead',
              suggestion: 'Run `jarvis destroy vast` (it is billed while it exists), then deploy again to rent another offer.',
            })
          }
          const addr = status === 'running' ? instanceSshAddress(inst) : undefined
          if (status === 'running' && !addr) lastError = 'running, but no SSH address yet'
          if (addr) {
            const ssh: RecordedSsh = {host: addr.host, port: addr.port, user: 'root', ...(identity ? {identity} : {})}
            // Kept even if this run fails (the engine saves the deployment on failure): destroy
            // then forgets the host key pinned here, and `jarvis tunnel vast` can reach the box.
            dep.details = {...dep.details, ssh}
            try {
              const session = await connectSsh(targetOf(ssh, policy), {signal: c.signal, connectTimeoutSeconds: 15, interaction: {info: (m) => c.log(m), warn: (m) => c.log(m)}})
              await session.close()
              return {
                details: {ssh, instance: {id: Number(id), gpu: inst.gpu_name, numGpus: inst.num_gpus, dph: inst.dph_total, sshVia: addr.direct ? 'direct' : 'proxy'}},
              }
            } catch (error) {
              const code = (error as {code?: string}).code ?? ''
              // A host key that changed or was revoked will not get better by waiting.
              if (/host_key_(changed|revoked|rejected)/.test(code) || error instanceof InterruptedError) throw error
              lastError = `ssh root@${addr.host}:${addr.port}: ${errorMessage(error).split('\n')[0]}`
            }
          }
        }
        if (Date.now() + interval > deadline) break
        await new Promise((r) => setTimeout(r, interval))
      }
      throw new UserError(`Vast.ai instance ${id} did not accept SSH within ${Math.round(timeoutMs / 1000)} s (last: ${lastError})`, {
        code: 'ssh_timeout',
        suggestion: 'The instance stays recorded (and billed while it exists): re-run `jarvis deploy vast` to keep waiting, or `jarvis destroy vast` to remove it. Check that your key is in the account (`vastai show ssh-keys`).',
      })
    },
  }
}

async function plan(ctx: ProviderContext, opts: DeployOptions, checks: Check[]): Promise<DeployPlan> {
  const section: Section = await parseSection(ctx, 'vast', sectionSchema)
  const host = hostMode(opts, section)
  // A rented instance: root, and its (new) host key pinned on first sight unless told otherwise.
  const r = remoteSettings(ctx, host ? opts : {...opts, ssh: {...opts.ssh, host: undefined}}, section, 'vast', {user: 'root', policy: host ? 'ask' : 'accept-new'})
  const conn = new RemoteConnection()
  const secrets = ['JARVIS_GPU_API_KEY', ...(opts.hfToken ? ['JARVIS_GPU_HF_TOKEN'] : [])]
  const warnings = remoteWarnings({...opts, engine: r.engine}, r.device)
  const common = {remotePort: r.remotePort, engine: r.engine, model: r.spec.model ?? null, device: r.device}

  if (host) {
    const p: DeployPlan = {
      provider: 'vast',
      name: 'vast',
      settings: [{key: 'instance', value: 'an existing one, reached over SSH (not rented or destroyed by jarvis)', source: 'flag'}, ...r.settings],
      checks: [...checks, ...r.conflicts],
      files: [],
      steps: remoteSteps(ctx, r.spec, conn),
      url: r.ssh ? `ssh://${r.ssh.user ? `${r.ssh.user}@` : ''}${r.ssh.host}${r.ssh.port ? `:${r.ssh.port}` : ''}` : undefined,
      secrets,
      warnings,
      details: {mode: 'host', ...(r.ssh ? {ssh: r.ssh} : {}), ...common},
    }
    return withConnection(p, conn)
  }

  const cmd = String(checks.find((c) => c.id === 'tool:vastai')?.data?.command ?? 'vastai')
  const search = searchSettings(opts, section)
  const offer = checks.find((c) => c.id === 'offers')?.data?.offer as Offer | undefined
  const instanceId = recordedInstance(opts.existing)
  const image = section.image ?? DEFAULTS.image
  const label = section.label ?? `jarvis-${ctx.projectDir.split('/').filter(Boolean).at(-1) ?? 'server'}`.slice(0, 60)
  const onstartPath = join(ctx.deployDir, 'onstart.sh')
  const onstart = await renderTemplate('vast/onstart.sh', {remoteDirExpr: remoteDirShellExpr(r.remoteDir)})
  const identity = resolveIdentity(ctx, opts, section)

  const create: CommandStep = {
    kind: 'command',
    id: 'create-instance',
    title: instanceId ? `Rent the offer (done: instance ${instanceId})` : offer ? `Rent offer ${describeOffer(offer)}` : 'Rent the cheapest matching offer',
    cmd,
    args: ['create', 'instance', String(offer?.id ?? 'OFFER_ID'), '--image', image, '--disk', String(search.diskGb), '--label', label, '--onstart', onstartPath, '--ssh', '--direct', '--cancel-unavail', '--raw'],
    timeoutMs: 120_000,
    parse: (res) => {
      const err = vastError(res.stdout, res.stderr)
      let out: {success?: boolean; new_contract?: number; msg?: string} | undefined
      try {
        out = JSON.parse(res.stdout)
      } catch {
        out = undefined
      }
      if (err || !out?.success || !out.new_contract) {
        throw new ExternalError(`vastai create instance failed: ${err?.message ?? out?.msg ?? (res.stdout.trim() || 'no instance id in the answer')}`, {
          command: res.command,
          suggestion: 'Offers come and go: re-run `jarvis deploy vast` to pick the cheapest one available now.',
        })
      }
      return {resources: [{kind: 'vast-instance', id: String(out.new_contract), details: {offer: offer?.id, gpu: offer?.gpu_name, dph: offer?.dph_total, image, label}}]}
    },
  }
  const settings: PlanSetting[] = [
    {key: 'gpu', value: `${search.numGpus > 1 ? `${search.numGpus}× ` : ''}${search.gpu}`, source: opts.gpu ? 'flag' : section.gpu ? 'config' : 'default'},
    {key: 'max price', value: `$${search.maxPrice}/h`, source: opts.maxPrice ? 'flag' : section.maxPrice ? 'config' : 'default'},
    {key: 'offer query', value: offerQuery(search), source: section.query || section.minReliability || section.minCuda ? 'config' : 'default'},
    ...(offer ? [{key: 'offer', value: describeOffer(offer), source: 'platform'} satisfies PlanSetting] : []),
    ...(instanceId ? [{key: 'instance', value: instanceId, source: 'state'} satisfies PlanSetting] : []),
    {key: 'image', value: image, source: section.image ? 'config' : 'default'},
    {key: 'disk', value: `${search.diskGb} GB`, source: section.diskGb ? 'config' : 'default'},
    {key: 'label', value: label, source: section.label ? 'config' : 'default'},
    ...r.settings.filter((s) => s.key !== 'host'),
  ]
  const p: DeployPlan = {
    provider: 'vast',
    name: 'vast',
    settings,
    checks,
    files: [{path: onstartPath, content: onstart, mode: 0o644, description: 'onstart script: restarts the installed server when the instance restarts (no secrets)'}],
    steps: [create, waitForSshStep(cmd, section, r.policy, identity), ...remoteSteps(ctx, r.spec, conn)],
    secrets,
    warnings: [...warnings, 'The instance is billed from the moment it is created until `jarvis destroy vast`.'],
    details: {mode: 'instance', vastCommand: cmd, image, label, gpu: search.gpu, hostKeyPolicy: r.policy, ...common},
  }
  return withConnection(p, conn)
}

// ---------------------------------------------------------------- status & destroy

async function status(ctx: ProviderContext, dep: Deployment): Promise<ProviderStatus> {
  const id = recordedInstance(dep)
  if (dep.details.mode === 'host' || !id) return dep.details.ssh ? remoteStatus(ctx, dep) : {state: 'unknown', summary: 'no instance rented yet'}
  const cmd = String(dep.details.vastCommand ?? 'vastai')
  const r = await vast(ctx, cmd, ['show', 'instance', id, '--raw'], {json: true})
  if (!r.ok) return r.missing ? {state: 'unknown', summary: 'vastai is not installed'} : {state: 'error', summary: r.message}
  const inst = r.json as (Instance & {instances?: null}) | undefined
  if (!inst || ('instances' in inst && inst.instances === null)) return {state: 'missing', summary: `instance ${id} no longer exists on Vast.ai`}
  const s = inst.actual_status ?? 'provisioning'
  const state: ProviderStatus['state'] = s === 'running' ? 'running' : s === 'stopped' ? 'stopped' : DEAD_STATES.has(s) ? 'error' : 'deploying'
  const addr = instanceSshAddress(inst)
  const summary = `instance ${id} ${s}${inst.gpu_name ? ` (${inst.num_gpus && inst.num_gpus > 1 ? `${inst.num_gpus}× ` : ''}${inst.gpu_name}${typeof inst.dph_total === 'number' ? `, $${inst.dph_total.toFixed(3)}/h` : ''})` : ''}${inst.status_msg && s !== 'running' ? `: ${inst.status_msg}` : ''}`
  return {state, summary, url: addr ? `ssh://root@${addr.host}:${addr.port}` : undefined, details: {instance: Number(id), actualStatus: s}}
}

async function planDestroy(ctx: ProviderContext, dep: Deployment) {
  const conn = new RemoteConnection()
  const id = recordedInstance(dep)
  let steps: Step[]
  const warnings: string[] = []
  if (dep.details.mode === 'host' || !id) {
    steps = remoteDestroySteps(dep, conn)
    if (dep.details.mode === 'host') warnings.push('The instance itself is yours: it keeps running (and billing) until you destroy it on Vast.ai.')
    else if (!steps.length) warnings.push('No instance was rented: only the record is removed.')
  } else {
    const cmd = String(dep.details.vastCommand ?? 'vastai')
    steps = [
      {
        kind: 'command',
        id: 'destroy-instance',
        title: `Destroy Vast.ai instance ${id} (its disk goes with it; billing stops)`,
        cmd,
        args: ['destroy', 'instance', id, '--yes'],
        parse: (res) => {
          const err = vastError(res.stdout, res.stderr)
          // Already gone counts as removed.
          if (err && !(err.status === 404 || /not found|no such|does not exist/i.test(err.message))) {
            throw new ExternalError(`vastai destroy instance ${id} failed: ${err.message}`, {command: res.command, suggestion: 'Check `vastai show instances`; destroy it there if jarvis cannot.'})
          }
          return undefined
        },
      },
    ]
    const ssh = dep.details.ssh as RecordedSsh | undefined
    if (ssh?.host && ssh.port && dep.details.hostKeyPolicy === 'accept-new') steps.push(forgetHostKeyStep(ssh))
  }
  void ctx
  return withConnection({provider: 'vast' as const, name: dep.name, steps, warnings}, conn)
}

/**
 * The next instance may get the same address ([sshN.vast.ai]:PORT, or the same machine's
 * ip:port) with another host key; the key pinned on first sight for this one is removed so
 * that a later deploy does not hit "REMOTE HOST IDENTIFICATION HAS CHANGED".
 */
function forgetHostKeyStep(ssh: RecordedSsh): Step {
  const name = ssh.port && ssh.port !== 22 ? `[${ssh.host}]:${ssh.port}` : ssh.host
  return {
    kind: 'task',
    id: 'forget-host-key',
    title: `Forget the host key pinned for ${name}`,
    describe: `ssh-keygen -R '${name}' on the known_hosts file jarvis pinned it in (skipped when ssh-keygen is missing)`,
    async run(c) {
      const {defaultSshPaths} = await import('../ssh/index.js')
      const file = join(defaultSshPaths().sshDir, 'known_hosts')
      if (!existsSync(file)) return
      try {
        await c.run('ssh-keygen', ['-R', name, '-f', file], {allowFailure: true, timeoutMs: 15_000})
      } catch (error) {
        c.log(`could not remove the pinned key for ${name}: ${errorMessage(error)}`)
      }
    },
  }
}

const provider: Provider = {
  name: 'vast',
  description: 'Vast.ai: rent the cheapest matching GPU offer (vastai CLI), install the server over SSH, reach it through an SSH tunnel',
  tools: [tool],
  capabilities: {
    cpuOnly: 'Vast.ai rents GPU machines; for a CPU box use `jarvis deploy ssh --cpu`',
    scaleToZero: 'an instance is billed until `jarvis destroy vast` (stopping it keeps the disk billed)',
    customUrl: 'the server listens on the instance\'s loopback and is reached through an SSH tunnel',
    persistentCache: 'the model cache lives on the instance disk and goes with it on destroy',
  },
  configSchema: sectionSchema,
  preflight,
  plan,
  apply: applyRemotePlan,
  status,
  planDestroy,
  destroy: applyRemoteDestroy,
}

export default provider
export {DEFAULT_REMOTE_PORT}
