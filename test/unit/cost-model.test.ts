// The cost model against the published figures it must reproduce, and its edge cases.
import {describe, expect, it} from 'vitest'
import {loadCatalog, loadRealtimeTable, type PriceRow} from '../../src/cost/data.js'
import {estimateAll, estimateOption, filterRows, type Workload} from '../../src/cost/estimate.js'
import {billedSeconds, HOURS_PER_MONTH, monthlyCost} from '../../src/cost/model.js'
import {processingSecondsPerAudioHour} from '../../src/cost/realtime.js'

const table = await loadRealtimeTable()
const catalog = await loadCatalog()
const row = (id: string): PriceRow => {
  const r = catalog.rows.find((x) => x.id === id)
  if (!r) throw new Error(`no catalog row ${id}`)
  return r
}
const workload = (w: Partial<Workload>): Workload => ({audioHours: 10, files: 20, model: 'large-v3', diarize: false, minInstances: 0, alwaysOn: false, ...w})
const within = (actual: number, expected: number, fraction: number) => expect(Math.abs(actual - expected) / expected).toBeLessThanOrEqual(fraction)

describe('published figures', () => {
  it('Modal T4 at $0.59/h and 10-20x realtime: about $0.03 for a 30-minute file and $0.06 for a 60-minute one', () => {
    const t4 = row('modal-t4')
    expect(t4.pricePerHour).toBeCloseTo(0.59, 2)
    // The published figure is GPU time only, at the slow end of 10-20x.
    const bare = {...t4, coldStartSeconds: 0, idleSeconds: 0}
    const file = (minutes: number, factor: number) => estimateOption(bare, {factor, basis: 'published', source: 'test'}, workload({audioHours: minutes / 60, files: 1}), {table}).monthlyCost!
    within(file(30, 10), 0.03, 0.05)
    within(file(60, 10), 0.06, 0.05)
    // At 20x it halves: the published range is $0.015-0.03 and $0.03-0.06.
    within(file(30, 20), 0.015, 0.05)
    within(file(60, 20), 0.03, 0.05)
    // With the catalog's own cold start (30 s) and idle tail (60 s) at the table's 15x, still "about" those figures.
    const real = (minutes: number) => estimateAll([t4], workload({audioHours: minutes / 60, files: 1}), {table, overrides: []})[0].monthlyCost!
    expect(real(30)).toBeGreaterThan(0.02)
    expect(real(30)).toBeLessThan(0.04)
    expect(real(60)).toBeGreaterThan(0.04)
    expect(real(60)).toBeLessThan(0.07)
  })

  it('Fly.io A10 at $2.08/h active with a 30 GB volume at $0.15/GB-month: about $25, $110 and $420 for 10, 50 and 200 active hours', () => {
    // The guide's figures are in *active machine hours*. With no cold start or idle tail,
    // active hours = audio hours / realtime factor, so at 20x: 200, 1000, 4000 audio hours.
    const fly: PriceRow = {...row('fly-a10'), pricePerHour: 2.08, coldStartSeconds: 0, idleSeconds: 0, storage: {gb: 30, pricePerGbMonth: 0.15}}
    const factor = {factor: 20, basis: 'published' as const, source: 'test'}
    for (const [active, published] of [[10, 25], [50, 110], [200, 420]] as const) {
      const est = estimateOption(fly, factor, workload({audioHours: active * 20, files: 100}), {table})
      expect(est.breakdown!.activeHours).toBeCloseTo(active, 6)
      expect(est.breakdown!.storageCost).toBeCloseTo(4.5, 6)
      within(est.monthlyCost!, published, 0.03)
    }
  })

  it('how audio hours map to Fly active hours: processing + cold start + idle-until-auto-stop per wake', () => {
    const fly: PriceRow = {...row('fly-a10'), pricePerHour: 2.08, coldStartSeconds: 30, idleSeconds: 300, storage: {gb: 30, pricePerGbMonth: 0.15}}
    // 100 audio hours at 20x = 5 h of processing, in 200 thirty-minute files each waking the machine.
    const est = estimateOption(fly, {factor: 20, basis: 'published', source: 'test'}, workload({audioHours: 100, files: 200}), {table})
    expect(est.breakdown!.activeHours).toBeCloseTo(5 + (200 * 330) / 3600, 6)
    // Sent in 10 batches instead, the overhead shrinks twentyfold.
    const batched = estimateOption(fly, {factor: 20, basis: 'published', source: 'test'}, workload({audioHours: 100, files: 200, wakes: 10}), {table})
    expect(batched.breakdown!.activeHours).toBeCloseTo(5 + (10 * 330) / 3600, 6)
  })

  it('an always-on Cloud Run minimum instance adds its monthly floor', () => {
    const run = row('cloudrun-l4')
    // L4 $0.0001867/s + 4 vCPU × $0.000018/s + 16 GiB × $0.000002/s.
    expect(run.pricePerHour).toBeCloseTo((0.0001867 + 4 * 0.000018 + 16 * 0.000002) * 3600, 3)
    const floor = HOURS_PER_MONTH * run.pricePerHour!
    const [zero] = estimateAll([run], workload({audioHours: 20, files: 40}), {table, overrides: []})
    const [warm] = estimateAll([run], workload({audioHours: 20, files: 40, minInstances: 1}), {table, overrides: []})
    expect(warm.mode).toBe('always-on')
    expect(warm.breakdown!.alwaysOnCost).toBeCloseTo(floor, 6)
    expect(warm.monthlyCost).toBeCloseTo(floor + zero.breakdown!.storageCost, 6)
    expect(warm.monthlyCost! - zero.monthlyCost!).toBeGreaterThan(700)
    // The floor is there even with no audio at all.
    const [idle] = estimateAll([run], workload({audioHours: 0, files: 0, minInstances: 1}), {table, overrides: []})
    expect(idle.monthlyCost).toBeCloseTo(floor + idle.breakdown!.storageCost, 6)
  })
})

