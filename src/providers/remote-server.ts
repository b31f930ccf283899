// The bundled gpu-server on a host reached over SSH: what `deploy ssh` does to a box you
// name, and what `deploy vast` does to the instance it rented. Mirrors the local manager
// (src/gpu-server/manager.ts) on the far side of an SSH connection:
//
//   DIR/.jarvis-gpu-server   marker: this directory is jarvis's (destroy removes only such a dir)
//   DIR/src/                 the gpu-server sources, uploaded over SFTP
//   DIR/venv/                `python3 -m venv`, then `pip install 'DIR/src[EXTRA]'`
//   DIR/server.env           0600, over SFTP: JARVIS_GPU_API_KEY / JARVIS_GPU_HF_TOKEN
//   DIR/start.sh             sources server.env and execs the server: secrets never on argv
//   DIR/start-detached.sh    `setsid nohup start.sh >> server.log &`, pid in server.pid
//   DIR/data/                jobs (JARVIS_GPU_DATA_DIR), so destroy leaves nothing behind
//
// The server listens on the host's loopback only; jarvis reaches it through an SSH tunnel
// (health here, `transcribe` and `status` later), so no port is opened to the world.
// pip on the host gets the pip settings of this shell that describe how to reach an index
// (PIP_PASSTHROUGH below) and deploy.<provider>.pipEnv, through a 0600 file, never argv
// (an index URL may hold credentials).
import {createHash} from 'node:crypto'
import {existsSync} from 'node:fs'
import {readdir, readFile} from 'node:fs/promises'
import {homedir} from 'node:os'
import {join, posix, resolve} from 'node:path'
import {errorMessage, InterruptedError, UserError} from '../lib/errors.js'
import {maskSecrets} from '../lib/secrets.js'
import {checkServer, type ServerHealth} from '../server/client.js'
import type {HostKeyPolicy, SshSession, SshTargetSpec} from '../ssh/index.js'
import {applyDestroy, applyPlan} from './engine.js'
import type {Deployment, DeployPlan, DestroyPlan, ProviderContext, ProviderStatus, Step, StepOutput} from './types.js'

export const DEFAULT_REMOTE_PORT = 8000
const MARKER = '.jarvis-gpu-server'

/** pip settings about reaching an index, passed from this shell to the remote pip. */
export const PIP_PASSTHROUGH = ['PIP_INDEX_URL', 'PIP_EXTRA_INDEX_URL', 'PIP_TRUSTED_HOST', 'PIP_RETRIES', 'PIP_TIMEOUT', 'PIP_DEFAULT_TIMEOUT', 'PIP_PROXY'] as const

/** The SSH target recorded in deployment.details.ssh (what `transcribe`/`status`/`tunnel` read). */
export interface RecordedSsh {
  host: string
  port?: number
  user?: string
  identity?: string
}

export interface RemoteServerSpec {
  /** Deployment name (for the marker file and messages). */
  name: string
  /** As given: absolute, `~/x` or relative to the login directory. Resolved on connect. */
  remoteDir: string
  remotePort: number
  engine: string
  model?: string
  device: string
  computeType?: string
  batchSize?: number
  /** Remote python to make the venv with (default: the newest python3.1x ≥ 3.10 on PATH). */
  python?: string
  apiKey: string
  hfToken?: string
  healthTimeoutMs: number
  /** Extra variables for the remote pip (deploy.<provider>.pipEnv). */
  pipEnv?: Record<string, string>
  /** Unknown host keys: the policy for this deployment (recorded for destroy/status). */
  hostKeyPolicy?: HostKeyPolicy
}

export function extrasFor(engine: string): string[] {
  return engine === 'pocketsphinx' ? ['pocketsphinx'] : ['whisperx']
}

