// local: this workstation, through the gpu-server manager (src/gpu-server/manager.ts):
// a venv with the bundled server, started detached, recorded like any other deployment so
// `status` and `transcribe` find it and `destroy local` stops it.
import {join} from 'node:path'
import {z} from 'zod'
import {errorMessage} from '../lib/errors.js'
import {userCacheDir} from '../lib/paths.js'
import {applyDestroy, applyPlan, parseSection, toolCheck} from './engine.js'
import type {Check, DeployOptions, DeployPlan, Deployment, Provider, ProviderContext, ProviderStatus, Step} from './types.js'

const sectionSchema = z.strictObject({
  host: z.string().min(1).optional(),
  port: z.number().int().min(1).max(65535).optional(),
  device: z.string().regex(/^(auto|cpu|cuda(:\d+)?)$/, 'expected auto, cpu, cuda or cuda:N').optional(),
  computeType: z.enum(['auto', 'float16', 'int8', 'int8_float16', 'float32']).optional(),
  batchSize: z.number().int().min(1).optional(),
  python: z.string().min(1).optional(),
})

const tool = {
  command: 'python3',
  aliases: ['python3.12', 'python3.11', 'python3.10', 'python3.13'],
  purpose: 'the venv the server runs in',
  installHint: 'Install Python 3.10 or newer (or set deploy.local.python in jarvis.yaml)',
}

async function preflight(ctx: ProviderContext): Promise<Check[]> {
  const section = await parseSection(ctx, 'local', sectionSchema)
  const python = section.python
    ? await toolCheck({...tool, command: section.python, aliases: []})
    : await toolCheck(tool)
  // A GPU is nice to have, not required: without one the server runs on the CPU.
  let gpu: Check
  try {
    const r = await ctx.run('nvidia-smi', ['--query-gpu=name,memory.total', '--format=csv,noheader'], {allowFailure: true, timeoutMs: 10_000})
    const first = r.stdout.trim().split('\n')[0]
    gpu = r.exitCode === 0 && first
      ? {id: 'gpu', label: 'NVIDIA GPU', ok: true, detail: first, data: {gpu: first}}
      : {id: 'gpu', label: 'NVIDIA GPU', ok: false, severity: 'warning', detail: 'nvidia-smi found no GPU: the server will run on the CPU (int8)'}
  } catch (error) {
    gpu = {id: 'gpu', label: 'NVIDIA GPU', ok: false, severity: 'warning', detail: `no nvidia-smi (${errorMessage(error).split('\n')[0]}): the server will run on the CPU (int8)`}
  }
  return [python, gpu]
}

