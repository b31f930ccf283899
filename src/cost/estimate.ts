// `cost estimate` as a service: for each catalog option, the realtime factor that applies,
// the processing time per audio hour, and the month's bill under the workload given.
import {UserError} from '../lib/errors.js'
import type {PriceRow, RealtimeTable} from './data.js'
import {DEFAULT_ELECTRICITY_PER_KWH} from './config.js'
import {electricityPerHour, HOURS_PER_MONTH, monthlyCost, type CostBreakdown} from './model.js'
import {canonicalGpu, canonicalModel, isCpu, lookupFactor, processingSecondsPerAudioHour, type FactorChoice, type FactorOverride, type MeasuredFactor} from './realtime.js'

export interface Workload {
  /** Audio hours per month. */
  audioHours: number
  /** Files (jobs) per month. */
  files: number
  /** Times per month a scale-to-zero option wakes up; default: once per file (files arrive one by one). */
  wakes?: number
  model: string
  diarize: boolean
  /** Always-on instances for options that support a minimum (Modal min_containers, Cloud Run min-instances, Fly min_machines_running). */
  minInstances: number
  /** Keep one instance of every cloud option running all month (no scale to zero). */
  alwaysOn: boolean
  /** Override the storage size (GB) of options that keep a volume/disk. */
  storageGb?: number
}

export interface EstimateRow {
  id: string
  provider: string
  product: string
  gpu: string
  kind: PriceRow['kind']
  available: boolean
  availability?: string
  pricePerHour: number
  priceRange?: {low: number; high: number}
  billing: PriceRow['billing']
  realtimeFactor: number | null
  factorBasis: FactorChoice['basis'] | null
  factorSource: string | null
  /** Processing minutes per audio hour (transcription + alignment/diarization when asked). */
  processingMinutesPerAudioHour: number | null
  /** Monthly cost ÷ audio hours; null when there is no audio or no realtime factor. */
  costPerAudioHour: number | null
  monthlyCost: number | null
  /** own-hardware: your workstation, billed as electricity while it works. */
  mode: 'scale-to-zero' | 'always-on' | 'own-hardware'
  assumptions: {coldStartSeconds: number; idleSeconds: number; wakes: number; alwaysOnInstances: number; storageGb: number; storagePricePerGbMonth: number}
  breakdown: CostBreakdown | null
  cheapest: boolean
  fastest: boolean
  notes: string[]
  asOf: string
  source: string
}

export interface EstimateSettings {
  table: RealtimeTable
  overrides: FactorOverride[]
  /** When set (--measured), factors measured on your runs replace the table where they exist. */
  measured?: MeasuredFactor[]
  electricityPerKwh?: number
}

/** Price per hour of a row; workstations are priced from their watts and the electricity price. */
export function rowPricePerHour(row: PriceRow, electricityPerKwh = DEFAULT_ELECTRICITY_PER_KWH): number {
  if (row.kind === 'workstation' && row.watts !== undefined) return electricityPerHour(row.watts, electricityPerKwh)
  return row.pricePerHour ?? 0
}

/** The workstation rows as configured in jarvis.yaml (cost.workstation.gpu / watts). */
export function configureWorkstation(rows: PriceRow[], ws?: {gpu?: string; watts?: number}): PriceRow[] {
  if (!ws) return rows
  return rows.map((r) => (r.kind === 'workstation' && r.id === 'workstation-gpu' ? {...r, gpu: ws.gpu ? canonicalGpu(ws.gpu) : r.gpu, watts: ws.watts ?? r.watts, notes: 'from jarvis.yaml cost.workstation; hardware cost not included'} : r))
}

function chooseFactor(row: PriceRow, workload: Workload, s: EstimateSettings): FactorChoice | undefined {
  const model = canonicalModel(workload.model)
  if (s.measured) {
    // A workstation row also takes measurements from this machine's CPU runs.
    const gpu = canonicalGpu(row.gpu)
    const m = s.measured.find((x) => x.model === model && (x.gpu === gpu || (row.kind === 'workstation' && isCpu(gpu) && x.gpu === 'CPU')))
    if (m) return {factor: m.factor, basis: 'runs', source: `your runs (${m.runs}, ${m.audioHours.toFixed(1)} audio h)`, runs: m.runs}
  }
  return lookupFactor(s.table, s.overrides, row.gpu, model)
}

