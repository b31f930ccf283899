// An open, authenticated SSH connection: remote commands, SFTP, forwarded channels.
import {readdir, stat} from 'node:fs/promises'
import {join, posix, relative, sep} from 'node:path'
import type {Client, ClientChannel, SFTPWrapper, Stats} from 'ssh2'
import {ExternalError, InterruptedError} from '../lib/errors.js'
import {maskSecrets} from '../lib/secrets.js'
import {classifySshError, SshError} from './errors.js'
import {shellCommand} from './quote.js'
import {describeHop, type ResolvedTarget} from './resolve.js'

export interface ExecOptions {
  /** Written to the command's stdin, then closed (how secrets reach a remote command: never argv). */
  input?: string | Buffer
  signal?: AbortSignal
  timeoutMs?: number
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void
  /** Don't throw on a non-zero exit: the caller inspects exitCode. */
  allowFailure?: boolean
}

export interface ExecResult {
  /** The remote command line as sent (after quoting). */
  command: string
  /** Exit status; -1 when the command was ended by a signal (see `signal`). */
  exitCode: number
  signal?: string
  stdout: string
  stderr: string
}

/**
 * A remote command: an argv array (each word quoted for the remote POSIX shell), or
 * `{script}` — a shell line the caller has already quoted (use shellQuote for each value),
 * for when pipes or `&&` are the point.
 */
export type RemoteCommand = readonly string[] | {script: string}

export interface UploadProgress {
  file: string
  filesDone: number
  filesTotal: number
  bytesDone: number
  bytesTotal: number
}

export interface UploadOptions {
  /** Relative POSIX path → whether to upload it (directories too: false skips the subtree). */
  filter?: (relPath: string, isDir: boolean) => boolean
  onProgress?: (p: UploadProgress) => void
  signal?: AbortSignal
  /** Files in flight at once (default 4). */
  concurrency?: number
}

function tailLines(text: string, n = 15): string {
  return text.trimEnd().split('\n').slice(-n).join('\n')
}

export class SshSession {
  private lastError?: Error
  private isClosed = false
  private sftpPromise?: Promise<SFTPWrapper>
  private readonly closeListeners = new Set<(err?: Error) => void>()
  private readonly where: string

  constructor(
    private readonly client: Client,
    readonly target: ResolvedTarget,
    private readonly jumpClients: Client[],
  ) {
    this.where = describeHop(target)
    client.on('error', (err) => {
      // After the handshake an error means the connection broke (socket error, keepalive timeout).
      this.lastError = new SshError(err.message, {code: 'ssh_connection_lost', retryable: true, cause: err})
    })
    client.on('close', () => {
      this.isClosed = true
      for (const j of this.jumpClients) j.end()
      for (const l of this.closeListeners) l(this.lastError)
    })
    for (const j of jumpClients) {
      j.on('error', (err) => {
        this.lastError ??= classifySshError(err, describeHop(target.jumps[jumpClients.indexOf(j)] ?? target))
      })
      // A dropped jump takes the inner connection with it (its socket is the jump's channel).
      j.on('close', () => this.client.destroy())
    }
  }

  get closed(): boolean {
    return this.isClosed
  }

  /** Called once when the connection is gone, with the reason when it broke rather than being closed. */
  onClose(listener: (err?: Error) => void): () => void {
    if (this.isClosed) {
      queueMicrotask(() => listener(this.lastError))
      return () => {}
    }
    this.closeListeners.add(listener)
    return () => this.closeListeners.delete(listener)
  }

