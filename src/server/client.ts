// A client for the bundled gpu-server's HTTP API (DESIGN.md §5): health, info, transcribe,
// jobs. Everything that talks to a jarvis server goes through here.
import {HttpConnectionError, httpRequest, type HttpResponse} from '../http/http.js'

export interface ServerTarget {
  url: string
  apiKey?: string
}

export interface HealthBody {
  status: 'ok' | 'loading' | string
  model_loaded?: boolean
  engine?: string
  model?: string
  device?: string
  stage?: string
}

/** /info, as the server reports it. Fields are optional: older servers or other WhisperX servers may lack some. */
export interface InfoBody {
  server_version?: string
  engine?: string
  model?: string
  device?: string
  compute_type?: string | null
  batch_size?: number | null
  gpu_name?: string | null
  vram_total_mb?: number | null
  vram_free_mb?: number | null
  cuda_version?: string | null
  diarization_available?: boolean
  languages?: string[]
  running?: number
  model_load_s?: number
  auth_required?: boolean
  queue_depth?: number
  uptime_s?: number
  limits?: Record<string, unknown>
  [k: string]: unknown
}

export type HealthState = 'healthy' | 'loading' | 'unhealthy' | 'unreachable' | 'unauthorized'

export interface ServerHealth {
  url: string
  state: HealthState
  ok: boolean
  /** Why it is not healthy, in words a user can act on. */
  reason?: string
  latencyMs?: number
  health?: HealthBody
  info?: InfoBody
}

export function authHeaders(apiKey?: string): Record<string, string> {
  return apiKey ? {'x-api-key': apiKey} : {}
}

export function joinUrl(base: string, path: string): string {
  return base.replace(/\/+$/, '') + path
}

/** Server error bodies look like {"error": {"code", "message"}}; other servers send text. */
export function serverErrorMessage(res: HttpResponse): string {
  const b = res.body as {error?: {message?: string; code?: string} | string; detail?: unknown} | undefined
  if (b && typeof b === 'object') {
    if (typeof b.error === 'object' && b.error?.message) return b.error.message
    if (typeof b.error === 'string') return b.error
    if (b.detail) return typeof b.detail === 'string' ? b.detail : JSON.stringify(b.detail)
  }
  const t = res.text.trim()
  if (!t) return `HTTP ${res.status}`
  // An HTML error page (a proxy, or something other than a gpu-server on that port): its title says enough.
  if (/^<(!doctype|html)/i.test(t)) {
    const title = /<title>([^<]*)<\/title>/i.exec(t)?.[1]?.trim()
    return `an HTML page${title ? ` ("${title}")` : ''}, not a gpu-server answer: is the URL right?`
  }
  return t.replace(/\s+/g, ' ').slice(0, 300)
}

/**
 * GET /health (no auth), then /info (auth) when healthy. Never throws: an unreachable
 * server is a state, with the reason.
 */
export async function checkServer(target: ServerTarget, opts: {timeoutMs?: number; signal?: AbortSignal; withInfo?: boolean} = {}): Promise<ServerHealth> {
  const timeoutMs = opts.timeoutMs ?? 2000
  let res: HttpResponse<HealthBody>
  try {
    res = await httpRequest<HealthBody>(joinUrl(target.url, '/health'), {timeoutMs, signal: opts.signal})
  } catch (error) {
    const e = error as HttpConnectionError
    const reason = e.kind === 'timeout' ? `no answer within ${timeoutMs} ms` : e.message
    return {url: target.url, state: 'unreachable', ok: false, reason}
  }
  const base = {url: target.url, latencyMs: Math.round(res.latencyMs), health: typeof res.body === 'object' ? res.body : undefined}
  if (res.status === 503 && res.body?.status === 'loading') {
    return {...base, state: 'loading', ok: false, reason: `still loading${res.body.stage ? ` (${res.body.stage})` : ' the model'}`}
  }
  if (res.status !== 200) return {...base, state: 'unhealthy', ok: false, reason: `/health answered ${res.status}: ${serverErrorMessage(res)}`}
  if (opts.withInfo === false) return {...base, state: 'healthy', ok: true}
  try {
    const info = await httpRequest<InfoBody>(joinUrl(target.url, '/info'), {timeoutMs, signal: opts.signal, headers: authHeaders(target.apiKey)})
    if (info.status === 401 || info.status === 403) {
      return {...base, state: 'unauthorized', ok: false, reason: target.apiKey ? 'the API key was refused' : 'the server needs an API key'}
    }
    if (info.status === 200 && typeof info.body === 'object') return {...base, state: 'healthy', ok: true, info: info.body}
    return {...base, state: 'healthy', ok: true}
  } catch {
    return {...base, state: 'healthy', ok: true}
  }
}

// ---------- transcription ----------

export interface TranscribeOptions {
  language?: string
  diarize?: boolean
  minSpeakers?: number
  maxSpeakers?: number
  wordTimestamps?: boolean
}

export interface Word {
  word: string
  start?: number
  end?: number
  score?: number
  speaker?: string
}

export interface Segment {
  start: number
  end: number
  text: string
  speaker?: string
  words?: Word[]
}

export interface TranscriptResult {
  text: string
  language?: string
  duration?: number
  segments: Segment[]
  processing_time?: number
  engine?: string
  model?: string
  device?: string
  [k: string]: unknown
}

/** Why a request to a backend failed, and whether another backend could do better. */
export class BackendRequestError extends Error {
  constructor(
    message: string,
    /** retryable: connection failure, 5xx or 429 → try the next backend. Not: a 4xx (the user's input). */
    readonly retryable: boolean,
    readonly status?: number,
    readonly code?: string,
  ) {
    super(message)
  }
}

