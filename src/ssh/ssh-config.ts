// ~/.ssh/config, read as OpenSSH reads it (ssh_config(5)): `Keyword value` or
// `Keyword=value`, keywords case-insensitive, the first value obtained wins (IdentityFile
// accumulates), `Host` patterns with `*`, `?` and `!`, `Include` (relative to ~/.ssh),
// `%h %p %r %u %d %%` tokens and `~` in paths. Only the keywords jarvis acts on are kept.
// Not read: the system-wide /etc/ssh/ssh_config (jarvis has no business with its Debian
// defaults such as GSSAPI), and `Match` criteria other than `all`, `host`, `originalhost`
// (a block with another criterion is skipped, i.e. treated as not matching).
import {readdir, readFile} from 'node:fs/promises'
import {homedir, userInfo} from 'node:os'
import {basename, dirname, isAbsolute, join} from 'node:path'

export interface SshConfigValues {
  hostName?: string
  port?: number
  user?: string
  identityFiles: string[]
  identitiesOnly?: boolean
  identityAgent?: string
  proxyJump?: string
  serverAliveInterval?: number
  serverAliveCountMax?: number
  connectTimeout?: number
  strictHostKeyChecking?: string
  userKnownHostsFiles?: string[]
  hashKnownHosts?: boolean
}

interface Directive {
  keyword: string
  args: string[]
  file: string
  line: number
}

/** Split a config line into words, honouring double quotes (as OpenSSH's argv_split). */
export function splitWords(text: string): string[] {
  const out: string[] = []
  let cur = ''
  let quoted = false
  let has = false
  for (const ch of text) {
    if (ch === '"') {
      quoted = !quoted
      has = true
    } else if (!quoted && /\s/.test(ch)) {
      if (has) out.push(cur)
      cur = ''
      has = false
    } else {
      cur += ch
      has = true
    }
  }
  if (has) out.push(cur)
  return out
}

export function parseDirectives(text: string, file: string): Directive[] {
  const out: Directive[] = []
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim()
    if (!line || line.startsWith('#')) return
    const m = /^(\S+?)(?:\s*=\s*|\s+)(.*)$/.exec(line)
    if (!m) {
      out.push({keyword: line.toLowerCase(), args: [], file, line: i + 1})
      return
    }
    out.push({keyword: m[1].toLowerCase(), args: splitWords(m[2]), file, line: i + 1})
  })
  return out
}

function globMatch(pattern: string, name: string): boolean {
  const re = new RegExp('^' + pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replaceAll('*', '.*').replaceAll('?', '.') + '$', 'i')
  return re.test(name)
}

/** A `Host`/`Match host` pattern list: any positive match and no negated match. */
export function patternListMatches(patterns: string[], name: string): boolean {
  let matched = false
  for (const list of patterns) {
    for (const p of list.split(',')) {
      if (!p) continue
      if (p.startsWith('!')) {
        if (globMatch(p.slice(1), name)) return false
      } else if (globMatch(p, name)) matched = true
    }
  }
  return matched
}

export function expandTilde(path: string, home = homedir()): string {
  if (path === '~') return home
  if (path.startsWith('~/')) return join(home, path.slice(2))
  return path
}

async function expandInclude(pattern: string, sshDir: string): Promise<string[]> {
  const path = expandTilde(pattern)
  const abs = isAbsolute(path) ? path : join(sshDir, path)
  const base = basename(abs)
  if (!/[*?]/.test(base)) return [abs]
  try {
    const names = (await readdir(dirname(abs))).filter((n) => globMatch(base, n)).sort()
    return names.map((n) => join(dirname(abs), n))
  } catch {
    return []
  }
}

async function loadDirectives(path: string, sshDir: string, depth = 0): Promise<Directive[]> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw error
  }
  const out: Directive[] = []
  for (const d of parseDirectives(text, path)) {
    // Include is expanded in place (it inherits the current Host block, as in OpenSSH). Depth-limited like OpenSSH (16).
    if (d.keyword === 'include' && depth < 16) {
      for (const arg of d.args) for (const f of await expandInclude(arg, sshDir)) out.push(...(await loadDirectives(f, sshDir, depth + 1)))
    } else out.push(d)
  }
  return out
}

export interface LookupContext {
  /** The host as given (an alias or a name): what `Host` patterns match. */
  host: string
  /** Directory of config/known_hosts/default keys (~/.ssh, or $JARVIS_SSH_DIR). */
  sshDir: string
  /** Path of the config file (default: sshDir/config). */
  configPath?: string
}

