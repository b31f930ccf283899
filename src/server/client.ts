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
  version?: string
  engine?: string
  model?: string
  device?: string
  compute_type?: string
  batch_size?: number
  gpu?: {name?: string; vram_total_mb?: number; vram_free_mb?: number; cuda_version?: string} | null
  diarization_available?: boolean
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
  return t ? t.slice(0, 300) : `HTTP ${res.status}`
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
