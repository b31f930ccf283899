// Runs the bundled gpu-server on this workstation: a Python venv in the user cache dir,
// the package installed from the copy shipped with jarvis (with the engine's extra), the
// server started detached with a pid record and a log file, and a wait on /health.
import {createHash} from 'node:crypto'
import {existsSync} from 'node:fs'
import {mkdir, open, readFile, readdir, rm, stat} from 'node:fs/promises'
import {join} from 'node:path'
import {isAlive, runTool, spawnDetached, terminateGroup, which} from '../exec/exec.js'
import {writeFileAtomic} from '../lib/atomic.js'
import {InterruptedError, UserError} from '../lib/errors.js'
import {packageRoot, userCacheDir, userDataDir} from '../lib/paths.js'
import {registerSecret} from '../lib/secrets.js'
import {checkServer, type ServerHealth} from '../server/client.js'

export type Engine = 'auto' | 'whisperx' | 'pocketsphinx'

export interface ServerOptions {
  host?: string
  port?: number
  engine?: Engine
  model?: string
  device?: string
  computeType?: string
  batchSize?: number
  apiKey?: string
  hfToken?: string
  python?: string
  /** How long to wait for /health (model downloads can take minutes). */
  timeoutMs?: number
}

/** What `gpu-server start` leaves behind so stop/health/logs/transcribe can find the server. */
export interface ServerRecord {
  pid: number
  host: string
  port: number
  url: string
  engine: Engine
  model?: string
  device?: string
  logFile: string
  startedAt: string
  /** Kept in the 0600 record so `transcribe` can reach a server started with a key; never printed. */
  apiKey?: string
}

export interface Progress {
  onStage?: (stage: string, elapsedMs: number) => void
  signal?: AbortSignal
}

const DEFAULT_PORT = 8000

function runDir(): string {
  return join(userDataDir(), 'gpu-server')
}

export function recordPath(port: number): string {
  return join(runDir(), `server-${port}.json`)
}

export function logPath(port: number): string {
  return join(runDir(), `server-${port}.log`)
}

export function serverUrl(host: string, port: number): string {
  const h = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host
  return `http://${h}:${port}`
}

async function readRecord(port: number): Promise<ServerRecord | undefined> {
  try {
    const r = JSON.parse(await readFile(recordPath(port), 'utf8')) as ServerRecord
    registerSecret(r.apiKey)
    return r
  } catch {
    return undefined
  }
}

/** The record of the server on `port`, or of the only/first one running when no port is given. Stale records are removed. */
export async function findServer(port?: number): Promise<ServerRecord | undefined> {
  const ports = port !== undefined ? [port] : await recordedPorts()
  for (const p of ports) {
    const rec = await readRecord(p)
    if (!rec) continue
    if (isAlive(rec.pid)) return rec
    await rm(recordPath(p), {force: true}) // stale: the process is gone
  }
  return undefined
}

async function recordedPorts(): Promise<number[]> {
  try {
    return (await readdir(runDir()))
      .map((f) => /^server-(\d+)\.json$/.exec(f)?.[1])
      .filter((p): p is string => Boolean(p))
      .map(Number)
      .sort((a, b) => (a === DEFAULT_PORT ? -1 : b === DEFAULT_PORT ? 1 : a - b))
  } catch {
    return []
  }
}

// ---------- the Python environment ----------

export function venvDir(): string {
  return join(userCacheDir(), 'gpu-server', 'venv')
}

function venvPython(): string {
  return join(venvDir(), 'bin', 'python')
}

export function serverSourceDir(): string {
  return join(packageRoot(), 'gpu-server')
}

/** A fingerprint of the shipped server sources + extras: the venv is reinstalled when it changes. */
async function sourceFingerprint(extras: string[]): Promise<string> {
  const h = createHash('sha256')
  h.update(extras.join(','))
  const walk = async (dir: string) => {
    for (const e of (await readdir(dir, {withFileTypes: true})).sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.name === '__pycache__' || e.name.endsWith('.egg-info') || e.name === 'tests' || e.name.startsWith('.')) continue
      const p = join(dir, e.name)
      if (e.isDirectory()) await walk(p)
      else if (/\.(py|toml|txt|cfg)$/.test(e.name)) h.update(e.name).update(await readFile(p))
    }
  }
  await walk(serverSourceDir())
  return h.digest('hex').slice(0, 16)
}

async function findPython(explicit?: string): Promise<string> {
  const candidates = explicit ? [explicit] : ['python3.12', 'python3.11', 'python3.10', 'python3.13', 'python3']
  for (const c of candidates) {
    const path = c.includes('/') ? (existsSync(c) ? c : undefined) : await which(c)
    if (!path) continue
    const r = await runTool(path, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], {allowFailure: true, timeoutMs: 15_000})
    const [maj, min] = r.stdout.trim().split('.').map(Number)
    if (r.exitCode === 0 && maj === 3 && min >= 10) return path
    if (explicit) throw new UserError(`${explicit} is Python ${r.stdout.trim() || '?'}; the gpu-server needs Python 3.10 or newer`, {code: 'python_too_old'})
  }
  throw new UserError('No Python 3.10+ found for the gpu-server', {code: 'python_missing', suggestion: 'Install Python 3.10 or newer, or pass --python /path/to/python3.'})
}

