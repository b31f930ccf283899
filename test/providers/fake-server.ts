// A stand-in for a deployed jarvis server, for the health wait at the end of a deploy:
// GET /health (no auth) and GET /info (API key), shaped like gpu-server's answers.
import {createServer, type Server} from 'node:http'
import type {AddressInfo} from 'node:net'
import {afterAll} from 'vitest'

export interface FakeServer {
  url: string
  /** API keys seen on /info. */
  keysSeen: string[]
  /** 'loading' answers 503 {"status":"loading"} until set back to 'ok'. */
  setState(state: 'ok' | 'loading'): void
  close(): Promise<void>
}

export async function startFakeServer(opts: {apiKey?: string; device?: string} = {}): Promise<FakeServer> {
  let state: 'ok' | 'loading' = 'ok'
  const keysSeen: string[] = []
  const server: Server = createServer((req, res) => {
    const json = (status: number, body: unknown) => {
      res.writeHead(status, {'content-type': 'application/json'})
      res.end(JSON.stringify(body))
    }
    if (req.url === '/health') {
      if (state === 'loading') return json(503, {status: 'loading', model_loaded: false})
      return json(200, {status: 'ok', model_loaded: true, engine: 'whisperx', model: 'small', device: opts.device ?? 'cpu'})
    }
    if (req.url === '/info') {
      const key = String(req.headers['x-api-key'] ?? '')
      keysSeen.push(key)
      if (opts.apiKey && key !== opts.apiKey) return json(401, {error: {code: 'unauthorized', message: 'missing or wrong API key'}})
      return json(200, {engine: 'whisperx', model: 'small', device: opts.device ?? 'cpu', compute_type: 'int8', gpu: null, version: '0.1.0'})
    }
    json(404, {error: {code: 'not_found', message: 'no route'}})
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const {port} = server.address() as AddressInfo
  const close = () => new Promise<void>((r) => server.close(() => r()))
  afterAll(close)
  return {url: `http://127.0.0.1:${port}`, keysSeen, setState: (s) => (state = s), close}
}

/** A port nothing listens on (bound, then released). */
export async function closedPortUrl(): Promise<string> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const {port} = s.address() as AddressInfo
  await new Promise<void>((r) => s.close(() => r()))
  return `http://127.0.0.1:${port}`
}
