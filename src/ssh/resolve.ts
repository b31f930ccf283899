// From what the user gave (flags, a jarvis.yaml `ssh:` block, a recorded deployment) to
// everything needed to connect: ~/.ssh/config applied (flags win, as on ssh's command line),
// identity files in OpenSSH's order, the agent socket, known_hosts files, ProxyJump hops.
import {existsSync} from 'node:fs'
import {homedir, userInfo} from 'node:os'
import {isAbsolute, join, resolve} from 'node:path'
import {SshError} from './errors.js'
import {policyFromSshConfig, type HostKeyPolicy} from './host-key.js'
import {expandTilde, expandTokens, lookupHost, parseJumpList} from './ssh-config.js'

/** What callers pass: the `ssh:` block of a backend or deployment, plus optional overrides. */
export interface SshTargetSpec {
  /** A host name, an address, or a `Host` alias from ~/.ssh/config. */
  host: string
  port?: number
  user?: string
  /** Private key file (like ssh -i). */
  identity?: string
  /** Default: StrictHostKeyChecking from ~/.ssh/config, else `ask`. */
  hostKeyPolicy?: HostKeyPolicy
  /** ProxyJump `[user@]host[:port][,...]` (like ssh -J); default from ~/.ssh/config. */
  proxyJump?: string
}

export interface SshPaths {
  /** Directory holding config, known_hosts and the default keys: $JARVIS_SSH_DIR, else ~/.ssh. */
  sshDir: string
  /** ssh config file (default sshDir/config). */
  configPath: string
}

export function defaultSshPaths(overrides: Partial<SshPaths> = {}): SshPaths {
  const sshDir = overrides.sshDir ?? (process.env.JARVIS_SSH_DIR ? resolve(process.env.JARVIS_SSH_DIR) : join(homedir(), '.ssh'))
  return {sshDir, configPath: overrides.configPath ?? join(sshDir, 'config')}
}

export interface IdentityFile {
  path: string
  /** From --identity or IdentityFile (a missing one is reported); defaults are only tried when present. */
  explicit: boolean
}

export interface ResolvedHop {
  /** What the user wrote (alias or name). */
  alias: string
  /** Where TCP goes (HostName), also the name looked up in known_hosts. */
  hostName: string
  port: number
  user: string
  identityFiles: IdentityFile[]
  identitiesOnly: boolean
  /** ssh-agent socket, when one is to be used. */
  agentSocket?: string
  keepaliveIntervalMs: number
  keepaliveCountMax: number
  connectTimeoutMs: number
  hostKeyPolicy: HostKeyPolicy
  knownHostsFiles: string[]
  hashKnownHosts: boolean
}

export interface ResolvedTarget extends ResolvedHop {
  /** Jump hosts in order (ProxyJump), each resolved through ~/.ssh/config too. */
  jumps: ResolvedHop[]
}

export interface ResolveOptions {
  paths?: Partial<SshPaths>
  /** Seconds between keepalives (ServerAliveInterval); default 10 unless ~/.ssh/config says otherwise. */
  keepaliveSeconds?: number
  /** Keepalives missed before the connection counts as dead (ServerAliveCountMax); default 3. */
  keepaliveCountMax?: number
  connectTimeoutSeconds?: number
  /** ssh-agent socket; default $SSH_AUTH_SOCK (IdentityAgent in ~/.ssh/config wins); false = no agent. */
  agentSocket?: string | false
}

const DEFAULT_KEYS = ['id_ed25519', 'id_ecdsa', 'id_rsa']

