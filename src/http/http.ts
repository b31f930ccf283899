// The one module that speaks HTTP (undici). request() is used rather than fetch() so
// that uploads stream from disk: fetch() buffers the whole body to allow redirects.
import {open, stat} from 'node:fs/promises'
import {basename} from 'node:path'
import {randomBytes} from 'node:crypto'
import {Readable} from 'node:stream'
import {Agent, request, type Dispatcher} from 'undici'
import {onCleanup} from '../lib/cleanup.js'

export type HttpFailureKind = 'connect' | 'timeout' | 'aborted' | 'protocol'

/** The request never got an HTTP answer (refused, reset, timed out). Distinct from an HTTP error status. */
export class HttpConnectionError extends Error {
  constructor(
    readonly kind: HttpFailureKind,
    readonly url: string,
    message: string,
  ) {
    super(message)
  }
}

export interface HttpResponse<T = unknown> {
  status: number
  headers: Record<string, string>
  body: T
  text: string
  latencyMs: number
  /** The `name=value` part of each Set-Cookie (session affinity on Cloud Run and load balancers). */
  cookies: string[]
}

export interface RequestOptions {
  method?: Dispatcher.HttpMethod
  headers?: Record<string, string>
  body?: string | Buffer | Readable | AsyncIterable<Buffer>
  /** Whole request budget for small calls; for uploads use headersTimeoutMs. */
  timeoutMs?: number
  headersTimeoutMs?: number
  bodyTimeoutMs?: number
  signal?: AbortSignal
}

// One agent for the process; keep-alive helps `status --watch` and many small job polls.
let agent: Agent | undefined
function dispatcher(): Agent {
  if (!agent) {
    agent = new Agent({connect: {timeout: 10_000}, keepAliveTimeout: 4_000})
    onCleanup(closeHttp)
  }
  return agent
}

export async function closeHttp(): Promise<void> {
  const a = agent
  agent = undefined
  await a?.close()
}

function classify(err: unknown, url: string, timedOut: boolean): HttpConnectionError {
  const e = err as {code?: string; name?: string; message?: string; cause?: {code?: string}}
  const code = e.code ?? e.cause?.code ?? ''
  if (timedOut || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new HttpConnectionError('timeout', url, `timed out (${code || 'no answer'})`)
  }
  if (e.name === 'AbortError' || code === 'UND_ERR_ABORTED') return new HttpConnectionError('aborted', url, 'aborted')
  if (['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED'].includes(code)) {
    return new HttpConnectionError('connect', url, describeCode(code))
  }
  return new HttpConnectionError('protocol', url, e.message ?? String(err))
}

function describeCode(code: string): string {
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused'
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
    case 'UND_ERR_CLOSED':
    case 'EPIPE':
      return 'connection reset'
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host not found'
    default:
      return `unreachable (${code})`
  }
}

export async function httpRequest<T = unknown>(url: string, opts: RequestOptions = {}): Promise<HttpResponse<T>> {
  const started = performance.now()
  const controller = new AbortController()
  let timedOut = false
  const timer = opts.timeoutMs ? setTimeout(() => ((timedOut = true), controller.abort()), opts.timeoutMs) : undefined
  const onAbort = () => controller.abort()
  opts.signal?.addEventListener('abort', onAbort, {once: true})
  try {
    const res = await request(url, {
      method: opts.method ?? 'GET',
      headers: opts.headers,
      // undici streams async-iterable bodies (client-h1 writeIterable) though its types omit them.
      body: opts.body as Dispatcher.DispatchOptions['body'],
      signal: controller.signal,
      dispatcher: dispatcher(),
      headersTimeout: opts.headersTimeoutMs ?? opts.timeoutMs,
      bodyTimeout: opts.bodyTimeoutMs ?? opts.timeoutMs,
    })
    const text = await res.body.text()
    const headers: Record<string, string> = {}
    for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v
    const setCookie = res.headers['set-cookie']
    const cookies = (Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : []).map((c) => c.split(';')[0].trim()).filter(Boolean)
    let body: unknown = text
    if ((headers['content-type'] ?? '').includes('json')) {
      try {
        body = JSON.parse(text)
      } catch {}
    }
    return {status: res.statusCode, headers, body: body as T, text, latencyMs: performance.now() - started, cookies}
  } catch (error) {
    if (opts.signal?.aborted) throw new HttpConnectionError('aborted', url, 'aborted')
    throw classify(error, url, timedOut)
  } finally {
    if (timer) clearTimeout(timer)
    opts.signal?.removeEventListener('abort', onAbort)
  }
}

const CHUNK = 1 << 20
const RING = 4

/**
 * The file in 1 MiB chunks read into a small ring of reused buffers. Fresh buffers per chunk
 * leave ~100 MB of garbage in flight at loopback speeds; reusing four keeps memory flat.
 * Safe because the consumer (undici's iterable writer) writes a chunk and, when the socket
 * buffer is full, waits for 'drain' (everything written) before asking for the next one: a
 * buffer is refilled only after three later chunks were handed over.
 */
export async function* fileChunks(path: string): AsyncGenerator<Buffer> {
  const fh = await open(path, 'r')
  try {
    const ring = Array.from({length: RING}, () => Buffer.allocUnsafe(CHUNK))
    for (let i = 0; ; i++) {
      const buf = ring[i % RING]
      const {bytesRead} = await fh.read(buf, 0, CHUNK, null)
      if (bytesRead === 0) return
      yield buf.subarray(0, bytesRead)
    }
  } finally {
    await fh.close()
  }
}

export interface UploadProgress {
  sent: number
  total: number
}

export interface MultipartUpload {
  fields: Record<string, string | undefined>
  filePath: string
  fileField?: string
  contentType?: string
  onProgress?: (p: UploadProgress) => void
}

/**
 * POST a file as multipart/form-data, streamed from disk with a known Content-Length.
 * Memory stays flat whatever the file size.
 */
export async function postMultipart<T = unknown>(url: string, upload: MultipartUpload, opts: RequestOptions = {}): Promise<HttpResponse<T>> {
  const boundary = `----jarvis${randomBytes(12).toString('hex')}`
  const {size} = await stat(upload.filePath)
  const parts: string[] = []
  for (const [name, value] of Object.entries(upload.fields)) {
    if (value === undefined) continue
    parts.push(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`)
  }
  const filename = basename(upload.filePath).replaceAll('"', '_').replaceAll('\r', '').replaceAll('\n', '')
  parts.push(
    `--${boundary}\r\nContent-Disposition: form-data; name="${upload.fileField ?? 'file'}"; filename="${filename}"\r\n` +
      `Content-Type: ${upload.contentType ?? 'application/octet-stream'}\r\n\r\n`,
  )
  const head = Buffer.from(parts.join(''))
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`)
  const total = head.length + size + tail.length
  let sent = 0
  const report = (n: number) => {
    sent += n
    upload.onProgress?.({sent, total})
  }
  async function* body() {
    yield head
    report(head.length)
    for await (const chunk of fileChunks(upload.filePath)) {
      yield chunk
      report(chunk.length)
    }
    yield tail
    report(tail.length)
  }
  return httpRequest<T>(url, {
    ...opts,
    method: 'POST',
    headers: {...opts.headers, 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': String(total)},
    // An async iterable body: undici writes each chunk and waits for 'drain' before asking for the next.
    body: body(),
  })
}
