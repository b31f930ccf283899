// `jarvis tunnel` as a user runs it (the built CLI as a child process) against a real
// OpenSSH server on loopback: forwards, host key policies, reconnects, Ctrl-C.
import {execFileSync, spawn} from 'node:child_process'
import {existsSync} from 'node:fs'
import {mkdir, mkdtemp, readFile, writeFile} from 'node:fs/promises'
import {createServer as createHttpServer, request, type Server} from 'node:http'
import {createServer as createNetServer} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {binPath, parseJson, runCli} from '../helpers/cli.js'
import {startCli, type CliProcess} from './cli-process.js'
import {freePort, keygen, sshdAvailable, startSshd, type Sshd} from './sshd.js'

function get(port: number, path = '/', timeoutMs = 15_000): Promise<{status: number; body: string}> {
  return new Promise((resolve, reject) => {
    // agent: false → a fresh TCP connection per request (no pooled socket from before a reconnect).
    const req = request({host: '127.0.0.1', port, path, agent: false, timeout: timeoutMs}, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c) => (body += c))
      res.on('end', () => resolve({status: res.statusCode ?? 0, body}))
    })
    req.on('timeout', () => req.destroy(new Error('request timed out')))
    req.on('error', reject)
    req.end()
  })
}

async function httpServer(name: string): Promise<{server: Server; port: number}> {
  const server = createHttpServer((req, res) => res.end(`${name} ${req.url}`))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  return {server, port: (server.address() as {port: number}).port}
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createNetServer()
    s.once('error', () => resolve(false))
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)))
  })
}

function sshFingerprint(publicLine: string, dir: string): string {
  const f = join(dir, 'hostkey.pub')
  execFileSync('sh', ['-c', 'cat > "$1"', 'sh', f], {input: publicLine + '\n'})
  return execFileSync('ssh-keygen', ['-lf', f]).toString().split(/\s+/)[1]
}

