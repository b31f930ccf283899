// `-L` specs as OpenSSH writes them: `[BIND:]LPORT:HOST:RPORT`, IPv6 addresses in brackets.
// Shorthands jarvis also takes: `PORT` (same port on both ends, remote 127.0.0.1) and
// `LPORT:RPORT`. LPORT 0 asks for a free local port. BIND defaults to 127.0.0.1 (OpenSSH's
// GatewayPorts=no); `*` binds every interface, as in OpenSSH.

export interface Forward {
  /** Local address to listen on (default 127.0.0.1). */
  bindHost?: string
  /** Local port; 0 or undefined = pick a free one. */
  localPort?: number
  /** Host to reach from the SSH server (default 127.0.0.1: a server on the remote box's loopback). */
  remoteHost?: string
  remotePort: number
}

export class ForwardSpecError extends Error {}

function splitFields(spec: string): string[] {
  const out: string[] = []
  let i = 0
  while (i <= spec.length) {
    if (spec[i] === '[') {
      const end = spec.indexOf(']', i)
      if (end < 0) throw new ForwardSpecError(`unclosed "[" in "${spec}"`)
      out.push(spec.slice(i + 1, end))
      i = end + 1
      if (i < spec.length && spec[i] !== ':') throw new ForwardSpecError(`expected ":" after "]" in "${spec}"`)
      i++
      continue
    }
    const next = spec.indexOf(':', i)
    const end = next < 0 ? spec.length : next
    out.push(spec.slice(i, end))
    i = end + 1
  }
  return out
}

function port(text: string, what: string, spec: string, allowZero: boolean): number {
  const n = /^\d+$/.test(text) ? Number(text) : Number.NaN
  if (!Number.isInteger(n) || n > 65535 || n < (allowZero ? 0 : 1)) throw new ForwardSpecError(`${what} "${text}" in "${spec}" is not a port number (${allowZero ? 0 : 1}-65535)`)
  return n
}

export function parseForwardSpec(spec: string): Required<Forward> {
  const f = splitFields(spec.trim())
  let bind = '127.0.0.1'
  let lport: string
  let host = '127.0.0.1'
  let rport: string
  switch (f.length) {
    case 1:
      ;[lport] = f
      rport = lport
      break
    case 2:
      ;[lport, rport] = f
      break
    case 3:
      ;[lport, host, rport] = f
      break
    case 4:
      ;[bind, lport, host, rport] = f
      break
    default:
      throw new ForwardSpecError(`"${spec}" has too many fields (expected [BIND:]LPORT:HOST:RPORT)`)
  }
  if (bind === '' || bind === '*') bind = '0.0.0.0'
  if (!host) throw new ForwardSpecError(`empty HOST in "${spec}" (expected [BIND:]LPORT:HOST:RPORT)`)
  return {bindHost: bind, localPort: port(lport, 'LPORT', spec, true), remoteHost: host, remotePort: port(rport, 'RPORT', spec, false)}
}

/** How a forward is written back (for messages): `127.0.0.1:8000 → 127.0.0.1:8000`. */
export function formatAddress(host: string, p: number): string {
  return host.includes(':') ? `[${host}]:${p}` : `${host}:${p}`
}