async function resolveHop(spec: SshTargetSpec, opts: ResolveOptions, paths: SshPaths): Promise<ResolvedHop & {proxyJump?: string}> {
  const cfg = await lookupHost({host: spec.host, sshDir: paths.sshDir, configPath: paths.configPath})
  const hostName = cfg.hostName ? cfg.hostName.replaceAll('%h', spec.host).replaceAll('%%', '%') : spec.host
  const port = spec.port ?? cfg.port ?? 22
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new SshError(`Bad SSH port ${port} for ${spec.host}`, {code: 'ssh_config_invalid'})
  const user = spec.user ?? cfg.user ?? userInfo().username
  const tokens = {host: hostName, port, user}
  const abs = (p: string) => {
    const e = expandTokens(p, tokens)
    return isAbsolute(e) ? e : join(paths.sshDir, e)
  }
  const identityFiles: IdentityFile[] = []
  if (spec.identity) identityFiles.push({path: resolve(expandTilde(spec.identity)), explicit: true})
  for (const f of cfg.identityFiles) {
    const path = abs(f)
    if (!identityFiles.some((i) => i.path === path)) identityFiles.push({path, explicit: true})
  }
  // OpenSSH adds its default keys only when no identity was named anywhere.
  if (identityFiles.length === 0) {
    for (const k of DEFAULT_KEYS) {
      const path = join(paths.sshDir, k)
      if (existsSync(path)) identityFiles.push({path, explicit: false})
    }
  }
  let agentSocket: string | undefined
  if (opts.agentSocket !== false) {
    const fromCfg = cfg.identityAgent
    if (fromCfg && fromCfg.toLowerCase() === 'none') agentSocket = undefined
    else if (fromCfg && fromCfg !== 'SSH_AUTH_SOCK') agentSocket = fromCfg.startsWith('$') ? process.env[fromCfg.slice(1)] : abs(fromCfg)
    else agentSocket = opts.agentSocket || process.env.SSH_AUTH_SOCK || undefined
  }
  const knownHostsFiles = cfg.userKnownHostsFiles?.length
    ? cfg.userKnownHostsFiles.filter((f) => f.toLowerCase() !== 'none').map((f) => abs(f))
    : [join(paths.sshDir, 'known_hosts'), join(paths.sshDir, 'known_hosts2')]
  if (knownHostsFiles.length === 0) knownHostsFiles.push(join(paths.sshDir, 'known_hosts'))
  const interval = opts.keepaliveSeconds ?? (cfg.serverAliveInterval && cfg.serverAliveInterval > 0 ? cfg.serverAliveInterval : 10)
  return {
    alias: spec.host,
    hostName,
    port,
    user,
    identityFiles,
    identitiesOnly: cfg.identitiesOnly ?? false,
    agentSocket,
    keepaliveIntervalMs: Math.max(0, interval) * 1000,
    keepaliveCountMax: opts.keepaliveCountMax ?? cfg.serverAliveCountMax ?? 3,
    connectTimeoutMs: (opts.connectTimeoutSeconds ?? cfg.connectTimeout ?? 20) * 1000,
    hostKeyPolicy: spec.hostKeyPolicy ?? policyFromSshConfig(cfg.strictHostKeyChecking) ?? 'ask',
    knownHostsFiles,
    hashKnownHosts: cfg.hashKnownHosts ?? false,
    proxyJump: spec.proxyJump ?? cfg.proxyJump,
  }
}

/** Resolve a target and its ProxyJump chain (each hop may have its own Host block). */
export async function resolveSshTarget(spec: SshTargetSpec, opts: ResolveOptions = {}): Promise<ResolvedTarget> {
  const paths = defaultSshPaths(opts.paths)
  const {proxyJump, ...hop} = await resolveHop(spec, opts, paths)
  const jumps: ResolvedHop[] = []
  if (proxyJump) {
    let list
    try {
      list = parseJumpList(proxyJump)
    } catch (error) {
      throw new SshError(`ProxyJump for ${spec.host}: ${(error as Error).message}`, {code: 'ssh_config_invalid'})
    }
    for (const j of list) {
      // A jump host's own ProxyJump is ignored: the chain given here is the route (as ssh -J does).
      // eslint-disable-next-line @typescript-eslint/no-unused-vars
      const {proxyJump: _ignored, ...resolvedJump} = await resolveHop({host: j.host, port: j.port, user: j.user, hostKeyPolicy: spec.hostKeyPolicy}, opts, paths)
      jumps.push(resolvedJump)
    }
    if (jumps.length > 8) throw new SshError(`ProxyJump chain for ${spec.host} is too long (${jumps.length} hops)`, {code: 'ssh_config_invalid'})
  }
  return {...hop, jumps}
}

/** `user@host:port` for messages. */
export function describeHop(h: Pick<ResolvedHop, 'user' | 'hostName' | 'port'>): string {
  return `${h.user}@${h.hostName.includes(':') ? `[${h.hostName}]` : h.hostName}:${h.port}`
}