/** Extras to install for an engine. `auto` installs whisperx: that is what auto means on a GPU box. */
export function extrasFor(engine: Engine): string[] {
  return engine === 'pocketsphinx' ? ['pocketsphinx'] : ['whisperx']
}

/** Create or update the venv. Returns its python. Idempotent and fast when nothing changed. */
export async function ensureVenv(opts: {python?: string; engine: Engine}, progress: Progress = {}): Promise<string> {
  const extras = extrasFor(opts.engine)
  const marker = join(venvDir(), '.jarvis-installed')
  const want = await sourceFingerprint(extras)
  const have = await readFile(marker, 'utf8').catch(() => '')
  // A venv that has these extras (or more) with the same sources is reused.
  if (have.split('\n').includes(want) && existsSync(venvPython())) return venvPython()
  const started = Date.now()
  if (!existsSync(venvPython())) {
    const python = await findPython(opts.python)
    progress.onStage?.(`creating a Python venv in ${venvDir()}`, Date.now() - started)
    await mkdir(join(venvDir(), '..'), {recursive: true})
    await runTool(python, ['-m', 'venv', venvDir()], {timeoutMs: 120_000, signal: progress.signal})
  }
  progress.onStage?.(`installing the gpu-server with the ${extras.join(', ')} extra (pip)`, Date.now() - started)
  await runTool(venvPython(), ['-m', 'pip', 'install', '--disable-pip-version-check', '-q', `${serverSourceDir()}[${extras.join(',')}]`], {
    timeoutMs: 30 * 60_000,
    signal: progress.signal,
    env: {PIP_RETRIES: process.env.PIP_RETRIES ?? '2', PIP_TIMEOUT: process.env.PIP_TIMEOUT ?? '15'},
  }).catch((error) => {
    throw new UserError(`Installing the gpu-server (${extras.join(', ')}) failed: ${(error as Error).message}`, {
      code: 'server_install_failed',
      suggestion:
        extras[0] === 'whisperx'
          ? 'WhisperX needs PyTorch and network access to PyPI. On a machine without them, use --engine pocketsphinx.'
          : 'Check that pip can reach your package index (PIP_INDEX_URL).',
    })
  })
  await writeFileAtomic(marker, [...have.split('\n').filter(Boolean), want].join('\n') + '\n')
  return venvPython()
}

// ---------- start / stop ----------

export function serverArgs(opts: ServerOptions, port: number): string[] {
  const args = ['-m', 'jarvis_gpu_server', '--host', opts.host ?? '127.0.0.1', '--port', String(port), '--engine', opts.engine ?? 'auto']
  if (opts.model) args.push('--model', opts.model)
  if (opts.device) args.push('--device', opts.device)
  if (opts.computeType) args.push('--compute-type', opts.computeType)
  if (opts.batchSize) args.push('--batch-size', String(opts.batchSize))
  return args
}

/** Secrets reach the server through its environment, never argv (visible in `ps`). */
export function serverEnv(opts: ServerOptions): Record<string, string | undefined> {
  return {JARVIS_GPU_API_KEY: opts.apiKey, JARVIS_GPU_HF_TOKEN: opts.hfToken, PYTHONUNBUFFERED: '1'}
}

async function lastLogLine(file: string): Promise<string | undefined> {
  try {
    const fh = await open(file, 'r')
    try {
      const {size} = await fh.stat()
      const len = Math.min(size, 4096)
      const buf = Buffer.alloc(len)
      await fh.read(buf, 0, len, size - len)
      const lines = buf.toString('utf8').split('\n').map((l) => l.trim()).filter(Boolean)
      return lines.at(-1)
    } finally {
      await fh.close()
    }
  } catch {
    return undefined
  }
}

export async function logTail(file: string, lines = 20): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '')
  return text.trimEnd().split('\n').slice(-lines).join('\n')
}

async function portInUse(host: string, port: number): Promise<boolean> {
  const net = await import('node:net')
  return new Promise((resolve) => {
    const sock = net.connect({host: host === '0.0.0.0' ? '127.0.0.1' : host, port})
    sock.once('connect', () => (sock.destroy(), resolve(true)))
    sock.once('error', () => resolve(false))
    sock.setTimeout(1000, () => (sock.destroy(), resolve(false)))
  })
}