export function shq(s: string): string {
  if (s === '') return "''"
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s
  return `'${s.replaceAll("'", `'\\''`)}'`
}

/** `~/x`, `x` (relative to the login dir) or `/abs/x` → absolute, given the remote $HOME. */
export function resolveRemoteDir(dir: string, home: string): string {
  const d = dir.trim()
  if (d === '~' || d === '') return home
  if (d.startsWith('~/')) return posix.join(home, d.slice(2))
  if (d.startsWith('/')) return posix.normalize(d)
  return posix.join(home, d)
}

/** A remote dir expression for a shell script that runs before we know $HOME (the Vast onstart). */
export function remoteDirShellExpr(dir: string): string {
  const d = dir.trim()
  if (d.startsWith('/')) return shq(posix.normalize(d))
  const rel = d === '~' ? '' : d.startsWith('~/') ? d.slice(2) : d
  return rel ? `"$HOME"/${shq(rel)}` : '"$HOME"'
}

function where(ssh: RecordedSsh): string {
  return `${ssh.user ? `${ssh.user}@` : ''}${ssh.host}${ssh.port ? `:${ssh.port}` : ''}`
}

/** ssh://user@host:port — the deployment's "URL": the server itself is on the host's loopback. */
export function sshUrl(ssh: RecordedSsh): string {
  return `ssh://${where(ssh)}`
}

function recordedSsh(dep: Deployment): RecordedSsh {
  const ssh = dep.details.ssh as RecordedSsh | undefined
  if (!ssh?.host) throw new UserError(`The ${dep.provider} deployment has no SSH target recorded yet`, {code: 'no_ssh_target'})
  return ssh
}

function recordedDir(dep: Deployment): string | undefined {
  const d = dep.details.remoteDir
  return typeof d === 'string' && d.startsWith('/') ? d : undefined
}

// ---------------------------------------------------------------- the SSH connection

/**
 * One SSH connection shared by the steps of one apply/destroy run (opened on first use,
 * closed by the provider when the run ends). Reopened if it dropped between steps.
 */
export class RemoteConnection {
  private session?: SshSession
  private opened?: Promise<SshSession>

  async get(ctx: ProviderContext, dep: Deployment, policy?: HostKeyPolicy, connectTimeoutSeconds?: number): Promise<SshSession> {
    if (this.session && !this.session.closed) return this.session
    this.opened ??= (async () => {
      const ssh = recordedSsh(dep)
      const {connectSsh} = await import('../ssh/index.js')
      return connectSsh(targetOf(ssh, policy ?? (dep.details.hostKeyPolicy as HostKeyPolicy | undefined)), {
        signal: ctx.signal,
        connectTimeoutSeconds,
        interaction: {info: (m) => ctx.log(m), warn: (m) => ctx.log(m)},
      })
    })()
    try {
      this.session = await this.opened
      return this.session
    } finally {
      this.opened = undefined
    }
  }

  async close(): Promise<void> {
    const s = this.session
    this.session = undefined
    await s?.close().catch(() => {})
  }
}

export function targetOf(ssh: RecordedSsh, hostKeyPolicy?: HostKeyPolicy): SshTargetSpec {
  return {host: ssh.host, port: ssh.port, user: ssh.user, identity: ssh.identity, hostKeyPolicy}
}

/** Run a POSIX sh script on the host (wrapped in `sh -c`, so the login shell may be anything). */
async function sh(session: SshSession, script: string, opts: {input?: string; timeoutMs?: number; signal?: AbortSignal; allowFailure?: boolean; onLine?: (l: string) => void} = {}) {
  return session.exec(['sh', '-c', script], {
    input: opts.input,
    timeoutMs: opts.timeoutMs ?? 60_000,
    signal: opts.signal,
    allowFailure: opts.allowFailure,
    onLine: opts.onLine ? (l) => opts.onLine!(l) : undefined,
  })
}

// ---------------------------------------------------------------- what is uploaded

const SKIP_DIRS = new Set(['tests', '__pycache__', '.venv', 'venv', 'build', 'dist', '.pytest_cache', '.mypy_cache', '.ruff_cache'])

function uploadFilter(rel: string, isDir: boolean): boolean {
  const base = rel.split('/').at(-1)!
  if (base.startsWith('.')) return false
  if (isDir) return !SKIP_DIRS.has(base) && !base.endsWith('.egg-info')
  return !base.endsWith('.pyc') && !base.startsWith('Dockerfile')
}

