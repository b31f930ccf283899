// Realtime factors: how many seconds of audio one second of processing transcribes, per GPU
// and model. From the user's config first, then the shipped table, then the table's large-v3
// figure scaled to a smaller model; or measured from the user's own runs (--measured).
import type {RunRecord} from '../history/history.js'
import type {RealtimeTable} from './data.js'

export interface FactorOverride {
  gpu: string
  model: string
  factor: number
  note?: string
}

export interface FactorChoice {
  factor: number
  /** runs (measured on your own runs), config (jarvis.yaml), or the table row's basis (measured/published/scaled). */
  basis: 'runs' | 'config' | 'measured' | 'published' | 'scaled'
  source: string
  runs?: number
}

/** GPU names as users, drivers and price lists write them → the catalog's canonical name. */
export function canonicalGpu(name: string): string {
  const compact = name
    .toUpperCase()
    .replace(/\b(NVIDIA|GEFORCE|TESLA|TENSOR CORE GPU)\b/g, '')
    .replace(/[^A-Z0-9]/g, '')
  if (/^CPU\d*$/.test(compact)) return compact === 'CPU' ? 'CPU' : `CPU-${compact.slice(3)}`
  if (compact.startsWith('H100')) return 'H100'
  // Modal's bare "A100" is the 40 GB card.
  if (compact.startsWith('A100')) return /80G/.test(compact) ? 'A100-80GB' : 'A100-40GB'
  if (compact.startsWith('A10G')) return 'A10G'
  if (/^A10(PCIE|24GB)?$/.test(compact)) return 'A10'
  if (compact.startsWith('L40S')) return 'L40S'
  if (compact.startsWith('L4') && !compact.startsWith('L40')) return 'L4'
  if (compact.startsWith('T4')) return 'T4'
  const rtx = /^(?:RTX)?(\d{4})(TI)?/.exec(compact)
  if (rtx) return `RTX ${rtx[1]}${rtx[2] ? ' Ti' : ''}`
  return name.trim()
}

/** Model names (turbo, openai/whisper-large-v3, Systran/faster-whisper-small, ...) → one spelling. */
export function canonicalModel(name: string): string {
  const n = name.toLowerCase()
  if (n.includes('turbo')) return 'large-v3-turbo'
  for (const m of ['large-v3', 'large-v2', 'medium', 'small', 'base', 'tiny']) if (n.includes(m)) return m
  if (/(^|[-/])large$/.test(n)) return 'large-v3'
  return n
}

export function isCpu(gpu: string): boolean {
  return gpu === 'CPU' || gpu.startsWith('CPU-')
}

/** The factor for one GPU and model, or undefined when nothing is known. */
export function lookupFactor(table: RealtimeTable, overrides: FactorOverride[], gpu: string, model: string): FactorChoice | undefined {
  const g = canonicalGpu(gpu)
  const m = canonicalModel(model)
  const o = overrides.find((x) => canonicalGpu(x.gpu) === g && canonicalModel(x.model) === m)
  if (o) return {factor: o.factor, basis: 'config', source: `jarvis.yaml cost.realtimeFactors${o.note ? ` (${o.note})` : ''}`}
  const row = table.factors.find((x) => canonicalGpu(x.gpu) === g && canonicalModel(x.model) === m)
  if (row) return {factor: row.factor, basis: row.basis, source: row.source}
  // A smaller model than the table lists: scale its large-v3 figure.
  const base = overrides.find((x) => canonicalGpu(x.gpu) === g && canonicalModel(x.model) === 'large-v3') ?? table.factors.find((x) => canonicalGpu(x.gpu) === g && canonicalModel(x.model) === 'large-v3')
  const mult = (isCpu(g) ? table.modelMultipliers.cpu : table.modelMultipliers.gpu)[m]
  if (base && mult) return {factor: base.factor * mult, basis: 'scaled', source: `large-v3 figure for ${g} x ${mult} for ${m} (openai/whisper relative speeds, tempered)`}
  return undefined
}

export interface MeasuredFactor {
  gpu: string
  model: string
  factor: number
  runs: number
  audioHours: number
}

/** Time-weighted realtime factor per GPU and model from the run history (Σ audio / Σ processing). */
export function measuredFactors(runs: RunRecord[]): MeasuredFactor[] {
  const groups = new Map<string, {gpu: string; model: string; audio: number; processing: number; runs: number}>()
  for (const r of runs) {
    if (!(r.audioSeconds > 0 && r.processingSeconds > 0)) continue
    const gpu = r.gpu ? canonicalGpu(r.gpu) : r.device && r.device.toLowerCase() === 'cpu' ? 'CPU' : undefined
    if (!gpu || !r.model) continue
    const model = canonicalModel(r.model)
    const key = `${gpu}\u0000${model}`
    const g = groups.get(key) ?? {gpu, model, audio: 0, processing: 0, runs: 0}
    g.audio += r.audioSeconds
    g.processing += r.processingSeconds
    g.runs++
    groups.set(key, g)
  }
  return [...groups.values()].map((g) => ({gpu: g.gpu, model: g.model, factor: g.audio / g.processing, runs: g.runs, audioHours: g.audio / 3600}))
}

export interface Overheads {
  alignmentFraction: number
  diarizationTimeFractionGpu: number
  diarizationTimeFractionCpu: number
}

/**
 * Processing seconds for one hour of audio. Diarization brings alignment with it (as the
 * server runs them): alignment adds a fraction of the transcription time, diarization a
 * fraction of the audio duration (pyannote's own real-time factor).
 */
export function processingSecondsPerAudioHour(factor: number, opts: {diarize: boolean; cpu: boolean; overheads: Overheads}): number {
  const transcribe = 3600 / factor
  if (!opts.diarize) return transcribe
  const diarFraction = opts.cpu ? opts.overheads.diarizationTimeFractionCpu : opts.overheads.diarizationTimeFractionGpu
  return transcribe * (1 + opts.overheads.alignmentFraction) + 3600 * diarFraction
}
