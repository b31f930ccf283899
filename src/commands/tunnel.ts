import {Args, Flags, ux} from '@oclif/core'
import chalk from 'chalk'
import {BaseCommand} from '../lib/base-command.js'
import {JarvisError, UsageError} from '../lib/errors.js'
import {maskDeep, maskSecrets} from '../lib/secrets.js'
import type {ActiveForward, Forward, HostKeyPolicy, Tunnel as SshTunnel, TunnelEvent} from '../ssh/index.js'

const POLICIES = ['ask', 'yes', 'accept-new', 'no'] as const

export interface TunnelJson {
  target: {name: string; source: string; host: string; port: number; user: string; via: string[]}
  forwards: (ActiveForward & {url: string})[]
  /** The URL to export as EXTERNAL_GPU_URL (the forward to the gpu-server port), when there is one. */
  externalGpuUrl?: string
  pid: number
}

export default class TunnelCommand extends BaseCommand {
  static summary = 'Forward local ports to a GPU box over SSH (like ssh -N -L), reconnecting when the connection drops'
  static description = `TARGET is a backend of kind vast or ssh in jarvis.yaml, or a recorded deployment with an SSH target; or give --host (a name, an address or a Host alias from ~/.ssh/config).

Without -L the gpu-server port is forwarded (the backend's remotePort, default 8000) to the same local port, and the URL to use as EXTERNAL_GPU_URL is printed. Each -L is [BIND:]LPORT:HOST:RPORT; LPORT 0 picks a free port.

~/.ssh/config is read (HostName, Port, User, IdentityFile, ProxyJump, ...); keys come from --identity, IdentityFile, ssh-agent (SSH_AUTH_SOCK) and ~/.ssh/id_ed25519, id_ecdsa, id_rsa. Host keys are checked against ~/.ssh/known_hosts: an unknown key is pinned only after you confirm its fingerprint on a terminal, or with --accept-new; a changed key is refused. Set JARVIS_SSH_DIR to use another directory than ~/.ssh.

The tunnel stays up until Ctrl-C, which closes every listener and exits with status 130 (143 on SIGTERM). When the SSH connection drops, the local ports stay open and the connection is re-established with backoff; new local connections wait for it (up to 30 s). Status lines (connected, reconnects, traffic) go to stderr. With --json one JSON document describing the forwards is printed on stdout once the tunnel is up.`

  static examples = [
    '<%= config.bin %> tunnel vast',
    '<%= config.bin %> tunnel vast -L 8000:127.0.0.1:8000 -L 7860:127.0.0.1:7860',
    '<%= config.bin %> tunnel --host ssh4.vast.ai --port 14688 --user root --accept-new',
    '<%= config.bin %> tunnel --host gpu-box -L 0:127.0.0.1:8000 --json',
    '<%= config.bin %> tunnel --host 10.0.0.5 -J bastion.example.com',
  ]

  static args = {
    target: Args.string({description: 'backend or deployment name (omit when --host is given)', required: false}),
  }

  static flags = {
    host: Flags.string({description: 'SSH host (name, address or ~/.ssh/config Host alias); overrides the target\'s'}),
    port: Flags.integer({description: 'SSH port (default: from the target or ~/.ssh/config, else 22)', min: 1, max: 65535}),
    user: Flags.string({description: 'SSH user (default: from the target or ~/.ssh/config, else your login name)'}),
    identity: Flags.string({char: 'i', description: 'private key file'}),
    'local-forward': Flags.string({char: 'L', description: 'forward [BIND:]LPORT:HOST:RPORT (repeatable; default: the server port)', multiple: true}),
    jump: Flags.string({char: 'J', description: 'jump host(s) [user@]host[:port][,...] (like ssh -J; default: ProxyJump from ~/.ssh/config)'}),
    'strict-host-key': Flags.string({description: 'unknown host keys: ask (on a terminal), yes (refuse), accept-new (pin), no (accept, don\'t pin)', options: [...POLICIES]}),
    'accept-new': Flags.boolean({description: 'pin an unknown host key without asking (same as --strict-host-key accept-new)', default: false}),
    keepalive: Flags.integer({description: 'seconds between SSH keepalives (default: ServerAliveInterval from ~/.ssh/config, else 10); the connection counts as dead after 3 unanswered', min: 1}),
  }

