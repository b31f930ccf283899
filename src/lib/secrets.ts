// One process-wide registry of secret values. Everything that prints (logs, plans, errors,
// --json) passes text through maskSecrets(), so a value registered once is never shown.
const secrets = new Set<string>()
const MASK = '****'

/** Register a secret value (API key, HF token, ...). Very short values are ignored: masking "1" would garble output. */
export function registerSecret(value: string | undefined | null): void {
  if (value && value.length >= 4) secrets.add(value)
}

export function maskSecrets(text: string): string {
  let out = text
  for (const s of secrets) {
    if (out.includes(s)) out = out.split(s).join(MASK)
  }
  return out
}

/** Deep copy of a JSON-like value with every registered secret masked in its strings. */
export function maskDeep<T>(value: T): T {
  if (typeof value === 'string') return maskSecrets(value) as T
  if (Array.isArray(value)) return value.map((v) => maskDeep(v)) as T
  if (value && typeof value === 'object' && value.constructor === Object) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, maskDeep(v)])) as T
  }
  return value
}

export function redact(value: string | undefined): string | undefined {
  return value === undefined ? undefined : MASK
}

export const SECRET_MASK = MASK
