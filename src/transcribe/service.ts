// `jarvis transcribe`: route each file to the best healthy backend (DESIGN.md §4),
// fail over on connection errors and 5xx, report 4xx as the user's error, write outputs
// atomically, and remember each run's speed for `cost estimate --measured`.
import type {LoadedConfig} from '../config/load.js'
import {deploymentBackend, effectiveBackends} from '../config/env.js'
import type {BackendConfig, Format} from '../config/schema.js'
import {InterruptedError, UsageError, UserError} from '../lib/errors.js'
import {readSecrets, readState} from '../state/state.js'
import {BackendRequestError, transcribeJob, transcribeSync, type TranscribeOptions, type TranscriptResult} from '../server/client.js'
import {HttpConnectionError} from '../http/http.js'
import {appendRun} from '../history/history.js'
import {resolveBackend, startLocal, type BackendHandle} from './backends.js'
import {checkInput} from './inputs.js'
import {outputPaths, outputsComplete, writeOutputs} from './outputs.js'

export interface TranscribeRequest {
  files: string[]
  formats: Format[]
  outputDir?: string
  force: boolean
  /** --backend or TRANSCRIPTION_BACKEND: a backend name, or a kind (external_gpu, modal, local). */
  backend?: string
  language: string
  /** Only when asked for explicitly: backends serving another model are skipped. */
  model?: string
  diarize: 'auto' | boolean
  minSpeakers?: number
  maxSpeakers?: number
  concurrency?: number
  healthTimeoutMs: number
  /** sync: POST /transcribe; job: POST /jobs + poll; auto: jobs for files above jobThresholdBytes. */
  mode: 'auto' | 'sync' | 'job'
  jobThresholdBytes: number
}

export interface Attempt {
  backend: string
  error: string
}

export interface FileOutcome {
  input: string
  status: 'done' | 'skipped' | 'failed'
  backend?: string
  outputs?: string[]
  audioSeconds?: number
  processingSeconds?: number
  wallSeconds?: number
  realtimeFactor?: number
  reason?: string
  attempts: Attempt[]
}

export interface BackendReport {
  name: string
  kind: string
  state: 'healthy' | 'on-demand' | 'skipped' | 'failed'
  url?: string
  latencyMs?: number
  model?: string
  gpu?: string
  reason?: string
}

export interface TranscribeReport {
  files: FileOutcome[]
  backends: BackendReport[]
}

export interface TranscribeHooks {
  signal?: AbortSignal
  onStage?: (text: string) => void
  onProgress?: (file: string, backend: string, sent: number, total: number) => void
  onFileDone?: (outcome: FileOutcome) => void
}

const KIND_ALIASES: Record<string, BackendConfig['kind']> = {external_gpu: 'external', external: 'external', modal: 'modal', local: 'local', vast: 'vast', ssh: 'ssh'}

export async function candidateBackends(loaded: LoadedConfig, forced?: string): Promise<BackendConfig[]> {
  const state = await readState(loaded.projectDir)
  const secrets = await readSecrets(loaded.projectDir)
  const deps = Object.values(state.deployments)
    .map((d) => deploymentBackend(d, secrets))
    .filter((b): b is BackendConfig => Boolean(b))
  const all = effectiveBackends(loaded.config, deps)
  if (!forced) return all
  const byName = all.filter((b) => b.name === forced)
  if (byName.length) return byName
  const kind = KIND_ALIASES[forced]
  const byKind = kind ? all.filter((b) => b.kind === kind) : []
  if (byKind.length) return byKind
  if (forced === 'local') return [{name: 'local', kind: 'local'}]
  // A kind jarvis knows but nothing of that kind is set up: say how to set one up, not "unknown".
  if (kind) {
    const how: Record<string, string> = {
      external: 'Set EXTERNAL_GPU_URL (and EXTERNAL_GPU_API_KEY), or add a backend of kind external to jarvis.yaml.',
      modal: 'Run `jarvis deploy modal`, or add a backend of kind modal with its url to jarvis.yaml (and leave MODAL_ENABLED unset or true).',
      vast: 'Run `jarvis deploy vast`, or add a backend of kind vast to jarvis.yaml.',
      ssh: 'Run `jarvis deploy ssh`, or add a backend of kind ssh to jarvis.yaml.',
    }
    throw new UserError(`No ${forced} backend is configured`, {code: 'backend_not_configured', suggestion: how[kind]})
  }
  throw new UsageError(`Unknown backend "${forced}"`, {
    suggestion: `Valid backends: ${all.map((b) => b.name).join(', ') || '(none configured)'}; or a kind: external_gpu, modal, vast, ssh, local. Configure backends in jarvis.yaml.`,
  })
}

