// Fly.io: one app, one volume for the model cache, secrets from stdin, `fly deploy`
// of the bundled gpu-server, scale to zero in [http_service].
//
// GPUs: Fly.io retired GPU Machines (flyctl "Remove the GPU surface", superfly/flyctl#5063,
// 2026-08-11: "GPU machines are no longer offered, and the Machines API rejects any request
// that carries a GPU guest"; third parties date the end to 2026-07-31). So the platform is
// asked at deploy time (`fly platform vm-sizes --json`, whose map lists a size with
// `gpu_kind` only where GPUs are offered) and, with none, only the CPU image (int8) is
// deployed, and only when asked with --cpu.
//
// Commands checked against flyctl's source (github.com/superfly/flyctl, Aug 2026) and
// https://fly.io/docs/flyctl/ : `fly version`, `fly auth whoami --json` ({"email"}),
// `fly platform vm-sizes --json` (map name → {cpu_kind, cpus, memory_mb, gpu_kind?}),
// `fly apps create NAME --org ORG`, `fly volumes create NAME --size N --region R --app A
// --yes --json` ({"id", ...}), `fly secrets import --app A --stage` (NAME=VALUE on stdin,
// https://fly.io/docs/flyctl/secrets-import/), `fly deploy WORKDIR --config --dockerfile
// --remote-only --ha=false --yes`, `fly status --app A --json` ({"Machines": [{state,
// region}]}), `fly apps destroy A --yes`.
import {existsSync} from 'node:fs'
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'
import {z} from 'zod'
import {errorMessage, ToolMissingError} from '../lib/errors.js'
import {
  applyDestroy,
  applyPlan,
  defaultAppName,
  parseSection,
  renderTemplate,
  skippedCheck,
  toolCheck,
  tomlString,
} from './engine.js'
import type {Check, CommandStep, DeployOptions, DeployPlan, PlanSetting, Provider, ProviderContext, ProviderStatus, Step} from './types.js'

/** GPU sizes Fly offered, in order of preference (cheapest first). */
const GPU_PREFERENCE = ['a10', 'l40s', 'a100-40gb', 'a100-80gb']
/** Providers that do offer GPUs, named when Fly does not. */
const GPU_ALTERNATIVES = 'modal, gcloud (Cloud Run L4), aws, k8s or vast'
const FLY_DOCKERFILE_TAIL = `

# Added by \`jarvis deploy fly\`: Fly volumes are mounted owned by root, so the server runs
# as root here to write its model cache and job store on the volume (/models).
USER root
`

const sectionSchema = z.strictObject({
  app: z.string().regex(/^[a-z0-9][a-z0-9-]{1,62}$/, 'expected a Fly app name: lowercase letters, digits and "-"').optional(),
  org: z.string().min(1).optional(),
  region: z.string().regex(/^[a-z]{3}$/, 'expected a Fly region code such as ord').optional(),
  gpu: z.string().min(1).optional(),
  cpu: z.boolean().optional(),
  /** VM size for the CPU image (see `fly platform vm-sizes`). */
  cpuSize: z.string().min(1).optional(),
  memory: z.string().regex(/^\d+(mb|gb)$/i, 'expected a size such as 16gb').optional(),
  volumeGb: z.number().int().min(1).max(500).optional(),
  volumeName: z.string().regex(/^[a-z0-9_]{1,30}$/, 'expected lowercase letters, digits and "_"').optional(),
  url: z.url().optional(),
  autoStop: z.enum(['stop', 'suspend', 'off']).optional(),
  minMachinesRunning: z.number().int().min(0).optional(),
})
type Section = z.infer<typeof sectionSchema>

interface VmSize {
  cpu_kind?: string
  cpus?: number
  memory_mb?: number
  gpu_kind?: string
  gpus?: number
}