describe('billing', () => {
  it('rounds each run up to the billing unit after the minimum', () => {
    expect(billedSeconds(10, {unit: 'second', minimumSeconds: 60})).toBe(60)
    expect(billedSeconds(61.2, {unit: 'second', minimumSeconds: 60})).toBe(62)
    expect(billedSeconds(61, {unit: 'minute'})).toBe(120)
    expect(billedSeconds(1, {unit: 'hour'})).toBe(3600)
    expect(billedSeconds(3600.0000001, {unit: 'hour'})).toBe(3600)
    expect(billedSeconds(0, {unit: 'hour'})).toBe(0)
  })

  it('an hourly-billed box pays a full hour per wake', () => {
    const cost = monthlyCost({pricePerHour: 1, billing: {unit: 'hour'}, processingSeconds: 600, wakes: 3, coldStartSeconds: 0, idleSeconds: 0, alwaysOnInstances: 0, storageGb: 0, storagePricePerGbMonth: 0, fixedMonthly: 0})
    expect(cost.billedHours).toBe(3)
    expect(cost.usageCost).toBe(3)
  })

  it('work beyond the always-on capacity spills onto extra instances', () => {
    const cost = monthlyCost({pricePerHour: 1, billing: {unit: 'second'}, processingSeconds: (HOURS_PER_MONTH + 10) * 3600, wakes: 1, coldStartSeconds: 0, idleSeconds: 0, alwaysOnInstances: 1, storageGb: 0, storagePricePerGbMonth: 0, fixedMonthly: 0})
    expect(cost.alwaysOnCost).toBe(HOURS_PER_MONTH)
    expect(cost.usageCost).toBeCloseTo(10, 6)
  })
})

describe('estimates', () => {
  it('zero hours: only floors and storage, no cost per audio hour', () => {
    const rows = estimateAll(filterRows(catalog.rows, {}), workload({audioHours: 0, files: 0}), {table, overrides: []})
    for (const r of rows) {
      expect(r.costPerAudioHour).toBeNull()
      expect(r.monthlyCost).toBeCloseTo(r.breakdown!.storageCost, 9)
    }
    expect(rows.find((r) => r.id === 'aws-g4dn-xlarge')!.monthlyCost).toBeCloseTo(50 * 0.08, 9)
  })

  it('diarization adds alignment and pyannote time', () => {
    const plain = processingSecondsPerAudioHour(20, {diarize: false, cpu: false, overheads: table.overheads})
    const diar = processingSecondsPerAudioHour(20, {diarize: true, cpu: false, overheads: table.overheads})
    expect(plain).toBe(180)
    expect(diar).toBeCloseTo(180 * (1 + table.overheads.alignmentFraction) + 3600 * table.overheads.diarizationTimeFractionGpu, 9)
  })

  it('sorts by monthly cost and marks one cheapest and one fastest among available options', () => {
    const rows = estimateAll(filterRows(catalog.rows, {includeUnavailable: true}), workload({audioHours: 50, files: 100}), {table, overrides: []})
    const costs = rows.map((r) => r.monthlyCost ?? Infinity)
    expect([...costs].sort((a, b) => a - b)).toEqual(costs)
    expect(rows.filter((r) => r.cheapest)).toHaveLength(1)
    expect(rows.filter((r) => r.fastest)).toHaveLength(1)
    for (const r of rows.filter((x) => !x.available)) {
      expect(r.cheapest || r.fastest).toBe(false)
      expect(r.notes[0]).toMatch(/unavailable: Fly GPUs deprecated/)
    }
    const fastest = rows.find((r) => r.fastest)!
    expect(Math.min(...rows.filter((r) => r.available && r.processingMinutesPerAudioHour !== null).map((r) => r.processingMinutesPerAudioHour!))).toBe(fastest.processingMinutesPerAudioHour)
  })

  it('the workstation costs its electricity: watts × $/kWh for the processing time only', () => {
    const ws = row('workstation-gpu')
    const [est] = estimateAll([ws], workload({audioHours: 70, files: 10}), {table, overrides: [{gpu: 'RTX 4090', model: 'large-v3', factor: 70}], electricityPerKwh: 0.3})
    expect(est.pricePerHour).toBeCloseTo(0.45 * 0.3, 9)
    expect(est.factorBasis).toBe('config')
    // 70 audio hours at 70x = 1 hour at 450 W and $0.30/kWh.
    expect(est.monthlyCost).toBeCloseTo(0.135, 9)
    expect(est.mode).toBe('own-hardware')
  })
})
