// The status service: every backend (jarvis.yaml, EXTERNAL_GPU_URL, recorded deployments)
// checked in parallel over HTTP, plus each recorded deployment's own provider view.
// Never throws for one bad backend: each row says what is wrong.
import {describeServer} from '../gpu-server/describe.js'
import {deploymentBackend, effectiveBackends} from '../config/env.js'
import type {LoadedConfig} from '../config/load.js'
import type {BackendConfig} from '../config/schema.js'
import {errorMessage} from '../lib/errors.js'
import {checkServer, type HealthState, type ServerHealth} from '../server/client.js'
import {readSecrets, readState, type Deployment} from '../state/state.js'
import {createContext} from '../providers/engine.js'
import {loadProvider} from '../providers/registry.js'
import type {ProviderStatus} from '../providers/types.js'

export type RowHealth = HealthState | 'not_deployed' | 'stopped' | 'unknown'

export interface BackendStatus {
  name: string
  kind: BackendConfig['kind']
  /** Where the row comes from. */
  source: 'config' | 'env' | 'deployment' | 'default'
  url?: string
  health: RowHealth
  ok: boolean
  /** Whether this row counts for the exit code (an on-demand local server that is not running does not). */
  counts: boolean
  reason?: string
  latencyMs?: number
  engine?: string
  model?: string
  device?: string
  gpu?: string
  /** Recorded deployment behind this backend. */
  provider?: string
  deployment?: {status: Deployment['status']; lastError?: string; createdAt: string; updatedAt: string}
  providerStatus?: ProviderStatus
}

export interface StatusReport {
  healthy: boolean
  checkedAt: string
  backends: BackendStatus[]
}

function fromHealth(h: ServerHealth): Pick<BackendStatus, 'health' | 'ok' | 'reason' | 'latencyMs' | 'engine' | 'model' | 'device' | 'gpu'> {
  return {
    health: h.state,
    ok: h.ok,
    reason: h.reason,
    latencyMs: h.latencyMs,
    engine: h.info?.engine ?? h.health?.engine,
    model: h.info?.model ?? h.health?.model,
    device: h.info?.device ?? h.health?.device,
    // The same GPU wording as `gpu-server health`: name and memory, or "none (CPU)".
    gpu: describeServer(h).gpu,
  }
}

async function checkBackend(b: BackendConfig, opts: {timeoutMs: number; signal: AbortSignal}): Promise<Partial<BackendStatus>> {
  switch (b.kind) {
    case 'external':
      return {url: b.url, ...fromHealth(await checkServer({url: b.url, apiKey: b.apiKey}, opts))}
    case 'modal':
      if (!b.url) return {health: 'unknown', ok: false, reason: 'no URL known: run `jarvis deploy modal`, or set url in jarvis.yaml'}
      return {url: b.url, ...fromHealth(await checkServer({url: b.url, apiKey: b.apiKey}, opts))}
    case 'local': {
      const {findServer} = await import('../gpu-server/manager.js')
      const rec = await findServer(b.port)
      if (!rec) return {health: 'stopped', ok: false, counts: false, reason: 'not running; `jarvis transcribe` starts it on demand (or `jarvis gpu-server start`)'}
      return {url: rec.url, ...fromHealth(await checkServer({url: rec.url, apiKey: b.apiKey ?? rec.apiKey}, opts))}
    }
    case 'vast':
    case 'ssh':
      return checkOverTunnel(b, opts)
  }
}

