// The resolved config with every secret replaced, for `config show`.
import {SECRET_KEYS} from './schema.js'
import {SECRET_MASK} from '../lib/secrets.js'

export function redactConfig<T>(value: T, key?: string): T {
  if (key && SECRET_KEYS.has(key) && value !== undefined && value !== null && value !== '') return SECRET_MASK as T
  if (Array.isArray(value)) return value.map((v) => redactConfig(v)) as T
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactConfig(v, k)])) as T
  }
  return value
}