/** A fingerprint of the uploaded sources + extras: pip runs again only when it changes. */
export async function sourceFingerprint(dir: string, extras: string[]): Promise<string> {
  const h = createHash('sha256').update(extras.join(','))
  const walk = async (abs: string, rel: string) => {
    for (const e of (await readdir(abs, {withFileTypes: true})).sort((a, b) => a.name.localeCompare(b.name))) {
      const r = rel ? `${rel}/${e.name}` : e.name
      if (!uploadFilter(r, e.isDirectory())) continue
      if (e.isDirectory()) await walk(join(abs, e.name), r)
      else if (e.isFile()) h.update(r).update('\0').update(await readFile(join(abs, e.name))).update('\0')
    }
  }
  await walk(dir, '')
  return h.digest('hex').slice(0, 16)
}

// ---------------------------------------------------------------- scripts written to the host

/** start.sh: the only place the secrets are read, from the 0600 env file beside it. */
export function startScript(spec: RemoteServerSpec): string {
  const args = ['-m', 'jarvis_gpu_server', '--host', '127.0.0.1', '--port', String(spec.remotePort), '--engine', spec.engine]
  if (spec.model && spec.engine !== 'pocketsphinx') args.push('--model', spec.model)
  args.push('--device', spec.device)
  if (spec.computeType) args.push('--compute-type', spec.computeType)
  if (spec.batchSize) args.push('--batch-size', String(spec.batchSize))
  return [
    '#!/bin/sh',
    '# Written by jarvis (deploy). Starts the gpu-server on loopback; the API key and HF token',
    '# come from server.env (mode 0600) into the environment, never onto the command line.',
    'cd "$(dirname "$0")" || exit 1',
    'set -a',
    '. ./server.env',
    'set +a',
    'JARVIS_GPU_DATA_DIR="$PWD/data"',
    'PYTHONUNBUFFERED=1',
    'export JARVIS_GPU_DATA_DIR PYTHONUNBUFFERED',
    `exec ./venv/bin/python ${args.map(shq).join(' ')}`,
    '',
  ].join('\n')
}

/** start-detached.sh: used by the start step and by Vast's onstart after an instance restart. */
export function startDetachedScript(): string {
  return [
    '#!/bin/sh',
    '# Written by jarvis (deploy): start.sh detached from any session, output in server.log, pid in server.pid.',
    'cd "$(dirname "$0")" || exit 1',
    'if command -v setsid >/dev/null 2>&1; then',
    '  setsid nohup ./start.sh >> server.log 2>&1 < /dev/null &',
    'else',
    '  nohup ./start.sh >> server.log 2>&1 < /dev/null &',
    'fi',
    'echo $! > server.pid',
    'cat server.pid',
    '',
  ].join('\n')
}

/** Shell snippet: is PID (from DIR/server.pid) our server? Exit 0 when running. */
const SERVER_RUNNING = [
  'pid=$(cat server.pid 2>/dev/null) || exit 1',
  '[ -n "$pid" ] || exit 1',
  'kill -0 "$pid" 2>/dev/null || exit 1',
  // Guard against a recycled pid: the process must be our server (where /proc tells).
  'if [ -r "/proc/$pid/cmdline" ]; then tr "\\0" " " < "/proc/$pid/cmdline" | grep -q jarvis_gpu_server || exit 1; fi',
].join('\n')

/** Stop the server whose pid is in DIR/server.pid: TERM to its process group, then KILL. */
function stopScript(dir: string): string {
  return [
    `cd ${shq(dir)} 2>/dev/null || exit 0`,
    `running() { (${SERVER_RUNNING.replaceAll('\n', '; ')}) }`,
    'running || { rm -f server.pid; echo "not running"; exit 0; }',
    'pid=$(cat server.pid)',
    // setsid made it a group leader: the group takes any child processes with it.
    // (`kill -SIG -PGID`, without `--`: dash's kill does not take `--`.)
    'kill -TERM "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null',
    'i=0; while running && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done',
    'if running; then kill -KILL "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null; sleep 0.2; fi',
    'rm -f server.pid',
    'echo "stopped $pid"',
  ].join('\n')
}

// ---------------------------------------------------------------- deploy steps

function envFile(values: Record<string, string | undefined>): string {
  return Object.entries(values)
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => `${k}=${shq(v!)}`)
    .join('\n') + '\n'
}