  async run(): Promise<TunnelJson | undefined> {
    const {args, flags} = await this.parse(TunnelCommand)
    const ssh = await import('../ssh/index.js')
    const {resolveNamedTarget} = await import('../ssh/targets.js')

    if (flags['accept-new'] && flags['strict-host-key'] && flags['strict-host-key'] !== 'accept-new') {
      throw new UsageError(`--accept-new contradicts --strict-host-key ${flags['strict-host-key']}`)
    }
    const policy = (flags['accept-new'] ? 'accept-new' : flags['strict-host-key']) as HostKeyPolicy | undefined

    let forwards: Forward[] | undefined
    try {
      forwards = flags['local-forward']?.map((s) => ssh.parseForwardSpec(s))
    } catch (error) {
      if (error instanceof ssh.ForwardSpecError) throw new UsageError(`-L ${error.message}`, {suggestion: 'Write it as [BIND:]LPORT:HOST:RPORT, e.g. -L 8000:127.0.0.1:8000.'})
      throw error
    }

    const loaded = await this.loadConfig(flags)
    const named = await resolveNamedTarget(args.target, flags, loaded)
    forwards ??= [{bindHost: '127.0.0.1', localPort: named.remotePort, remoteHost: '127.0.0.1', remotePort: named.remotePort}]

    if (!ssh.nativeCryptoAvailable()) this.ui.debug('ssh2 native crypto binding not loaded: encryption runs in JavaScript (about half the throughput). Rebuild it: npm rebuild ssh2')
    const status = new StatusLine(!this.jsonEnabled() && this.ui.interactive)
    const interaction = ssh.terminalInteraction({
      canPrompt: this.canPrompt(),
      signal: this.abort.signal,
      info: (m) => status.event(m),
      warn: (m) => status.event(chalk.yellow(m)),
      debug: (m) => this.ui.debug(m),
    })

    let terminated = false
    const onTerm = () => {
      terminated = true
      this.abort.abort(new JarvisError('Terminated', {code: 'terminated', exitCode: 143}))
    }
    process.once('SIGTERM', onTerm)

    let tunnel: SshTunnel
    try {
      tunnel = await ssh.openTunnel({...named.ssh, hostKeyPolicy: policy, proxyJump: flags.jump}, forwards, {
        signal: this.abort.signal,
        keepaliveSeconds: flags.keepalive,
        interaction,
        onStatus: (e) => status.event(describeEvent(e)),
      })
    } catch (error) {
      process.off('SIGTERM', onTerm)
      throw error
    }

    const result = tunnelJson(named, tunnel)
    if (this.jsonEnabled()) {
      // Printed now, not returned: the command keeps running. One compact line, so a script
      // can read the first line of stdout and go on (`jarvis tunnel vast --json | head -1`).
      ux.stdout(JSON.stringify(maskDeep(result)))
    } else {
      this.log(`Tunnel to ${ssh.describeHop(tunnel.target)}${tunnel.target.jumps.length ? ` via ${tunnel.target.jumps.map((j) => ssh.describeHop(j)).join(' → ')}` : ''} is up:`)
      for (const f of result.forwards) this.log(`  ${ssh.formatAddress(f.bindHost, f.localPort)} → ${ssh.formatAddress(f.remoteHost, f.remotePort)}  ${chalk.dim(f.url)}`)
      if (result.externalGpuUrl) this.log(`export EXTERNAL_GPU_URL=${result.externalGpuUrl}`)
      process.stderr.write(chalk.dim('Press Ctrl-C to close the tunnel.') + '\n')
    }
    status.start(() => tunnel.stats())

    try {
      await tunnel.done
    } finally {
      status.stop()
      process.off('SIGTERM', onTerm)
    }
    // Ctrl-C is how a tunnel is meant to end: no error message, but the conventional
    // status (130, or 143 for SIGTERM) so a script can tell it was stopped by a signal.
    process.exitCode = terminated ? 143 : 130
    return undefined
  }
}

