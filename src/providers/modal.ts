// Modal: the bundled server as an ASGI app on the chosen GPU, weights on a Volume, the API
// key and HF token in a Secret created from a 0600 dotenv file, jobs through Modal's own
// spawn + FunctionCall.from_id (see templates/modal_app.py).
//
// Commands checked against the modal client's source (github.com/modal-labs/modal-client,
// py/modal/cli/*.py, Aug 2026) and https://modal.com/docs/reference/cli/ :
//   `modal --version`; `modal token info` (prints "Workspace: NAME (id)");
//   `modal secret create NAME --from-dotenv PATH --force [--env E]`;
//   `modal deploy FILE --name APP [--env E]` (prints "Created web function web => URL");
//   `modal app list --json [--env E]` ([{app_id, description, state, tasks, ...}]);
//   `modal app stop APP --yes` (exits non-zero with "App is already stopped." when it is);
//   `modal secret delete NAME --yes --allow-missing`; `modal volume delete NAME --yes --allow-missing`.
import {join} from 'node:path'
import {z} from 'zod'
import {MODAL_GPUS} from '../config/env.js'
import {errorMessage, ToolMissingError} from '../lib/errors.js'
import {applyDestroy, applyPlan, parseSection, renderTemplate, skippedCheck, toolCheck} from './engine.js'
import type {Check, DeployOptions, DeployPlan, Deployment, PlanSetting, Provider, ProviderContext, ProviderStatus, Step} from './types.js'

// The same CUDA base as gpu-server/Dockerfile (WhisperX 3.8: torch 2.8, CUDA 12.8, cuDNN 9).
const CUDA_IMAGE = 'nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04'

const sectionSchema = z.strictObject({
  app: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'expected a Modal app name: letters, digits, ".", "-" and "_"').optional(),
  gpu: z.string().min(1).optional(),
  cpu: z.boolean().optional(),
  /** Modal environment (`--env`); default: the profile's. */
  environment: z.string().min(1).optional(),
  /** Seconds a job may run (Modal function timeout). */
  jobTimeout: z.number().int().min(60).max(86_400).optional(),
  /** Seconds an idle container stays up (scaledown_window). */
  idleTimeout: z.number().int().min(2).max(3600).optional(),
})

const tool = {command: 'modal', purpose: 'creating the Secret and deploying the app', installHint: 'Install Modal: pip install modal (then `modal setup`)'}

async function probe(ctx: ProviderContext, args: string[]): Promise<{ok: boolean; stdout: string; message: string; missing?: boolean}> {
  try {
    const r = await ctx.run('modal', args, {allowFailure: true, timeoutMs: 30_000})
    const message = (r.stderr || r.stdout).trim().split('\n').filter(Boolean).at(-1) ?? `exit ${r.exitCode}`
    return {ok: r.exitCode === 0, stdout: r.stdout, message}
  } catch (error) {
    return {ok: false, stdout: '', message: errorMessage(error), missing: error instanceof ToolMissingError}
  }
}

async function preflight(ctx: ProviderContext): Promise<Check[]> {
  const installed = await toolCheck(tool)
  if (!installed.ok) return [installed, skippedCheck('auth', 'logged in to Modal', 'modal is missing')]
  const version = await probe(ctx, ['--version'])
  if (version.ok) installed.detail = version.stdout.trim().split('\n')[0]
  const info = await probe(ctx, ['token', 'info'])
  if (!info.ok) return [installed, {id: 'auth', label: 'logged in to Modal', ok: false, detail: info.message, fix: 'Run `modal setup` (or set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET)'}]
  const workspace = /Workspace:\s*(\S+)/.exec(info.stdout)?.[1]
  return [installed, {id: 'auth', label: 'logged in to Modal', ok: true, detail: workspace ? `workspace ${workspace}` : info.stdout.trim().split('\n')[0], data: {workspace}}]
}

/** "l4" → "L4", "a100" → "A100"; unknown kinds are reported, not guessed. */
function normaliseGpu(gpu: string): string | undefined {
  const up = gpu.trim().toUpperCase()
  const base = up.split(':')[0]
  return (MODAL_GPUS as readonly string[]).includes(base) ? up : undefined
}

function py(value: string | number | null): string {
  return value === null ? 'None' : typeof value === 'number' ? String(value) : JSON.stringify(value)
}