/** Wait until the server at `rec` is healthy, reporting the log's last line as the stage. */
export async function waitForHealthy(rec: ServerRecord, timeoutMs: number, progress: Progress = {}): Promise<ServerHealth> {
  const started = Date.now()
  let last: ServerHealth | undefined
  while (Date.now() - started < timeoutMs) {
    if (progress.signal?.aborted) throw new InterruptedError()
    last = await checkServer({url: rec.url, apiKey: rec.apiKey}, {timeoutMs: 2000, signal: progress.signal})
    if (last.ok) return last
    if (!isAlive(rec.pid)) {
      await rm(recordPath(rec.port), {force: true})
      const tail = await logTail(rec.logFile, 12)
      throw new UserError(`The gpu-server exited before it was ready. Its log (${rec.logFile}) ends with:\n${tail}`, {
        code: 'server_exited',
        suggestion: /whisperx|No module named/i.test(tail) ? 'Install the whisperx extra on a GPU machine, or start with --engine pocketsphinx.' : 'Fix the problem in the log above and start it again.',
      })
    }
    const stage = (await lastLogLine(rec.logFile)) ?? last.reason ?? 'starting'
    progress.onStage?.(stage, Date.now() - started)
    await new Promise((r) => setTimeout(r, 250))
  }
  throw new UserError(`The gpu-server did not become healthy within ${Math.round(timeoutMs / 1000)} s (last: ${last?.reason ?? 'no answer'})`, {
    code: 'server_timeout',
    suggestion: `See its log: jarvis gpu-server logs --port ${rec.port}. It keeps running; stop it with jarvis gpu-server stop --port ${rec.port}.`,
  })
}

export interface StartResult {
  record: ServerRecord
  health: ServerHealth
  alreadyRunning: boolean
  /** When a server was already running: what it runs that differs from what was asked for. */
  mismatch?: string
}

function mismatchOf(rec: ServerRecord, health: ServerHealth, opts: ServerOptions): string | undefined {
  const running = {engine: health.info?.engine ?? rec.engine, model: health.info?.model ?? rec.model}
  const diffs: string[] = []
  if (opts.engine && opts.engine !== 'auto' && running.engine && opts.engine !== running.engine) diffs.push(`engine ${running.engine}, not ${opts.engine}`)
  if (opts.model && running.model && opts.model !== running.model) diffs.push(`model ${running.model}, not ${opts.model}`)
  return diffs.length ? diffs.join('; ') : undefined
}

/** Start the server detached (or find it already running on that port) and wait for /health. */
export async function startServer(opts: ServerOptions, progress: Progress = {}): Promise<StartResult> {
  const host = opts.host ?? '127.0.0.1'
  const port = opts.port ?? DEFAULT_PORT
  registerSecret(opts.apiKey)
  registerSecret(opts.hfToken)
  const existing = await findServer(port)
  if (existing) {
    const health = await waitForHealthy(existing, opts.timeoutMs ?? 600_000, progress)
    return {record: existing, health, alreadyRunning: true, mismatch: mismatchOf(existing, health, opts)}
  }
  // The server refuses this itself, but its advice (--insecure) is not a flag of ours: say it here, before the venv work.
  if (!opts.apiKey && !process.env.JARVIS_GPU_API_KEY && !isLoopbackHost(host)) {
    throw new UserError(`Refusing to serve on ${host} without an API key: anyone who can reach the port could use the server`, {
      code: 'api_key_required',
      suggestion: 'Set EXTERNAL_GPU_API_KEY (or pass --api-key), or keep the default --host 127.0.0.1.',
    })
  }
  if (await portInUse(host, port)) {
    throw new UserError(`Port ${port} is already in use by another program`, {code: 'port_in_use', suggestion: 'Pass --port with a free port, or stop what is listening there.'})
  }
  const python = await ensureVenv({python: opts.python, engine: opts.engine ?? 'auto'}, progress)
  await mkdir(runDir(), {recursive: true})
  const logFile = logPath(port)
  await rm(logFile, {force: true})
  const {pid} = await spawnDetached(python, serverArgs({...opts, host}, port), {logFile, env: serverEnv(opts)})
  const record: ServerRecord = {
    pid,
    host,
    port,
    url: serverUrl(host, port),
    engine: opts.engine ?? 'auto',
    model: opts.model,
    device: opts.device,
    logFile,
    startedAt: new Date().toISOString(),
    apiKey: opts.apiKey,
  }
  await writeFileAtomic(recordPath(port), JSON.stringify(record, null, 2), {mode: 0o600})
  try {
    const health = await waitForHealthy(record, opts.timeoutMs ?? 600_000, progress)
    return {record, health, alreadyRunning: false}
  } catch (error) {
    // Interrupted while loading: don't leave a half-started server behind.
    if (error instanceof InterruptedError) await stopServer(port)
    throw error
  }
}

export async function stopServer(port?: number): Promise<{stopped: boolean; record?: ServerRecord; how?: string}> {
  const rec = await findServer(port)
  if (!rec) return {stopped: false}
  const how = await terminateGroup(rec.pid)
  await rm(recordPath(rec.port), {force: true})
  return {stopped: how !== 'not-running', record: rec, how}
}

export async function logFileFor(port?: number): Promise<string | undefined> {
  const rec = await findServer(port)
  if (rec) return rec.logFile
  const candidate = logPath(port ?? DEFAULT_PORT)
  return (await stat(candidate).catch(() => undefined)) ? candidate : undefined
}

function isLoopbackHost(host: string): boolean {
  const h = host.trim().replace(/^\[|\]$/g, '').toLowerCase()
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h)
}
