// A real OpenSSH server for tests and benchmarks: its own host key, authorized_keys and
// config in a temp dir, listening on a free loopback port, run in the foreground (-D -e).
// Nothing of the system's is touched (except that sshd insists on its privilege-separation
// directory /run/sshd existing; it is created empty when missing, as the Debian package does).
// Plain, type-strippable TypeScript with only node: imports, so bench/*.mjs can import it too.
import {spawn, execFileSync, type ChildProcess} from 'node:child_process'
import {existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync, mkdtempSync, rmSync} from 'node:fs'
import {createServer, connect} from 'node:net'
import {tmpdir, userInfo} from 'node:os'
import {join} from 'node:path'

export const SSHD_BIN = ['/usr/sbin/sshd', '/usr/local/sbin/sshd'].find((p) => existsSync(p))

export function sshdAvailable(): boolean {
  return SSHD_BIN !== undefined && existsSync('/usr/bin/ssh-keygen')
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address()
      const port = typeof addr === 'object' && addr ? addr.port : 0
      s.close(() => resolve(port))
    })
  })
}

export function keygen(path: string, opts: {type?: string; passphrase?: string; comment?: string} = {}): {privatePath: string; publicLine: string; blob: string} {
  execFileSync('ssh-keygen', ['-q', '-t', opts.type ?? 'ed25519', '-N', opts.passphrase ?? '', '-C', opts.comment ?? 'jarvis-test', '-f', path], {stdio: 'ignore'})
  const publicLine = readFileSync(`${path}.pub`, 'utf8').trim()
  return {privatePath: path, publicLine, blob: publicLine.split(/\s+/)[1]}
}

export interface Sshd {
  dir: string
  port: number
  user: string
  /** Unencrypted client key authorized on this server. */
  clientKey: string
  /** `ssh-ed25519 AAAA...` of the server's current host key. */
  hostKeyLine: string
  /** The line a client's known_hosts needs for this server. */
  knownHostsLine(): string
  /** Everything sshd wrote (it logs to stderr with -e). */
  log(): string
  /** Authorize another public key line. */
  authorize(publicLine: string): void
  /** Stop the server (connections it handles die with it). */
  stop(): Promise<void>
  /** Start it again on the same port; `newHostKey` swaps in a fresh host key (a "reinstalled" host). */
  start(opts?: {newHostKey?: boolean}): Promise<void>
  /** Pids of the processes serving current connections (the listener's descendants). */
  sessionPids(): number[]
  /** Kill the processes serving current connections, leaving the listener up (a dropped connection). */
  killSessions(): number
  /** Remove the temp dir (after stop). */
  cleanup(): void
}

function childrenOf(pid: number): number[] {
  const out: number[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      // pid (comm) state ppid ...: comm may contain spaces, so parse after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid === pid) out.push(Number(name))
    } catch {
      // the process ended while we looked
    }
  }
  return out
}

function descendants(pid: number): number[] {
  const direct = childrenOf(pid)
  return [...direct, ...direct.flatMap((c) => descendants(c))]
}

async function waitForBanner(port: number, timeoutMs: number, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`sshd exited with ${child.exitCode}:\n${log()}`)
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1')
      s.setTimeout(500)
      s.once('data', (d) => {
        s.destroy()
        resolve(d.toString().startsWith('SSH-2.0'))
      })
      s.once('error', () => resolve(false))
      s.once('timeout', () => {
        s.destroy()
        resolve(false)
      })
    })
    if (ok) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`sshd did not answer on port ${port}:\n${log()}`)
}

export async function startSshd(opts: {port?: number; extraConfig?: string[]} = {}): Promise<Sshd> {
  if (!SSHD_BIN) throw new Error('sshd is not installed (apt-get install openssh-server)')
  if (process.getuid?.() === 0 && !existsSync('/run/sshd')) mkdirSync('/run/sshd', {mode: 0o755})
  const dir = mkdtempSync(join(tmpdir(), 'jarvis-sshd-'))
  const port = opts.port ?? (await freePort())
  const user = userInfo().username
  const client = keygen(join(dir, 'client_ed25519'))
  writeFileSync(join(dir, 'authorized_keys'), client.publicLine + '\n', {mode: 0o600})
  let hostKeyN = 0
  let hostKeyPath = ''
  let hostKeyLine = ''
  const newHostKey = () => {
    hostKeyN++
    hostKeyPath = join(dir, `host_ed25519_${hostKeyN}`)
    hostKeyLine = keygen(hostKeyPath, {comment: 'host'}).publicLine.split(/\s+/).slice(0, 2).join(' ')
  }
  newHostKey()
  const writeConfig = () =>
    writeFileSync(
      join(dir, 'sshd_config'),
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${hostKeyPath}`,
        `PidFile ${join(dir, 'sshd.pid')}`,
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        'StrictModes no',
        'UsePAM no',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PubkeyAuthentication yes',
        'PermitRootLogin prohibit-password',
        'AllowTcpForwarding yes',
        'AllowAgentForwarding no',
        'X11Forwarding no',
        'PrintMotd no',
        'MaxStartups 100',
        'MaxSessions 100',
        'Subsystem sftp internal-sftp',
        'LogLevel ERROR',
        ...(opts.extraConfig ?? []),
      ].join('\n') + '\n',
    )
  let child: ChildProcess | undefined
  let logText = ''
  const start = async (o: {newHostKey?: boolean} = {}) => {
    if (o.newHostKey) newHostKey()
    writeConfig()
    const c = spawn(SSHD_BIN, ['-f', join(dir, 'sshd_config'), '-D', '-e'], {stdio: ['ignore', 'ignore', 'pipe']})
    c.stderr!.on('data', (d: Buffer) => {
      logText += d.toString()
    })
    child = c
    await waitForBanner(port, 10_000, c, () => logText)
  }
  const stop = async () => {
    const c = child
    child = undefined
    if (!c || c.exitCode !== null) return
    // The listener's session children are killed too: like a host going down.
    for (const pid of descendants(c.pid!)) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // already gone
      }
    }
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve())
      c.kill('SIGTERM')
    })
  }
  await start()
  return {
    dir,
    port,
    user,
    clientKey: client.privatePath,
    get hostKeyLine() {
      return hostKeyLine
    },
    knownHostsLine: () => `[127.0.0.1]:${port} ${hostKeyLine}`,
    log: () => logText,
    authorize: (line: string) => writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'authorized_keys'), 'utf8') + line + '\n'),
    stop,
    start,
    sessionPids: () => (child?.pid ? descendants(child.pid) : []),
    killSessions: () => {
      if (!child?.pid) return 0
      const pids = descendants(child.pid)
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL')
        } catch {
          // already gone
        }
      }
      return pids.length
    },
    cleanup: () => rmSync(dir, {recursive: true, force: true}),
  }
}
