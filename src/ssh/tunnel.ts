// Local port forwards over one SSH connection, like `ssh -N -L ...`, that survive the
// connection dropping: the local listeners stay open, the connection is re-established
// with backoff, and a client that connects meanwhile waits (bounded) for it or is reset.
// One direct-tcpip channel per accepted local connection, as OpenSSH does.
import {createServer, type Server, type Socket} from 'node:net'
import {setTimeout as sleep} from 'node:timers/promises'
import {InterruptedError} from '../lib/errors.js'
import {connectSsh, type ConnectOptions} from './connect.js'
import {SshError} from './errors.js'
import {formatAddress, type Forward} from './forward-spec.js'
import {describeHop, resolveSshTarget, type ResolvedTarget, type SshTargetSpec} from './resolve.js'
import type {SshSession} from './session.js'

export interface ActiveForward {
  bindHost: string
  /** The port actually listened on (the free one picked when 0 was asked for). */
  localPort: number
  remoteHost: string
  remotePort: number
}

export interface TunnelStats {
  state: 'connected' | 'reconnecting' | 'closed'
  /** ISO time the current SSH connection came up. */
  connectedSince?: string
  reconnects: number
  activeConnections: number
  totalConnections: number
  /** Local connections that were reset: no SSH connection in time, or the remote end refused. */
  failedConnections: number
  /** Bytes from local clients to the remote side. */
  bytesUp: number
  /** Bytes from the remote side to local clients. */
  bytesDown: number
}

export type TunnelEvent =
  | {type: 'connected'; target: string}
  | {type: 'disconnected'; reason: string}
  | {type: 'reconnecting'; attempt: number; delayMs: number; lastError?: string}
  | {type: 'reconnected'; reconnects: number}
  | {type: 'forward-failed'; forward: ActiveForward; reason: string}
  | {type: 'fatal'; error: Error}
  | {type: 'closed'}

export interface TunnelOptions extends ConnectOptions {
  onStatus?: (event: TunnelEvent) => void
  /** How long a local connection waits for the SSH connection to come back before it is reset (default 30 s). */
  pendingTimeoutMs?: number
  /** Local connections allowed to wait at once; more are reset right away (default 128). */
  maxPending?: number
  reconnect?: {
    /** First retry delay (default 250 ms; the very first retry is immediate), doubled each failure. */
    initialDelayMs?: number
    /** Ceiling of the delay (default 15 s). */
    maxDelayMs?: number
    /** Give up after this many failed attempts in a row (default: never). */
    maxAttempts?: number
  }
}

export interface Tunnel {
  target: ResolvedTarget
  forwards: ActiveForward[]
  stats(): TunnelStats
  /** Stop listening, reset open connections, close SSH. Idempotent. */
  close(): Promise<void>
  /** Settles when the tunnel ends: resolves after close() or the signal, rejects when it gives up (e.g. the host key changed). */
  done: Promise<void>
}

interface Waiter {
  resolve: (s: SshSession) => void
  reject: (e: Error) => void
  timer: NodeJS.Timeout
}

function listen(server: Server, f: Required<Forward>): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const addr = formatAddress(f.bindHost, f.localPort)
      if (err.code === 'EADDRINUSE') {
        reject(new SshError(`Local port ${addr} is already in use`, {code: 'port_in_use', suggestion: `Pick another local port, e.g. -L ${f.localPort === 0 ? 0 : f.localPort + 1}:${f.remoteHost}:${f.remotePort} (0 picks a free one).`}))
      } else if (err.code === 'EACCES') {
        reject(new SshError(`Not allowed to listen on ${addr}`, {code: 'port_denied', suggestion: 'Ports below 1024 need privileges: use a higher local port.'}))
      } else if (err.code === 'EADDRNOTAVAIL') {
        reject(new SshError(`Cannot listen on ${addr}: no such local address`, {code: 'bind_failed', suggestion: 'Use 127.0.0.1 (the default) or an address of this machine as BIND.'}))
      } else reject(new SshError(`Cannot listen on ${addr}: ${err.message}`, {code: 'bind_failed'}))
    }
    server.once('error', onError)
    server.listen({host: f.bindHost, port: f.localPort, exclusive: true}, () => {
      server.removeListener('error', onError)
      resolve()
    })
  })
}

/**
 * Open the forwards and keep them up until close() or the signal. Resolves once the
 * listeners are bound and the first SSH connection is up; the first connection's errors
 * (host key, auth, unreachable) reject, later drops are retried.
 */