/** The PIP_* variables the remote pip receives (names only are shown in plans). */
export function pipEnvironment(spec: Pick<RemoteServerSpec, 'pipEnv'>, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {}
  for (const k of PIP_PASSTHROUGH) if (env[k]) out[k] = env[k]!
  return {...out, ...spec.pipEnv}
}

/**
 * The steps that install and start the server on the host recorded in deployment.details.ssh
 * (set by the plan for `deploy ssh`, learned by an earlier step for `deploy vast`).
 */
export function remoteSteps(ctx: ProviderContext, spec: RemoteServerSpec, conn: RemoteConnection): Step[] {
  const extras = extrasFor(spec.engine)
  const sourceDir = join(ctx.packageRoot, 'gpu-server')
  const pipEnv = pipEnvironment(spec)
  let dir = '' // resolved by the connect step
  let python = ''
  const session = (c: ProviderContext, dep: Deployment) => conn.get(c, dep, spec.hostKeyPolicy)

  return [
    {
      kind: 'task',
      id: 'connect',
      title: `Connect over SSH and find Python 3.10+`,
      describe: `host key checked against known_hosts (${spec.hostKeyPolicy ?? 'ask'} for an unknown key); resolves ${spec.remoteDir} on the host`,
      always: true,
      async run(c, dep) {
        const s = await session(c, dep)
        const home = (await sh(s, 'printf %s "$HOME"', {signal: c.signal})).stdout.trim() || '/'
        dir = resolveRemoteDir(spec.remoteDir, home)
        if (dir === '/' || dir === home) {
          throw new UserError(`Refusing to install into ${dir}: destroy removes the whole directory`, {code: 'bad_remote_dir', suggestion: 'Pass --remote-dir with a directory of its own, e.g. ~/.jarvis-gpu-server/ssh'})
        }
        // A directory that exists, is not empty and is not ours is somebody else's.
        const probe = await sh(s, `d=${shq(dir)}; if [ -e "$d" ] && [ ! -e "$d/${MARKER}" ] && [ -n "$(ls -A "$d" 2>/dev/null)" ]; then echo foreign; fi`, {signal: c.signal})
        if (probe.stdout.includes('foreign')) {
          throw new UserError(`${dir} already exists on ${where(recordedSsh(dep))} and was not made by jarvis`, {
            code: 'remote_dir_taken',
            suggestion: 'Pass --remote-dir with another directory (destroy removes the directory jarvis installs into).',
          })
        }
        // Images such as pytorch/pytorch keep Python in /opt/conda, which a login shell's PATH may lack.
        const candidates = spec.python ? [spec.python] : ['python3.12', 'python3.11', 'python3.10', 'python3.13', 'python3', '/opt/conda/bin/python3']
        const find = [
          `for p in ${candidates.map(shq).join(' ')}; do`,
          '  command -v "$p" >/dev/null 2>&1 || continue',
          '  "$p" -c "import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)" 2>/dev/null || continue',
          '  "$p" -c "import venv, ensurepip" 2>/dev/null || { echo "novenv $(command -v "$p")"; continue; }',
          '  echo "ok $(command -v "$p") $("$p" -c "import platform; print(platform.python_version())")"; exit 0',
          'done',
          'exit 3',
        ].join('\n')
        const r = await sh(s, find, {signal: c.signal, allowFailure: true})
        const ok = /^ok (\S+) (\S+)/m.exec(r.stdout)
        if (!ok) {
          const novenv = /^novenv (\S+)/m.exec(r.stdout)
          throw new UserError(
            novenv
              ? `${novenv[1]} on ${where(recordedSsh(dep))} has no venv/ensurepip module`
              : `No Python 3.10+ found on ${where(recordedSsh(dep))} (tried ${candidates.join(', ')})`,
            {code: 'remote_python_missing', suggestion: novenv ? 'Install it there (Debian/Ubuntu: apt-get install python3-venv).' : 'Install Python 3.10 or newer there, or name it with deploy.<provider>.python in jarvis.yaml.'},
          )
        }
        python = ok[1]
        const ssh = recordedSsh(dep)
        return {
          details: {remoteDir: dir, remotePort: spec.remotePort, remotePython: `${ok[1]} (${ok[2]})`, hostKeyPolicy: spec.hostKeyPolicy ?? null},
          resources: [{kind: 'remote-dir', id: `${where(ssh)}:${dir}`, details: {dir}}],
        }
      },
    },
    {
      kind: 'task',
      id: 'upload',
      title: 'Upload the gpu-server over SFTP',
      describe: `${sourceDir} → ${spec.remoteDir}/src (tests and caches left out)`,
      always: true,
      async run(c, dep) {
        const s = await session(c, dep)
        await s.mkdirp(dir)
        await s.writeFile(posix.join(dir, MARKER), JSON.stringify({createdBy: 'jarvis', deployment: spec.name, provider: dep.provider, at: new Date().toISOString()}) + '\n', {mode: 0o644})
        // A fresh copy: files removed from the sources must not linger.
        await sh(s, `rm -rf ${shq(posix.join(dir, 'src'))}`, {signal: c.signal})
        const r = await s.uploadDir(sourceDir, posix.join(dir, 'src'), {filter: uploadFilter, signal: c.signal})
        c.log(`uploaded ${r.files} files (${Math.round(r.bytes / 1024)} KiB)`)
      },
    },
    {
      kind: 'task',
      id: 'install',
      title: `Install the server with the ${extras.join(', ')} extra (venv + pip)`,
      describe: `\`python3 -m venv ${spec.remoteDir}/venv\` when missing, then \`pip install '${spec.remoteDir}/src[${extras.join(',')}]'\` when the sources changed` +
        (Object.keys(pipEnv).length ? `; pip gets ${Object.keys(pipEnv).join(', ')} from a 0600 file` : ''),
      always: true,
      async run(c, dep) {
        const s = await session(c, dep)
        const want = await sourceFingerprint(sourceDir, extras)
        const have = await sh(s, `cat ${shq(posix.join(dir, 'venv', '.jarvis-installed'))} 2>/dev/null; true`, {signal: c.signal})
        if (have.stdout.split('\n').includes(want) && (await sh(s, `test -x ${shq(posix.join(dir, 'venv/bin/python'))}`, {allowFailure: true})).exitCode === 0) {
          c.log('already installed (same sources and extras)')
          return
        }
        const venv = await sh(s, `cd ${shq(dir)} && { test -x venv/bin/python || ${shq(python)} -m venv venv; }`, {signal: c.signal, allowFailure: true, timeoutMs: 5 * 60_000})
        if (venv.exitCode !== 0) throw remoteFailure(`Creating the venv in ${dir} failed`, venv.stderr || venv.stdout, 'Debian/Ubuntu: apt-get install python3-venv')
        await s.writeFile(posix.join(dir, 'pip.env'), envFile(pipEnv), {mode: 0o600})
        const install = [
          `cd ${shq(dir)} || exit 1`,
          'set -a; . ./pip.env; set +a',
          `./venv/bin/python -m pip install --disable-pip-version-check -q ${shq(`./src[${extras.join(',')}]`)}`,
          'rc=$?',
          'rm -f pip.env',
          `[ $rc -eq 0 ] && echo ${shq(want)} >> venv/.jarvis-installed`,
          'exit $rc',
        ].join('\n')
        const r = await sh(s, install, {signal: c.signal, allowFailure: true, timeoutMs: 45 * 60_000, onLine: (l) => c.log(l)})
        if (r.exitCode !== 0) {
          throw remoteFailure(
            `Installing the gpu-server (${extras.join(', ')}) on ${where(recordedSsh(dep))} failed`,
            r.stderr || r.stdout,
            extras[0] === 'whisperx'
              ? 'WhisperX needs PyTorch and access to PyPI from the host. Check the host can reach your index (PIP_INDEX_URL, or deploy.<provider>.pipEnv), or use --engine pocketsphinx.'
              : 'Check that pip on the host can reach your package index (PIP_INDEX_URL, or deploy.<provider>.pipEnv in jarvis.yaml).',
          )
        }
      },
    },
    {
      kind: 'task',
      id: 'secrets',
      title: 'Write the API key' + (spec.hfToken ? ' and Hugging Face token' : '') + ' to server.env (0600, over SFTP)',
      describe: `${spec.remoteDir}/server.env, mode 0600, read by start.sh; never on a command line`,
      always: true,
      async run(c, dep) {
        const s = await session(c, dep)
        await s.writeFile(posix.join(dir, 'server.env'), envFile({JARVIS_GPU_API_KEY: spec.apiKey, JARVIS_GPU_HF_TOKEN: spec.hfToken}), {mode: 0o600})
      },
    },
    {
      kind: 'task',
      id: 'start',
      title: `Start the server on the host's 127.0.0.1:${spec.remotePort} (detached)`,
      describe: `stops a server this deployment started before, then \`setsid nohup start.sh >> server.log &\` (pid in server.pid); engine ${spec.engine}, device ${spec.device}`,
      always: true,
      async run(c, dep) {
        const s = await session(c, dep)
        await s.writeFile(posix.join(dir, 'start.sh'), startScript(spec), {mode: 0o700})
        await s.writeFile(posix.join(dir, 'start-detached.sh'), startDetachedScript(), {mode: 0o700})
        const stop = await sh(s, stopScript(dir), {signal: c.signal, timeoutMs: 30_000})
        if (stop.stdout.startsWith('stopped')) c.log(`stopped the previous server (${stop.stdout.trim().split(' ')[1]})`)
        // Something else on the port would make the new server exit at once: say so clearly.
        const busy = await sh(s, portBusyScript(spec.remotePort), {signal: c.signal, allowFailure: true})
        if (busy.stdout.includes('busy')) {
          throw new UserError(`Port ${spec.remotePort} on ${where(recordedSsh(dep))} is already in use by another program`, {code: 'remote_port_busy', suggestion: 'Pass --remote-port with a free port.'})
        }
        const r = await sh(s, `${shq(posix.join(dir, 'start-detached.sh'))}`, {signal: c.signal})
        const pid = Number(r.stdout.trim().split('\n').at(-1))
        return {details: {pid: Number.isInteger(pid) ? pid : null, logFile: posix.join(dir, 'server.log')}}
      },
    },
    {
      kind: 'task',
      id: 'health',
      title: `Wait for /health through an SSH tunnel`,
      describe: `local port → the host's 127.0.0.1:${spec.remotePort}; up to ${Math.round(spec.healthTimeoutMs / 1000)} s (model downloads on the first start take a while)`,
      always: true,
      async run(c, dep) {
        const s = await session(c, dep)
        const h = await waitRemoteHealthy(c, dep, s, {dir, port: spec.remotePort, apiKey: spec.apiKey, timeoutMs: spec.healthTimeoutMs})
        const ssh = recordedSsh(dep)
        return {
          url: sshUrl(ssh),
          details: {health: {engine: h.health?.engine, model: h.health?.model, device: h.health?.device, gpu: (h.info?.gpu as {name?: string} | null | undefined)?.name}},
        } satisfies StepOutput
      },
    },
  ]
}

