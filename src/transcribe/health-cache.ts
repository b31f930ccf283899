// A short-lived, on-disk memory of dead backends, so the next command doesn't wait on
// the same black-holed host again. Only failures are cached: a healthy answer is cheap.
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'
import {writeFileAtomic} from '../lib/atomic.js'
import {userCacheDir} from '../lib/paths.js'

interface Entry {
  state: string
  reason?: string
  at: number
}

/** Default 30 s; JARVIS_HEALTH_CACHE_TTL_MS=0 turns the cache off. */
export function cacheTtlMs(): number {
  const v = Number(process.env.JARVIS_HEALTH_CACHE_TTL_MS)
  return Number.isFinite(v) && process.env.JARVIS_HEALTH_CACHE_TTL_MS !== undefined ? v : 30_000
}

function cachePath(): string {
  return join(userCacheDir(), 'backend-health.json')
}

async function readAll(): Promise<Record<string, Entry>> {
  try {
    return JSON.parse(await readFile(cachePath(), 'utf8')) as Record<string, Entry>
  } catch {
    return {}
  }
}

export async function cachedFailure(key: string): Promise<(Entry & {ageMs: number}) | undefined> {
  const ttl = cacheTtlMs()
  if (ttl <= 0) return undefined
  const e = (await readAll())[key]
  if (!e) return undefined
  const ageMs = Date.now() - e.at
  return ageMs < ttl ? {...e, ageMs} : undefined
}

export async function rememberHealth(key: string, ok: boolean, state: string, reason?: string): Promise<void> {
  if (cacheTtlMs() <= 0) return
  const all = await readAll()
  if (ok) {
    if (!all[key]) return
    delete all[key]
  } else all[key] = {state, reason, at: Date.now()}
  const now = Date.now()
  for (const [k, v] of Object.entries(all)) if (now - v.at > 3_600_000) delete all[k]
  await writeFileAtomic(cachePath(), JSON.stringify(all)).catch(() => {})
}