function formFields(opts: TranscribeOptions): Record<string, string | undefined> {
  return {
    language: opts.language && opts.language !== 'auto' ? opts.language : undefined,
    enable_diarization: opts.diarize === undefined ? undefined : String(opts.diarize),
    min_speakers: opts.minSpeakers === undefined ? undefined : String(opts.minSpeakers),
    max_speakers: opts.maxSpeakers === undefined ? undefined : String(opts.maxSpeakers),
    word_timestamps: opts.wordTimestamps === undefined ? undefined : String(opts.wordTimestamps),
    response_format: 'json',
  }
}

function failure(res: HttpResponse, what: string): BackendRequestError {
  const msg = serverErrorMessage(res)
  const code = (res.body as {error?: {code?: string}})?.error?.code
  if (res.status === 429) return new BackendRequestError(`${what}: server busy (429, queue full${res.headers['retry-after'] ? `, retry after ${res.headers['retry-after']} s` : ''})`, true, 429, code)
  if (res.status >= 500) return new BackendRequestError(`${what}: server error ${res.status}: ${msg}`, true, res.status, code)
  if (res.status === 401 || res.status === 403) return new BackendRequestError(`${what}: API key refused (${res.status}): ${msg}`, false, res.status, code ?? 'unauthorized')
  return new BackendRequestError(`${msg} (HTTP ${res.status})`, false, res.status, code)
}

function connectionFailure(error: unknown, what: string): BackendRequestError {
  if (error instanceof HttpConnectionError) {
    if (error.kind === 'aborted') throw error
    return new BackendRequestError(`${what}: ${error.message}`, true, undefined, `http_${error.kind}`)
  }
  throw error
}

export interface UploadHooks {
  onProgress?: (sent: number, total: number) => void
  signal?: AbortSignal
}

/** POST /transcribe: one synchronous request. For short files; long ones go through jobs. */
export async function transcribeSync(target: ServerTarget, filePath: string, opts: TranscribeOptions, hooks: UploadHooks = {}): Promise<TranscriptResult> {
  const {postMultipart} = await import('../http/http.js')
  let res: HttpResponse
  try {
    res = await postMultipart(
      joinUrl(target.url, '/transcribe'),
      {fields: formFields(opts), filePath, onProgress: (p) => hooks.onProgress?.(p.sent, p.total)},
      // Whole-file transcription can take long on a busy server; no header timeout cuts it.
      {headers: authHeaders(target.apiKey), headersTimeoutMs: 0, bodyTimeoutMs: 0, signal: hooks.signal},
    )
  } catch (error) {
    throw connectionFailure(error, 'upload failed')
  }
  if (res.status !== 200) throw failure(res, 'transcription failed')
  return res.body as TranscriptResult
}

export interface JobView {
  id: string
  status: 'queued' | 'running' | 'succeeded' | 'failed' | string
  result?: TranscriptResult
  error?: {code?: string; message?: string}
}

/** POST /jobs then poll GET /jobs/{id}: no proxy timeout can cut a two-hour file. */
export async function transcribeJob(
  target: ServerTarget,
  filePath: string,
  opts: TranscribeOptions,
  hooks: UploadHooks & {pollMs?: number; onStatus?: (status: string) => void} = {},
): Promise<TranscriptResult> {
  const {postMultipart} = await import('../http/http.js')
  let res: HttpResponse<JobView>
  try {
    res = await postMultipart<JobView>(
      joinUrl(target.url, '/jobs'),
      {fields: formFields(opts), filePath, onProgress: (p) => hooks.onProgress?.(p.sent, p.total)},
      {headers: authHeaders(target.apiKey), headersTimeoutMs: 300_000, signal: hooks.signal},
    )
  } catch (error) {
    throw connectionFailure(error, 'upload failed')
  }
  if (res.status !== 202 && res.status !== 200) throw failure(res, 'job submission failed')
  const id = res.body.id
  // A job lives on the replica that took it. Behind Cloud Run (cookie session affinity) or a
  // sticky load balancer, sending the submit's cookies back routes the polls to that replica.
  const pollHeaders = {...authHeaders(target.apiKey), ...(res.cookies.length ? {cookie: res.cookies.join('; ')} : {})}
  let pollMs = hooks.pollMs ?? 100
  let transientFailures = 0
  for (;;) {
    if (hooks.signal?.aborted) throw new HttpConnectionError('aborted', target.url, 'aborted')
    await new Promise((r) => setTimeout(r, pollMs))
    pollMs = Math.min(pollMs * 1.5, 3000)
    let poll: HttpResponse<JobView>
    try {
      poll = await httpRequest<JobView>(joinUrl(target.url, `/jobs/${encodeURIComponent(id)}`), {headers: pollHeaders, timeoutMs: 30_000, signal: hooks.signal})
    } catch (error) {
      // A blip while polling is not a failed job; a server gone for good is.
      if (++transientFailures <= 5 && error instanceof HttpConnectionError && error.kind !== 'aborted') continue
      throw connectionFailure(error, `lost the server while job ${id} ran`)
    }
    if (poll.status >= 500 && ++transientFailures <= 5) continue
    if (poll.status !== 200) throw failure(poll, `job ${id}`)
    transientFailures = 0
    hooks.onStatus?.(poll.body.status)
    if (poll.body.status === 'succeeded' && poll.body.result) return poll.body.result
    if (poll.body.status === 'failed') {
      const e = poll.body.error
      // The server says why; an engine crash (5xx-class) may succeed elsewhere, bad audio won't.
      const retryable = !e?.code || /internal|engine|interrupted|restart/i.test(e.code)
      throw new BackendRequestError(`job ${id} failed: ${e?.message ?? 'no reason given'}`, retryable, undefined, e?.code)
    }
  }
}