  /** A direct-tcpip channel to dstHost:dstPort as seen from the server (ssh -L's per-connection channel). */
  forwardOut(srcHost: string, srcPort: number, dstHost: string, dstPort: number): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
      if (this.isClosed) return reject(new SshError(`The SSH connection to ${this.where} is closed`, {code: 'ssh_closed', retryable: true}))
      try {
        this.client.forwardOut(srcHost, srcPort, dstHost, dstPort, (err, ch) => {
          if (err) reject(new SshError(`${this.where} could not open a channel to ${dstHost}:${dstPort}: ${err.message.replace(/^\(SSH\) /, '')}`, {code: 'ssh_forward_failed', cause: err}))
          else resolve(ch)
        })
      } catch (error) {
        reject(new SshError(`The SSH connection to ${this.where} is closed`, {code: 'ssh_closed', retryable: true, cause: error}))
      }
    })
  }

  /** Run a command on the remote host. Non-zero exit → ExternalError with the stderr tail (unless allowFailure). */
  exec(command: RemoteCommand, opts: ExecOptions = {}): Promise<ExecResult> {
    const line = 'script' in command ? command.script : shellCommand(command)
    const shown = `ssh ${this.where} ${line}`
    return new Promise<ExecResult>((resolve, reject) => {
      if (opts.signal?.aborted) return reject(new InterruptedError())
      let stdout = ''
      let stderr = ''
      const partial = {stdout: '', stderr: ''}
      let exitCode: number | null = null
      let exitSignal: string | undefined
      let done = false
      let channel: ClientChannel | undefined
      let timer: NodeJS.Timeout | undefined
      const finish = (err?: Error) => {
        if (done) return
        done = true
        clearTimeout(timer)
        opts.signal?.removeEventListener('abort', onAbort)
        if (err) {
          channel?.close()
          return reject(err)
        }
        for (const s of ['stdout', 'stderr'] as const) if (partial[s]) opts.onLine?.(partial[s], s)
        const result: ExecResult = {command: line, exitCode: exitCode ?? -1, signal: exitSignal, stdout, stderr}
        if (result.exitCode !== 0 && !opts.allowFailure) {
          const why = exitSignal ? `was killed by signal ${exitSignal}` : `failed with exit code ${result.exitCode}`
          return reject(new ExternalError(`Remote command ${why} on ${this.where}`, {command: maskSecrets(shown), toolExitCode: result.exitCode, stderrTail: tailLines(stderr || stdout)}))
        }
        resolve(result)
      }
      const onAbort = () => {
        channel?.signal('KILL')
        finish(new InterruptedError())
      }
      opts.signal?.addEventListener('abort', onAbort, {once: true})
      if (opts.timeoutMs) timer = setTimeout(() => {
        channel?.signal('KILL')
        finish(new SshError(`Remote command timed out after ${Math.round(opts.timeoutMs! / 1000)}s on ${this.where}: ${maskSecrets(line)}`, {code: 'ssh_exec_timeout'}))
      }, opts.timeoutMs)
      const feed = (which: 'stdout' | 'stderr', chunk: Buffer) => {
        const text = chunk.toString('utf8')
        if (which === 'stdout') stdout += text
        else stderr += text
        if (!opts.onLine) return
        const parts = (partial[which] + text).split('\n')
        partial[which] = parts.pop()!
        for (const p of parts) opts.onLine(p.replace(/\r$/, ''), which)
      }
      try {
        this.client.exec(line, (err, ch) => {
          if (err) return finish(new SshError(`Cannot run a command on ${this.where}: ${err.message}`, {code: 'ssh_exec_failed', cause: err}))
          channel = ch
          ch.on('data', (c: Buffer) => feed('stdout', c))
          ch.stderr.on('data', (c: Buffer) => feed('stderr', c))
          ch.on('exit', (code: number | null, sig?: string) => {
            exitCode = code
            if (sig) exitSignal = sig
          })
          ch.on('close', () => finish())
          ch.on('error', (e: Error) => finish(new SshError(`Remote command channel failed on ${this.where}: ${e.message}`, {code: 'ssh_exec_failed', cause: e})))
          if (opts.input !== undefined) ch.end(opts.input)
          else ch.end()
        })
      } catch (error) {
        finish(new SshError(`The SSH connection to ${this.where} is closed`, {code: 'ssh_closed', cause: error}))
      }
    })
  }

  /** The SFTP subsystem (opened once per connection). Relative remote paths are relative to the login directory. */
  sftp(): Promise<SFTPWrapper> {
    this.sftpPromise ??= new Promise<SFTPWrapper>((resolve, reject) => {
      this.client.sftp((err, sftp) => {
        if (err) {
          this.sftpPromise = undefined
          reject(new SshError(`Cannot start SFTP on ${this.where}: ${err.message}`, {code: 'ssh_sftp_failed', cause: err}))
        } else resolve(sftp)
      })
    })
    return this.sftpPromise
  }

  private async remoteStat(path: string): Promise<Stats | undefined> {
    const sftp = await this.sftp()
    return new Promise((resolve) => sftp.stat(path, (err, st) => resolve(err ? undefined : st)))
  }

  /** mkdir -p over SFTP. */
  async mkdirp(remoteDir: string): Promise<void> {
    const sftp = await this.sftp()
    const parts = posix.normalize(remoteDir).split('/')
    let cur = remoteDir.startsWith('/') ? '' : '.'
    for (const p of parts) {
      if (!p || p === '.') continue
      cur = cur === '' ? `/${p}` : `${cur}/${p}`
      const st = await this.remoteStat(cur)
      if (st?.isDirectory()) continue
      if (st) throw new SshError(`${cur} exists on ${this.where} and is not a directory`, {code: 'ssh_sftp_failed'})
      await new Promise<void>((resolve, reject) =>
        sftp.mkdir(cur, (err) => (err ? reject(new SshError(`Cannot create ${cur} on ${this.where}: ${err.message}`, {code: 'ssh_sftp_failed', cause: err})) : resolve())),
      )
    }
  }

  /** Write a remote file with the given mode (0600 by default: this is how secrets travel). */
  async writeFile(remotePath: string, data: string | Buffer, opts: {mode?: number} = {}): Promise<void> {
    const sftp = await this.sftp()
    const mode = opts.mode ?? 0o600
    await new Promise<void>((resolve, reject) =>
      sftp.writeFile(remotePath, data, {mode}, (err) => (err ? reject(new SshError(`Cannot write ${remotePath} on ${this.where}: ${err.message}`, {code: 'ssh_sftp_failed', cause: err})) : resolve())),
    )
    // The mode above only applies when the file is created; make it hold for an existing file too.
    await new Promise<void>((resolve, reject) => sftp.chmod(remotePath, mode, (err) => (err ? reject(new SshError(`Cannot chmod ${remotePath} on ${this.where}: ${err.message}`, {code: 'ssh_sftp_failed'})) : resolve())))
  }

  /** Upload one file, keeping its permission bits. */
  async uploadFile(localPath: string, remotePath: string, opts: {mode?: number; onBytes?: (n: number) => void} = {}): Promise<number> {
    const sftp = await this.sftp()
    const st = await stat(localPath)
    const mode = opts.mode ?? st.mode & 0o777
    // fastPut keeps several SFTP writes in flight (a write stream waits for each one: ~10x slower).
    let reported = 0
    await new Promise<void>((resolve, reject) => {
      sftp.fastPut(localPath, remotePath, {mode, concurrency: 64, chunkSize: 32 * 1024, step: (total) => {
        opts.onBytes?.(total - reported)
        reported = total
      }}, (err) => (err ? reject(new SshError(`Cannot upload ${localPath} to ${remotePath} on ${this.where}: ${err.message}`, {code: 'ssh_sftp_failed', cause: err})) : resolve()))
    })
    await new Promise<void>((resolve) => sftp.chmod(remotePath, mode, () => resolve()))
    return st.size
  }

  /** Upload a directory tree (regular files and directories; symlinks are followed). */
  async uploadDir(localDir: string, remoteDir: string, opts: UploadOptions = {}): Promise<{files: number; bytes: number}> {
    const files: {local: string; rel: string; size: number}[] = []
    const dirs: string[] = []
    const walk = async (dir: string) => {
      for (const entry of await readdir(dir, {withFileTypes: true})) {
        const local = join(dir, entry.name)
        const rel = relative(localDir, local).split(sep).join('/')
        const st = await stat(local)
        if (st.isDirectory()) {
          if (opts.filter && !opts.filter(rel, true)) continue
          dirs.push(rel)
          await walk(local)
        } else if (st.isFile()) {
          if (opts.filter && !opts.filter(rel, false)) continue
          files.push({local, rel, size: st.size})
        }
      }
    }
    await walk(localDir)
    await this.mkdirp(remoteDir)
    for (const d of dirs) await this.mkdirp(posix.join(remoteDir, d))
    const total = files.reduce((a, f) => a + f.size, 0)
    let bytesDone = 0
    let filesDone = 0
    const queue = [...files]
    const worker = async () => {
      while (queue.length) {
        if (opts.signal?.aborted) throw new InterruptedError()
        const f = queue.shift()!
        await this.uploadFile(f.local, posix.join(remoteDir, f.rel), {
          onBytes: (n) => {
            bytesDone += n
            opts.onProgress?.({file: f.rel, filesDone, filesTotal: files.length, bytesDone, bytesTotal: total})
          },
        })
        filesDone++
        opts.onProgress?.({file: f.rel, filesDone, filesTotal: files.length, bytesDone, bytesTotal: total})
      }
    }
    await Promise.all(Array.from({length: Math.min(opts.concurrency ?? 4, Math.max(1, files.length))}, () => worker()))
    return {files: files.length, bytes: total}
  }

  /** Close the connection (and its jump hosts). Resolves once the socket is gone. */
  close(): Promise<void> {
    if (this.isClosed) return Promise.resolve()
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.client.destroy()
        for (const j of this.jumpClients) j.destroy()
      }, 2000)
      this.onClose(() => {
        clearTimeout(t)
        resolve()
      })
      this.client.end()
    })
  }
}
