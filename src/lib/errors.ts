// The error taxonomy. Every failure a user can meet is one of these; the base command
// turns them into a readable message (with the fix) or a JSON envelope, and an exit code.
import {maskSecrets} from './secrets.js'

export const EXIT = {ok: 0, failure: 1, usage: 2, interrupted: 130} as const

export class JarvisError extends Error {
  readonly code: string
  readonly exitCode: number
  /** What the user can do about it, shown under the message. */
  readonly suggestion?: string

  constructor(message: string, opts: {code?: string; exitCode?: number; suggestion?: string; cause?: unknown} = {}) {
    super(message, {cause: opts.cause})
    this.name = new.target.name
    this.code = opts.code ?? 'failure'
    this.exitCode = opts.exitCode ?? EXIT.failure
    this.suggestion = opts.suggestion
  }

  toJSON(): Record<string, unknown> {
    return {code: this.code, message: maskSecrets(this.message), ...(this.suggestion ? {suggestion: maskSecrets(this.suggestion)} : {})}
  }
}

/** The user asked for something that can't be done as asked (missing file, unhealthy backend, ...). */
export class UserError extends JarvisError {
  constructor(message: string, opts: {code?: string; suggestion?: string; cause?: unknown} = {}) {
    super(message, {code: opts.code ?? 'user_error', exitCode: EXIT.failure, suggestion: opts.suggestion, cause: opts.cause})
  }
}

/** Bad flags or arguments: exit code 2, like every Unix tool. */
export class UsageError extends JarvisError {
  constructor(message: string, opts: {suggestion?: string} = {}) {
    super(message, {code: 'usage', exitCode: EXIT.usage, suggestion: opts.suggestion})
  }
}

export interface ConfigProblem {
  file: string
  line?: number
  column?: number
  path: string
  message: string
}

/** One or more problems in jarvis.yaml (or a catalog file), each with file:line:column and key path. */
export class ConfigError extends JarvisError {
  readonly problems: ConfigProblem[]

  constructor(problems: ConfigProblem[], opts: {suggestion?: string} = {}) {
    super(problems.map((p) => formatProblem(p)).join('\n'), {code: 'config_invalid', exitCode: EXIT.failure, suggestion: opts.suggestion})
    this.problems = problems
  }

  override toJSON(): Record<string, unknown> {
    return {...super.toJSON(), problems: this.problems}
  }
}

export function formatProblem(p: ConfigProblem): string {
  const where = p.line ? `${p.file}:${p.line}:${p.column ?? 1}` : p.file
  return p.path ? `${where} ${p.path}: ${p.message}` : `${where}: ${p.message}`
}

/** An outside program (flyctl, gcloud, ssh, ...) failed. Carries its command line and the tail of its stderr. */
export class ExternalError extends JarvisError {
  readonly command: string
  readonly toolExitCode?: number
  readonly stderrTail: string

  constructor(message: string, opts: {command: string; toolExitCode?: number; stderrTail?: string; suggestion?: string; code?: string}) {
    super(message, {code: opts.code ?? 'external_command_failed', exitCode: EXIT.failure, suggestion: opts.suggestion})
    this.command = opts.command
    this.toolExitCode = opts.toolExitCode
    this.stderrTail = opts.stderrTail ?? ''
  }

  override toJSON(): Record<string, unknown> {
    return {...super.toJSON(), command: maskSecrets(this.command), exitCode: this.toolExitCode, stderr: maskSecrets(this.stderrTail)}
  }
}

/** A required program is not on PATH. */
export class ToolMissingError extends JarvisError {
  readonly tool: string
  constructor(tool: string, installHint: string) {
    super(`${tool} is not installed (not found on PATH)`, {code: 'tool_missing', exitCode: EXIT.failure, suggestion: installHint})
    this.tool = tool
  }
}

/** Ctrl-C or another abort. */
export class InterruptedError extends JarvisError {
  constructor(message = 'Interrupted') {
    super(message, {code: 'interrupted', exitCode: EXIT.interrupted})
  }
}

/** Something jarvis itself got wrong: says so, so users report it instead of debugging their setup. */
export class BugError extends JarvisError {
  constructor(message: string, cause?: unknown) {
    super(message, {code: 'bug', exitCode: EXIT.failure, suggestion: 'This is a bug in jarvis. Re-run with --verbose and report the output.', cause})
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message
  return String(err)
}