/** One option under one workload. Pure: everything it depends on is passed in. */
export function estimateOption(row: PriceRow, factor: FactorChoice | undefined, workload: Workload, s: Pick<EstimateSettings, 'table' | 'electricityPerKwh'>): EstimateRow {
  const pricePerHour = rowPricePerHour(row, s.electricityPerKwh)
  const cpu = isCpu(canonicalGpu(row.gpu))
  const notes: string[] = []
  if (!row.available) notes.push(`unavailable: ${row.availability ?? 'no longer offered'}`)
  if (row.notes) notes.push(row.notes)
  const alwaysOnInstances = row.kind === 'workstation' ? 0 : workload.alwaysOn ? Math.max(1, workload.minInstances) : row.supportsMinInstances ? workload.minInstances : 0
  if (workload.minInstances > 0 && !workload.alwaysOn && !row.supportsMinInstances && row.kind !== 'workstation') notes.push('no min-instances setting: priced as scale-to-zero')
  const storageGb = row.storage ? (workload.storageGb ?? row.storage.gb) : 0
  const wakes = workload.audioHours > 0 ? Math.max(1, Math.round(workload.wakes ?? workload.files)) : 0
  const assumptions = {
    coldStartSeconds: row.coldStartSeconds,
    idleSeconds: row.idleSeconds,
    wakes: alwaysOnInstances > 0 ? 0 : wakes,
    alwaysOnInstances,
    storageGb,
    storagePricePerGbMonth: row.storage?.pricePerGbMonth ?? 0,
  }
  const base = {
    id: row.id,
    provider: row.provider,
    product: row.product,
    gpu: row.gpu,
    kind: row.kind,
    available: row.available,
    availability: row.availability,
    pricePerHour,
    priceRange: row.priceRange,
    billing: row.billing,
    mode: (row.kind === 'workstation' ? 'own-hardware' : alwaysOnInstances > 0 ? 'always-on' : 'scale-to-zero') as EstimateRow['mode'],
    assumptions,
    cheapest: false,
    fastest: false,
    notes,
    asOf: row.asOf,
    source: row.source,
  }
  if (!factor) {
    notes.unshift(`no realtime factor for ${row.gpu} with ${canonicalModel(workload.model)}: add one under cost.realtimeFactors in jarvis.yaml`)
    return {...base, realtimeFactor: null, factorBasis: null, factorSource: null, processingMinutesPerAudioHour: null, costPerAudioHour: null, monthlyCost: null, breakdown: null}
  }
  const perAudioHour = processingSecondsPerAudioHour(factor.factor, {diarize: workload.diarize, cpu, overheads: s.table.overheads})
  const breakdown = monthlyCost({
    pricePerHour,
    billing: row.billing,
    processingSeconds: perAudioHour * workload.audioHours,
    wakes,
    coldStartSeconds: row.coldStartSeconds,
    idleSeconds: row.idleSeconds,
    alwaysOnInstances,
    storageGb,
    storagePricePerGbMonth: row.storage?.pricePerGbMonth ?? 0,
    fixedMonthly: row.fixedMonthly ?? 0,
  })
  if (alwaysOnInstances > 0 && perAudioHour * workload.audioHours > alwaysOnInstances * HOURS_PER_MONTH * 3600) notes.push('work exceeds the always-on capacity: the rest is billed on extra instances')
  return {
    ...base,
    realtimeFactor: factor.factor,
    factorBasis: factor.basis,
    factorSource: factor.source,
    processingMinutesPerAudioHour: perAudioHour / 60,
    costPerAudioHour: workload.audioHours > 0 ? breakdown.total / workload.audioHours : null,
    monthlyCost: breakdown.total,
    breakdown,
  }
}

export interface RowFilter {
  providers?: string[]
  gpus?: string[]
  includeUnavailable?: boolean
  maxPricePerHour?: number
}

/** Narrow the catalog; an unknown provider or GPU is an error that lists the valid ones. */
export function filterRows(rows: PriceRow[], f: RowFilter, electricityPerKwh?: number): PriceRow[] {
  let out = rows
  if (f.providers?.length) {
    const valid = [...new Set(rows.map((r) => r.provider))].sort()
    const unknown = f.providers.filter((p) => !valid.includes(p.toLowerCase()))
    if (unknown.length > 0) throw new UserError(`Unknown provider ${unknown.map((u) => `"${u}"`).join(', ')}`, {code: 'unknown_provider', suggestion: `Valid providers: ${valid.join(', ')}.`})
    const want = new Set(f.providers.map((p) => p.toLowerCase()))
    out = out.filter((r) => want.has(r.provider))
  }
  if (f.gpus?.length) {
    const valid = [...new Set(rows.map((r) => canonicalGpu(r.gpu)))].sort()
    const want = f.gpus.map((g) => canonicalGpu(g))
    const unknown = f.gpus.filter((_g, i) => !valid.includes(want[i]))
    if (unknown.length > 0) throw new UserError(`Unknown GPU ${unknown.map((u) => `"${u}"`).join(', ')}`, {code: 'unknown_gpu', suggestion: `Valid GPUs: ${valid.join(', ')}.`})
    out = out.filter((r) => want.includes(canonicalGpu(r.gpu)))
  }
  if (!f.includeUnavailable) out = out.filter((r) => r.available)
  if (f.maxPricePerHour !== undefined) out = out.filter((r) => rowPricePerHour(r, electricityPerKwh) <= f.maxPricePerHour!)
  return out
}

/** Every option, sorted by monthly cost; the cheapest and fastest available ones marked. */
export function estimateAll(rows: PriceRow[], workload: Workload, s: EstimateSettings): EstimateRow[] {
  const out = rows.map((r) => estimateOption(r, chooseFactor(r, workload, s), workload, s))
  out.sort((a, b) => (a.monthlyCost ?? Infinity) - (b.monthlyCost ?? Infinity) || (a.processingMinutesPerAudioHour ?? Infinity) - (b.processingMinutesPerAudioHour ?? Infinity) || a.id.localeCompare(b.id))
  const rankable = out.filter((r) => r.available && r.monthlyCost !== null)
  if (rankable.length > 0) {
    rankable[0].cheapest = true
    const fastest = rankable.reduce((best, r) => (r.processingMinutesPerAudioHour! < best.processingMinutesPerAudioHour! ? r : best))
    fastest.fastest = true
  }
  return out
}
