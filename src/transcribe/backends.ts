// Turning a configured backend into something we can send audio to: a URL (and key).
// external/modal: the URL itself. vast/ssh: an SSH tunnel opened for the run. local: the
// bundled server on this machine, started on demand.
import type {BackendConfig} from '../config/schema.js'
import {UserError} from '../lib/errors.js'
import {registerSecret} from '../lib/secrets.js'
import {checkServer, type ServerHealth, type ServerTarget} from '../server/client.js'
import {findServer, startServer, type Engine} from '../gpu-server/manager.js'
import {cachedFailure, rememberHealth} from './health-cache.js'

export interface BackendHandle {
  config: BackendConfig
  name: string
  kind: BackendConfig['kind']
  /** Order in which backends are tried; equal ranks share a batch. */
  rank: number
  target?: ServerTarget
  health?: ServerHealth
  /** local only: nothing is running yet, it will be started if needed. */
  onDemand?: boolean
  usable: boolean
  reason?: string
  close(): Promise<void>
}

export interface ResolveOptions {
  healthTimeoutMs: number
  signal?: AbortSignal
  /** Called for slow steps (opening a tunnel, starting the local server). */
  onStage?: (text: string) => void
}

function base(config: BackendConfig, rank: number): BackendHandle {
  registerSecret(config.apiKey)
  return {config, name: config.name, kind: config.kind, rank: config.priority ?? rank, usable: false, close: async () => {}}
}

async function probe(h: BackendHandle, opts: ResolveOptions, cacheKey: string): Promise<BackendHandle> {
  const cached = await cachedFailure(cacheKey)
  if (cached) {
    h.reason = `${cached.reason ?? cached.state} (remembered from ${Math.round(cached.ageMs / 1000)} s ago)`
    return h
  }
  h.health = await checkServer(h.target!, {timeoutMs: opts.healthTimeoutMs, signal: opts.signal})
  h.usable = h.health.ok
  h.reason = h.health.ok ? undefined : h.health.reason
  // Loading is transient and auth is a config problem: neither is a dead host.
  if (h.health.state === 'unreachable') await rememberHealth(cacheKey, false, h.health.state, h.health.reason)
  else if (h.health.ok) await rememberHealth(cacheKey, true, h.health.state)
  return h
}

export async function resolveBackend(config: BackendConfig, rank: number, opts: ResolveOptions): Promise<BackendHandle> {
  const h = base(config, rank)
  switch (config.kind) {
    case 'external':
      h.target = {url: config.url, apiKey: config.apiKey}
      return probe(h, opts, config.url)
    case 'modal':
      if (!config.url) {
        h.reason = 'no URL yet: deploy it with `jarvis deploy modal` (or set url: in jarvis.yaml)'
        return h
      }
      h.target = {url: config.url, apiKey: config.apiKey}
      return probe(h, opts, config.url)
    case 'vast':
    case 'ssh': {
      const key = `ssh://${config.ssh.user ?? ''}@${config.ssh.host}:${config.ssh.port ?? 22}/${config.remotePort}`
      const cached = await cachedFailure(key)
      if (cached) {
        h.reason = `${cached.reason ?? cached.state} (remembered from ${Math.round(cached.ageMs / 1000)} s ago)`
        return h
      }
      try {
        opts.onStage?.(`opening SSH tunnel to ${config.ssh.host}`)
        // Loaded only here: ssh2 is heavy and most runs never need it.
        const {openTunnel} = await import('../ssh/tunnel.js')
        const tunnel = await openTunnel(
          {host: config.ssh.host, port: config.ssh.port, user: config.ssh.user, identity: config.ssh.identity, hostKeyPolicy: 'yes'},
          [{bindHost: '127.0.0.1', localPort: 0, remoteHost: '127.0.0.1', remotePort: config.remotePort}],
          // An unknown host key is refused, never prompted for mid-run: pin it with `jarvis tunnel NAME --accept-new`.
          {signal: opts.signal, reconnect: {maxAttempts: 5}},
        )
        h.close = () => tunnel.close()
        h.target = {url: `http://127.0.0.1:${tunnel.forwards[0].localPort}`, apiKey: config.apiKey}
      } catch (error) {
        h.reason = `SSH tunnel failed: ${(error as Error).message}`
        if (!(error instanceof UserError)) await rememberHealth(key, false, 'unreachable', h.reason)
        return h
      }
      await probe(h, opts, `${key}#tunnel-${Date.now()}`)
      return h
    }
    case 'local': {
      const running = await findServer(config.port)
      if (running) {
        h.target = {url: running.url, apiKey: running.apiKey}
        return probe(h, opts, `local:${running.port}:${running.pid}`)
      }
      h.onDemand = true
      h.usable = true
      h.reason = undefined
      return h
    }
  }
}

/** Start the local server for a `local` backend that was on demand. */
export async function startLocal(h: BackendHandle, opts: ResolveOptions & {model?: string}): Promise<void> {
  if (h.config.kind !== 'local') return
  const c = h.config
  const {record, health} = await startServer(
    {port: c.port, engine: (c.engine ?? 'auto') as Engine, device: c.device, model: c.model ?? opts.model},
    {signal: opts.signal, onStage: (s, ms) => opts.onStage?.(`starting the local gpu-server (${Math.round(ms / 1000)} s): ${s.slice(0, 80)}`)},
  )
  h.target = {url: record.url, apiKey: record.apiKey}
  h.health = health
  h.onDemand = false
}