async function plan(ctx: ProviderContext, opts: DeployOptions, checks: Check[]): Promise<DeployPlan> {
  const section = await parseSection(ctx, 'modal', sectionSchema)
  const prior = opts.existing?.details as Record<string, string | undefined> | undefined
  const allChecks = [...checks]
  const warnings: string[] = []
  const src = (flag: unknown, config: unknown, env?: unknown): PlanSetting['source'] => (flag !== undefined ? 'flag' : config !== undefined ? 'config' : env ? 'env' : 'default')

  const app = opts.name ?? section.app ?? prior?.app ?? 'jarvis-transcribe'
  const cpu = Boolean(opts.cpu ?? section.cpu)
  const envGpu = process.env.MODAL_GPU_TYPE?.trim() || undefined
  const wanted = opts.gpu ?? section.gpu ?? envGpu ?? 'T4'
  const gpu = cpu ? null : (normaliseGpu(wanted) ?? null)
  if (!cpu && gpu === null) {
    allChecks.push({id: 'gpu', label: `GPU ${wanted} known to Modal`, ok: false, detail: `Modal GPUs: ${MODAL_GPUS.join(', ')}`, fix: 'Pass --gpu with one of those (e.g. --gpu L4)'})
  }
  if (prior?.app && app !== prior.app && opts.existing?.status !== 'destroyed') {
    allChecks.push({id: 'app-name', label: 'app name matches the recorded deployment', ok: false, detail: `this project already deployed Modal app ${prior.app}`, fix: `Run \`jarvis destroy modal\` first, or deploy as --name ${prior.app}`})
  }
  const environment = section.environment
  const envArgs = environment ? ['--env', environment] : []
  const secretName = `${app}-secrets`
  const volumeName = `${app}-models`
  const file = join(ctx.deployDir, 'modal_app.py')
  const gpuServerDir = join(ctx.packageRoot, 'gpu-server')
  const extras = opts.engine === 'pocketsphinx' ? 'pocketsphinx' : 'whisperx'
  const useGpu = gpu !== null && opts.engine !== 'pocketsphinx'

  const content = await renderTemplate('modal_app.py', {
    appName: py(app),
    gpu: py(useGpu ? gpu : null),
    volumeName: py(volumeName),
    secretName: py(secretName),
    gpuServerDir: py(gpuServerDir),
    jobTimeoutS: section.jobTimeout ?? 4 * 3600,
    idleTimeoutS: section.idleTimeout ?? 300,
    engine: py(opts.engine),
    model: py(opts.model),
    device: py(useGpu ? 'cuda' : 'cpu'),
    computeType: py(useGpu ? 'float16' : 'int8'),
    baseImage: useGpu ? `modal.Image.from_registry(${py(CUDA_IMAGE)}, add_python="3.11")` : 'modal.Image.debian_slim(python_version="3.11")',
    pipInstall: py(`pip install '/opt/gpu-server[${extras}]'`),
  })

  if (!opts.hfToken) warnings.push('No HUGGINGFACE_TOKEN / HF_TOKEN set: the server will not be able to diarize (speaker labels).')
  const dotenv = `JARVIS_GPU_API_KEY=${opts.apiKey}\n` + (opts.hfToken ? `JARVIS_GPU_HF_TOKEN=${opts.hfToken}\n` : '')

  const steps: Step[] = [
    {
      kind: 'command',
      id: 'secret',
      title: `Create the Modal Secret ${secretName} (API key${opts.hfToken ? ', HF token' : ''}) from a 0600 dotenv file`,
      cmd: 'modal',
      args: ['secret', 'create', secretName, '--from-dotenv', '{{secretFile:jarvis.env}}', '--force', ...envArgs],
      secretFiles: [{name: 'jarvis.env', content: dotenv}],
      creates: {kind: 'modal-secret', id: secretName},
      always: true,
    },
    {
      kind: 'command',
      id: 'deploy',
      title: `Deploy ${app} (${useGpu ? `GPU ${gpu}` : 'CPU'})`,
      cmd: 'modal',
      args: ['deploy', file, '--name', app, ...envArgs],
      cwd: ctx.deployDir,
      always: true,
      timeoutMs: 60 * 60_000,
      creates: {kind: 'modal-app', id: app, details: {volume: volumeName}},
      parse: (r) => {
        const text = r.stdout + '\n' + r.stderr
        const url = /Created web function \S+ => (https?:\/\/\S+?)(?:\s|$)/.exec(text)?.[1] ?? /(https:\/\/[\w.-]+\.modal\.run)/.exec(text)?.[1]
        return url ? {url: url.replace(/\/+$/, ''), resources: [{kind: 'modal-volume', id: volumeName}]} : {resources: [{kind: 'modal-volume', id: volumeName}]}
      },
    },
    {kind: 'health', id: 'health', title: 'Wait for /health (the first start builds the image and downloads the model)', timeoutMs: opts.healthTimeoutMs, apiKey: opts.apiKey, always: true},
  ]

  return {
    provider: 'modal',
    name: 'modal',
    settings: [
      {key: 'app', value: app, source: opts.name ? 'flag' : section.app ? 'config' : prior?.app ? 'state' : 'default'},
      {key: 'gpu', value: useGpu ? String(gpu) : !cpu && gpu === null ? `${wanted} (unknown to Modal)` : 'none (CPU, int8)', source: cpu ? (opts.cpu ? 'flag' : 'config') : src(opts.gpu, section.gpu, envGpu)},
      {key: 'model', value: opts.model, source: opts.fromFlags.has('model') ? 'flag' : 'default'},
      {key: 'engine', value: opts.engine, source: opts.fromFlags.has('engine') ? 'flag' : 'default'},
      {key: 'environment', value: environment ?? '(profile default)', source: environment ? 'config' : 'default'},
      {key: 'volume', value: volumeName, source: 'default'},
      {key: 'secret', value: secretName, source: 'default'},
    ],
    checks: allChecks,
    files: [{path: file, content, description: 'Modal app: ASGI server + Modal-backed job routes (no secrets)'}],
    steps,
    secrets: ['JARVIS_GPU_API_KEY', ...(opts.hfToken ? ['JARVIS_GPU_HF_TOKEN'] : [])],
    warnings,
    details: {app, gpu: useGpu ? gpu : null, model: opts.model, engine: opts.engine, secret: secretName, volume: volumeName, environment: environment ?? null},
  }
}

