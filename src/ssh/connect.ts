// The one module that talks to ssh2. connectSsh() opens an authenticated connection
// (through ProxyJump hops when configured) with host keys checked; SshConnection then runs
// remote commands (argv, quoted explicitly), moves files over SFTP and opens forwarded
// channels for the tunnel.
import {readFile} from 'node:fs/promises'
import {createRequire} from 'node:module'
import ssh2 from 'ssh2'
import type {AnyAuthMethod, AuthenticationType, Client, ClientChannel, ConnectConfig, ParsedKey} from 'ssh2'
import {InterruptedError} from '../lib/errors.js'
import {classifySshError, SshError} from './errors.js'
import {verifyHostKey, type UnknownHostKey} from './host-key.js'
import {knownKeyTypes, readKnownHostsFile, hostKeyName} from './known-hosts.js'
import {describeHop, resolveSshTarget, type ResolvedHop, type ResolvedTarget, type ResolveOptions, type SshTargetSpec} from './resolve.js'
import {SshSession} from './session.js'

const {Client: SshClient, utils} = ssh2

/**
 * Whether ssh2's optional native crypto binding loaded. Without it (not built, or built
 * against another Node's headers) ciphers run in JS and tunnels move about half as much.
 */
export function nativeCryptoAvailable(): boolean {
  try {
    return Boolean((createRequire(import.meta.url)('ssh2/lib/protocol/crypto.js') as {bindingAvailable?: boolean}).bindingAvailable)
  } catch {
    return false
  }
}

/** How the SSH layer talks to the person at the keyboard. Leave out what can't be asked (no TTY). */
export interface SshInteraction {
  /** An unknown host key under the `ask` policy: resolve true to pin it. */
  confirmHostKey?: (q: UnknownHostKey) => Promise<boolean>
  /** The passphrase of an encrypted private key; undefined skips the key. */
  passphrase?: (keyPath: string) => Promise<string | undefined>
  info?: (message: string) => void
  warn?: (message: string) => void
  debug?: (message: string) => void
}

export interface ConnectOptions extends ResolveOptions {
  signal?: AbortSignal
  interaction?: SshInteraction
}

// ssh2's default host key algorithm order (lib/protocol/constants.js DEFAULT_SERVER_HOST_KEY).
const HOST_KEY_ALGOS = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']
const ALGOS_FOR_KEY_TYPE: Record<string, string[]> = {'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']}

/** Offer the algorithms of keys already pinned for this host first (as OpenSSH does), so the server presents a key we know. */
async function hostKeyAlgorithms(hop: ResolvedHop): Promise<string[]> {
  const files = await Promise.all(hop.knownHostsFiles.map((f) => readKnownHostsFile(f)))
  const preferred = knownKeyTypes(files, hostKeyName(hop.hostName, hop.port)).flatMap((t) => ALGOS_FOR_KEY_TYPE[t] ?? [t]).filter((a) => HOST_KEY_ALGOS.includes(a))
  return [...new Set([...preferred, ...HOST_KEY_ALGOS])]
}

// Keys decrypted once stay usable for the life of the process, so a reconnect never asks again.
const decryptedKeys = new Map<string, ParsedKey>()

type KeyLoad = {key: ParsedKey} | {skipped: string}

async function loadKey(path: string, explicit: boolean, interaction: SshInteraction | undefined, pause: () => () => void): Promise<KeyLoad> {
  const cached = decryptedKeys.get(path)
  if (cached) return {key: cached}
  let data: Buffer
  try {
    data = await readFile(path)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    return {skipped: explicit ? `${path}: ${code === 'ENOENT' ? 'no such file' : (error as Error).message}` : `${path}: unreadable`}
  }
  let parsed = utils.parseKey(data)
  if (parsed instanceof Error && /encrypted/i.test(parsed.message) && /passphrase/i.test(parsed.message)) {
    if (!interaction?.passphrase) return {skipped: `${path} is encrypted and there is no terminal to ask for its passphrase (load it into ssh-agent with ssh-add)`}
    for (let attempt = 0; attempt < 3; attempt++) {
      const resume = pause()
      let pass: string | undefined
      try {
        pass = await interaction.passphrase(path)
      } finally {
        resume()
      }
      if (pass === undefined) return {skipped: `${path}: no passphrase given`}
      parsed = utils.parseKey(data, pass)
      if (!(parsed instanceof Error)) break
      interaction.warn?.(`Bad passphrase for ${path}`)
    }
  }
  if (parsed instanceof Error) return {skipped: `${path}: ${parsed.message}`}
  const key = Array.isArray(parsed) ? parsed[0] : parsed
  if (!key.isPrivateKey()) return {skipped: `${path} is not a private key`}
  decryptedKeys.set(path, key)
  return {key}
}