/** The values that apply to one host, first match wins per keyword. */
export async function lookupHost(ctx: LookupContext): Promise<SshConfigValues> {
  const directives = await loadDirectives(ctx.configPath ?? join(ctx.sshDir, 'config'), ctx.sshDir)
  const v: SshConfigValues = {identityFiles: []}
  const seen = new Set<string>()
  let active = true
  const first = (kw: string, apply: () => void) => {
    if (seen.has(kw)) return
    seen.add(kw)
    apply()
  }
  for (const d of directives) {
    if (d.keyword === 'host') {
      active = patternListMatches(d.args, ctx.host)
      continue
    }
    if (d.keyword === 'match') {
      active = matchApplies(d.args, ctx.host, v.hostName ?? ctx.host)
      continue
    }
    if (!active) continue
    const a = d.args[0]
    if (a === undefined) continue
    switch (d.keyword) {
      case 'hostname':
        first('hostname', () => (v.hostName = a))
        break
      case 'port':
        first('port', () => (v.port = Number(a)))
        break
      case 'user':
        first('user', () => (v.user = a))
        break
      case 'identityfile':
        if (a.toLowerCase() !== 'none') v.identityFiles.push(a)
        break
      case 'identitiesonly':
        first('identitiesonly', () => (v.identitiesOnly = a.toLowerCase() === 'yes'))
        break
      case 'identityagent':
        first('identityagent', () => (v.identityAgent = a))
        break
      case 'proxyjump':
        first('proxyjump', () => (v.proxyJump = a))
        break
      case 'serveraliveinterval':
        first('serveraliveinterval', () => (v.serverAliveInterval = Number(a)))
        break
      case 'serveralivecountmax':
        first('serveralivecountmax', () => (v.serverAliveCountMax = Number(a)))
        break
      case 'connecttimeout':
        first('connecttimeout', () => (v.connectTimeout = Number(a)))
        break
      case 'stricthostkeychecking':
        first('stricthostkeychecking', () => (v.strictHostKeyChecking = a.toLowerCase()))
        break
      case 'userknownhostsfile':
        first('userknownhostsfile', () => (v.userKnownHostsFiles = d.args))
        break
      case 'hashknownhosts':
        first('hashknownhosts', () => (v.hashKnownHosts = a.toLowerCase() === 'yes'))
        break
    }
  }
  return v
}

function matchApplies(args: string[], originalHost: string, host: string): boolean {
  if (args.length === 1 && args[0].toLowerCase() === 'all') return true
  for (let i = 0; i < args.length; i += 2) {
    const crit = args[i].toLowerCase()
    const negate = crit.startsWith('!')
    const name = negate ? crit.slice(1) : crit
    const value = args[i + 1] ?? ''
    let ok: boolean
    if (name === 'host') ok = patternListMatches([value], host)
    else if (name === 'originalhost') ok = patternListMatches([value], originalHost)
    else if (name === 'all') ok = true
    else return false // exec, user, localuser, canonical, ...: not evaluated → block skipped
    if (ok === negate) return false
  }
  return true
}

/** Expand `%h %p %r %u %d %%` and `~` (IdentityFile, IdentityAgent, UserKnownHostsFile). */
export function expandTokens(value: string, t: {host: string; port: number; user: string}): string {
  const home = homedir()
  const out = value.replace(/%([%hprud])/g, (_, c: string) => {
    switch (c) {
      case 'h':
        return t.host
      case 'p':
        return String(t.port)
      case 'r':
        return t.user
      case 'u':
        return userInfo().username
      case 'd':
        return home
      default:
        return '%'
    }
  })
  return expandTilde(out, home)
}

export interface JumpSpec {
  host: string
  port?: number
  user?: string
}

/** `[user@]host[:port]` or `[user@][ipv6]:port`, comma-separated (ProxyJump / -J). `none` → []. */
export function parseJumpList(value: string): JumpSpec[] {
  if (value.trim().toLowerCase() === 'none') return []
  return value.split(',').map((raw) => {
    let s = raw.trim().replace(/^ssh:\/\//, '')
    let user: string | undefined
    const at = s.lastIndexOf('@')
    if (at >= 0) {
      user = s.slice(0, at)
      s = s.slice(at + 1)
    }
    let host = s
    let port: number | undefined
    const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(s)
    if (bracket) {
      host = bracket[1]
      port = bracket[2] ? Number(bracket[2]) : undefined
    } else if ((s.match(/:/g) ?? []).length === 1) {
      const [h, p] = s.split(':')
      host = h
      port = Number(p)
    }
    if (!host || (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536))) throw new Error(`bad jump host "${raw.trim()}" (expected [user@]host[:port])`)
    return {host, port, user}
  })
}