interface ModalAppRow {
  app_id?: string
  description?: string
  state?: string
  tasks?: string | number
}

async function status(ctx: ProviderContext, dep: Deployment): Promise<ProviderStatus> {
  const app = String(dep.details.app ?? '')
  const env = dep.details.environment ? ['--env', String(dep.details.environment)] : []
  const r = await probe(ctx, ['app', 'list', '--json', ...env])
  if (!r.ok) return {state: r.missing ? 'unknown' : 'error', summary: r.missing ? 'modal is not installed' : r.message}
  let rows: ModalAppRow[]
  try {
    rows = JSON.parse(r.stdout) as ModalAppRow[]
  } catch {
    return {state: 'unknown', summary: 'unreadable answer from `modal app list --json`'}
  }
  const live = rows.filter((x) => x.description === app && !/^stop/.test(String(x.state)))
  const row = live[0] ?? rows.find((x) => x.description === app)
  if (!row) return {state: 'missing', summary: `Modal app ${app} is not listed`}
  const tasks = Number(row.tasks ?? 0)
  // States as `modal app list` words them (py/modal/cli/app.py APP_STATE_TO_MESSAGE).
  const word = String(row.state ?? '')
  const state: ProviderStatus['state'] = /^stop/.test(word) || word === 'disabled' ? 'stopped' : /^(deployed|ephemeral)/.test(word) ? 'running' : /^initializing/.test(word) ? 'deploying' : 'unknown'
  return {state, summary: `${row.state ?? 'unknown'}, ${tasks} container${tasks === 1 ? '' : 's'} running (${row.app_id ?? app})`, details: {appId: row.app_id, state: row.state, tasks}}
}

const provider: Provider = {
  name: 'modal',
  description: 'Modal: serverless GPU containers (T4 … H100), scale to zero, per-second billing',
  tools: [tool],
  capabilities: {
    regions: 'Modal schedules containers itself; this deploy does not pin a region',
    customUrl: 'the URL is the one `modal deploy` prints',
  },
  configSchema: sectionSchema,
  preflight: (ctx) => preflight(ctx),
  plan,
  apply: (ctx, p) => applyPlan(ctx, p),
  status,
  async planDestroy(_ctx, dep) {
    const app = String(dep.details.app ?? '')
    const env = dep.details.environment ? ['--env', String(dep.details.environment)] : []
    const secret = dep.resources.find((r) => r.kind === 'modal-secret')?.id ?? (dep.details.secret as string | undefined)
    const volume = dep.resources.find((r) => r.kind === 'modal-volume')?.id ?? (dep.details.volume as string | undefined)
    const steps: Step[] = []
    if (app) steps.push({kind: 'command', id: 'app-stop', title: `Stop Modal app ${app}`, cmd: 'modal', args: ['app', 'stop', app, '--yes', ...env], okIfOutputMatches: 'already stopped|not found|could not find|no app'})
    if (secret) steps.push({kind: 'command', id: 'secret-delete', title: `Delete Secret ${secret}`, cmd: 'modal', args: ['secret', 'delete', secret, '--yes', '--allow-missing', ...env]})
    if (volume) steps.push({kind: 'command', id: 'volume-delete', title: `Delete Volume ${volume} (cached model weights)`, cmd: 'modal', args: ['volume', 'delete', volume, '--yes', '--allow-missing', ...env]})
    return {provider: 'modal', name: dep.name, steps, warnings: steps.length ? [] : ['Nothing was recorded as created on Modal.']}
  },
  destroy: (ctx, dep, p) => applyDestroy(ctx, dep, p),
}

export default provider