/** One SSH handshake (host key check + auth) over a TCP connection or a given socket (a jump channel). */
function connectHop(hop: ResolvedHop, sock: ClientChannel | undefined, opts: ConnectOptions): Promise<Client> {
  const where = describeHop(hop)
  const interaction = opts.interaction
  return new Promise<Client>((resolvePromise, rejectPromise) => {
    const client = new SshClient()
    let settled = false
    let failure: Error | undefined
    const notes: string[] = []
    let timer: NodeJS.Timeout | undefined
    const arm = () => {
      clearTimeout(timer)
      if (hop.connectTimeoutMs > 0) {
        timer = setTimeout(() => {
          failure = new SshError(`Timed out after ${hop.connectTimeoutMs / 1000}s connecting to ${where}`, {code: 'ssh_timeout', retryable: true})
          client.destroy()
          finish(failure)
        }, hop.connectTimeoutMs)
      }
    }
    // A prompt (host key, passphrase) stops the clock: the user may take their time.
    const pause = () => {
      clearTimeout(timer)
      return arm
    }
    const onAbort = () => {
      client.destroy()
      finish(new InterruptedError())
    }
    const finish = (err?: Error) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      opts.signal?.removeEventListener('abort', onAbort)
      client.removeListener('ready', onReady)
      client.removeListener('close', onClose)
      if (err) {
        client.removeListener('error', onError)
        client.on('error', () => {}) // late errors from a dead client are not ours to report
        client.destroy()
        rejectPromise(err)
      } else resolvePromise(client)
    }
    const onReady = () => finish()
    const onError = (err: Error & {level?: string}) => {
      // ssh2 reports an unusable agent (a stale SSH_AUTH_SOCK) or a key that failed to sign as
      // an 'error' and then goes on with the next method: note it, don't fail the connection.
      if (err.level === 'agent' || (err.level === 'client-authentication' && /sign/i.test(err.message))) {
        notes.push(`${err.level === 'agent' ? 'ssh-agent' : 'key'}: ${err.message}`)
        return
      }
      if (failure) return finish(failure)
      let e = classifySshError(err, where)
      if (e.code === 'ssh_auth_failed') {
        const tried = [hop.agentSocket ? 'ssh-agent' : undefined, ...triedKeys].filter(Boolean)
        e = new SshError(`Permission denied (publickey) for ${where}. Tried: ${tried.length ? tried.join(', ') : 'no keys (none found)'}.${notes.length ? '\n' + notes.join('\n') : ''}`, {
          code: 'ssh_auth_failed',
          suggestion: e.suggestion,
        })
      }
      finish(e)
    }
    const onClose = () => finish(failure ?? new SshError(`Connection to ${where} closed during the SSH handshake`, {code: 'ssh_connect_failed', retryable: true}))
    client.on('ready', onReady).on('error', onError).on('close', onClose)
    // Without TCP_NODELAY a small request waits out the peer's delayed ACK (~40 ms a request through a tunnel).
    client.on('connect', () => client.setNoDelay(true))
    if (opts.signal?.aborted) return onAbort()
    opts.signal?.addEventListener('abort', onAbort, {once: true})

    // Auth order: explicitly named keys that need no passphrase, then the agent, then the
    // rest (default keys; encrypted keys, which may prompt). IdentitiesOnly skips the agent.
    const triedKeys: string[] = []
    const steps: ({type: 'agent'} | {type: 'key'; path: string; explicit: boolean})[] = []
    for (const f of hop.identityFiles.filter((f) => f.explicit)) steps.push({type: 'key', ...f})
    if (hop.agentSocket && !(hop.identitiesOnly && hop.identityFiles.some((f) => f.explicit))) steps.push({type: 'agent'})
    for (const f of hop.identityFiles.filter((f) => !f.explicit)) steps.push({type: 'key', ...f})
    const authHandler = (methodsLeft: AuthenticationType[] | null, _partial: boolean | null, next: (auth: AnyAuthMethod | false) => void) => {
      void (async (): Promise<AnyAuthMethod | false> => {
        if (methodsLeft && !methodsLeft.includes('publickey')) {
          notes.push(`The server accepts only: ${methodsLeft.join(', ')} (jarvis authenticates with keys only).`)
          return false
        }
        while (steps.length) {
          const step = steps.shift()!
          if (step.type === 'agent') return {type: 'agent', username: hop.user, agent: hop.agentSocket!}
          const loaded = await loadKey(step.path, step.explicit, interaction, pause)
          if ('skipped' in loaded) {
            notes.push(`Skipped ${loaded.skipped}.`)
            continue
          }
          triedKeys.push(step.path)
          return {type: 'publickey', username: hop.user, key: loaded.key}
        }
        return false
      })().then(next, (err: Error) => {
        failure = err
        next(false)
      })
    }

    void hostKeyAlgorithms(hop).then(
      (serverHostKey) => {
        if (settled) return
        arm()
        const cfg: ConnectConfig = {
          host: hop.hostName,
          port: hop.port,
          username: hop.user,
          sock: sock as ConnectConfig['sock'],
          readyTimeout: 0, // our own timer above, paused while a prompt is up
          keepaliveInterval: hop.keepaliveIntervalMs,
          keepaliveCountMax: hop.keepaliveCountMax,
          algorithms: {serverHostKey: serverHostKey as ssh2.ServerHostKeyAlgorithm[]},
          authHandler: authHandler as ConnectConfig['authHandler'],
          hostVerifier: ((key: Buffer, verify: (ok: boolean) => void) => {
            const resume = pause()
            verifyHostKey(key, {
              host: hop.hostName,
              port: hop.port,
              policy: hop.hostKeyPolicy,
              knownHostsFiles: hop.knownHostsFiles,
              hashKnownHosts: hop.hashKnownHosts,
              confirm: interaction?.confirmHostKey,
              info: interaction?.info,
              warn: interaction?.warn,
            }).then(
              () => {
                resume()
                verify(true)
              },
              (err: Error) => {
                failure = err
                verify(false)
              },
            )
          }) as unknown as ConnectConfig['hostVerifier'],
        }
        try {
          client.connect(cfg)
        } catch (error) {
          finish(new SshError(`Cannot connect to ${where}: ${(error as Error).message}`, {code: 'ssh_config_invalid', cause: error}))
        }
      },
      (err: Error) => finish(err),
    )
  })
}