function rtf(audio?: number, processing?: number): number | undefined {
  return audio && processing ? Math.round((audio / processing) * 10) / 10 : undefined
}

export async function transcribeFiles(loaded: LoadedConfig, req: TranscribeRequest, hooks: TranscribeHooks = {}): Promise<TranscribeReport> {
  const outcomes: FileOutcome[] = []
  const pending: {input: string; size: number; paths: Record<Format, string>; outcome: FileOutcome}[] = []

  // Which input each output path belongs to: two inputs named alike (a/x.wav, b/x.wav with
  // --output-dir) must not silently overwrite each other's transcripts.
  const claimed = new Map<string, string>()
  for (const file of req.files) {
    const check = await checkInput(file)
    const outcome: FileOutcome = {input: check.path, status: 'failed', attempts: []}
    if (outcomes.some((o) => o.input === check.path)) continue // the same file named twice (e.g. by overlapping globs)
    outcomes.push(outcome)
    if (!check.ok) {
      outcome.reason = check.reason
      hooks.onFileDone?.(outcome)
      continue
    }
    const paths = outputPaths(check.path, req.formats, req.outputDir)
    const clash = Object.values(paths).map((p) => claimed.get(p)).find(Boolean)
    if (clash) {
      outcome.reason = `its transcripts would overwrite those of ${clash} (same name in the same output directory); transcribe it in a separate run or without --output-dir`
      hooks.onFileDone?.(outcome)
      continue
    }
    for (const p of Object.values(paths)) claimed.set(p, check.path)
    if (!req.force && (await outputsComplete(check.path, paths))) {
      Object.assign(outcome, {status: 'skipped', outputs: Object.values(paths), reason: 'outputs already complete (use --force to redo)'})
      hooks.onFileDone?.(outcome)
      continue
    }
    pending.push({input: check.path, size: check.size!, paths, outcome})
  }
  // Resolve the backend list even with nothing to do, so a wrong --backend is still reported.
  const configs = await candidateBackends(loaded, req.backend)
  if (pending.length === 0) return {files: outcomes, backends: []}

  hooks.onStage?.(`checking ${configs.length} backend${configs.length === 1 ? '' : 's'}`)
  const handles = await Promise.all(configs.map((c, i) => resolveBackend(c, i, {healthTimeoutMs: req.healthTimeoutMs, signal: hooks.signal, onStage: hooks.onStage})))
  try {
    applyConstraints(handles, req)
    const inFlight = new Map<string, number>()
    let localStart: Promise<void> | undefined

    const pick = (exclude: Set<string>): BackendHandle | undefined => {
      const usable = handles.filter((h) => h.usable && !exclude.has(h.name))
      // Remote first; the local server is the fallback when nothing remote is healthy.
      const remote = usable.filter((h) => !h.onDemand)
      const pool = remote.length ? remote : usable
      if (!pool.length) return undefined
      const best = Math.min(...pool.map((h) => h.rank))
      return pool.filter((h) => h.rank === best).sort((a, b) => (inFlight.get(a.name) ?? 0) - (inFlight.get(b.name) ?? 0))[0]
    }

    const runOne = async (job: (typeof pending)[number]) => {
      const {outcome} = job
      const tried = new Set<string>()
      for (;;) {
        if (hooks.signal?.aborted) throw new InterruptedError()
        const h = pick(tried)
        if (!h) {
          outcome.reason = outcome.attempts.length
            ? `every backend failed: ${outcome.attempts.map((a) => `${a.backend}: ${a.error}`).join('; ')}`
            : `no healthy backend (${handles.map((b) => `${b.name}: ${b.reason ?? 'unavailable'}`).join('; ')})`
          return
        }
        tried.add(h.name)
        try {
          if (h.onDemand) {
            localStart ??= startLocal(h, {healthTimeoutMs: req.healthTimeoutMs, signal: hooks.signal, onStage: hooks.onStage, model: req.model})
            await localStart
          }
          inFlight.set(h.name, (inFlight.get(h.name) ?? 0) + 1)
          const started = performance.now()
          const result = await send(h, job.input, job.size, req, hooks)
          const wall = (performance.now() - started) / 1000
          try {
            outcome.outputs = await writeOutputs(result, job.paths)
          } catch (error) {
            // A local disk problem, not the backend's: another backend would fail the same way.
            outcome.backend = h.name
            outcome.reason = `transcribed, but the transcripts could not be written: ${(error as Error).message}`
            return
          }
          Object.assign(outcome, {
            status: 'done',
            backend: h.name,
            audioSeconds: result.duration,
            processingSeconds: result.processing_time ?? wall,
            wallSeconds: Math.round(wall * 100) / 100,
            realtimeFactor: rtf(result.duration, wall),
            reason: undefined,
          })
          await appendRun({
            at: new Date().toISOString(),
            source: 'transcribe',
            backend: h.name,
            url: h.target?.url,
            engine: result.engine ?? h.health?.info?.engine,
            model: result.model ?? h.health?.info?.model,
            device: result.device ?? h.health?.info?.device,
            gpu: h.health?.info?.gpu_name ?? undefined,
            audioSeconds: result.duration ?? 0,
            processingSeconds: wall,
            realtimeFactor: rtf(result.duration, wall) ?? 0,
          }).catch(() => {}) // history is a convenience; never fail a transcription over it
          return
        } catch (error) {
          if (error instanceof InterruptedError || (error instanceof HttpConnectionError && error.kind === 'aborted') || hooks.signal?.aborted) throw new InterruptedError()
          if (error instanceof BackendRequestError) {
            if (!error.retryable) {
              outcome.backend = h.name
              outcome.reason = error.message
              return
            }
            outcome.attempts.push({backend: h.name, error: error.message})
            // A backend that dropped a connection or failed with 5xx sits out the rest of the run.
            if (error.status !== 429) {
              h.usable = false
              h.reason = error.message
            }
            continue
          }
          // Starting the local server failed, or something unexpected: recorded, next backend.
          outcome.attempts.push({backend: h.name, error: (error as Error).message})
          h.usable = false
          h.reason = (error as Error).message
        } finally {
          if (inFlight.has(h.name)) inFlight.set(h.name, Math.max(0, (inFlight.get(h.name) ?? 1) - 1))
        }
      }
    }

    const topRank = Math.min(...handles.filter((h) => h.usable && !h.onDemand).map((h) => h.rank), Infinity)
    const sharing = handles.filter((h) => h.usable && !h.onDemand && h.rank === topRank).length
    const workers = Math.max(1, Math.min(req.concurrency ?? Math.max(1, sharing), pending.length))
    const queue = [...pending]
    await Promise.all(
      Array.from({length: workers}, async () => {
        for (let job = queue.shift(); job; job = queue.shift()) {
          await runOne(job)
          hooks.onFileDone?.(job.outcome)
        }
      }),
    )
    return {files: outcomes, backends: handles.map(reportOf)}
  } finally {
    await Promise.all(handles.map((h) => h.close().catch(() => {})))
  }
}