function urlFor(f: ActiveForward): string {
  let host = f.bindHost
  if (host === '0.0.0.0') host = '127.0.0.1'
  if (host === '::') host = '::1'
  return `http://${host.includes(':') ? `[${host}]` : host}:${f.localPort}`
}

function tunnelJson(named: {name: string; source: string; remotePort: number}, tunnel: SshTunnel): TunnelJson {
  const forwards = tunnel.forwards.map((f) => ({...f, url: urlFor(f)}))
  const loopback = (h: string) => h === '127.0.0.1' || h === 'localhost' || h === '::1'
  const server = forwards.find((f) => f.remotePort === named.remotePort && loopback(f.remoteHost)) ?? (forwards.length === 1 ? forwards[0] : undefined)
  const t = tunnel.target
  return {
    target: {name: named.name, source: named.source, host: t.hostName, port: t.port, user: t.user, via: t.jumps.map((j) => `${j.user}@${j.hostName}:${j.port}`)},
    forwards,
    externalGpuUrl: server?.url,
    pid: process.pid,
  }
}

function describeEvent(e: TunnelEvent): string {
  switch (e.type) {
    case 'connected':
      return chalk.green(`● connected to ${e.target}`)
    case 'disconnected':
      return chalk.yellow(`○ connection lost: ${e.reason}; local ports stay open`)
    case 'reconnecting':
      return chalk.yellow(`○ reconnecting (attempt ${e.attempt}${e.delayMs ? `, in ${(e.delayMs / 1000).toFixed(1)}s` : ''})${e.lastError ? `: last error: ${e.lastError}` : ''}`)
    case 'reconnected':
      return chalk.green(`● reconnected (${e.reconnects} reconnect${e.reconnects === 1 ? '' : 's'} so far)`)
    case 'forward-failed':
      return chalk.yellow(`! ${e.reason}`)
    case 'fatal':
      return chalk.red(`✗ cannot reconnect (${(e.error as JarvisError).code ?? 'error'}): closing the tunnel`)
    case 'closed':
      return chalk.dim('tunnel closed')
  }
}

function human(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB']
  let v = bytes
  let i = 0
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000
    i++
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`
}

/**
 * Status on stderr. On a terminal: one line redrawn every second (state, connections,
 * bytes, reconnects) with events printed above it. Elsewhere (logs, CI, --json): the
 * events only, one line each.
 */
class StatusLine {
  private timer?: NodeJS.Timeout
  private stats?: () => ReturnType<SshTunnel['stats']>
  private drawn = false

  constructor(private readonly live: boolean) {}

  event(message: string): void {
    this.clear()
    process.stderr.write(maskSecrets(message) + '\n')
    this.draw()
  }

  start(stats: () => ReturnType<SshTunnel['stats']>): void {
    this.stats = stats
    if (!this.live) return
    this.draw()
    this.timer = setInterval(() => {
      this.clear()
      this.draw()
    }, 1000)
    this.timer.unref()
  }

  stop(): void {
    clearInterval(this.timer)
    this.clear()
    this.stats = undefined
  }

  private clear(): void {
    if (this.drawn) process.stderr.write('\r\u001B[2K')
    this.drawn = false
  }

  private draw(): void {
    if (!this.live || !this.stats) return
    const s = this.stats()
    const dot = s.state === 'connected' ? chalk.green('●') : s.state === 'reconnecting' ? chalk.yellow('○') : chalk.dim('○')
    process.stderr.write(
      `${dot} ${s.state} · ${s.activeConnections} open, ${s.totalConnections} total${s.failedConnections ? `, ${s.failedConnections} failed` : ''} · ↑ ${human(s.bytesUp)} ↓ ${human(s.bytesDown)} · ${s.reconnects} reconnect${s.reconnects === 1 ? '' : 's'}`,
    )
    this.drawn = true
  }
}