async function plan(ctx: ProviderContext, opts: DeployOptions, checks: Check[]): Promise<DeployPlan> {
  const section = await parseSection(ctx, 'local', sectionSchema)
  const prior = opts.existing?.details as {port?: number; host?: string} | undefined
  const host = section.host ?? prior?.host ?? '127.0.0.1'
  const port = section.port ?? prior?.port ?? 8000
  const hasGpu = Boolean(checks.find((c) => c.id === 'gpu')?.ok)
  const device = opts.cpu ? 'cpu' : (section.device ?? 'auto')
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`
  const python = section.python ?? String(checks.find((c) => c.id.startsWith('tool:'))?.data?.path ?? 'python3')
  const warnings: string[] = []
  if (!opts.hfToken && opts.engine === 'whisperx') warnings.push('No HUGGINGFACE_TOKEN / HF_TOKEN set: the server will not be able to diarize (speaker labels).')
  if (!hasGpu && opts.engine === 'whisperx' && /large|medium/.test(opts.model)) warnings.push(`${opts.model} on a CPU is slow; --model small or --engine pocketsphinx (English, no download) start faster.`)
  const serverOpts = {
    host,
    port,
    engine: opts.engine as 'whisperx' | 'pocketsphinx',
    model: opts.engine === 'pocketsphinx' ? undefined : opts.model,
    device,
    computeType: section.computeType,
    batchSize: section.batchSize,
    python: section.python ?? python,
    apiKey: opts.apiKey,
    hfToken: opts.hfToken,
    timeoutMs: opts.healthTimeoutMs,
  }
  const argv = ['-m', 'jarvis_gpu_server', '--host', host, '--port', String(port), '--engine', opts.engine, ...(serverOpts.model ? ['--model', serverOpts.model] : []), '--device', device]
  const steps: Step[] = [
    {
      kind: 'task',
      id: 'start',
      title: `Start the server on ${url}`,
      describe: `venv in ${join(userCacheDir(), 'gpu-server', 'venv')} (created or updated with the ${opts.engine} extra), then \`python ${argv.join(' ')}\` detached, API key and HF token in its environment; an already running server on that port is reused`,
      always: true,
      async run(c) {
        const {startServer} = await import('../gpu-server/manager.js')
        const r = await startServer(serverOpts, {signal: c.signal, onStage: (stage) => c.log(stage)})
        return {
          url: r.record.url,
          resources: [{kind: 'local-server', id: String(r.record.port), details: {pid: r.record.pid, logFile: r.record.logFile}}],
          details: {pid: r.record.pid, logFile: r.record.logFile, reused: r.alreadyRunning},
        }
      },
    },
    {kind: 'health', id: 'health', title: `Check ${url}/health`, url, timeoutMs: Math.min(opts.healthTimeoutMs, 30_000), apiKey: opts.apiKey, always: true},
  ]
  return {
    provider: 'local',
    name: 'local',
    settings: [
      {key: 'url', value: url, source: section.host || section.port ? 'config' : prior?.port ? 'state' : 'default'},
      {key: 'engine', value: opts.engine, source: opts.fromFlags.has('engine') ? 'flag' : 'default'},
      {key: 'model', value: serverOpts.model ?? 'en-us (pocketsphinx)', source: opts.fromFlags.has('model') ? 'flag' : 'default'},
      {key: 'device', value: device, source: opts.cpu ? 'flag' : section.device ? 'config' : 'default'},
    ],
    checks,
    files: [],
    steps,
    url,
    secrets: ['JARVIS_GPU_API_KEY', ...(opts.hfToken ? ['JARVIS_GPU_HF_TOKEN'] : [])],
    warnings,
    details: {host, port, engine: opts.engine, model: serverOpts.model ?? null, device},
  }
}

async function status(_ctx: ProviderContext, dep: Deployment): Promise<ProviderStatus> {
  const {findServer} = await import('../gpu-server/manager.js')
  const port = Number(dep.details.port ?? 8000)
  const rec = await findServer(port)
  if (!rec) return {state: 'stopped', summary: `no server process on port ${port} (re-run \`jarvis deploy local\` or \`jarvis gpu-server start\`)`}
  return {state: 'running', summary: `pid ${rec.pid} on port ${rec.port}, log ${rec.logFile}`, url: rec.url, details: {pid: rec.pid, logFile: rec.logFile}}
}

const provider: Provider = {
  name: 'local',
  description: 'This workstation: the bundled server in a venv, started detached',
  tools: [tool],
  capabilities: {
    gpu: 'uses whatever GPU this machine has (--device in deploy.local); there is no GPU kind to choose',
    regions: 'runs on this machine',
    scaleToZero: 'a local server runs until stopped (`jarvis destroy local`)',
    customUrl: 'the URL is http://HOST:PORT of this machine (deploy.local.host / port)',
  },
  configSchema: sectionSchema,
  preflight: (ctx) => preflight(ctx),
  plan,
  apply: (ctx, p) => applyPlan(ctx, p),
  status,
  async planDestroy(_ctx, dep) {
    const port = Number(dep.details.port ?? 8000)
    return {
      provider: 'local',
      name: dep.name,
      steps: [
        {
          kind: 'task',
          id: 'stop',
          title: `Stop the server on port ${port}`,
          describe: 'SIGTERM to its process group (then SIGKILL if it lingers); nothing to do when it is not running',
          async run() {
            const {stopServer} = await import('../gpu-server/manager.js')
            await stopServer(port)
          },
        },
      ],
      warnings: [],
    }
  },
  destroy: (ctx, dep, p) => applyDestroy(ctx, dep, p),
}

export default provider
