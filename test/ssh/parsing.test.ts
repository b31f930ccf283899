// Pure parts of the SSH wrapper: known_hosts (hashed names, [host]:port, patterns, markers),
// -L specs, ~/.ssh/config, remote command quoting. Checked against OpenSSH's own tools where
// they have an opinion (ssh-keygen -H / -lf / -F, ssh -G).
import {execFileSync} from 'node:child_process'
import {mkdir, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {checkHostKey, fingerprint, hashHostName, hashedMatches, hostFieldMatches, hostKeyName, knownKeyTypes, parseKnownHosts, appendKnownHost} from '../../src/ssh/known-hosts.js'
import {parseForwardSpec, ForwardSpecError} from '../../src/ssh/forward-spec.js'
import {lookupHost, parseJumpList, splitWords} from '../../src/ssh/ssh-config.js'
import {resolveSshTarget} from '../../src/ssh/resolve.js'
import {shellCommand, shellQuote} from '../../src/ssh/quote.js'
import {tempDir} from '../helpers/tmp.js'
import {keygen} from './sshd.js'

const haveKeygen = (() => {
  try {
    execFileSync('ssh-keygen', ['-?'], {stdio: 'ignore'})
  } catch (error) {
    return (error as {status?: number}).status !== undefined // ran (and complained about -?) → present
  }
  return true
})()

const blob = (b64: string) => Buffer.from(b64, 'base64')

describe('known_hosts', () => {
  it('uses [host]:port except on port 22', () => {
    expect(hostKeyName('example.com')).toBe('example.com')
    expect(hostKeyName('example.com', 22)).toBe('example.com')
    expect(hostKeyName('127.0.0.1', 2222)).toBe('[127.0.0.1]:2222')
  })

  it('matches patterns with wildcards and negation, case-insensitively', () => {
    expect(hostFieldMatches('a.example.com,b.example.com', 'b.example.com')).toBe(true)
    expect(hostFieldMatches('*.example.com', 'GPU.Example.com')).toBe(true)
    expect(hostFieldMatches('*.example.com,!bad.example.com', 'bad.example.com')).toBe(false)
    expect(hostFieldMatches('10.0.0.?', '10.0.0.7')).toBe(true)
    expect(hostFieldMatches('[10.0.0.7]:2222', '10.0.0.7')).toBe(false)
    expect(hostFieldMatches('[10.0.0.7]:2222', '[10.0.0.7]:2222')).toBe(true)
    expect(hostFieldMatches('[*.vast.ai]:*', '[ssh4.vast.ai]:14688')).toBe(true)
  })

  it('hashes names as HMAC-SHA1 over the salt (|1|salt|hash)', () => {
    const salt = Buffer.alloc(20, 1)
    const field = hashHostName('[127.0.0.1]:2222', salt)
    expect(field).toMatch(/^\|1\|AQEBAQEBAQEBAQEBAQEBAQEBAQE=\|[A-Za-z0-9+/]+=*$/)
    expect(hashedMatches(field, '[127.0.0.1]:2222')).toBe(true)
    expect(hashedMatches(field, '127.0.0.1')).toBe(false)
  })

  it.skipIf(!haveKeygen)('reads entries hashed by ssh-keygen -H, and ssh-keygen finds the ones we hash', async () => {
    const dir = await tempDir()
    const key = keygen(join(dir, 'k'))
    const file = join(dir, 'known_hosts')
    await writeFile(file, `[gpu.example.com]:14688 ${key.publicLine}\nplain.example.com ${key.publicLine}\n`)
    execFileSync('ssh-keygen', ['-H', '-f', file], {stdio: 'ignore'})
    const entries = parseKnownHosts(await readFile(file, 'utf8'))
    expect(entries.every((e) => e.hosts.startsWith('|1|'))).toBe(true)
    const files = [{path: file, entries}]
    expect(checkHostKey(files, '[gpu.example.com]:14688', blob(key.blob))).toMatchObject({status: 'known', line: 1})
    expect(checkHostKey(files, 'plain.example.com', blob(key.blob))).toMatchObject({status: 'known', line: 2})
    expect(checkHostKey(files, 'gpu.example.com', blob(key.blob)).status).toBe('unknown')

    const ours = join(dir, 'ours')
    await appendKnownHost(ours, '[10.1.2.3]:2200', blob(key.blob), {hash: true})
    const found = execFileSync('ssh-keygen', ['-F', '[10.1.2.3]:2200', '-f', ours]).toString()
    expect(found).toContain(key.blob)
  })

  it.skipIf(!haveKeygen)('shows the same SHA256 fingerprint as ssh-keygen -lf', async () => {
    const dir = await tempDir()
    const key = keygen(join(dir, 'k'))
    const theirs = execFileSync('ssh-keygen', ['-lf', `${key.privatePath}.pub`]).toString().split(/\s+/)[1]
    expect(fingerprint(key.blob)).toBe(theirs)
  })

  it('tells known, changed, unknown-with-other-types and revoked apart', async () => {
    const dir = await tempDir()
    const a = keygen(join(dir, 'a'))
    const b = keygen(join(dir, 'b'))
    const ecdsa = keygen(join(dir, 'r'), {type: 'ecdsa'})
    const text = [
      '# comment',
      '',
      `@cert-authority *.example.com ${a.publicLine}`,
      `old.example.com ${a.publicLine}`,
      `ecdsa-only.example.com ${ecdsa.publicLine}`,
      `@revoked * ${b.publicLine}`,
      'garbage line',
      `[127.0.0.1]:2222 ${a.publicLine}`,
    ].join('\n')
    const files = [{path: '/k', entries: parseKnownHosts(text)}]
    expect(files[0].entries.map((e) => e.line)).toEqual([3, 4, 5, 6, 8])
    expect(checkHostKey(files, 'old.example.com', blob(a.blob))).toEqual({status: 'known', file: '/k', line: 4})
    expect(checkHostKey(files, '[127.0.0.1]:2222', blob(a.blob))).toMatchObject({status: 'known', line: 8})
    expect(checkHostKey(files, '127.0.0.1', blob(a.blob)).status).toBe('unknown')
    // b is revoked everywhere, even where nothing else is known
    expect(checkHostKey(files, 'new.example.com', blob(b.blob))).toMatchObject({status: 'revoked', line: 6})
    const c = keygen(join(dir, 'c'))
    expect(checkHostKey(files, 'old.example.com', blob(c.blob))).toMatchObject({status: 'changed', line: 4, knownFingerprint: fingerprint(a.blob)})
    const other = checkHostKey(files, 'ecdsa-only.example.com', blob(c.blob))
    expect(other.status).toBe('unknown')
    expect(other.status === 'unknown' && other.otherTypes[0]).toMatchObject({keyType: 'ecdsa-sha2-nistp256', line: 5})
    expect(knownKeyTypes(files, 'ecdsa-only.example.com')).toEqual(['ecdsa-sha2-nistp256'])
  })

  it('appends a pinned key on its own line, creating the file 0600', async () => {
    const dir = await tempDir()
    const file = join(dir, 'ssh', 'known_hosts')
    const key = keygen(join(dir, 'k'))
    await mkdir(join(dir, 'ssh'))
    await writeFile(file, 'first.example.com ssh-ed25519 AAAA') // no trailing newline
    await appendKnownHost(file, '[127.0.0.1]:2222', blob(key.blob))
    expect(await readFile(file, 'utf8')).toBe(`first.example.com ssh-ed25519 AAAA\n[127.0.0.1]:2222 ${key.publicLine.split(' ').slice(0, 2).join(' ')}\n`)
    const fresh = join(dir, 'new', 'known_hosts')
    await appendKnownHost(fresh, 'h', blob(key.blob))
    const {statSync} = await import('node:fs')
    expect(statSync(fresh).mode & 0o777).toBe(0o600)
  })
})

describe('-L specs', () => {
  it('parses the OpenSSH forms and jarvis shorthands', () => {
    expect(parseForwardSpec('8000:127.0.0.1:8000')).toEqual({bindHost: '127.0.0.1', localPort: 8000, remoteHost: '127.0.0.1', remotePort: 8000})
    expect(parseForwardSpec('0.0.0.0:7860:localhost:7860')).toEqual({bindHost: '0.0.0.0', localPort: 7860, remoteHost: 'localhost', remotePort: 7860})
    expect(parseForwardSpec('*:9000:10.0.0.2:80')).toMatchObject({bindHost: '0.0.0.0'})
    expect(parseForwardSpec('[::1]:8000:[fd00::2]:8000')).toEqual({bindHost: '::1', localPort: 8000, remoteHost: 'fd00::2', remotePort: 8000})
    expect(parseForwardSpec('0:127.0.0.1:8000')).toMatchObject({localPort: 0})
    expect(parseForwardSpec('8000')).toEqual({bindHost: '127.0.0.1', localPort: 8000, remoteHost: '127.0.0.1', remotePort: 8000})
    expect(parseForwardSpec('9000:8000')).toMatchObject({localPort: 9000, remotePort: 8000, remoteHost: '127.0.0.1'})
  })

  it('rejects what it cannot read, saying which part', () => {
    expect(() => parseForwardSpec('8000:host')).toThrow(/RPORT "host"/)
    expect(() => parseForwardSpec('70000:h:1')).toThrow(/LPORT "70000"/)
    expect(() => parseForwardSpec('1:h:0')).toThrow(ForwardSpecError)
    expect(() => parseForwardSpec('a:b:c:d:e')).toThrow(/too many fields/)
    expect(() => parseForwardSpec('[::1:8000:h:1')).toThrow(/unclosed/)
  })
})

describe('~/.ssh/config', () => {
  it('splits quoted words', () => {
    expect(splitWords('"/path with space/key"  other')).toEqual(['/path with space/key', 'other'])
  })

  it('applies the first value per keyword, accumulates IdentityFile, follows Include and Match host', async () => {
    const dir = await tempDir()
    await mkdir(join(dir, 'conf.d'))
    await writeFile(join(dir, 'conf.d', 'vast.conf'), 'Host vast-*\n  User root\n  IdentityFile ~/.ssh/vast_key\n')
    await writeFile(
      join(dir, 'config'),
      [
        'Include conf.d/*.conf',
        'Host vast-a',
        '  HostName=ssh4.vast.ai',
        '  Port 14688',
        '  ServerAliveInterval 30',
        'Host !vast-b *',
        '  User nobody',
        '  IdentityFile %d/.ssh/id_extra',
        'Match host ssh4.vast.ai',
        '  ProxyJump bastion',
        'Host *',
        '  Port 2200',
        '  StrictHostKeyChecking accept-new',
      ].join('\n'),
    )
    const v = await lookupHost({host: 'vast-a', sshDir: dir})
    expect(v).toMatchObject({hostName: 'ssh4.vast.ai', port: 14688, user: 'root', serverAliveInterval: 30, strictHostKeyChecking: 'accept-new', proxyJump: 'bastion'})
    expect(v.identityFiles).toEqual(['~/.ssh/vast_key', '%d/.ssh/id_extra'])
    const b = await lookupHost({host: 'vast-b', sshDir: dir})
    expect(b.user).toBe('root')
    expect(b.identityFiles).toEqual(['~/.ssh/vast_key'])
    expect(b.port).toBe(2200)
  })

  it('resolves a target: flags beat the config, default keys only when none is named, jump hosts too', async () => {
    const dir = await tempDir()
    await writeFile(join(dir, 'id_ed25519'), 'x')
    await writeFile(join(dir, 'config'), 'Host gpu\n  HostName 10.0.0.5\n  User ubuntu\n  ProxyJump admin@bastion.example.com:2022\nHost bastion.example.com\n  IdentityFile bastion_key\n')
    const t = await resolveSshTarget({host: 'gpu', user: 'root'}, {paths: {sshDir: dir}, agentSocket: false})
    expect(t).toMatchObject({hostName: '10.0.0.5', port: 22, user: 'root', keepaliveIntervalMs: 10_000, hostKeyPolicy: 'ask'})
    expect(t.identityFiles).toEqual([{path: join(dir, 'id_ed25519'), explicit: false}])
    expect(t.knownHostsFiles[0]).toBe(join(dir, 'known_hosts'))
    expect(t.jumps).toHaveLength(1)
    expect(t.jumps[0]).toMatchObject({hostName: 'bastion.example.com', port: 2022, user: 'admin', identityFiles: [{path: join(dir, 'bastion_key'), explicit: true}]})
    const flagged = await resolveSshTarget({host: 'gpu', identity: '/keys/k', proxyJump: 'none', hostKeyPolicy: 'yes'}, {paths: {sshDir: dir}, keepaliveSeconds: 3})
    expect(flagged.identityFiles).toEqual([{path: '/keys/k', explicit: true}])
    expect(flagged.jumps).toEqual([])
    expect(flagged.keepaliveIntervalMs).toBe(3000)
    expect(flagged.hostKeyPolicy).toBe('yes')
  })

  it('parses ProxyJump lists', () => {
    expect(parseJumpList('a, u@b:2200,[fd00::1]:22')).toEqual([{host: 'a', port: undefined, user: undefined}, {host: 'b', port: 2200, user: 'u'}, {host: 'fd00::1', port: 22, user: undefined}])
    expect(parseJumpList('none')).toEqual([])
    expect(() => parseJumpList('h:99999')).toThrow(/bad jump host/)
  })
})

describe('remote command quoting', () => {
  it('leaves safe words alone and single-quotes the rest', () => {
    expect(shellQuote('abc-1.2/x=y')).toBe('abc-1.2/x=y')
    expect(shellQuote('')).toBe("''")
    expect(shellQuote("it's")).toBe(`'it'\\''s'`)
    expect(shellCommand(['echo', '$HOME', 'a b'])).toBe(`echo '$HOME' 'a b'`)
  })
})
