// The deploy service: resolve options (flags > env > jarvis.yaml > defaults), preflight,
// plan, and apply through the provider. Commands call this and only render.
import {randomBytes} from 'node:crypto'
import {effectiveDefaults, hfToken} from '../config/env.js'
import type {LoadedConfig} from '../config/load.js'
import {registerSecret} from '../lib/secrets.js'
import {getSecret, setSecret} from '../state/state.js'
import {assertSupported, createContext, recordedDeployment, requestedFeatures} from '../providers/engine.js'
import {loadProvider} from '../providers/registry.js'
import type {Check, DeployOptions, DeployPlan, ProgressEvent, Provider, ProviderContext} from '../providers/types.js'
import type {Deployment} from '../state/state.js'

export interface DeployFlags {
  name?: string
  region?: string
  gpu?: string
  cpu?: boolean
  model?: string
  engine?: string
  url?: string
  apiKey?: string
  healthTimeoutS?: number
  /** SSH target (ssh, vast): --host --port --user --identity, and the host key policy. */
  host?: string
  port?: number
  user?: string
  identity?: string
  hostKeyPolicy?: 'ask' | 'yes' | 'accept-new' | 'no'
  remoteDir?: string
  remotePort?: number
  maxPrice?: number
  allowCidr?: string
}

export const DEFAULT_HEALTH_TIMEOUT_S = 900

export interface PreparedDeploy {
  provider: Provider
  ctx: ProviderContext
  options: DeployOptions
  checks: Check[]
  plan: DeployPlan
  /** Whether the API key is new (generated now, stored only when apply runs). */
  apiKeyIsNew: boolean
}

export function apiKeySecretName(deploymentName: string): string {
  return `${deploymentName}.apiKey`
}

/** Everything up to the plan: runs read-only checks only, changes nothing. */
export async function prepareDeploy(
  providerName: string,
  flags: DeployFlags,
  loaded: LoadedConfig,
  io: {signal: AbortSignal; log?: (line: string) => void; progress?: (e: ProgressEvent) => void},
): Promise<PreparedDeploy> {
  const provider = await loadProvider(providerName)
  const ctx = createContext({
    projectDir: loaded.projectDir,
    configPath: loaded.path,
    config: loaded.config,
    provider: provider.name,
    signal: io.signal,
    log: io.log,
    progress: io.progress,
  })
  const fromFlags = new Set(Object.entries(flags).filter(([, v]) => v !== undefined && v !== false).map(([k]) => k))
  // One deployment per provider per project: its name is the provider's (see README).
  const deploymentName = provider.name
  const existing = await recordedDeployment(loaded.projectDir, deploymentName)
  const defaults = effectiveDefaults(loaded.config)

  const stored = await getSecret(loaded.projectDir, apiKeySecretName(deploymentName))
  const apiKey = flags.apiKey ?? stored ?? randomBytes(24).toString('base64url')
  registerSecret(apiKey)
  if (flags.apiKey) fromFlags.add('apiKey')

  const options: DeployOptions = {
    name: flags.name,
    region: flags.region,
    gpu: flags.gpu,
    cpu: flags.cpu,
    model: flags.model ?? defaults.model,
    engine: flags.engine ?? 'whisperx',
    url: flags.url,
    apiKey,
    hfToken: hfToken(),
    healthTimeoutMs: (flags.healthTimeoutS ?? DEFAULT_HEALTH_TIMEOUT_S) * 1000,
    fromFlags,
    existing,
    ssh: flags.host || flags.port || flags.user || flags.identity || flags.hostKeyPolicy
      ? {host: flags.host, port: flags.port, user: flags.user, identity: flags.identity, hostKeyPolicy: flags.hostKeyPolicy}
      : undefined,
    remoteDir: flags.remoteDir,
    remotePort: flags.remotePort,
    maxPrice: flags.maxPrice,
    allowCidr: flags.allowCidr,
  }
  assertSupported(provider, requestedFeatures(options))
  const checks = await provider.preflight(ctx, options)
  const plan = await provider.plan(ctx, options, checks)
  return {provider, ctx, options, checks, plan, apiKeyIsNew: flags.apiKey === undefined && stored === undefined}
}

/** Apply a prepared plan: keep the API key (so status/transcribe can use it), then run. */
export async function applyDeploy(p: PreparedDeploy): Promise<Deployment> {
  await setSecret(p.ctx.projectDir, apiKeySecretName(p.plan.name), p.options.apiKey)
  return p.provider.apply(p.ctx, p.plan)
}