describe.skipIf(!sshdAvailable())('jarvis tunnel (real sshd)', () => {
  let sshd: Sshd
  let web: {server: Server; port: number}
  let ui: {server: Server; port: number}
  let base: string
  let n = 0
  const running = new Set<CliProcess>()

  beforeAll(async () => {
    sshd = await startSshd()
    web = await httpServer('transcription')
    ui = await httpServer('image-ui')
    base = await mkdtemp(join(tmpdir(), 'jarvis-tunnel-'))
  })
  afterAll(async () => {
    for (const p of running) await p.stop('SIGKILL')
    await sshd?.stop()
    sshd?.cleanup()
    web?.server.close()
    ui?.server.close()
  })

  /** A fresh HOME with ~/.ssh/known_hosts holding `knownHosts` lines. */
  async function home(knownHosts: string[] = [sshd.knownHostsLine()]): Promise<string> {
    const h = join(base, `home${n++}`)
    await mkdir(join(h, '.ssh'), {recursive: true, mode: 0o700})
    if (knownHosts.length) await writeFile(join(h, '.ssh', 'known_hosts'), knownHosts.join('\n') + '\n')
    return h
  }

  const hostFlags = () => ['--host', '127.0.0.1', '--port', String(sshd.port), '--user', sshd.user, '--identity', sshd.clientKey]

  function tunnel(args: string[], h: string, cwd?: string): CliProcess {
    const p = startCli(['tunnel', ...args], {env: {HOME: h, JARVIS_SSH_DIR: undefined, JARVIS_CONFIG: undefined}, cwd: cwd ?? h})
    running.add(p)
    void p.exited.then(() => running.delete(p))
    return p
  }

  it('forwards several ports at once; --json prints one document and keeps running; Ctrl-C leaves no listener', async () => {
    const h = await home()
    const [l1, l2] = [await freePort(), await freePort()]
    const p = tunnel([...hostFlags(), '-L', `${l1}:127.0.0.1:${web.port}`, '-L', `127.0.0.1:${l2}:localhost:${ui.port}`, '--json'], h)
    const doc = JSON.parse((await p.waitFor(/^\{.*\}\n/m, 'stdout'))[0])
    expect(doc.forwards).toEqual([
      {bindHost: '127.0.0.1', localPort: l1, remoteHost: '127.0.0.1', remotePort: web.port, url: `http://127.0.0.1:${l1}`},
      {bindHost: '127.0.0.1', localPort: l2, remoteHost: 'localhost', remotePort: ui.port, url: `http://127.0.0.1:${l2}`},
    ])
    expect(doc.target).toMatchObject({host: '127.0.0.1', port: sshd.port, user: sshd.user, source: 'flags'})
    const [a, b] = await Promise.all([get(l1, '/health'), get(l2, '/')])
    expect(a).toEqual({status: 200, body: 'transcription /health'})
    expect(b).toEqual({status: 200, body: 'image-ui /'})
    // Many requests in parallel, each its own channel.
    const many = await Promise.all(Array.from({length: 20}, (_, i) => get(l1, `/r${i}`)))
    expect(many.map((r) => r.body)).toEqual(Array.from({length: 20}, (_, i) => `transcription /r${i}`))

    const exit = await p.stop('SIGINT')
    expect(exit.code).toBe(130)
    // Still exactly one JSON document on stdout: no error envelope for a normal Ctrl-C.
    expect(p.stdout().trim().split('\n')).toHaveLength(1)
    expect(await canBind(l1)).toBe(true)
    expect(await canBind(l2)).toBe(true)
    await expect(get(l1, '/', 2000)).rejects.toThrow(/ECONNREFUSED/)
  })

  it('prints the EXTERNAL_GPU_URL to use, for a backend from jarvis.yaml', async () => {
    const h = await home()
    await writeFile(
      join(h, 'jarvis.yaml'),
      `version: 1\nbackends:\n  - name: box\n    kind: ssh\n    ssh: { host: 127.0.0.1, port: ${sshd.port}, user: ${sshd.user}, identity: ${sshd.clientKey} }\n    remotePort: ${web.port}\n`,
    )
    // Without -L the server port is forwarded to the same local port, which here (remote = this
    // machine) is taken by the server itself: a clear error, before any SSH.
    const busy = await runCli(['tunnel', 'box'], {cwd: h, env: {HOME: h, SSH_AUTH_SOCK: undefined}})
    expect(busy.exitCode).toBe(1)
    expect(busy.stderr).toContain(`Local port 127.0.0.1:${web.port} is already in use`)
    expect(busy.stderr).toContain('-L')

    const p = tunnel(['box', '-L', `0:127.0.0.1:${web.port}`], h)
    const m = await p.waitFor(/export EXTERNAL_GPU_URL=http:\/\/127\.0\.0\.1:(\d+)/, 'stdout')
    expect((await get(Number(m[1]), '/info')).body).toBe('transcription /info')
    expect((await p.stop()).code).toBe(130)
  })

  it('takes the target of a recorded deployment from .jarvis/state.json', async () => {
    const h = await home()
    await writeFile(join(h, 'jarvis.yaml'), 'version: 1\n')
    await mkdir(join(h, '.jarvis'))
    const now = new Date().toISOString()
    await writeFile(
      join(h, '.jarvis', 'state.json'),
      JSON.stringify({version: 1, deployments: {'my-vast': {name: 'my-vast', provider: 'vast', status: 'ready', createdAt: now, updatedAt: now, details: {ssh: {host: '127.0.0.1', port: sshd.port, user: sshd.user, identity: sshd.clientKey}, remotePort: web.port}}}}),
    )
    const p = tunnel(['vast', '-L', `0:127.0.0.1:${web.port}`, '--json'], h)
    const doc = JSON.parse((await p.waitFor(/^\{.*\}\n/m, 'stdout'))[0])
    expect(doc.target).toMatchObject({name: 'my-vast', source: 'deployment'})
    expect(doc.externalGpuUrl).toBe(doc.forwards[0].url)
    expect((await get(doc.forwards[0].localPort)).body).toBe('transcription /')
    await p.stop()
  })

  it('refuses an unknown host key without a TTY, naming --accept-new; --accept-new pins [127.0.0.1]:PORT', async () => {
    const h = await home([])
    const fp = sshFingerprint(sshd.hostKeyLine, h)
    const refused = await runCli(['tunnel', ...hostFlags(), '-L', `0:127.0.0.1:${web.port}`], {cwd: h, env: {HOME: h, SSH_AUTH_SOCK: undefined}})
    expect(refused.exitCode).toBe(1)
    expect(refused.stderr).toContain(`The authenticity of host '[127.0.0.1]:${sshd.port}' can't be established`)
    expect(refused.stderr).toContain(fp)
    expect(refused.stderr).toContain('--accept-new')
    await expect(readFile(join(h, '.ssh', 'known_hosts'), 'utf8')).rejects.toThrow()

    const strict = await runCli(['tunnel', ...hostFlags(), '--strict-host-key', 'yes', '-L', `0:127.0.0.1:${web.port}`, '--json'], {cwd: h, env: {HOME: h, SSH_AUTH_SOCK: undefined}})
    expect(strict.exitCode).toBe(1)
    expect(parseJson(strict).error.code).toBe('ssh_host_key_unknown')

    const p = tunnel([...hostFlags(), '--accept-new', '-L', `0:127.0.0.1:${web.port}`, '--json'], h)
    const doc = JSON.parse((await p.waitFor(/^\{.*\}\n/m, 'stdout'))[0])
    expect(p.stderr()).toContain(`Permanently added '[127.0.0.1]:${sshd.port}'`)
    expect((await get(doc.forwards[0].localPort)).body).toBe('transcription /')
    await p.stop()
    const known = await readFile(join(h, '.ssh', 'known_hosts'), 'utf8')
    expect(known).toBe(`[127.0.0.1]:${sshd.port} ${sshd.hostKeyLine}\n`)
    // OpenSSH itself agrees with what was pinned.
    expect(execFileSync('ssh-keygen', ['-F', `[127.0.0.1]:${sshd.port}`, '-f', join(h, '.ssh', 'known_hosts')]).toString()).toContain(sshd.hostKeyLine)
  })

  it.skipIf(!existsSync('/usr/bin/script'))('on a terminal, asks for the key passphrase and whether to pin the host key', async () => {
    const h = await home([])
    const k = keygen(join(h, 'enc_key'), {passphrase: 'correct horse'})
    sshd.authorize(k.publicLine)
    const cmd = [process.execPath, binPath, 'tunnel', ...hostFlags().slice(0, -2), '--identity', k.privatePath, '-L', `0:127.0.0.1:${web.port}`].map((a) => `'${a}'`).join(' ')
    // util-linux `script` runs the command on a pseudo-terminal: stdin/stdout are TTYs there.
    const child = spawn('script', ['-qfec', cmd, '/dev/null'], {cwd: h, env: {...process.env, HOME: h, NO_COLOR: '1', TERM: 'dumb', SSH_AUTH_SOCK: ''}, stdio: ['pipe', 'pipe', 'pipe']})
    let out = ''
    const seen = (re: RegExp) =>
      new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no ${re} in:\n${out}`)), 20_000)
        const check = () => {
          if (re.test(out)) {
            clearTimeout(t)
            child.stdout.off('data', check)
            resolve()
          }
        }
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString()
        })
        child.stdout.on('data', check)
        check()
      })
    try {
      await seen(/Pin this key in .*known_hosts/)
      expect(out).toContain(sshFingerprint(sshd.hostKeyLine, h))
      child.stdin.write('y\r')
      await seen(/Enter passphrase for key '.*enc_key'/)
      child.stdin.write('correct horse\r')
      await seen(/export EXTERNAL_GPU_URL=http:\/\/127\.0\.0\.1:(\d+)/)
      const port = Number(/EXTERNAL_GPU_URL=http:\/\/127\.0\.0\.1:(\d+)/.exec(out)![1])
      expect((await get(port, '/tty')).body).toBe('transcription /tty')
      expect(await readFile(join(h, '.ssh', 'known_hosts'), 'utf8')).toBe(sshd.knownHostsLine() + '\n')
      child.stdin.write('\u0003') // Ctrl-C on the terminal
      const code = await new Promise((r) => child.on('exit', r))
      expect(code).toBe(130)
    } finally {
      child.kill('SIGKILL')
    }
  })

  it('accepts a hashed known_hosts entry (ssh-keygen -H), from JARVIS_SSH_DIR; SIGTERM exits 143', async () => {
    const h = await home(['# comment', 'other.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx0b3Rvb29vb29vb29vb29vb29vb29vb29vb29vb29vb28', sshd.knownHostsLine()])
    execFileSync('ssh-keygen', ['-H', '-f', join(h, '.ssh', 'known_hosts')], {stdio: 'ignore'})
    const hashed = await readFile(join(h, '.ssh', 'known_hosts'), 'utf8')
    expect(hashed).not.toContain('127.0.0.1')
    expect(hashed).toMatch(/^\|1\|/m)
    // JARVIS_SSH_DIR points at that .ssh directory; HOME is elsewhere (and empty).
    const elsewhere = await home([])
    const p = startCli(['tunnel', ...hostFlags(), '--strict-host-key', 'yes', '-L', `0:127.0.0.1:${web.port}`, '--json'], {env: {HOME: elsewhere, JARVIS_SSH_DIR: join(h, '.ssh')}, cwd: elsewhere})
    running.add(p)
    const doc = JSON.parse((await p.waitFor(/^\{.*\}\n/m, 'stdout'))[0])
    expect((await get(doc.forwards[0].localPort)).body).toBe('transcription /')
    // SIGTERM (a supervisor stopping it) closes as cleanly as Ctrl-C, with 143.
    expect((await p.stop('SIGTERM')).code).toBe(143)
    expect(await canBind(doc.forwards[0].localPort)).toBe(true)
  })

  it('refuses a changed host key with the OpenSSH warning, even with --accept-new', async () => {
    const other = keygen(join(await home([]), 'impostor'))
    const stale = `[127.0.0.1]:${sshd.port} ${other.publicLine.split(' ').slice(0, 2).join(' ')}`
    const h = await home(['# pinned long ago', stale])
    const r = await runCli(['tunnel', ...hostFlags(), '--accept-new', '-L', `0:127.0.0.1:${web.port}`], {cwd: h, env: {HOME: h, SSH_AUTH_SOCK: undefined}})
    expect(r.exitCode).toBe(1)
    expect(r.stderr).toContain('REMOTE HOST IDENTIFICATION HAS CHANGED')
    expect(r.stderr).toContain(sshFingerprint(sshd.hostKeyLine, h))
    expect(r.stderr).toContain(`Offending ED25519 key in ${join(h, '.ssh', 'known_hosts')}:2`)
    expect(r.stderr).toContain(`ssh-keygen -f "${join(h, '.ssh', 'known_hosts')}" -R "[127.0.0.1]:${sshd.port}"`)
    expect(await readFile(join(h, '.ssh', 'known_hosts'), 'utf8')).toBe(`# pinned long ago\n${stale}\n`)
  })

  it('reconnects when the SSH connection is killed; connections made while sshd is down wait for it', async () => {
    const h = await home()
    const p = tunnel([...hostFlags(), '-L', `0:127.0.0.1:${web.port}`, '--json'], h)
    const port = JSON.parse((await p.waitFor(/^\{.*\}\n/m, 'stdout'))[0]).forwards[0].localPort
    expect((await get(port, '/before')).body).toBe('transcription /before')

    expect(sshd.killSessions()).toBeGreaterThan(0)
    await p.waitFor(/reconnected \(1 reconnect/)
    expect((await get(port, '/after-kill')).body).toBe('transcription /after-kill')

    // sshd down: the listener stays open and a request waits until sshd is back.
    await sshd.stop()
    await p.waitFor(/connection lost[\s\S]*connection lost/)
    const pending = get(port, '/while-down')
    await new Promise((r) => setTimeout(r, 1000))
    await sshd.start()
    expect((await pending).body).toBe('transcription /while-down')
    await p.waitFor(/reconnected \(2 reconnects/)
    expect((await p.stop()).code).toBe(130)
  })

  it('gives up (exit 1) when the host comes back with a different host key', async () => {
    const h = await home()
    const p = tunnel([...hostFlags(), '-L', `0:127.0.0.1:${web.port}`, '--json'], h)
    const port = JSON.parse((await p.waitFor(/^\{.*\}\n/m, 'stdout'))[0]).forwards[0].localPort
    await sshd.stop()
    await sshd.start({newHostKey: true})
    const exit = await p.exited
    expect(exit.code).toBe(1)
    expect(p.stderr()).toContain('cannot reconnect (ssh_host_key_changed): closing the tunnel')
    // Under --json the error envelope follows the forwards document on stdout.
    const lines = p.stdout().trim().split('\n')
    const envelope = JSON.parse(lines.slice(1).join('\n'))
    expect(envelope.error.code).toBe('ssh_host_key_changed')
    expect(envelope.error.message).toContain('REMOTE HOST IDENTIFICATION HAS CHANGED')
    expect(await canBind(port)).toBe(true)
  })

  it('rejects bad usage with exit 2', async () => {
    const h = await home()
    const bad = await runCli(['tunnel', '--host', '127.0.0.1', '-L', '8000:host'], {cwd: h, env: {HOME: h}})
    expect(bad.exitCode).toBe(2)
    expect(bad.stderr).toContain('[BIND:]LPORT:HOST:RPORT')
    const none = await runCli(['tunnel'], {cwd: h, env: {HOME: h}})
    expect(none.exitCode).toBe(2)
    expect(none.stderr).toContain('--host')
    const unknown = await runCli(['tunnel', 'nope'], {cwd: h, env: {HOME: h}})
    expect(unknown.exitCode).toBe(1)
    expect(unknown.stderr).toContain('No backend or deployment named "nope"')
  })
})
