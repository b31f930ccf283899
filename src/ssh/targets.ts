// Which SSH host a name stands for: a backend of kind `vast`/`ssh` in jarvis.yaml, or a
// recorded deployment in .jarvis/state.json whose details.ssh holds the target. Used by
// `jarvis tunnel TARGET` and by anything else that has a backend name and needs a tunnel.
import type {LoadedConfig} from '../config/load.js'
import type {SshTarget} from '../config/schema.js'
import {UsageError, UserError} from '../lib/errors.js'
import {readState} from '../state/state.js'

export interface NamedSshTarget {
  /** The backend or deployment name. */
  name: string
  source: 'backend' | 'deployment' | 'flags'
  ssh: SshTarget
  /** The gpu-server's port on the remote side. */
  remotePort: number
}

export const DEFAULT_SERVER_PORT = 8000

function isSshTarget(v: unknown): v is SshTarget {
  return typeof v === 'object' && v !== null && typeof (v as SshTarget).host === 'string' && (v as SshTarget).host.length > 0
}

/** Every SSH target jarvis knows of: configured backends first, then recorded deployments. */
export async function listSshTargets(loaded: LoadedConfig): Promise<NamedSshTarget[]> {
  const out: NamedSshTarget[] = []
  for (const b of loaded.config.backends) {
    if (b.kind === 'vast' || b.kind === 'ssh') out.push({name: b.name, source: 'backend', ssh: b.ssh, remotePort: b.remotePort})
  }
  const state = await readState(loaded.projectDir)
  for (const dep of Object.values(state.deployments)) {
    const ssh = dep.details.ssh
    if (!isSshTarget(ssh) || out.some((t) => t.name === dep.name)) continue
    if (dep.status === 'destroyed' || dep.status === 'destroying') continue
    const port = Number(dep.details.remotePort ?? DEFAULT_SERVER_PORT)
    out.push({
      name: dep.name,
      source: 'deployment',
      ssh: {host: ssh.host, port: ssh.port, user: ssh.user, identity: ssh.identity},
      remotePort: Number.isInteger(port) && port > 0 ? port : DEFAULT_SERVER_PORT,
    })
  }
  return out
}

export interface TargetOverrides {
  host?: string
  port?: number
  user?: string
  identity?: string
}

/**
 * A TARGET name and/or --host/--port/--user/--identity → one target. Flags override the
 * named target's fields. A name may also be a deploy provider (`vast`) when exactly one
 * recorded deployment or backend of that kind exists.
 */
export async function resolveNamedTarget(name: string | undefined, flags: TargetOverrides, loaded: LoadedConfig): Promise<NamedSshTarget> {
  const known = await listSshTargets(loaded)
  const knownList = known.length ? known.map((t) => t.name).join(', ') : '(none configured)'
  if (!name) {
    if (!flags.host) {
      throw new UsageError('Name a TARGET (a backend of kind vast/ssh or a recorded deployment) or pass --host.', {suggestion: `Known SSH targets: ${knownList}. Example: jarvis tunnel --host gpu.example.com --user root`})
    }
    return {name: flags.host, source: 'flags', ssh: {host: flags.host, port: flags.port, user: flags.user, identity: flags.identity}, remotePort: DEFAULT_SERVER_PORT}
  }
  let found = known.find((t) => t.name === name)
  if (!found) {
    const byKind = [
      ...loaded.config.backends.filter((b) => b.kind === name && (b.kind === 'vast' || b.kind === 'ssh')).map((b) => b.name),
      ...Object.values((await readState(loaded.projectDir)).deployments).filter((d) => d.provider === name).map((d) => d.name),
    ]
    const candidates = known.filter((t) => byKind.includes(t.name))
    if (candidates.length === 1) found = candidates[0]
    else if (candidates.length > 1) {
      throw new UsageError(`"${name}" matches several targets: ${candidates.map((c) => c.name).join(', ')}`, {suggestion: 'Name one of them.'})
    }
  }
  if (!found) {
    const other = loaded.config.backends.find((b) => b.name === name)
    if (other) {
      throw new UserError(`Backend "${name}" is of kind ${other.kind} and has no SSH target`, {code: 'not_ssh_backend', suggestion: `Tunnels go to backends of kind vast or ssh. Known SSH targets: ${knownList}.`})
    }
    if (flags.host) return {name, source: 'flags', ssh: {host: flags.host, port: flags.port, user: flags.user, identity: flags.identity}, remotePort: DEFAULT_SERVER_PORT}
    throw new UserError(`No backend or deployment named "${name}" with an SSH target`, {
      code: 'unknown_target',
      suggestion: `Known SSH targets: ${knownList}. Or give the host: jarvis tunnel --host HOST [--port N --user U --identity FILE].`,
    })
  }
  return {
    ...found,
    ssh: {
      host: flags.host ?? found.ssh.host,
      port: flags.port ?? found.ssh.port,
      user: flags.user ?? found.ssh.user,
      identity: flags.identity ?? found.ssh.identity,
    },
  }
}
