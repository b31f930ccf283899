// Questions the SSH layer may ask, on the terminal only: an unknown host key (yes/no, with
// the fingerprint) and the passphrase of an encrypted key. Prompts go to stderr so stdout
// stays clean for --json. Without a TTY there is no interaction and the callers refuse with
// a message that names the flag to pass instead.
import type {SshInteraction} from './connect.js'
import {keyTypeLabel, type UnknownHostKey} from './host-key.js'

export interface TerminalInteractionOptions {
  /** False when prompting is not allowed (no TTY, --json, --yes). */
  canPrompt: boolean
  signal?: AbortSignal
  info?: (message: string) => void
  warn?: (message: string) => void
  debug?: (message: string) => void
}

export function terminalInteraction(opts: TerminalInteractionOptions): SshInteraction {
  const base: SshInteraction = {info: opts.info, warn: opts.warn, debug: opts.debug}
  if (!opts.canPrompt) return base
  const context = {output: process.stderr, signal: opts.signal}
  return {
    ...base,
    confirmHostKey: async (q: UnknownHostKey) => {
      const {confirm} = await import('@inquirer/prompts')
      const lines = [
        `The authenticity of host '${q.name}' can't be established.`,
        `${keyTypeLabel(q.keyType)} key fingerprint is ${q.fingerprint}.`,
        ...q.otherTypes.map((o) => `This host is already known by a ${keyTypeLabel(o.keyType)} key (${o.fingerprint}, ${o.file}:${o.line}).`),
      ]
      process.stderr.write(lines.join('\n') + '\n')
      return confirm({message: `Pin this key in ${q.knownHostsPath} and continue connecting?`, default: false}, context)
    },
    passphrase: async (keyPath: string) => {
      const {password} = await import('@inquirer/prompts')
      const answer = await password({message: `Enter passphrase for key '${keyPath}':`, mask: false}, context)
      return answer === '' ? undefined : answer
    },
  }
}