function portBusyScript(port: number): string {
  // Prefer ss, fall back to /proc/net/tcp (port in hex, state 0A = LISTEN); no answer = not busy.
  const hex = port.toString(16).toUpperCase().padStart(4, '0')
  return [
    `if command -v ss >/dev/null 2>&1; then ss -Hltn "sport = :${port}" 2>/dev/null | grep -q . && echo busy; exit 0; fi`,
    `cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk '{print $2, $4}' | grep -qi ":${hex} 0A" && echo busy`,
    'exit 0',
  ].join('\n')
}

function remoteFailure(message: string, output: string, suggestion: string): UserError {
  const tail = maskSecrets(output.trimEnd().split('\n').slice(-12).join('\n'))
  return new UserError(`${message}${tail ? `:\n${tail}` : ''}`, {code: 'remote_install_failed', suggestion})
}

/**
 * Poll /health through a tunnel until it says ok. Between polls the server's process is
 * checked: when it died, the error carries the end of its log instead of a bare timeout.
 */
async function waitRemoteHealthy(
  ctx: ProviderContext,
  dep: Deployment,
  session: SshSession,
  o: {dir: string; port: number; apiKey: string; timeoutMs: number},
): Promise<ServerHealth> {
  const {openTunnel} = await import('../ssh/index.js')
  const ssh = recordedSsh(dep)
  const tunnel = await openTunnel(
    targetOf(ssh, (dep.details.hostKeyPolicy as HostKeyPolicy | null | undefined) ?? undefined),
    [{bindHost: '127.0.0.1', localPort: 0, remoteHost: '127.0.0.1', remotePort: o.port}],
    {signal: ctx.signal, reconnect: {maxAttempts: 5}},
  )
  const url = `http://127.0.0.1:${tunnel.forwards[0].localPort}`
  const deadline = Date.now() + o.timeoutMs
  const interval = Math.min(2000, Math.max(250, Math.floor(o.timeoutMs / 40)))
  let last: ServerHealth | undefined
  try {
    for (;;) {
      if (ctx.signal.aborted) throw new InterruptedError()
      last = await checkServer({url, apiKey: o.apiKey}, {timeoutMs: Math.max(1000, Math.min(10_000, deadline - Date.now())), signal: ctx.signal})
      if (last.ok) return last
      if (last.state === 'unauthorized') {
        throw new UserError(`The server on ${where(ssh)} is up but refused the API key (${last.reason})`, {code: 'health_unauthorized', suggestion: 'Re-run the deploy: it rewrites server.env and restarts the server.'})
      }
      const alive = await sh(session, `cd ${shq(o.dir)} && (${SERVER_RUNNING.replaceAll('\n', '; ')})`, {allowFailure: true, signal: ctx.signal})
      if (alive.exitCode !== 0) {
        const tail = await logTail(session, o.dir, 15)
        throw new UserError(`The gpu-server on ${where(ssh)} exited before it was ready. Its log (${o.dir}/server.log) ends with:\n${tail}`, {
          code: 'server_exited',
          suggestion: /whisperx|No module named|CUDA|cuda/i.test(tail) ? 'Check the engine and device (--engine pocketsphinx runs anywhere), then re-run the deploy.' : 'Fix the problem in the log above, then re-run the deploy.',
        })
      }
      ctx.log(`waiting for the server: ${last.state}${last.reason ? ` (${last.reason})` : ''}`)
      if (Date.now() + interval > deadline) break
      await new Promise((r) => setTimeout(r, interval))
    }
    const tail = await logTail(session, o.dir, 5)
    throw new UserError(`The gpu-server on ${where(ssh)} did not become healthy within ${Math.round(o.timeoutMs / 1000)} s (last: ${last?.state}: ${last?.reason ?? 'no answer'})${tail ? `. Its log ends with:\n${tail}` : ''}`, {
      code: 'health_timeout',
      suggestion: 'Model downloads can take minutes on a first start: re-run the same deploy to wait longer (--health-timeout), or read the log on the host.',
    })
  } finally {
    await tunnel.close()
  }
}