async function probe(ctx: ProviderContext, cmd: string, args: string[]): Promise<{ok: boolean; stdout: string; message: string; missing?: boolean}> {
  try {
    const r = await ctx.run(cmd, args, {allowFailure: true, timeoutMs: 30_000})
    const message = (r.stderr || r.stdout).trim().split('\n').filter(Boolean).at(-1) ?? `exit ${r.exitCode}`
    return {ok: r.exitCode === 0, stdout: r.stdout, message}
  } catch (error) {
    return {ok: false, stdout: '', message: errorMessage(error), missing: error instanceof ToolMissingError}
  }
}

function parseJson<T>(text: string): T | undefined {
  try {
    return JSON.parse(text) as T
  } catch {
    return undefined
  }
}

const tool = {
  command: 'fly',
  aliases: ['flyctl'],
  purpose: 'creating the app, its volume and secrets, and deploying',
  installHint: 'Install flyctl: curl -L https://fly.io/install.sh | sh (then `fly auth login`)',
}

async function preflight(ctx: ProviderContext, opts: DeployOptions): Promise<Check[]> {
  const installed = await toolCheck(tool)
  if (!installed.ok) {
    return [installed, skippedCheck('auth', 'logged in to Fly.io', 'flyctl is missing'), skippedCheck('vm-sizes', 'VM sizes offered', 'flyctl is missing')]
  }
  const fly = String(installed.data?.command ?? 'fly')
  const version = await probe(ctx, fly, ['version'])
  if (version.ok) installed.detail = version.stdout.trim().split('\n')[0]
  installed.data = {...installed.data, command: fly}

  const whoami = await probe(ctx, fly, ['auth', 'whoami', '--json'])
  const email = parseJson<{email?: string}>(whoami.stdout)?.email
  const auth: Check = whoami.ok
    ? {id: 'auth', label: 'logged in to Fly.io', ok: true, detail: email ?? whoami.stdout.trim()}
    : {id: 'auth', label: 'logged in to Fly.io', ok: false, detail: whoami.message, fix: 'Run `fly auth login` (or set FLY_API_TOKEN)'}
  if (!auth.ok) return [installed, auth, skippedCheck('vm-sizes', 'VM sizes offered', 'not logged in')]

  const sizes = await probe(ctx, fly, ['platform', 'vm-sizes', '--json'])
  const map = parseJson<Record<string, VmSize>>(sizes.stdout)
  if (!sizes.ok || !map || typeof map !== 'object') {
    return [installed, auth, {id: 'vm-sizes', label: 'VM sizes offered', ok: false, detail: sizes.ok ? 'unreadable answer from `fly platform vm-sizes --json`' : sizes.message}]
  }
  const gpuSizes = Object.entries(map)
    .filter(([, v]) => v && v.gpu_kind)
    .map(([k]) => k)
  void opts
  return [
    installed,
    auth,
    {
      id: 'vm-sizes',
      label: 'VM sizes offered',
      ok: true,
      detail: gpuSizes.length ? `GPU sizes: ${gpuSizes.join(', ')}` : `${Object.keys(map).length} CPU sizes, no GPU sizes`,
      data: {sizes: Object.keys(map), gpuSizes},
    },
  ]
}

function setting(key: string, value: string | number | boolean, source: PlanSetting['source']): PlanSetting {
  return {key, value, source}
}

/** flag > jarvis.yaml > recorded deployment > default, with where it came from. */
function pick<T extends string | number | boolean>(
  key: string,
  flag: T | undefined,
  config: T | undefined,
  state: T | undefined,
  fallback: T,
): PlanSetting & {value: T} {
  if (flag !== undefined) return setting(key, flag, 'flag') as PlanSetting & {value: T}
  if (config !== undefined) return setting(key, config, 'config') as PlanSetting & {value: T}
  if (state !== undefined) return setting(key, state, 'state') as PlanSetting & {value: T}
  return setting(key, fallback, 'default') as PlanSetting & {value: T}
}

