// Small loopback HTTP servers that behave like broken backends.
import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import type {AddressInfo} from 'node:net'
import {afterAll} from 'vitest'

export async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{server: Server; url: string; port: number}> {
  const server = createServer(handler)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as AddressInfo).port
  afterAll(() => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))))
  return {server, url: `http://127.0.0.1:${port}`, port}
}

/** A port with nothing listening on it. */
export async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as AddressInfo).port
  await new Promise<void>((r) => server.close(() => r()))
  return port
}

export const healthyBody = JSON.stringify({status: 'ok', model_loaded: true, engine: 'pocketsphinx', model: 'en-us', device: 'cpu'})

export function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, {'content-type': 'application/json'})
  res.end(JSON.stringify(body))
}