async function logTail(session: SshSession, dir: string, lines: number): Promise<string> {
  const r = await sh(session, `tail -n ${lines} ${shq(posix.join(dir, 'server.log'))} 2>/dev/null; true`, {allowFailure: true}).catch(() => undefined)
  return maskSecrets(r?.stdout.trimEnd() ?? '')
}

// ---------------------------------------------------------------- destroy & status

/** Stop the server and remove the directory jarvis installed it in (only a dir with jarvis's marker). */
export function remoteDestroySteps(dep: Deployment, conn: RemoteConnection): Step[] {
  const dir = recordedDir(dep)
  const ssh = dep.details.ssh as RecordedSsh | undefined
  if (!dir || !ssh?.host) return []
  const at = where(ssh)
  return [
    {
      kind: 'task',
      id: 'stop',
      title: `Stop the server on ${at}`,
      describe: `SIGTERM to the process group in ${dir}/server.pid (SIGKILL if it lingers); nothing to do when it is not running`,
      async run(c, d) {
        const s = await conn.get(c, d)
        const r = await sh(s, stopScript(dir), {signal: c.signal, timeoutMs: 30_000})
        c.log(r.stdout.trim())
      },
    },
    {
      kind: 'task',
      id: 'remove',
      title: `Remove ${dir} on ${at}`,
      describe: `rm -rf ${dir}: the sources, venv, server.env, logs and job data (only when it holds jarvis's ${MARKER} marker)`,
      async run(c, d) {
        const s = await conn.get(c, d)
        const r = await sh(s, `d=${shq(dir)}; if [ ! -e "$d" ]; then echo gone; elif [ -e "$d/${MARKER}" ]; then rm -rf "$d" && echo removed; else echo foreign; fi`, {signal: c.signal, timeoutMs: 120_000})
        if (r.stdout.includes('foreign')) {
          throw new UserError(`${dir} on ${at} has no ${MARKER} marker: not removing a directory jarvis did not make`, {code: 'remote_dir_foreign', suggestion: `Remove it yourself if it is safe to: ssh ${at} rm -rf ${dir}`})
        }
        c.log(r.stdout.includes('gone') ? `${dir} was already gone` : `removed ${dir}`)
      },
    },
  ]
}

