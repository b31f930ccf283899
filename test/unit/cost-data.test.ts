// The shipped catalog and realtime table: complete, dated, sourced; and how names and
// measurements are read.
import {readFile} from 'node:fs/promises'
import {fileURLToPath} from 'node:url'
import {describe, expect, it} from 'vitest'
import {ConfigError} from '../../src/lib/errors.js'
import {catalogSchema, loadCatalog, loadRealtimeTable, parseData} from '../../src/cost/data.js'
import {parseCostConfig} from '../../src/cost/config.js'
import {canonicalGpu, canonicalModel, lookupFactor, measuredFactors} from '../../src/cost/realtime.js'
import type {RunRecord} from '../../src/history/history.js'

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/cost/${name}`, import.meta.url))

describe('the shipped catalog', () => {
  it('has every option the issue asks for, each with an as-of date and a source URL', async () => {
    const {rows} = await loadCatalog()
    const ids = rows.map((r) => r.id)
    for (const id of ['modal-t4', 'modal-l4', 'modal-a10', 'modal-l40s', 'modal-a100-40gb', 'modal-a100-80gb', 'modal-h100', 'fly-a10', 'fly-l40s', 'fly-a100-40gb', 'fly-a100-80gb', 'fly-perf-8x', 'cloudrun-l4', 'aws-g4dn-xlarge', 'aws-g5-xlarge', 'aws-g6-xlarge', 'gce-t4', 'gce-l4', 'vast-rtx3090', 'vast-rtx4090', 'vast-a100-80gb', 'workstation-gpu']) {
      expect(ids).toContain(id)
    }
    for (const r of rows) {
      expect(r.asOf).toMatch(/^\d{4}-\d{2}-\d{2}$/)
      expect(r.source).toMatch(/^https:\/\//)
    }
    for (const r of rows.filter((x) => x.provider === 'modal')) expect(r.billing.unit).toBe('second')
    for (const r of rows.filter((x) => x.id.startsWith('aws-'))) expect(r.billing.minimumSeconds).toBe(60)
    for (const r of rows.filter((x) => x.provider === 'fly' && !x.gpu.startsWith('CPU'))) {
      expect(r.available).toBe(false)
      expect(r.availability).toMatch(/2026-08-01/)
    }
    for (const r of rows.filter((x) => x.provider === 'vast')) expect(r.priceRange!.low).toBeLessThanOrEqual(r.pricePerHour!)
  })

  it('has a realtime factor for every GPU it prices, for large-v3 and turbo', async () => {
    const [{rows}, table] = await Promise.all([loadCatalog(), loadRealtimeTable()])
    for (const r of rows) {
      for (const model of ['large-v3', 'turbo', 'medium', 'small']) expect(lookupFactor(table, [], r.gpu, model), `${r.gpu} ${model}`).toBeDefined()
    }
    for (const f of table.factors) expect(f.source.length).toBeGreaterThan(5)
  })
})

describe('a user catalog', () => {
  it('a bad row is reported as file:line:column path: message', async () => {
    const text = await readFile(fixture('bad-catalog.yaml'), 'utf8')
    try {
      parseData(text, 'bad-catalog.yaml', catalogSchema)
      expect.unreachable()
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError)
      expect((error as ConfigError).message).toBe('bad-catalog.yaml:18:19 prices[1].pricePerHour: expected a number (US dollars)')
    }
  })

  it('merges over the built-in catalog: same id replaces, new ids are added', async () => {
    const {rows, files} = await loadCatalog(fixture('my-catalog.yaml'))
    expect(rows.find((r) => r.id === 'modal-t4')!.pricePerHour).toBe(0.4)
    expect(rows.find((r) => r.id === 'hourly-l4')!.billing.unit).toBe('hour')
    expect(rows.find((r) => r.id === 'modal-h100')).toBeDefined()
    expect(files).toHaveLength(2)
  })
})

describe('names', () => {
  it('reads GPU names as drivers, clouds and people write them', () => {
    expect(canonicalGpu('NVIDIA GeForce RTX 4090')).toBe('RTX 4090')
    expect(canonicalGpu('4090')).toBe('RTX 4090')
    expect(canonicalGpu('NVIDIA GeForce RTX 3070 Ti')).toBe('RTX 3070 Ti')
    expect(canonicalGpu('Tesla T4')).toBe('T4')
    expect(canonicalGpu('nvidia-l4')).toBe('L4')
    expect(canonicalGpu('NVIDIA L40S')).toBe('L40S')
    expect(canonicalGpu('NVIDIA A10G')).toBe('A10G')
    expect(canonicalGpu('a10')).toBe('A10')
    expect(canonicalGpu('NVIDIA A100-SXM4-80GB')).toBe('A100-80GB')
    expect(canonicalGpu('A100')).toBe('A100-40GB')
    expect(canonicalGpu('NVIDIA H100 80GB HBM3')).toBe('H100')
    expect(canonicalGpu('cpu-8')).toBe('CPU-8')
  })

  it('reads model names', () => {
    expect(canonicalModel('turbo')).toBe('large-v3-turbo')
    expect(canonicalModel('deepdml/faster-whisper-large-v3-turbo-ct2')).toBe('large-v3-turbo')
    expect(canonicalModel('Systran/faster-whisper-large-v3')).toBe('large-v3')
    expect(canonicalModel('small')).toBe('small')
  })
})

describe('measured factors', () => {
  it('are time-weighted per GPU and model, from runs with a known GPU', () => {
    const run = (gpu: string | undefined, model: string, audio: number, proc: number, device = 'cuda'): RunRecord => ({at: '2026-11-01T00:00:00Z', source: 'transcribe', backend: 'x', gpu, model, device, audioSeconds: audio, processingSeconds: proc, realtimeFactor: audio / proc})
    const m = measuredFactors([
      run('NVIDIA GeForce RTX 4090', 'large-v3', 3600, 60),
      run('NVIDIA GeForce RTX 4090', 'large-v3', 600, 20),
      run(undefined, 'small', 600, 60, 'cpu'),
      run(undefined, 'large-v3', 600, 60, 'cuda'),
    ])
    expect(m).toHaveLength(2)
    const g = m.find((x) => x.gpu === 'RTX 4090')!
    expect(g.factor).toBeCloseTo(4200 / 80, 9)
    expect(g.runs).toBe(2)
    expect(m.find((x) => x.gpu === 'CPU')!.factor).toBe(10)
  })
})

describe('the cost: section of jarvis.yaml', () => {
  it('is validated, with positions', async () => {
    expect(await parseCostConfig(undefined)).toEqual({})
    expect(await parseCostConfig({electricityPerKwh: 0.3, workstation: {gpu: 'RTX 3090', watts: 350}})).toMatchObject({electricityPerKwh: 0.3})
    await expect(parseCostConfig({electricityPerKwh: 'lots'})).rejects.toThrow(/cost.electricityPerKwh: expected number/)
  })
})
