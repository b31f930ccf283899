// A long-running `jarvis` child process (bin/run.js → dist/) the test can watch and signal,
// for commands like `tunnel` that don't exit on their own.
import {spawn, type ChildProcess} from 'node:child_process'
import {binPath, repoRoot} from '../helpers/cli.js'

export interface CliProcess {
  child: ChildProcess
  stdout(): string
  stderr(): string
  /** Resolves when the text seen on the stream matches; rejects if the process exits first or on timeout. */
  waitFor(pattern: RegExp, stream?: 'stdout' | 'stderr', timeoutMs?: number): Promise<RegExpMatchArray>
  exited: Promise<{code: number | null; signal: NodeJS.Signals | null}>
  stop(signal?: NodeJS.Signals): Promise<{code: number | null; signal: NodeJS.Signals | null}>
}

export function startCli(args: string[], opts: {cwd?: string; env?: Record<string, string | undefined>} = {}): CliProcess {
  const env: Record<string, string | undefined> = {...process.env, NO_COLOR: '1', FORCE_COLOR: '0', SSH_AUTH_SOCK: undefined, ...opts.env}
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k]
  const child = spawn(process.execPath, [binPath, ...args], {cwd: opts.cwd ?? repoRoot, env: env as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe']})
  let out = ''
  let err = ''
  const listeners = new Set<() => void>()
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString()
    for (const l of listeners) l()
  })
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString()
    for (const l of listeners) l()
  })
  const exited = new Promise<{code: number | null; signal: NodeJS.Signals | null}>((resolve) => child.on('exit', (code, signal) => resolve({code, signal})))
  let hasExited = false
  void exited.then(() => {
    hasExited = true
    for (const l of listeners) l()
  })
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor: (pattern, stream = 'stderr', timeoutMs = 20_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const m = (stream === 'stdout' ? out : err).match(pattern)
          if (m) {
            done()
            resolve(m)
          } else if (hasExited) {
            done()
            reject(new Error(`jarvis exited before ${pattern} appeared on ${stream}.\nstdout:\n${out}\nstderr:\n${err}`))
          }
        }
        const timer = setTimeout(() => {
          done()
          reject(new Error(`timed out waiting for ${pattern} on ${stream}.\nstdout:\n${out}\nstderr:\n${err}`))
        }, timeoutMs)
        const done = () => {
          clearTimeout(timer)
          listeners.delete(check)
        }
        listeners.add(check)
        check()
      }),
    stop: async (signal = 'SIGINT') => {
      if (!hasExited) child.kill(signal)
      return exited
    },
  }
}