/** vast/ssh backends listen on the remote box's loopback: reach /health through a short-lived SSH tunnel. */
async function checkOverTunnel(b: Extract<BackendConfig, {kind: 'vast' | 'ssh'}>, opts: {timeoutMs: number; signal: AbortSignal}): Promise<Partial<BackendStatus>> {
  const where = `${b.ssh.user ? `${b.ssh.user}@` : ''}${b.ssh.host}${b.ssh.port ? `:${b.ssh.port}` : ''}`
  let tunnel: {forwards: {localPort: number}[]; close(): Promise<void>} | undefined
  try {
    const {openTunnel} = await import('../ssh/index.js')
    // Never prompt from status: an unknown host key is refused (pin it with `jarvis tunnel`).
    tunnel = await openTunnel({...b.ssh, hostKeyPolicy: 'yes'}, [{localPort: 0, remotePort: b.remotePort}], {
      signal: opts.signal,
      connectTimeoutSeconds: Math.max(2, Math.ceil(opts.timeoutMs / 1000)),
      pendingTimeoutMs: opts.timeoutMs * 2,
      reconnect: {maxAttempts: 1},
    })
    const local = `http://127.0.0.1:${tunnel.forwards[0].localPort}`
    const h = await checkServer({url: local, apiKey: b.apiKey}, {timeoutMs: opts.timeoutMs * 2, signal: opts.signal})
    return {url: `ssh://${where} → 127.0.0.1:${b.remotePort}`, ...fromHealth(h)}
  } catch (error) {
    return {url: `ssh://${where}`, health: 'unreachable', ok: false, reason: `SSH tunnel failed: ${errorMessage(error)} (try \`jarvis tunnel ${b.name}\`)`}
  } finally {
    await tunnel?.close().catch(() => {})
  }
}

async function providerView(loaded: LoadedConfig, dep: Deployment, signal: AbortSignal): Promise<ProviderStatus | undefined> {
  try {
    const provider = await loadProvider(dep.provider)
    const ctx = createContext({projectDir: loaded.projectDir, configPath: loaded.path, config: loaded.config, provider: provider.name, signal})
    return await provider.status(ctx, dep)
  } catch (error) {
    return {state: 'unknown', summary: errorMessage(error)}
  }
}

export async function collectStatus(loaded: LoadedConfig, opts: {timeoutMs?: number; signal: AbortSignal}): Promise<StatusReport> {
  const timeoutMs = opts.timeoutMs ?? 5000
  const [state, secrets] = await Promise.all([readState(loaded.projectDir), readSecrets(loaded.projectDir)])
  const deployments = Object.values(state.deployments)
  const depBackends = deployments.map((d) => deploymentBackend(d, secrets)).filter((b): b is BackendConfig => Boolean(b))
  const backends = effectiveBackends(loaded.config, depBackends)
  const depByName = new Map(deployments.map((d) => [d.name, d]))

  const rows: Promise<BackendStatus>[] = backends.map(async (b) => {
    const dep = depByName.get(b.name)
    const source: BackendStatus['source'] = dep && !loaded.config.backends.some((c) => c.name === b.name) ? 'deployment' : b.name === 'external_gpu' ? 'env' : loaded.config.backends.some((c) => c.name === b.name) ? 'config' : 'default'
    const [checked, view] = await Promise.all([checkBackend(b, {timeoutMs, signal: opts.signal}), dep ? providerView(loaded, dep, opts.signal) : undefined])
    return {
      name: b.name,
      kind: b.kind,
      source,
      health: 'unknown',
      ok: false,
      counts: true,
      ...checked,
      ...(dep ? {provider: dep.provider, deployment: depSummary(dep), providerStatus: view} : {}),
    } as BackendStatus
  })
  // Deployments that are not (yet) backends: half-made, failed, being destroyed.
  for (const dep of deployments) {
    if (backends.some((b) => b.name === dep.name)) continue
    rows.push(
      (async (): Promise<BackendStatus> => ({
        name: dep.name,
        kind: dep.provider === 'modal' ? 'modal' : dep.provider === 'vast' || dep.provider === 'ssh' ? dep.provider : 'external',
        source: 'deployment',
        url: dep.url,
        health: 'not_deployed',
        ok: false,
        counts: true,
        reason: `deployment is ${dep.status}${dep.lastError ? `: ${dep.lastError}` : ''} (re-run \`jarvis deploy ${dep.provider}\` to resume, or \`jarvis destroy ${dep.provider}\`)`,
        provider: dep.provider,
        deployment: depSummary(dep),
        providerStatus: await providerView(loaded, dep, opts.signal),
      }))(),
    )
  }
  const all = await Promise.all(rows)
  return {healthy: all.every((r) => r.ok || !r.counts), checkedAt: new Date().toISOString(), backends: all}
}

function depSummary(dep: Deployment): BackendStatus['deployment'] {
  return {status: dep.status, lastError: dep.lastError, createdAt: dep.createdAt, updatedAt: dep.updatedAt}
}
