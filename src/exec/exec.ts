// The one module that starts other programs. argv arrays only (never a shell string),
// a timeout on everything, cancellation by AbortSignal, secrets masked in every error.
import {execa, type ResultPromise} from 'execa'
import {ExternalError, InterruptedError, ToolMissingError} from '../lib/errors.js'
import {maskSecrets} from '../lib/secrets.js'

export interface RunOptions {
  /** Written to the program's stdin (how secrets reach provider CLIs: never argv). */
  input?: string
  env?: Record<string, string | undefined>
  cwd?: string
  timeoutMs?: number
  signal?: AbortSignal
  /** Called with each line of stdout/stderr as it arrives (for streaming under a spinner). */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void
  /** Don't throw on a non-zero exit: the caller inspects exitCode. */
  allowFailure?: boolean
  /** What to tell the user when the program is missing. */
  installHint?: string
}

export interface RunResult {
  command: string
  exitCode: number
  stdout: string
  stderr: string
}

const INSTALL_HINTS: Record<string, string> = {
  fly: 'Install flyctl: curl -L https://fly.io/install.sh | sh (then `fly auth login`)',
  flyctl: 'Install flyctl: curl -L https://fly.io/install.sh | sh (then `fly auth login`)',
  gcloud: 'Install the Google Cloud CLI: https://cloud.google.com/sdk/docs/install (then `gcloud auth login`)',
  aws: 'Install the AWS CLI v2: https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html (then `aws configure`)',
  modal: 'Install Modal: pip install modal (then `modal setup`)',
  kubectl: 'Install kubectl: https://kubernetes.io/docs/tasks/tools/',
  vastai: 'Install the Vast.ai CLI: pip install vastai (then `vastai set api-key`)',
  ssh: 'Install the OpenSSH client (apt-get install openssh-client)',
  python3: 'Install Python 3.10 or newer, or pass --python PATH',
}

export function installHint(tool: string): string {
  return INSTALL_HINTS[tool] ?? `Install ${tool} and make sure it is on PATH`
}

export function formatCommand(cmd: string, args: readonly string[]): string {
  const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)
  return [cmd, ...args].map(quote).join(' ')
}

function tail(text: string, lines = 15): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n')
}

export async function runTool(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const command = formatCommand(cmd, args)
  let child: ResultPromise
  try {
    child = execa(cmd, args, {
      input: opts.input,
      stdin: opts.input === undefined ? 'ignore' : 'pipe',
      env: opts.env,
      extendEnv: true,
      cwd: opts.cwd,
      timeout: opts.timeoutMs,
      cancelSignal: opts.signal,
      reject: false,
      all: false,
      stripFinalNewline: false,
      forceKillAfterDelay: 3000,
    })
  } catch (error) {
    throw new ExternalError(`Could not start ${cmd}: ${(error as Error).message}`, {command})
  }
  if (opts.onLine) {
    const pump = (stream: NodeJS.ReadableStream | null | undefined, name: 'stdout' | 'stderr') => {
      if (!stream) return
      let buf = ''
      stream.on('data', (chunk: Buffer) => {
        buf += chunk.toString('utf8')
        let nl
        while ((nl = buf.indexOf('\n')) >= 0) {
          opts.onLine!(maskSecrets(buf.slice(0, nl)), name)
          buf = buf.slice(nl + 1)
        }
      })
      stream.on('end', () => buf && opts.onLine!(maskSecrets(buf), name))
    }
    pump(child.stdout, 'stdout')
    pump(child.stderr, 'stderr')
  }
  const r = await child
  const stdout = String(r.stdout ?? '')
  const stderr = String(r.stderr ?? '')
  if ((r as {code?: string}).code === 'ENOENT' || /ENOENT/.test(String((r as {originalMessage?: string}).originalMessage ?? ''))) {
    throw new ToolMissingError(cmd, opts.installHint ?? installHint(cmd))
  }
  if (r.isCanceled) throw new InterruptedError(`Interrupted while running ${maskSecrets(command)}`)
  if (r.timedOut) {
    throw new ExternalError(`${cmd} did not finish within ${Math.round((opts.timeoutMs ?? 0) / 1000)} s`, {command, stderrTail: tail(stderr), code: 'external_timeout'})
  }
  const exitCode = r.exitCode ?? 1
  if (exitCode !== 0 && !opts.allowFailure) {
    const last = tail(stderr || stdout, 1)
    throw new ExternalError(`${maskSecrets(command)} failed (exit ${exitCode})${last ? `: ${maskSecrets(last)}` : ''}`, {
      command,
      toolExitCode: exitCode,
      stderrTail: tail(stderr || stdout),
    })
  }
  return {command, exitCode, stdout, stderr}
}

/** Whether a program is on PATH (no process started). */
export async function which(cmd: string): Promise<string | undefined> {
  const {access, constants} = await import('node:fs/promises')
  const {delimiter, join} = await import('node:path')
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue
    const p = join(dir, cmd)
    try {
      await access(p, constants.X_OK)
      return p
    } catch {}
  }
  return undefined
}

export interface DetachedProcess {
  pid: number
}

/**
 * Start a long-lived program in its own process group, detached from this one, with
 * stdout and stderr appended to a log file. Used for the local gpu-server.
 */
export async function spawnDetached(cmd: string, args: readonly string[], opts: {logFile: string; env?: Record<string, string | undefined>; cwd?: string}): Promise<DetachedProcess> {
  const {spawn} = await import('node:child_process')
  const {openSync, closeSync} = await import('node:fs')
  const fd = openSync(opts.logFile, 'a', 0o600)
  try {
    const child = spawn(cmd, args, {detached: true, stdio: ['ignore', fd, fd], env: {...process.env, ...opts.env}, cwd: opts.cwd})
    const pid = await new Promise<number>((resolve, reject) => {
      child.once('error', (err: NodeJS.ErrnoException) => reject(err.code === 'ENOENT' ? new ToolMissingError(cmd, installHint(cmd)) : err))
      child.once('spawn', () => resolve(child.pid!))
    })
    child.unref()
    return {pid}
  } finally {
    closeSync(fd)
  }
}

/** Run a program attached to this terminal (stdio inherited) until it exits; Ctrl-C reaches it too. */
export async function runAttached(cmd: string, args: readonly string[], opts: {env?: Record<string, string | undefined>; cwd?: string} = {}): Promise<number> {
  const {spawn} = await import('node:child_process')
  const child = spawn(cmd, args, {stdio: 'inherit', env: {...process.env, ...opts.env}, cwd: opts.cwd})
  return new Promise<number>((resolve, reject) => {
    child.once('error', (err: NodeJS.ErrnoException) => reject(err.code === 'ENOENT' ? new ToolMissingError(cmd, installHint(cmd)) : err))
    child.once('exit', (code, signal) => resolve(code ?? (signal === 'SIGINT' ? 130 : 1)))
  })
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** SIGTERM a detached process group, then SIGKILL after graceMs. Resolves once it is gone. */
export async function terminateGroup(pid: number, graceMs = 10_000): Promise<'terminated' | 'killed' | 'not-running'> {
  if (!isAlive(pid)) return 'not-running'
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-pid, sig)
    } catch {
      try {
        process.kill(pid, sig)
      } catch {}
    }
  }
  signal('SIGTERM')
  const deadline = Date.now() + graceMs
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return 'terminated'
    await new Promise((r) => setTimeout(r, 100))
  }
  signal('SIGKILL')
  for (let i = 0; i < 50 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 100))
  return 'killed'
}
