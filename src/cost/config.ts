// The `cost:` section of jarvis.yaml. The main schema keeps it an untyped record; it is
// validated here, and problems point at their line and column in the file.
import {readFile} from 'node:fs/promises'
import {LineCounter, parseDocument} from 'yaml'
import {z} from 'zod'
import {zodProblems} from '../config/load.js'
import {ConfigError} from '../lib/errors.js'

/** An assumed residential price, $/kWh; set cost.electricityPerKwh to yours. */
export const DEFAULT_ELECTRICITY_PER_KWH = 0.17

export const costConfigSchema = z.strictObject({
  /** Your electricity price, US dollars per kWh. */
  electricityPerKwh: z.number().nonnegative().optional(),
  /** Your own machine: its GPU (or CPU-<n>) and its power draw under load. */
  workstation: z.strictObject({gpu: z.string().min(1).optional(), watts: z.number().positive().optional()}).optional(),
  /** Replace the shipped realtime factors: audio seconds per processing second. */
  realtimeFactors: z.array(z.strictObject({gpu: z.string().min(1), model: z.string().min(1), factor: z.number().positive(), note: z.string().optional()})).optional(),
})
export type CostConfig = z.infer<typeof costConfigSchema>

const wrapper = z.object({cost: costConfigSchema.optional()})

/** Validate config.cost; `file` (the loaded jarvis.yaml) lets problems name line:column. */
export async function parseCostConfig(raw: unknown, file?: string): Promise<CostConfig> {
  const parsed = wrapper.safeParse({cost: raw})
  if (parsed.success) return parsed.data.cost ?? {}
  let problems = zodProblems(parsed.error, file ?? 'jarvis.yaml')
  if (file) {
    try {
      const text = await readFile(file, 'utf8')
      const lc = new LineCounter()
      // Same-width swap as config/load.ts so `${VAR}` in flow maps parses and positions hold.
      const doc = parseDocument(text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, '$$<$1>'), {lineCounter: lc, prettyErrors: false})
      problems = zodProblems(parsed.error, file, doc, lc)
    } catch {
      // Positions are a nicety; the key paths alone still say what is wrong.
    }
  }
  throw new ConfigError(problems, {suggestion: 'Fix the cost: section of jarvis.yaml (see src/cost/README.md).'})
}
