// SSH failures as jarvis errors. `retryable` is what the tunnel's reconnect loop acts on:
// a dropped network is retried; a refused host key or a failed login is not.
import {JarvisError} from '../lib/errors.js'

export class SshError extends JarvisError {
  readonly retryable: boolean

  constructor(message: string, opts: {code: string; retryable?: boolean; suggestion?: string; cause?: unknown}) {
    super(message, {code: opts.code, suggestion: opts.suggestion, cause: opts.cause})
    this.retryable = opts.retryable ?? false
  }
}

const RETRYABLE_SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ECONNABORTED'])

/** Turn an ssh2 / socket error into an SshError that says where and why. */
export function classifySshError(err: unknown, where: string): SshError {
  if (err instanceof SshError) return err
  const e = err as Error & {level?: string; code?: string}
  const msg = e?.message ?? String(err)
  if (e.level === 'client-authentication') {
    return new SshError(`Permission denied for ${where}: no key was accepted`, {
      code: 'ssh_auth_failed',
      suggestion: 'Pass --identity PATH, load your key into ssh-agent (ssh-add), or check the server\'s authorized_keys.',
      cause: err,
    })
  }
  if (e.level === 'client-timeout') {
    return new SshError(`${msg.replace(/\.$/, '')} (${where})`, {code: 'ssh_timeout', retryable: true, cause: err})
  }
  if (e.level === 'client-socket' || e.code) {
    if (e.code === 'ENOTFOUND') {
      return new SshError(`Cannot resolve the SSH host of ${where}`, {code: 'ssh_host_not_found', retryable: true, suggestion: 'Check --host (or HostName in ~/.ssh/config).', cause: err})
    }
    const retryable = e.code ? RETRYABLE_SOCKET_CODES.has(e.code) : true
    return new SshError(`Cannot connect to ${where}: ${msg}`, {
      code: 'ssh_connect_failed',
      retryable,
      suggestion: e.code === 'ECONNREFUSED' ? 'Is sshd running there, and is the port right (--port)?' : undefined,
      cause: err,
    })
  }
  if (e.level === 'handshake' || e.level === 'protocol') {
    return new SshError(`SSH handshake with ${where} failed: ${msg}`, {code: 'ssh_handshake_failed', cause: err})
  }
  return new SshError(`SSH connection to ${where} failed: ${msg}`, {code: 'ssh_failed', retryable: true, cause: err})
}
