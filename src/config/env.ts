// The environment variables that users of these deployments already set, applied on top
// of jarvis.yaml. Precedence: flags > environment > jarvis.yaml > built-in defaults.
import {registerSecret} from '../lib/secrets.js'
import {UserError} from '../lib/errors.js'
import type {BackendConfig, JarvisConfig} from './schema.js'
import type {Deployment} from '../state/state.js'

export const MODAL_GPUS = ['T4', 'L4', 'A10', 'A10G', 'L40S', 'A100', 'A100-40GB', 'A100-80GB', 'H100'] as const

function envFlag(name: string): boolean | undefined {
  const v = process.env[name]?.trim().toLowerCase()
  if (v === undefined || v === '') return undefined
  if (['1', 'true', 'yes', 'on'].includes(v)) return true
  if (['0', 'false', 'no', 'off'].includes(v)) return false
  throw new UserError(`${name}=${process.env[name]} is not a boolean`, {code: 'env_invalid', suggestion: `Set ${name} to true or false.`})
}

export function hfToken(): string | undefined {
  const t = process.env.HUGGINGFACE_TOKEN || process.env.HF_TOKEN || undefined
  registerSecret(t)
  return t
}

export interface Defaults {
  model: string
  language: string
  diarize: 'auto' | boolean
  formats: JarvisConfig['defaults']['formats']
}

export function effectiveDefaults(config: JarvisConfig): Defaults {
  const d = {...config.defaults}
  if (process.env.WHISPER_MODEL) d.model = process.env.WHISPER_MODEL
  const diar = process.env.ENABLE_DIARIZATION?.trim().toLowerCase()
  if (diar) {
    if (diar === 'auto') d.diarize = 'auto'
    else d.diarize = envFlag('ENABLE_DIARIZATION')!
  }
  return d
}

/** A recorded deployment as a backend: its URL (or SSH target) and the API key kept in .jarvis/secrets.json. */
export function deploymentBackend(dep: Deployment, secrets: Record<string, string>): BackendConfig | undefined {
  if (dep.status !== 'ready') return undefined
  const apiKey = secrets[`${dep.name}.apiKey`]
  const ssh = dep.details.ssh as BackendConfig extends infer B ? (B extends {ssh: infer S} ? S : never) : never
  if ((dep.provider === 'vast' || dep.provider === 'ssh') && ssh) {
    return {name: dep.name, kind: dep.provider, ssh, remotePort: Number(dep.details.remotePort ?? 8000), apiKey}
  }
  if (!dep.url) return undefined
  if (dep.provider === 'modal') return {name: dep.name, kind: 'modal', url: dep.url, apiKey}
  return {name: dep.name, kind: 'external', url: dep.url, apiKey}
}

/**
 * The backends `transcribe` and `status` use, in routing order:
 * EXTERNAL_GPU_URL first (as `external_gpu`), then jarvis.yaml's backends (or, with none
 * configured, recorded deployments), Modal per MODAL_ENABLED, and `local` last.
 */
export function effectiveBackends(config: JarvisConfig, deployments: BackendConfig[] = []): BackendConfig[] {
  const out: BackendConfig[] = []
  const url = process.env.EXTERNAL_GPU_URL?.trim()
  if (url) {
    const apiKey = process.env.EXTERNAL_GPU_API_KEY || undefined
    registerSecret(apiKey)
    if (!/^https?:\/\//.test(url)) throw new UserError(`EXTERNAL_GPU_URL=${url} is not an http(s) URL`, {code: 'env_invalid', suggestion: 'Set it like EXTERNAL_GPU_URL=http://100.64.0.5:8000'})
    out.push({name: 'external_gpu', kind: 'external', url: url.replace(/\/+$/, ''), apiKey})
  }
  const configured = config.backends
    .filter((b) => b.enabled !== false && !out.some((o) => o.name === b.name))
    .map((b) => {
      // A modal backend in jarvis.yaml gets its URL (and key) from `jarvis deploy modal`'s record.
      if (b.kind !== 'modal' || b.url) return b
      const dep = deployments.find((d) => d.kind === 'modal' && d.name === b.name) ?? deployments.find((d) => d.kind === 'modal')
      return dep && dep.kind === 'modal' ? {...b, url: dep.url, apiKey: b.apiKey ?? dep.apiKey} : b
    })
  out.push(...configured)
  for (const d of deployments) if (!out.some((o) => o.name === d.name || (o.kind === 'modal' && d.kind === 'modal' && o.url === d.url))) out.push(d)

  const modalEnabled = envFlag('MODAL_ENABLED')
  const modalGpu = process.env.MODAL_GPU_TYPE?.trim()
  if (modalEnabled === false) {
    for (let i = out.length - 1; i >= 0; i--) if (out[i].kind === 'modal') out.splice(i, 1)
  } else if (modalGpu) {
    for (const b of out) if (b.kind === 'modal') b.gpu = modalGpu
  }
  if (!out.some((b) => b.kind === 'local' || b.name === 'local') && config.backends.length === 0) out.push({name: 'local', kind: 'local'})
  // Local always goes last: it is the slow fallback on most machines.
  return [...out.filter((b) => b.kind !== 'local'), ...out.filter((b) => b.kind === 'local')]
}