async function plan(ctx: ProviderContext, opts: DeployOptions, checks: Check[]): Promise<DeployPlan> {
  const section: Section = await parseSection(ctx, 'fly', sectionSchema)
  const prior = opts.existing?.details as Record<string, string | undefined> | undefined
  const fly = String(checks.find((c) => c.id === 'tool:fly')?.data?.command ?? 'fly')
  const allChecks = [...checks]
  const warnings: string[] = []

  const app = pick('app', opts.name, section.app, prior?.app, defaultAppName(ctx.projectDir))
  if (prior?.app && app.value !== prior.app && opts.existing?.status !== 'destroyed') {
    allChecks.push({
      id: 'app-name',
      label: 'app name matches the recorded deployment',
      ok: false,
      detail: `this project already deployed Fly app ${prior.app}`,
      fix: `Run \`jarvis destroy fly\` first, or deploy as --name ${prior.app}`,
    })
  }
  const org = pick('org', undefined, section.org, prior?.org, 'personal')
  const region = pick('region', opts.region, section.region, prior?.region, 'ord')

  // GPU or CPU: decided by what the platform offers right now.
  const sizes = checks.find((c) => c.id === 'vm-sizes')
  const gpuSizes = (sizes?.data?.gpuSizes as string[] | undefined) ?? []
  const cpu = Boolean(opts.cpu ?? section.cpu)
  let gpu: string | undefined
  if (!cpu) {
    const wanted = (opts.gpu ?? section.gpu)?.toLowerCase()
    if (sizes?.ok && gpuSizes.length === 0) {
      allChecks.push({
        id: 'gpu-offered',
        label: 'GPU offered by Fly.io',
        ok: false,
        detail: 'Fly.io offers no GPU VM sizes (GPU Machines were retired; reported unavailable after 2026-07-31)',
        fix: `Pass --cpu to deploy the CPU image (int8, slow), or deploy to a provider with GPUs: ${GPU_ALTERNATIVES}`,
      })
    } else if (sizes?.ok && wanted && !gpuSizes.includes(wanted)) {
      allChecks.push({id: 'gpu-offered', label: `GPU ${wanted} offered by Fly.io`, ok: false, detail: `offered: ${gpuSizes.join(', ')}`, fix: `Pass --gpu ${gpuSizes[0]}, or --cpu`})
    } else if (sizes?.ok) {
      gpu = wanted ?? GPU_PREFERENCE.find((g) => gpuSizes.includes(g)) ?? gpuSizes[0]
      allChecks.push({id: 'gpu-offered', label: `GPU ${gpu} offered by Fly.io`, ok: true})
    }
    // Not logged in: the vm-sizes ✗ already says the GPU question is open.
    gpu ??= wanted ?? 'a10'
  }
  const machineSource: PlanSetting['source'] = opts.cpu || opts.gpu ? 'flag' : section.cpu || section.gpu ? 'config' : sizes?.ok ? 'platform' : 'default'
  const vmSize = gpu ?? section.cpuSize ?? 'performance-4x'
  const memory = section.memory ?? (gpu ? '32gb' : '16gb')
  const volumeName = section.volumeName ?? 'jarvis_models'
  const volumeGb = section.volumeGb ?? 30
  const url = (opts.url ?? section.url ?? `https://${app.value}.fly.dev`).replace(/\/+$/, '')

  // The Dockerfile: the bundled server's own (CUDA, or CPU int8), copied at render time
  // with one Fly-specific line appended: Fly volumes mount root-owned, and the server's
  // image runs as an unprivileged user that could not write the model cache there.
  const dockerSource = join(ctx.packageRoot, 'gpu-server', gpu ? 'Dockerfile' : 'Dockerfile.cpu')
  let dockerfile = ''
  if (existsSync(dockerSource)) {
    dockerfile = (await readFile(dockerSource, 'utf8')).trimEnd() + FLY_DOCKERFILE_TAIL
  } else {
    allChecks.push({id: 'dockerfile', label: 'server Dockerfile present', ok: false, detail: `${dockerSource} is missing from this installation`, fix: 'Reinstall jarvis'})
  }
  const gpuServerDir = join(ctx.packageRoot, 'gpu-server')

  if (!opts.hfToken) warnings.push('No HUGGINGFACE_TOKEN / HF_TOKEN set: the server will not be able to diarize (speaker labels).')
  if (!gpu && /large|medium/.test(opts.model)) warnings.push(`${opts.model} on a CPU is slow (several times slower than realtime); --model small is a more practical choice.`)

  const flyToml = join(ctx.deployDir, 'fly.toml')
  const dockerPath = join(ctx.deployDir, 'Dockerfile')
  const tomlText = await renderTemplate('fly.toml', {
    app: tomlString(app.value),
    region: tomlString(region.value),
    engine: tomlString(opts.engine),
    model: tomlString(opts.model),
    device: tomlString(gpu ? 'cuda' : 'cpu'),
    computeType: tomlString(gpu ? 'float16' : 'int8'),
    volumeName: tomlString(volumeName),
    autoStop: tomlString(section.autoStop ?? 'stop'),
    minMachines: section.minMachinesRunning ?? 0,
    vmSize: tomlString(vmSize),
    memory: tomlString(memory),
  })

  const secretsInput = `JARVIS_GPU_API_KEY=${opts.apiKey}\n` + (opts.hfToken ? `JARVIS_GPU_HF_TOKEN=${opts.hfToken}\n` : '')
  const volumeArgs = ['volumes', 'create', volumeName, '--size', String(volumeGb), '--region', region.value, '--app', app.value, '--yes', '--json']
  // A GPU Machine can only mount a volume on a GPU host.
  if (gpu) volumeArgs.push('--vm-gpu-kind', gpu)
  const steps: Step[] = [
    {
      kind: 'command',
      id: 'app-create',
      title: `Create Fly app ${app.value}`,
      cmd: fly,
      args: ['apps', 'create', app.value, '--org', org.value],
      creates: {kind: 'fly-app', id: app.value, details: {org: org.value}},
    },
    {
      kind: 'command',
      id: 'volume-create',
      title: `Create volume ${volumeName} (${volumeGb} GB) for the model cache`,
      cmd: fly,
      args: volumeArgs,
      parse: (r) => {
        const v = parseJson<{id?: string}>(r.stdout)
        return v?.id ? {resources: [{kind: 'fly-volume', id: v.id, details: {name: volumeName, region: region.value, sizeGb: volumeGb}}]} : undefined
      },
    },
    {
      kind: 'command',
      id: 'secrets',
      title: 'Set the API key' + (opts.hfToken ? ' and Hugging Face token' : '') + ' as Fly secrets (from stdin)',
      cmd: fly,
      args: ['secrets', 'import', '--app', app.value, '--stage'],
      input: secretsInput,
      always: true,
    } satisfies CommandStep,
    {
      kind: 'command',
      id: 'deploy',
      title: `Build and deploy the ${gpu ? `GPU (${gpu})` : 'CPU'} image`,
      cmd: fly,
      args: ['deploy', gpuServerDir, '--app', app.value, '--config', flyToml, '--dockerfile', dockerPath, '--remote-only', '--ha=false', '--yes'],
      always: true,
      timeoutMs: 60 * 60_000,
    },
    {kind: 'health', id: 'health', title: `Wait for ${url}/health`, url, timeoutMs: opts.healthTimeoutMs, apiKey: opts.apiKey, always: true},
  ]

  return {
    provider: 'fly',
    name: 'fly',
    settings: [
      app,
      org,
      region,
      setting('machine', gpu ? `GPU ${gpu}` : `CPU ${vmSize}`, machineSource),
      setting('memory', memory, section.memory ? 'config' : 'default'),
      setting('model', opts.model, opts.fromFlags.has('model') ? 'flag' : 'default'),
      setting('engine', opts.engine, opts.fromFlags.has('engine') ? 'flag' : 'default'),
      setting('volume', `${volumeName} (${volumeGb} GB)`, section.volumeGb || section.volumeName ? 'config' : 'default'),
      setting('scale to zero', `auto_stop_machines=${section.autoStop ?? 'stop'}, min_machines_running=${section.minMachinesRunning ?? 0}`, section.autoStop ? 'config' : 'default'),
      setting('url', url, opts.url ? 'flag' : section.url ? 'config' : 'default'),
    ],
    checks: allChecks,
    files: [
      {path: flyToml, content: tomlText, description: 'Fly app configuration (no secrets)'},
      {path: dockerPath, content: dockerfile, description: gpu ? 'CUDA image of the bundled server (gpu-server/Dockerfile)' : 'CPU image of the bundled server, int8 (gpu-server/Dockerfile.cpu)'},
    ],
    steps,
    url,
    secrets: ['JARVIS_GPU_API_KEY', ...(opts.hfToken ? ['JARVIS_GPU_HF_TOKEN'] : [])],
    warnings,
    details: {app: app.value, org: org.value, region: region.value, gpu: gpu ?? null, vmSize, model: opts.model, engine: opts.engine, volume: volumeName, flyCommand: fly},
  }
}

