// Where jarvis keeps things on this machine (XDG on Linux, the platform's dirs elsewhere).
import {homedir} from 'node:os'
import {join, resolve, dirname} from 'node:path'
import {fileURLToPath} from 'node:url'

function xdg(envName: string, fallback: string): string {
  const v = process.env[envName]
  return v && v.startsWith('/') ? v : join(homedir(), fallback)
}

export function userCacheDir(): string {
  if (process.env.JARVIS_CACHE_DIR) return resolve(process.env.JARVIS_CACHE_DIR)
  if (process.platform === 'darwin') return join(homedir(), 'Library', 'Caches', 'jarvis')
  return join(xdg('XDG_CACHE_HOME', '.cache'), 'jarvis')
}

export function userConfigDir(): string {
  if (process.platform === 'darwin') return join(homedir(), 'Library', 'Preferences', 'jarvis')
  return join(xdg('XDG_CONFIG_HOME', '.config'), 'jarvis')
}

export function userDataDir(): string {
  if (process.env.JARVIS_DATA_DIR) return resolve(process.env.JARVIS_DATA_DIR)
  if (process.platform === 'darwin') return join(homedir(), 'Library', 'Application Support', 'jarvis')
  return join(xdg('XDG_DATA_HOME', '.local/share'), 'jarvis')
}

/** The package root (where package.json, templates/ and gpu-server/ live). */
export function packageRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
}
