// known_hosts, read and written the way OpenSSH does (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"):
// comma-separated host patterns with `*`/`?` wildcards and `!` negation, `[host]:port`
// for non-22 ports, hashed names `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`, and the
// `@revoked` / `@cert-authority` markers. Pure functions over text, so they are unit-tested.
import {createHash, createHmac, randomBytes, timingSafeEqual} from 'node:crypto'
import {appendFile, mkdir, readFile, stat} from 'node:fs/promises'
import {dirname} from 'node:path'

export interface KnownHostEntry {
  /** 1-based line number in its file. */
  line: number
  marker?: '@revoked' | '@cert-authority'
  /** The host field as written (patterns or a hashed name). */
  hosts: string
  keyType: string
  /** The key blob, base64 as written. */
  key: string
}

/** The name OpenSSH looks up for a host and port: `host` on port 22, `[host]:port` otherwise. */
export function hostKeyName(host: string, port = 22): string {
  return port === 22 ? host : `[${host}]:${port}`
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = []
  const lines = text.split(/\r?\n/)
  lines.forEach((raw, i) => {
    const trimmed = raw.trim()
    if (!trimmed || trimmed.startsWith('#')) return
    const fields = trimmed.split(/\s+/)
    let marker: KnownHostEntry['marker']
    if (fields[0].startsWith('@')) {
      if (fields[0] !== '@revoked' && fields[0] !== '@cert-authority') return // unknown marker: OpenSSH skips the line
      marker = fields.shift() as KnownHostEntry['marker']
    }
    // Lines that aren't `hosts keytype base64` (old RSA1 "bits e n" lines, garbage) are skipped, as OpenSSH does.
    if (fields.length < 3 || !/^[A-Za-z0-9+/]+=*$/.test(fields[2])) return
    out.push({line: i + 1, marker, hosts: fields[0], keyType: fields[1], key: fields[2]})
  })
  return out
}

/** Glob match with `*` and `?` (OpenSSH match_pattern), case-insensitive like host names. */
function globMatch(pattern: string, name: string): boolean {
  const re = new RegExp('^' + pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replaceAll('*', '.*').replaceAll('?', '.') + '$', 'i')
  return re.test(name)
}

/** Does a hashed host field `|1|salt|hash` stand for this name? */
export function hashedMatches(field: string, name: string): boolean {
  const m = /^\|1\|([A-Za-z0-9+/=]+)\|([A-Za-z0-9+/=]+)$/.exec(field)
  if (!m) return false
  const salt = Buffer.from(m[1], 'base64')
  const want = Buffer.from(m[2], 'base64')
  const got = createHmac('sha1', salt).update(name).digest()
  return want.length === got.length && timingSafeEqual(want, got)
}

/** Hash a name the way `ssh-keygen -H` / HashKnownHosts does. */
export function hashHostName(name: string, salt: Buffer = randomBytes(20)): string {
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`
}

/**
 * Whether an entry's host field applies to `name` (already in `[host]:port` form where the
 * port isn't 22). A matching negated pattern excludes the entry whatever else matches.
 */
export function hostFieldMatches(field: string, name: string): boolean {
  if (field.startsWith('|')) return hashedMatches(field, name)
  let matched = false
  for (const p of field.split(',')) {
    if (!p) continue
    if (p.startsWith('!')) {
      if (globMatch(p.slice(1), name)) return false
    } else if (globMatch(p, name)) matched = true
  }
  return matched
}

/** The key type named inside an SSH public key blob (its first string). */
export function keyTypeOfBlob(blob: Buffer): string {
  if (blob.length < 4) return 'unknown'
  const len = blob.readUInt32BE(0)
  return blob.subarray(4, 4 + len).toString('latin1')
}

/** `SHA256:...` as `ssh-keygen -lf` and OpenSSH's prompts show it (base64, no padding). */
export function fingerprint(blob: Buffer | string): string {
  const buf = typeof blob === 'string' ? Buffer.from(blob, 'base64') : blob
  return 'SHA256:' + createHash('sha256').update(buf).digest('base64').replace(/=+$/, '')
}

export type HostKeyCheck =
  | {status: 'known'; file: string; line: number}
  | {status: 'unknown'; otherTypes: {keyType: string; fingerprint: string; file: string; line: number}[]}
  | {status: 'changed'; file: string; line: number; knownType: string; knownFingerprint: string}
  | {status: 'revoked'; file: string; line: number}

export interface KnownHostsFile {
  path: string
  entries: KnownHostEntry[]
}

/**
 * Check a presented key against the files, as OpenSSH's check_key_in_hostkeys: the same key
 * anywhere for this name → known; a revoked key → refused; another key of the same type →
 * changed; only keys of other types → unknown (reported, so the prompt can say so).
 */
export function checkHostKey(files: KnownHostsFile[], name: string, blob: Buffer): HostKeyCheck {
  const keyType = keyTypeOfBlob(blob)
  const b64 = blob.toString('base64')
  let changed: HostKeyCheck | undefined
  const otherTypes: Extract<HostKeyCheck, {status: 'unknown'}>['otherTypes'] = []
  for (const f of files) {
    for (const e of f.entries) {
      if (e.marker === '@cert-authority') continue // host certificates aren't offered by ssh2
      if (!hostFieldMatches(e.hosts, name)) continue
      const same = e.key === b64
      if (e.marker === '@revoked') {
        if (same) return {status: 'revoked', file: f.path, line: e.line}
        continue
      }
      if (same) return {status: 'known', file: f.path, line: e.line}
      if (e.keyType === keyType) changed ??= {status: 'changed', file: f.path, line: e.line, knownType: e.keyType, knownFingerprint: fingerprint(e.key)}
      else otherTypes.push({keyType: e.keyType, fingerprint: fingerprint(e.key), file: f.path, line: e.line})
    }
  }
  return changed ?? {status: 'unknown', otherTypes}
}

/** Key types already known for a name: offered first in the key exchange, as OpenSSH does, so a host with a pinned RSA key isn't asked for a new ed25519 one. */
export function knownKeyTypes(files: KnownHostsFile[], name: string): string[] {
  const types: string[] = []
  for (const f of files) for (const e of f.entries) if (!e.marker && hostFieldMatches(e.hosts, name) && !types.includes(e.keyType)) types.push(e.keyType)
  return types
}

export async function readKnownHostsFile(path: string): Promise<KnownHostsFile> {
  try {
    return {path, entries: parseKnownHosts(await readFile(path, 'utf8'))}
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {path, entries: []}
    throw error
  }
}

/** Pin a key: append `name keytype base64` (hashed when asked), creating ~/.ssh 0700 and the file 0600. */
export async function appendKnownHost(path: string, name: string, blob: Buffer, opts: {hash?: boolean} = {}): Promise<void> {
  await mkdir(dirname(path), {recursive: true, mode: 0o700})
  let prefix = ''
  try {
    const {size} = await stat(path)
    if (size > 0) {
      const text = await readFile(path, 'utf8')
      if (!text.endsWith('\n')) prefix = '\n'
    }
  } catch {
    // no file yet: appendFile creates it with the mode below
  }
  const field = opts.hash ? hashHostName(name) : name
  await appendFile(path, `${prefix}${field} ${keyTypeOfBlob(blob)} ${blob.toString('base64')}\n`, {mode: 0o600})
}