function applyConstraints(handles: BackendHandle[], req: TranscribeRequest): void {
  for (const h of handles) {
    if (!h.usable || !h.health?.info) continue
    const info = h.health.info
    if (req.model && info.model && info.model !== req.model) {
      h.usable = false
      h.reason = `serves model ${info.model}, not ${req.model}`
    } else if (req.diarize === true && info.diarization_available === false) {
      h.usable = false
      h.reason = 'cannot diarize (no HF token on the server, or the engine has no diarization)'
    }
  }
}

function reportOf(h: BackendHandle): BackendReport {
  const gpu = h.health?.info?.gpu_name ?? undefined
  return {
    name: h.name,
    kind: h.kind,
    state: h.onDemand ? 'on-demand' : h.usable ? 'healthy' : h.health?.ok ? 'failed' : 'skipped',
    url: h.target?.url,
    latencyMs: h.health?.latencyMs,
    model: h.health?.info?.model ?? h.health?.health?.model,
    gpu,
    reason: h.reason,
  }
}

async function send(h: BackendHandle, input: string, size: number, req: TranscribeRequest, hooks: TranscribeHooks): Promise<TranscriptResult> {
  const info = h.health?.info
  const opts: TranscribeOptions = {
    language: req.language,
    // auto: ask for speakers wherever the server says it can.
    diarize: req.diarize === 'auto' ? info?.diarization_available === true : req.diarize,
    minSpeakers: req.minSpeakers,
    maxSpeakers: req.maxSpeakers,
    wordTimestamps: req.formats.includes('json') ? true : undefined,
  }
  const useJob = req.mode === 'job' || (req.mode === 'auto' && size >= req.jobThresholdBytes)
  const upload = {signal: hooks.signal, onProgress: (sent: number, total: number) => hooks.onProgress?.(input, h.name, sent, total)}
  const target = h.target!
  return useJob ? transcribeJob(target, input, opts, upload) : transcribeSync(target, input, opts, upload)
}
