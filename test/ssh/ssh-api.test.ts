// The SSH wrapper against a real OpenSSH server: auth (key, agent, encrypted key without a
// TTY), host keys, ProxyJump from ~/.ssh/config, remote commands with explicit quoting, SFTP.
import {execFileSync, spawn, type ChildProcess} from 'node:child_process'
import {mkdir, mkdtemp, readFile, stat, writeFile} from 'node:fs/promises'
import {existsSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it, vi} from 'vitest'
import {connectSsh, openTunnel, SshError, type SshSession} from '../../src/ssh/index.js'
import {ExternalError} from '../../src/lib/errors.js'
import {freePort, keygen, sshdAvailable, startSshd, type Sshd} from './sshd.js'
import {tempDir} from '../helpers/tmp.js'

const enabled = sshdAvailable()

describe.skipIf(!enabled)('ssh wrapper against a real sshd', () => {
  let sshd: Sshd
  let home: string
  let sshDir: string
  const paths = () => ({sshDir})

  beforeAll(async () => {
    sshd = await startSshd()
    home = await mkdtemp(join(tmpdir(), 'jarvis-sshhome-'))
    sshDir = join(home, '.ssh')
    await mkdir(sshDir, {mode: 0o700})
    await writeFile(join(sshDir, 'known_hosts'), sshd.knownHostsLine() + '\n')
  })
  afterAll(async () => {
    await sshd?.stop()
    sshd?.cleanup()
  })

  const target = (extra: object = {}) => ({host: '127.0.0.1', port: sshd.port, user: sshd.user, identity: sshd.clientKey, ...extra})

  describe('exec', () => {
    let s: SshSession
    beforeAll(async () => {
      s = await connectSsh(target(), {paths: paths(), agentSocket: false})
    })
    afterAll(() => s?.close())

    it('quotes every argv word for the remote shell', async () => {
      const tricky = ["it's", '$HOME', 'a b', '"q"', '; rm -rf /tmp/nothing', '`id`', '', 'new\nline']
      const r = await s.exec(['printf', '%s|', ...tricky])
      expect(r.exitCode).toBe(0)
      expect(r.stdout).toBe(tricky.map((t) => `${t}|`).join(''))
    })

    it('feeds stdin and streams lines', async () => {
      const lines: string[] = []
      const r = await s.exec(['sh', '-c', 'cat; echo err >&2'], {input: 'secret-on-stdin\nsecond\n', onLine: (l, st) => lines.push(`${st}:${l}`)})
      expect(r.stdout).toBe('secret-on-stdin\nsecond\n')
      expect(lines).toEqual(expect.arrayContaining(['stdout:secret-on-stdin', 'stdout:second', 'stderr:err']))
    })

    it('reports a failing command with its exit code and stderr tail', async () => {
      const err = await s.exec(['sh', '-c', 'echo boom >&2; exit 3']).catch((e) => e)
      expect(err).toBeInstanceOf(ExternalError)
      expect(err.toolExitCode).toBe(3)
      expect(err.stderrTail).toContain('boom')
      const ok = await s.exec(['sh', '-c', 'exit 4'], {allowFailure: true})
      expect(ok.exitCode).toBe(4)
    })

    it('times out a command', async () => {
      const err = await s.exec(['sleep', '5'], {timeoutMs: 300}).catch((e) => e)
      expect(err).toBeInstanceOf(SshError)
      expect(err.code).toBe('ssh_exec_timeout')
    })

    it('uploads a directory over SFTP, keeping modes, and writes 0600 files', async () => {
      const local = await tempDir()
      await mkdir(join(local, 'sub', 'deeper'), {recursive: true})
      await writeFile(join(local, 'a.txt'), 'alpha')
      await writeFile(join(local, 'run.sh'), '#!/bin/sh\necho ran\n', {mode: 0o755})
      await writeFile(join(local, 'sub', 'deeper', 'big.bin'), Buffer.alloc(3 * 1024 * 1024, 7))
      await writeFile(join(local, 'sub', 'skip.pyc'), 'x')
      const remote = join(await tempDir(), 'upload', 'here')
      const progress: number[] = []
      const r = await s.uploadDir(local, remote, {filter: (rel) => !rel.endsWith('.pyc'), onProgress: (p) => progress.push(p.bytesDone)})
      expect(r.files).toBe(3)
      expect(await readFile(join(remote, 'a.txt'), 'utf8')).toBe('alpha')
      expect((await stat(join(remote, 'sub', 'deeper', 'big.bin'))).size).toBe(3 * 1024 * 1024)
      expect(existsSync(join(remote, 'sub', 'skip.pyc'))).toBe(false)
      expect((await stat(join(remote, 'run.sh'))).mode & 0o777).toBe(0o755)
      expect(progress.at(-1)).toBe(r.bytes)
      const ran = await s.exec([join(remote, 'run.sh')])
      expect(ran.stdout).toBe('ran\n')

      await s.writeFile(join(remote, 'secret.env'), 'HF_TOKEN=abc\n')
      expect((await stat(join(remote, 'secret.env'))).mode & 0o777).toBe(0o600)
    })
  })

  it('authenticates with ssh-agent (SSH_AUTH_SOCK) when no key file is given', async () => {
    const dir = await tempDir()
    const sock = join(dir, 'agent.sock')
    const agent: ChildProcess = spawn('ssh-agent', ['-D', '-a', sock], {stdio: 'ignore'})
    try {
      for (let i = 0; i < 50 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50))
      const k = keygen(join(dir, 'agent_key'))
      sshd.authorize(k.publicLine)
      execFileSync('ssh-add', [k.privatePath], {env: {...process.env, SSH_AUTH_SOCK: sock}, stdio: 'ignore'})
      const s = await connectSsh({host: '127.0.0.1', port: sshd.port, user: sshd.user}, {paths: paths(), agentSocket: sock})
      expect((await s.exec(['echo', 'via agent'])).stdout).toBe('via agent\n')
      await s.close()
    } finally {
      agent.kill()
    }
  })

  it('a stale SSH_AUTH_SOCK does not get in the way of the default key (~/.ssh/id_ed25519)', async () => {
    const dir = await tempDir()
    await writeFile(join(dir, 'known_hosts'), sshd.knownHostsLine() + '\n')
    await writeFile(join(dir, 'id_ed25519'), await readFile(sshd.clientKey), {mode: 0o600})
    // The agent is tried before default keys; a dead socket is noted and skipped.
    const s = await connectSsh({host: '127.0.0.1', port: sshd.port, user: sshd.user}, {paths: {sshDir: dir}, agentSocket: join(dir, 'no-such-agent.sock')})
    expect((await s.exec(['echo', 'ok'])).stdout).toBe('ok\n')
    await s.close()
  })

  it('refuses an encrypted key without a TTY and says how to fix it', async () => {
    const dir = await tempDir()
    const k = keygen(join(dir, 'enc_key'), {passphrase: 'correct horse'})
    sshd.authorize(k.publicLine)
    const err = await connectSsh(target({identity: k.privatePath}), {paths: paths(), agentSocket: false}).catch((e) => e)
    expect(err).toBeInstanceOf(SshError)
    expect(err.code).toBe('ssh_auth_failed')
    expect(err.message).toContain('enc_key is encrypted and there is no terminal')
    // With a passphrase source (what the TTY prompt provides), the same key works.
    const s = await connectSsh(target({identity: k.privatePath}), {paths: paths(), agentSocket: false, interaction: {passphrase: async () => 'correct horse'}})
    expect((await s.exec(['true'])).exitCode).toBe(0)
    await s.close()
  })

  it('asks the server for the key type already pinned (an ECDSA pin on a host that also has ED25519)', async () => {
    const dir = await tempDir()
    const ecdsa = keygen(join(dir, 'host_ecdsa'), {type: 'ecdsa'})
    const multi = await startSshd({extraConfig: [`HostKey ${ecdsa.privatePath}`]})
    try {
      const ssh = join(dir, 'ssh')
      await mkdir(ssh)
      await writeFile(join(ssh, 'known_hosts'), `[127.0.0.1]:${multi.port} ${ecdsa.publicLine}\n`)
      const s = await connectSsh({host: '127.0.0.1', port: multi.port, user: multi.user, identity: multi.clientKey, hostKeyPolicy: 'yes'}, {paths: {sshDir: ssh}, agentSocket: false})
      expect((await s.exec(['echo', 'ok'])).stdout).toBe('ok\n')
      await s.close()
    } finally {
      await multi.stop()
      multi.cleanup()
    }
  })

  it('reports a rejected key as permission denied, not retryable', async () => {
    const dir = await tempDir()
    const k = keygen(join(dir, 'stranger'))
    const err = await connectSsh(target({identity: k.privatePath}), {paths: paths(), agentSocket: false}).catch((e) => e)
    expect(err).toBeInstanceOf(SshError)
    expect(err.code).toBe('ssh_auth_failed')
    expect(err.retryable).toBe(false)
    expect(err.message).toContain('Permission denied')
    expect(err.message).toContain('stranger')
  })

  it('reads ~/.ssh/config (HostName, Port, User, IdentityFile) and goes through a ProxyJump host', async () => {
    await writeFile(
      join(sshDir, 'config'),
      [
        'Host jumpbox',
        '  HostName 127.0.0.1',
        `  Port ${sshd.port}`,
        `  IdentityFile ${sshd.clientKey}`,
        'Host gpu',
        '  HostName 127.0.0.1',
        `  Port ${sshd.port}`,
        `  User ${sshd.user}`,
        `  IdentityFile ${sshd.clientKey}`,
        '  ProxyJump jumpbox',
        '',
      ].join('\n'),
    )
    try {
      const s = await connectSsh({host: 'gpu'}, {paths: paths(), agentSocket: false})
      expect(s.target.jumps).toHaveLength(1)
      expect(s.target.jumps[0].port).toBe(sshd.port)
      // The inner session's peer is the jump host's sshd, on loopback: SSH_CLIENT shows a connection from 127.0.0.1.
      expect((await s.exec(['sh', '-c', 'echo $SSH_CLIENT'])).stdout).toMatch(/^127\.0\.0\.1 /)
      await s.close()
    } finally {
      await writeFile(join(sshDir, 'config'), '')
    }
  })

  it('delivers everything to a slow reader after the remote side has closed', async () => {
    const net = await import('node:net')
    const size = 16 * 1024 * 1024
    const source = net.createServer((c) => c.end(Buffer.alloc(size, 1)))
    await new Promise<void>((r) => source.listen(0, '127.0.0.1', () => r()))
    const t = await openTunnel(target(), [{localPort: 0, remotePort: (source.address() as {port: number}).port}], {paths: paths(), agentSocket: false})
    try {
      const got = await new Promise<number>((resolve, reject) => {
        const c = net.connect({port: t.forwards[0].localPort, host: '127.0.0.1'})
        let n = 0
        c.pause() // a client busy elsewhere: the remote side finishes and closes long before we read
        setTimeout(() => c.resume(), 2500)
        c.on('data', (d) => (n += d.length))
        c.on('end', () => resolve(n))
        c.on('error', reject)
      })
      expect(got).toBe(size)
    } finally {
      await t.close()
      source.close()
    }
  })

  it('a refused remote port resets that one client and the tunnel stays up', async () => {
    const closedPort = await freePort()
    const events: string[] = []
    const t = await openTunnel(target(), [{localPort: 0, remotePort: closedPort}], {paths: paths(), agentSocket: false, onStatus: (e) => events.push(e.type)})
    try {
      const err = await fetch(`http://127.0.0.1:${t.forwards[0].localPort}/`).catch((e) => e)
      expect(err).toBeInstanceOf(TypeError) // fetch failed: the connection was reset, not left hanging
      expect(events).toContain('forward-failed')
      expect(t.stats()).toMatchObject({state: 'connected', failedConnections: 1})
    } finally {
      await t.close()
    }
  })

  it('notices a dead connection by keepalive (sshd frozen) and reconnects', async () => {
    const http = await import('node:http')
    const server = http.createServer((_req, res) => res.end('alive'))
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
    const remotePort = (server.address() as {port: number}).port
    const events: string[] = []
    const t = await openTunnel(target(), [{localPort: 0, remotePort}], {paths: paths(), agentSocket: false, keepaliveSeconds: 1, keepaliveCountMax: 1, onStatus: (e) => events.push(e.type === 'disconnected' ? `disconnected: ${e.reason}` : e.type)})
    const frozen = sshd.sessionPids()
    try {
      expect(frozen.length).toBeGreaterThan(0)
      for (const pid of frozen) {
        try {
          process.kill(pid, 'SIGSTOP')
        } catch {
          // a session of an earlier test that has just ended
        }
      }
      const t0 = Date.now()
      await vi.waitFor(() => expect(events).toContain('reconnected'), {timeout: 10_000, interval: 100})
      expect(Date.now() - t0).toBeLessThan(6000)
      expect(events.find((e) => e.startsWith('disconnected'))).toMatch(/Keepalive timeout/i)
      const res = await fetch(`http://127.0.0.1:${t.forwards[0].localPort}/`)
      expect(await res.text()).toBe('alive')
    } finally {
      for (const pid of frozen) {
        try {
          process.kill(pid, 'SIGKILL')
        } catch {
          // gone
        }
      }
      await t.close()
      server.close()
    }
  })

  it('a tunnel opened through the API gives a free local port and stats', async () => {
    const http = await import('node:http')
    const server = http.createServer((_req, res) => res.end('hello from remote'))
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
    const remotePort = (server.address() as {port: number}).port
    const t = await openTunnel(target(), [{localPort: 0, remotePort}], {paths: paths(), agentSocket: false})
    try {
      expect(t.forwards[0].localPort).toBeGreaterThan(0)
      const res = await fetch(`http://127.0.0.1:${t.forwards[0].localPort}/`)
      expect(await res.text()).toBe('hello from remote')
      expect(t.stats()).toMatchObject({state: 'connected', reconnects: 0, totalConnections: 1})
    } finally {
      await t.close()
      server.close()
    }
    expect(t.stats().state).toBe('closed')
    await t.done
  })
})
