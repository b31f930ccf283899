// The price catalog and realtime-factor table: YAML data files shipped in the package
// (src/cost/catalog/, listed in package.json "files"), validated with zod. A problem in a
// user's --catalog file is reported as `file:line:column path: message`, like jarvis.yaml.
import {readFile} from 'node:fs/promises'
import {join, resolve} from 'node:path'
import {LineCounter, parseDocument} from 'yaml'
import {z} from 'zod'
import {zodProblems} from '../config/load.js'
import {BugError, ConfigError, UserError} from '../lib/errors.js'
import {packageRoot} from '../lib/paths.js'

const isoDate = z.iso.date({error: 'expected a date written YYYY-MM-DD'})
const money = z.number({error: 'expected a number (US dollars)'}).nonnegative()
const seconds = z.number({error: 'expected a number of seconds'}).nonnegative()

export const KINDS = ['serverless', 'machine', 'instance', 'marketplace', 'workstation'] as const
export type Kind = (typeof KINDS)[number]

export const priceRowSchema = z
  .strictObject({
    id: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'expected an id of lowercase letters, digits, ".", "-" and "_"'),
    provider: z.string().min(1),
    product: z.string().min(1),
    /** Canonical GPU name (T4, L4, A10, A10G, L40S, A100-40GB, A100-80GB, H100, RTX 3090, ...) or CPU-<vCPUs>. */
    gpu: z.string().min(1),
    vramGb: z.number().nonnegative(),
    /** What one billed hour costs (GPU + the host it comes with). Absent only for workstations (watts instead). */
    pricePerHour: money.optional(),
    priceRange: z.strictObject({low: money, high: money}).optional(),
    /** Workstations: power draw under load; priced at the configured electricity price. */
    watts: z.number().positive().optional(),
    billing: z.strictObject({
      unit: z.enum(['second', 'minute', 'hour']),
      /** Billed at least this long each time it starts (EC2 Linux: 60 s). */
      minimumSeconds: seconds.optional(),
    }),
    kind: z.enum(KINDS),
    /** Billed start-up per wake from zero: boot, image, model load. */
    coldStartSeconds: seconds.default(0),
    /** Billed idle time after the last job before it scales to zero / is stopped. */
    idleSeconds: seconds.default(0),
    /** Whether an always-on minimum (min instances / min containers / min machines) applies. */
    supportsMinInstances: z.boolean().default(false),
    storage: z.strictObject({gb: z.number().nonnegative(), pricePerGbMonth: money, what: z.string().optional()}).optional(),
    fixedMonthly: money.optional(),
    available: z.boolean().default(true),
    availability: z.string().optional(),
    asOf: isoDate,
    source: z.url({error: 'expected the URL the price was read from'}),
    notes: z.string().optional(),
  })
  .superRefine((row, ctx) => {
    if (row.kind === 'workstation') {
      if (row.watts === undefined && row.pricePerHour === undefined) ctx.addIssue({code: 'custom', path: ['watts'], message: 'a workstation row needs watts (or pricePerHour)'})
    } else if (row.pricePerHour === undefined) {
      ctx.addIssue({code: 'custom', path: ['pricePerHour'], message: 'expected a number (US dollars per hour)'})
    }
    if (row.priceRange && row.priceRange.low > row.priceRange.high) ctx.addIssue({code: 'custom', path: ['priceRange'], message: 'low is above high'})
  })
export type PriceRow = z.infer<typeof priceRowSchema>

export const catalogSchema = z.strictObject({
  prices: z.array(priceRowSchema).superRefine((rows, ctx) => {
    const seen = new Map<string, number>()
    rows.forEach((r, i) => {
      if (seen.has(r.id)) ctx.addIssue({code: 'custom', path: [i, 'id'], message: `duplicate id "${r.id}" (also prices[${seen.get(r.id)}])`})
      seen.set(r.id, i)
    })
  }),
})

const factorRowSchema = z.strictObject({
  gpu: z.string().min(1),
  model: z.string().min(1),
  factor: z.number().positive(),
  basis: z.enum(['measured', 'published', 'scaled']),
  source: z.string().min(1),
  note: z.string().optional(),
})
export type FactorRow = z.infer<typeof factorRowSchema>

export const realtimeSchema = z.strictObject({
  factors: z.array(factorRowSchema),
  modelMultipliers: z.strictObject({gpu: z.record(z.string(), z.number().positive()), cpu: z.record(z.string(), z.number().positive())}),
  overheads: z.strictObject({
    alignmentFraction: z.number().nonnegative(),
    diarizationTimeFractionGpu: z.number().nonnegative(),
    diarizationTimeFractionCpu: z.number().nonnegative(),
  }),
})
export type RealtimeTable = z.infer<typeof realtimeSchema>

export function catalogDir(): string {
  return join(packageRoot(), 'src', 'cost', 'catalog')
}

/** Parse YAML (JSON is YAML too) and validate; every problem carries file:line:column and its key path. */
export function parseData<S extends z.ZodType>(text: string, file: string, schema: S): z.infer<S> {
  const lc = new LineCounter()
  const doc = parseDocument(text, {lineCounter: lc, prettyErrors: false, uniqueKeys: true})
  if (doc.errors.length > 0) {
    const e = doc.errors[0]
    const pos = lc.linePos(e.pos[0])
    throw new ConfigError([{file, line: pos.line, column: pos.col, path: '', message: e.message.split('\n')[0]}])
  }
  const parsed = schema.safeParse(doc.toJS() ?? {})
  if (!parsed.success) throw new ConfigError(zodProblems(parsed.error, file, doc, lc), {suggestion: 'Fix the lines above; see src/cost/README.md for the row format.'})
  return parsed.data
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw new UserError(`${what} ${path} does not exist`, {code: 'file_missing'})
    throw new UserError(`Cannot read ${what} ${path}: ${code ?? (error as Error).message}`, {code: 'file_unreadable'})
  }
}

export interface Catalog {
  rows: PriceRow[]
  /** Files the rows came from: the built-in catalog, then the user's --catalog file. */
  files: string[]
}

/** The built-in catalog, with a user's --catalog FILE merged over it (same id replaces, new ids add). */
export async function loadCatalog(userFile?: string): Promise<Catalog> {
  const builtinPath = join(catalogDir(), 'prices.yaml')
  let builtin: z.infer<typeof catalogSchema>
  try {
    builtin = parseData(await readText(builtinPath, 'price catalog'), builtinPath, catalogSchema)
  } catch (error) {
    // The shipped file is ours: a problem in it is a bug, not the user's to fix.
    throw new BugError(`The built-in price catalog is broken: ${(error as Error).message}`, error)
  }
  if (!userFile) return {rows: builtin.prices, files: [builtinPath]}
  const path = resolve(userFile)
  const user = parseData(await readText(path, 'catalog file'), userFile, catalogSchema)
  const byId = new Map(builtin.prices.map((r) => [r.id, r]))
  for (const r of user.prices) byId.set(r.id, r)
  return {rows: [...byId.values()], files: [builtinPath, path]}
}

export async function loadRealtimeTable(): Promise<RealtimeTable> {
  const path = join(catalogDir(), 'realtime.yaml')
  try {
    return parseData(await readText(path, 'realtime-factor table'), path, realtimeSchema)
  } catch (error) {
    throw new BugError(`The built-in realtime-factor table is broken: ${(error as Error).message}`, error)
  }
}