export async function openTunnel(target: SshTargetSpec | ResolvedTarget, forwards: Forward[], opts: TunnelOptions = {}): Promise<Tunnel> {
  if (forwards.length === 0) throw new SshError('No port forwards given', {code: 'usage'})
  const resolved = 'jumps' in target ? target : await resolveSshTarget(target, opts)
  const where = describeHop(resolved)
  const emit = (e: TunnelEvent) => opts.onStatus?.(e)
  const pendingTimeoutMs = opts.pendingTimeoutMs ?? 30_000
  const maxPending = opts.maxPending ?? 128
  const initialDelay = opts.reconnect?.initialDelayMs ?? 250
  const maxDelay = opts.reconnect?.maxDelayMs ?? 15_000
  const maxAttempts = opts.reconnect?.maxAttempts ?? Number.POSITIVE_INFINITY

  let state: TunnelStats['state'] = 'reconnecting'
  let session: SshSession | undefined
  let connectedSince: string | undefined
  let closing = false
  const counters = {reconnects: 0, total: 0, failed: 0, up: 0, down: 0}
  const sockets = new Set<Socket>()
  const waiters = new Set<Waiter>()
  // Aborted on close(): stops a reconnect in progress or its backoff sleep.
  const life = new AbortController()
  let resolveDone!: () => void
  let rejectDone!: (e: Error) => void
  const done = new Promise<void>((res, rej) => {
    resolveDone = res
    rejectDone = rej
  })
  done.catch(() => {}) // a caller that never awaits `done` must not crash the process on a fatal error

  const servers: Server[] = []
  const active: ActiveForward[] = []
  const closeServers = async () => {
    for (const s of sockets) s.destroy()
    await Promise.all(servers.map((s) => new Promise<void>((r) => (s.listening ? s.close(() => r()) : r()))))
  }

  const waitForSession = (): Promise<SshSession> => {
    if (session && !session.closed) return Promise.resolve(session)
    if (closing) return Promise.reject(new SshError('The tunnel is closing', {code: 'tunnel_closed'}))
    if (waiters.size >= maxPending) return Promise.reject(new SshError('Too many connections waiting for the SSH connection', {code: 'tunnel_busy'}))
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          waiters.delete(w)
          reject(new SshError(`The SSH connection to ${where} did not come back within ${Math.round(pendingTimeoutMs / 1000)}s`, {code: 'tunnel_down'}))
        }, pendingTimeoutMs),
      }
      waiters.add(w)
    })
  }
  const settleWaiters = (s?: SshSession, err?: Error) => {
    for (const w of waiters) {
      clearTimeout(w.timer)
      if (s) w.resolve(s)
      else w.reject(err ?? new SshError('The tunnel closed', {code: 'tunnel_closed'}))
    }
    waiters.clear()
  }

  const handle = async (sock: Socket, fwd: ActiveForward) => {
    counters.total++
    sockets.add(sock)
    sock.setNoDelay(true)
    // Nothing is read until the channel is open; the client's first bytes wait in the kernel.
    sock.pause()
    let gone = false
    const countFinal = () => {
      if (gone) return
      gone = true
      counters.up += sock.bytesRead
      counters.down += sock.bytesWritten
      sockets.delete(sock)
    }
    sock.on('close', countFinal)
    sock.on('error', () => {}) // a client resetting its connection is not a tunnel error
    let channel
    try {
      for (let attempt = 1; ; attempt++) {
        const s = await waitForSession()
        if (sock.destroyed) return
        try {
          channel = await s.forwardOut(sock.remoteAddress ?? '127.0.0.1', sock.remotePort ?? 0, fwd.remoteHost, fwd.remotePort)
          break
        } catch (error) {
          // The connection died between being handed out and opening the channel: wait for the next one.
          const connectionGone = s.closed || (error instanceof SshError && error.code === 'ssh_closed')
          if (!connectionGone || attempt >= 3) throw error
        }
      }
    } catch (error) {
      counters.failed++
      if ((error as SshError).code === 'ssh_forward_failed') emit({type: 'forward-failed', forward: fwd, reason: (error as Error).message})
      // A reset tells the client at once that nothing is there (an HTTP client reports ECONNRESET, not a hang).
      if (!sock.destroyed) sock.resetAndDestroy()
      return
    }
    if (sock.destroyed) {
      channel.close()
      return
    }
    channel.on('error', () => sock.destroy())
    sock.on('error', () => channel.close())
    // Half-close both ways (a client may send EOF and still read the answer); the socket goes when the channel does.
    channel.on('close', () => {
      if (sock.destroyed) return
      sock.end()
      // Once everything is flushed to the client, give it a moment to close its side, then let go.
      const linger = () => setTimeout(() => sock.destroy(), 1000).unref()
      if (sock.writableFinished) linger()
      else sock.once('finish', linger)
    })
    sock.on('close', () => channel.close())
    sock.pipe(channel)
    channel.pipe(sock)
    sock.resume()
  }

  // Bind everything first: a port conflict is reported before any network is touched.
  try {
    for (const f of forwards) {
      const full: Required<Forward> = {bindHost: f.bindHost ?? '127.0.0.1', localPort: f.localPort ?? 0, remoteHost: f.remoteHost ?? '127.0.0.1', remotePort: f.remotePort}
      // allowHalfOpen: a client's EOF must not cut the reply still coming back through the channel.
      const server = createServer({allowHalfOpen: true, noDelay: true})
      servers.push(server)
      await listen(server, full)
      const addr = server.address()
      const fwd: ActiveForward = {bindHost: full.bindHost, localPort: typeof addr === 'object' && addr ? addr.port : full.localPort, remoteHost: full.remoteHost, remotePort: full.remotePort}
      active.push(fwd)
      server.on('connection', (sock) => void handle(sock, fwd))
    }
  } catch (error) {
    await closeServers()
    throw error
  }

  const signal = opts.signal ? AbortSignal.any([opts.signal, life.signal]) : life.signal
  const connectOpts: ConnectOptions = {...opts, signal}

  const attach = (s: SshSession) => {
    session = s
    state = 'connected'
    connectedSince = new Date().toISOString()
    settleWaiters(s)
    s.onClose((err) => {
      if (closing || session !== s) return
      session = undefined
      connectedSince = undefined
      state = 'reconnecting'
      emit({type: 'disconnected', reason: err?.message ?? 'the server closed the connection'})
      void reconnectLoop()
    })
  }

  const fail = async (error: Error) => {
    if (closing) return
    emit({type: 'fatal', error})
    await shutdown()
    rejectDone(error)
  }

  const reconnectLoop = async () => {
    let lastError: string | undefined
    for (let attempt = 1; !closing; attempt++) {
      if (attempt > maxAttempts) {
        return fail(new SshError(`Gave up reconnecting to ${where} after ${maxAttempts} attempts${lastError ? `: ${lastError}` : ''}`, {code: 'tunnel_down'}))
      }
      const base = attempt === 1 ? 0 : Math.min(maxDelay, initialDelay * 2 ** (attempt - 2))
      const delayMs = Math.round(base * (0.8 + Math.random() * 0.4))
      emit({type: 'reconnecting', attempt, delayMs, lastError})
      try {
        if (delayMs > 0) await sleep(delayMs, undefined, {signal: life.signal})
        const s = await connectSsh(resolved, connectOpts)
        if (closing) {
          await s.close()
          return
        }
        counters.reconnects++
        attach(s)
        emit({type: 'reconnected', reconnects: counters.reconnects})
        return
      } catch (error) {
        if (closing) return
        if (error instanceof SshError && !error.retryable) return fail(error)
        if (error instanceof InterruptedError) return
        lastError = (error as Error).message
      }
    }
  }

  let shutdownPromise: Promise<void> | undefined
  const shutdown = () => {
    shutdownPromise ??= (async () => {
      closing = true
      state = 'closed'
      life.abort()
      settleWaiters(undefined, new SshError('The tunnel closed', {code: 'tunnel_closed'}))
      const s = session
      session = undefined
      await Promise.all([closeServers(), s?.close()])
      emit({type: 'closed'})
    })()
    return shutdownPromise
  }

  try {
    attach(await connectSsh(resolved, connectOpts))
  } catch (error) {
    closing = true
    await closeServers()
    throw error
  }
  emit({type: 'connected', target: where})

  const onAbort = () => void shutdown().then(() => resolveDone())
  if (opts.signal?.aborted) onAbort()
  opts.signal?.addEventListener('abort', onAbort, {once: true})

  return {
    target: resolved,
    forwards: active,
    stats: () => {
      let up = counters.up
      let down = counters.down
      for (const s of sockets) {
        up += s.bytesRead
        down += s.bytesWritten
      }
      return {
        state,
        connectedSince,
        reconnects: counters.reconnects,
        activeConnections: sockets.size,
        totalConnections: counters.total,
        failedConnections: counters.failed,
        bytesUp: up,
        bytesDown: down,
      }
    },
    close: async () => {
      opts.signal?.removeEventListener('abort', onAbort)
      await shutdown()
      resolveDone()
    },
    done,
  }
}