/** The server process as seen over SSH (never throws, never prompts: known host keys only). */
export async function remoteStatus(ctx: ProviderContext, dep: Deployment): Promise<ProviderStatus> {
  const ssh = dep.details.ssh as RecordedSsh | undefined
  const dir = recordedDir(dep)
  if (!ssh?.host || !dir) return {state: 'unknown', summary: 'no SSH target or install directory recorded yet'}
  const conn = new RemoteConnection()
  try {
    const recorded = dep.details.hostKeyPolicy as HostKeyPolicy | null | undefined
    const s = await conn.get(ctx, dep, recorded === 'no' ? 'no' : 'yes', 5)
    const r = await sh(s, `cd ${shq(dir)} 2>/dev/null || { echo nodir; exit 0; }; if (${SERVER_RUNNING.replaceAll('\n', '; ')}); then echo "running $(cat server.pid)"; else echo stopped; fi`, {allowFailure: true, signal: ctx.signal, timeoutMs: 10_000})
    const out = r.stdout.trim()
    if (out === 'nodir') return {state: 'missing', summary: `${dir} is gone from ${where(ssh)}`}
    if (out.startsWith('running')) return {state: 'running', summary: `server pid ${out.split(' ')[1]} on ${where(ssh)} (127.0.0.1:${dep.details.remotePort ?? DEFAULT_REMOTE_PORT}), log ${dir}/server.log`, url: sshUrl(ssh), details: {pid: Number(out.split(' ')[1])}}
    return {state: 'stopped', summary: `no server process in ${dir} on ${where(ssh)} (re-run \`jarvis deploy ${dep.provider}\` to start it)`}
  } catch (error) {
    return {state: 'error', summary: `SSH to ${where(ssh)} failed: ${errorMessage(error).split('\n')[0]}`}
  } finally {
    await conn.close()
  }
}