/**
 * Open an SSH connection to a target: ~/.ssh/config applied, ProxyJump hops connected in
 * turn (each hop's host key checked), keys from --identity / IdentityFile / the defaults,
 * and ssh-agent. Rejects with an SshError that says what to do.
 */
export async function connectSsh(target: SshTargetSpec | ResolvedTarget, opts: ConnectOptions = {}): Promise<SshSession> {
  const resolved = 'jumps' in target ? target : await resolveSshTarget(target, opts)
  const clients: Client[] = []
  try {
    let sock: ClientChannel | undefined
    const hops = [...resolved.jumps, resolved]
    for (const [i, hop] of hops.entries()) {
      opts.interaction?.debug?.(`ssh: connecting to ${describeHop(hop)}${i > 0 ? ` via ${describeHop(hops[i - 1])}` : ''}`)
      const client = await connectHop(hop, sock, opts)
      clients.push(client)
      const next = hops[i + 1]
      if (next) sock = await openJumpChannel(client, hop, next)
    }
  } catch (error) {
    for (const c of clients.reverse()) c.destroy()
    throw error
  }
  return new SshSession(clients.at(-1)!, resolved, clients.slice(0, -1))
}

function openJumpChannel(client: Client, jump: ResolvedHop, next: ResolvedHop): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    client.forwardOut('127.0.0.1', 0, next.hostName, next.port, (err, ch) => {
      if (err) reject(new SshError(`Jump host ${describeHop(jump)} could not reach ${next.hostName}:${next.port}: ${err.message}`, {code: 'ssh_jump_failed', retryable: true, cause: err}))
      else resolve(ch)
    })
  })
}