interface FlyStatus {
  Name?: string
  Status?: string
  Hostname?: string
  Deployed?: boolean
  Machines?: {id?: string; state?: string; region?: string}[]
}

async function status(ctx: ProviderContext, dep: import('./types.js').Deployment): Promise<ProviderStatus> {
  const app = String(dep.details.app ?? '')
  const fly = String(dep.details.flyCommand ?? 'fly')
  const r = await probe(ctx, fly, ['status', '--app', app, '--json'])
  if (!r.ok) {
    if (r.missing) return {state: 'unknown', summary: 'flyctl is not installed'}
    if (/could not find app|not found/i.test(r.message)) return {state: 'missing', summary: `Fly app ${app} does not exist`}
    return {state: 'error', summary: r.message}
  }
  const s = parseJson<FlyStatus>(r.stdout)
  if (!s) return {state: 'unknown', summary: 'unreadable answer from `fly status --json`'}
  const machines = s.Machines ?? []
  const counts: Record<string, number> = {}
  for (const m of machines) counts[m.state ?? 'unknown'] = (counts[m.state ?? 'unknown'] ?? 0) + 1
  const regions = [...new Set(machines.map((m) => m.region).filter(Boolean))].join(', ')
  const summary = machines.length
    ? `${machines.length} machine${machines.length === 1 ? '' : 's'}: ${Object.entries(counts).map(([k, n]) => `${n} ${k}`).join(', ')}${regions ? ` (${regions})` : ''}`
    : 'no machines'
  const state: ProviderStatus['state'] = counts.started ? 'running' : machines.length ? 'stopped' : 'missing'
  return {state, summary, url: s.Hostname ? `https://${s.Hostname}` : undefined, details: {app, machines: machines.map((m) => ({id: m.id, state: m.state, region: m.region}))}}
}

const provider: Provider = {
  name: 'fly',
  description: 'Fly.io Machines: app + volume + secrets, scale to zero (CPU only since Fly retired GPUs)',
  tools: [tool],
  capabilities: {
    jobsAcrossReplicas: 'one Machine per volume: jobs stay on the Machine that took them (this deploy runs one)',
  },
  configSchema: sectionSchema,
  preflight,
  plan,
  apply: (ctx, p) => applyPlan(ctx, p),
  status,
  async planDestroy(_ctx, dep) {
    const app = String(dep.details.app ?? '')
    const fly = String(dep.details.flyCommand ?? 'fly')
    return {
      provider: 'fly',
      name: dep.name,
      steps: app
        ? [
            {
              kind: 'command',
              id: 'app-destroy',
              title: `Destroy Fly app ${app} (its Machines and volumes go with it)`,
              cmd: fly,
              args: ['apps', 'destroy', app, '--yes'],
              okIfOutputMatches: 'could not find app|not found',
            },
          ]
        : [],
      warnings: app ? [] : ['No Fly app was recorded for this deployment; nothing to remove on Fly.io.'],
    }
  },
  destroy: (ctx, dep, p) => applyDestroy(ctx, dep, p),
}

export default provider