/** Identity file made absolute (it is recorded): a flag is relative to the working directory, jarvis.yaml to its directory. */
export function absoluteIdentity(identity: string | undefined, base: string): string | undefined {
  if (!identity) return undefined
  if (identity.startsWith('~/')) return join(homedir(), identity.slice(2))
  return resolve(base, identity)
}

export function identityCheck(identity: string | undefined): {id: string; label: string; ok: boolean; detail?: string; fix?: string} | undefined {
  if (!identity) return undefined
  return existsSync(identity)
    ? {id: 'identity', label: 'SSH key file present', ok: true, detail: identity}
    : {id: 'identity', label: 'SSH key file present', ok: false, detail: `${identity}: no such file`, fix: 'Pass --identity with the private key that the host accepts'}
}

// The SSH connection a plan's steps share, opened by the first step that needs it and closed
// once the plan is applied (or fails): one map, used by the ssh and vast providers alike.
const planConnections = new WeakMap<object, RemoteConnection>()

/** Remember the connection `plan`'s steps use, so applying it closes the connection afterwards. */
export function withConnection<P extends DeployPlan | DestroyPlan>(plan: P, conn: RemoteConnection): P {
  planConnections.set(plan, conn)
  return plan
}

export async function applyRemotePlan(ctx: ProviderContext, plan: DeployPlan): Promise<Deployment> {
  try {
    return await applyPlan(ctx, plan)
  } finally {
    await planConnections.get(plan)?.close()
  }
}

export async function applyRemoteDestroy(ctx: ProviderContext, dep: Deployment, plan: DestroyPlan): Promise<void> {
  try {
    await applyDestroy(ctx, dep, plan)
  } finally {
    await planConnections.get(plan)?.close()
  }
}
