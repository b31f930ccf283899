// Finding, parsing and validating jarvis.yaml. Problems are reported with
// file:line:column and the key path, e.g. `jarvis.yaml:12:5 backends[1].url: expected a URL`.
import {existsSync} from 'node:fs'
import {readFile} from 'node:fs/promises'
import {dirname, join, resolve} from 'node:path'
import {isNode, LineCounter, parseDocument, type Document} from 'yaml'
import type {z} from 'zod'
import {ConfigError, UserError, type ConfigProblem} from '../lib/errors.js'
import {userConfigDir} from '../lib/paths.js'
import {registerSecret} from '../lib/secrets.js'
import {configSchema, SECRET_KEYS, type JarvisConfig} from './schema.js'

export interface LoadedConfig {
  config: JarvisConfig
  /** Absolute path of the file, or undefined when running on defaults. */
  path?: string
  /** Directory that holds .jarvis/ (state, rendered deploy files): beside the config, else cwd. */
  projectDir: string
}

export function findConfigPath(explicit?: string): string | undefined {
  if (explicit) return resolve(explicit)
  if (process.env.JARVIS_CONFIG) return resolve(process.env.JARVIS_CONFIG)
  for (const candidate of [resolve('jarvis.yaml'), resolve('jarvis.yml'), join(userConfigDir(), 'jarvis.yaml')]) {
    if (existsSync(candidate)) return candidate
  }
  return undefined
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = ''
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p)
  return out
}

/** Map zod issues to problems with the YAML positions of the offending nodes. */
export function zodProblems(error: z.ZodError, file: string, doc?: Document, lc?: LineCounter): ConfigProblem[] {
  return error.issues.map((issue) => {
    const path = issue.path as (string | number)[]
    let pos: {line: number; col: number} | undefined
    if (doc && lc) {
      // The deepest node that exists: a missing key points at its parent object.
      for (let n = path.length; n >= 0 && !pos; n--) {
        const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true)
        if (isNode(node) && node.range) pos = lc.linePos(node.range[0])
        if (issue.code === 'unrecognized_keys' && n === path.length && isNode(node)) {
          const keyNode = doc.getIn([...path, (issue as {keys: string[]}).keys[0]], true)
          // Point at the unknown key itself when we can find it.
          const pair = (node as {items?: {key: {value?: unknown; range?: number[]}}[]}).items?.find((it) => it.key?.value === (issue as {keys: string[]}).keys[0])
          if (pair?.key?.range) pos = lc.linePos(pair.key.range[0])
          else if (isNode(keyNode) && keyNode.range) pos = lc.linePos(keyNode.range[0])
        }
      }
    }
    return {file, line: pos?.line, column: pos?.col, path: formatPath(path), message: describeIssue(issue)}
  })
}

function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'unrecognized_keys':
      return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`
    case 'invalid_union':
      if ((issue as {note?: string}).note === 'No matching discriminator') {
        return `expected kind to be one of ${(issue as unknown as {options?: unknown[]}).options?.join(', ') ?? 'external, modal, vast, ssh, local'}`
      }
      return issue.message
    default:
      return issue.message.replace(/^Invalid input: /, '').replace(/^Too (small|big): /, '').replace(/^\w/, (c) => c.toLowerCase())
  }
}

const ENV_REF_BRACES = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g
const ENV_REF = /\$<([A-Za-z_][A-Za-z0-9_]*)>/g
const SECRET_ENV_NAME = /KEY|TOKEN|SECRET|PASSWORD/i

/** Replace `${ENV_VAR}` in string values; resolved values under secret keys are registered for masking. */
function interpolate(value: unknown, file: string, path: (string | number)[], problems: ConfigProblem[], doc: Document, lc: LineCounter): unknown {
  if (typeof value === 'string') {
    const isSecretKey = SECRET_KEYS.has(String(path.at(-1)))
    const out = value.replace(ENV_REF, (_m, name: string) => {
      const v = process.env[name]
      if (v === undefined) {
        const node = doc.getIn(path, true)
        const pos = isNode(node) && node.range ? lc.linePos(node.range[0]) : undefined
        problems.push({file, line: pos?.line, column: pos?.col, path: formatPath(path), message: `environment variable ${name} is not set (export ${name}=...)`})
        return ''
      }
      // A value taken from a secret-looking variable stays masked wherever it lands (e.g. in a URL).
      if (SECRET_ENV_NAME.test(name)) registerSecret(v)
      return v
    })
    if (isSecretKey) registerSecret(out)
    return out
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, file, [...path, i], problems, doc, lc))
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, file, [...path, k], problems, doc, lc)]))
  }
  return value
}

export function parseConfigText(text: string, file: string): JarvisConfig {
  const lc = new LineCounter()
  // `${VAR}` is not legal unquoted inside a YAML flow map ({ apiKey: ${KEY} }), which is how
  // people write it. Swap the braces for same-width `$<VAR>` so positions stay exact.
  const source = text.replace(ENV_REF_BRACES, '$$<$1>')
  const doc = parseDocument(source, {lineCounter: lc, prettyErrors: false, uniqueKeys: true})
  if (doc.errors.length > 0) {
    // Only the first: later YAML syntax errors are almost always echoes of it.
    throw new ConfigError(
      doc.errors.slice(0, 1).map((e) => {
        const pos = lc.linePos(e.pos[0])
        return {file, line: pos.line, column: pos.col, path: '', message: e.message.split('\n')[0]}
      }),
    )
  }
  const raw = doc.toJS() ?? {}
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError([{file, line: 1, column: 1, path: '', message: 'expected a mapping with version: 1'}])
  }
  const problems: ConfigProblem[] = []
  const interpolated = interpolate(raw, file, [], problems, doc, lc)
  const parsed = configSchema.safeParse(interpolated)
  if (!parsed.success) {
    // One problem per key: an unset ${VAR} already explains the empty value that follows.
    for (const p of zodProblems(parsed.error, file, doc, lc)) if (!problems.some((q) => q.path === p.path)) problems.push(p)
  }
  if (problems.length > 0) throw new ConfigError(problems, {suggestion: 'Fix the lines above, then run `jarvis config validate`.'})
  return parsed.data!
}

export async function loadConfig(opts: {path?: string; required?: boolean} = {}): Promise<LoadedConfig> {
  const path = findConfigPath(opts.path)
  if (!path) {
    if (opts.required) throw new UserError('No jarvis.yaml found', {code: 'config_missing', suggestion: 'Run `jarvis init` to write one, or pass --config PATH.'})
    return {config: configSchema.parse({version: 1}), projectDir: process.cwd()}
  }
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw new UserError(`Config file ${path} does not exist`, {code: 'config_missing', suggestion: 'Run `jarvis init` to write one, or fix --config / JARVIS_CONFIG.'})
    throw new UserError(`Cannot read config file ${path}: ${code ?? (error as Error).message}`, {code: 'config_unreadable'})
  }
  return {config: parseConfigText(text, path), path, projectDir: dirname(path)}
}
