// `jarvis cost estimate` and `jarvis cost gpus`, run as a user would: the built CLI.
import {appendFile, mkdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {beforeAll, describe, expect, it} from 'vitest'
import {parseJson, runCli} from '../helpers/cli.js'
import {tempDir} from '../helpers/tmp.js'

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/cost/${name}`, import.meta.url))

let dir: string
let env: Record<string, string>
beforeAll(async () => {
  dir = await tempDir('jarvis-cost-')
  await mkdir(join(dir, 'xdg'), {recursive: true})
  // No user config, no history: each test opts in to what it needs.
  env = {XDG_CONFIG_HOME: join(dir, 'xdg'), JARVIS_HISTORY_FILE: join(dir, 'none.jsonl'), JARVIS_CONFIG: ''}
})

describe('jarvis cost estimate', () => {
  it('--help shows examples', async () => {
    const r = await runCli(['cost', 'estimate', '--help'], {cwd: dir, env})
    expect(r.exitCode).toBe(0)
    expect(r.stdout).toContain('EXAMPLES')
    expect(r.stdout).toContain('jarvis cost estimate --hours 40')
    expect(r.stdout).toContain('--measured')
  })

  it('prints a table sorted by monthly cost with the cheapest and fastest marked', async () => {
    const r = await runCli(['cost', 'estimate', '--hours', '40', '--provider', 'modal,aws,gcloud'], {cwd: dir, env})
    expect(r.exitCode).toBe(0)
    const lines = r.stdout.split('\n')
    expect(lines[0]).toMatch(/PROVIDER\s+GPU\s+OPTION\s+\$\/HOUR\s+SPEED\s+MIN\/AUDIO-H\s+\$\/AUDIO-H\s+\$\/MONTH/)
    expect(lines[1]).toContain('← cheapest')
    expect(r.stdout.match(/← fastest/g)).toHaveLength(1)
    expect(r.stdout).toContain('40 audio h/month in 80 files, large-v3')
    expect(r.stdout).not.toMatch(/^vast|^local/m)
  })

  it('--json returns the rows as data with the inputs and assumptions, and nothing else on stdout', async () => {
    const r = await runCli(['cost', 'estimate', '--files', '30', '--avg-minutes', '60', '--diarize', '--model', 'turbo', '--json'], {cwd: dir, env})
    expect(r.exitCode).toBe(0)
    const out = parseJson(r)
    expect(out.inputs).toMatchObject({audioHours: 30, files: 30, model: 'large-v3-turbo', diarize: true, avgMinutes: 60})
    expect(out.assumptions.hoursPerMonth).toBe(730)
    expect(out.rows.length).toBeGreaterThan(10)
    const t4 = out.rows.find((x: any) => x.id === 'modal-t4')
    expect(t4).toMatchObject({provider: 'modal', gpu: 'T4', mode: 'scale-to-zero', asOf: '2026-11-22', source: 'https://modal.com/pricing'})
    expect(t4.costPerAudioHour).toBeCloseTo(t4.monthlyCost / 30, 9)
    expect(t4.assumptions).toMatchObject({coldStartSeconds: 30, idleSeconds: 60, wakes: 30})
    expect(out.rows.filter((x: any) => x.cheapest)).toHaveLength(1)
    expect(out.cheapest).toBe(out.rows.find((x: any) => x.cheapest).id)
    // Fly.io GPUs are gone: left out, and said so.
    expect(out.rows.some((x: any) => x.id === 'fly-a10')).toBe(false)
    expect(out.hiddenUnavailable).toContain('fly-a10')
  })

  it('--include-unavailable shows the Fly.io GPUs, flagged and never marked', async () => {
    const r = await runCli(['cost', 'estimate', '--hours', '10', '--provider', 'fly', '--include-unavailable', '--json'], {cwd: dir, env})
    expect(r.exitCode).toBe(0)
    const fly = parseJson(r).rows.find((x: any) => x.id === 'fly-a10')
    expect(fly).toMatchObject({available: false, cheapest: false, fastest: false})
    expect(fly.notes[0]).toContain('unavailable')
    const human = await runCli(['cost', 'estimate', '--hours', '10', '--provider', 'fly', '--include-unavailable'], {cwd: dir, env})
    expect(human.stdout).toContain('(unavailable)')
  })

  it('zero hours is not an error: floors and storage only', async () => {
    const r = await runCli(['cost', 'estimate', '--hours', '0', '--provider', 'gcloud', '--min-instances', '1', '--json'], {cwd: dir, env})
    expect(r.exitCode).toBe(0)
    const [run] = parseJson(r).rows
    expect(run.costPerAudioHour).toBeNull()
    expect(run.monthlyCost).toBeCloseTo(730 * 1.0465 + 1, 1)
  })

  it('an unknown GPU exits 1 and lists the valid ones', async () => {
    const r = await runCli(['cost', 'estimate', '--gpu', 'GTX 480'], {cwd: dir, env})
    expect(r.exitCode).toBe(1)
    expect(r.stderr).toContain('Unknown GPU "GTX 480"')
    expect(r.stderr).toMatch(/Valid GPUs: .*A100-80GB.*L4.*T4/)
    const j = await runCli(['cost', 'estimate', '--gpu', 'GTX 480', '--json'], {cwd: dir, env})
    expect(parseJson(j).error.code).toBe('unknown_gpu')
  })

  it('bad flags are usage errors (exit 2)', async () => {
    expect((await runCli(['cost', 'estimate', '--bogus'], {cwd: dir, env})).exitCode).toBe(2)
    const neg = await runCli(['cost', 'estimate', '--hours', '-5'], {cwd: dir, env})
    expect(neg.exitCode).toBe(2)
    const nan = await runCli(['cost', 'estimate', '--hours', 'lots'], {cwd: dir, env})
    expect(nan.exitCode).toBe(2)
    expect(nan.stderr).toContain('expected a number')
  })

  it('a catalog file with a bad row is reported as file:line:column', async () => {
    const r = await runCli(['cost', 'estimate', '--catalog', fixture('bad-catalog.yaml')], {cwd: dir, env})
    expect(r.exitCode).toBe(1)
    expect(r.stderr).toContain('bad-catalog.yaml:18:19 prices[1].pricePerHour: expected a number (US dollars)')
  })

  it('a catalog file overrides and adds rows', async () => {
    const r = await runCli(['cost', 'estimate', '--hours', '5', '--catalog', fixture('my-catalog.yaml'), '--gpu', 'T4,L4', '--provider', 'modal,examplecloud', '--json'], {cwd: dir, env})
    expect(r.exitCode).toBe(0)
    const rows = parseJson(r).rows
    expect(rows.find((x: any) => x.id === 'modal-t4').pricePerHour).toBe(0.4)
    // Billed by the hour: each of the 10 wakes pays a full hour.
    expect(rows.find((x: any) => x.id === 'hourly-l4').breakdown.billedHours).toBe(10)
  })

  it('--measured with no history says so clearly', async () => {
    const r = await runCli(['cost', 'estimate', '--measured'], {cwd: dir, env})
    expect(r.exitCode).toBe(1)
    expect(r.stderr).toContain('No measured runs yet')
    expect(r.stderr).toContain('none.jsonl')
    expect(r.stderr).toContain('jarvis transcribe')
  })

  it('--measured uses the realtime factor of your own runs', async () => {
    const history = join(dir, 'history.jsonl')
    const rec = {at: '2026-11-20T10:00:00Z', source: 'bench', backend: 'laptop', engine: 'whisperx', model: 'large-v3', device: 'cuda', gpu: 'NVIDIA GeForce RTX 4090', audioSeconds: 3600, processingSeconds: 45, realtimeFactor: 80}
    await appendFile(history, JSON.stringify(rec) + '\n' + JSON.stringify({...rec, processingSeconds: 75, realtimeFactor: 48}) + '\n')
    const r = await runCli(['cost', 'estimate', '--hours', '10', '--measured', '--gpu', '4090', '--json'], {cwd: dir, env: {...env, JARVIS_HISTORY_FILE: history}})
    expect(r.exitCode).toBe(0)
    const rows = parseJson(r).rows
    for (const row of rows) {
      expect(row.factorBasis).toBe('runs')
      expect(row.realtimeFactor).toBeCloseTo(7200 / 120, 9)
    }
    const other = await runCli(['cost', 'estimate', '--measured', '--model', 'small'], {cwd: dir, env: {...env, JARVIS_HISTORY_FILE: history}})
    expect(other.exitCode).toBe(1)
    expect(other.stderr).toContain('measured: RTX 4090/large-v3')
  })

  it('reads the cost: section of jarvis.yaml, and reports its problems with positions', async () => {
    const proj = join(dir, 'proj')
    await mkdir(proj, {recursive: true})
    await writeFile(join(proj, 'jarvis.yaml'), 'version: 1\ncost:\n  electricityPerKwh: 0.5\n  workstation: {gpu: RTX 3090, watts: 350}\n  realtimeFactors:\n    - {gpu: RTX 3090, model: large-v3, factor: 40}\n')
    const r = await runCli(['cost', 'estimate', '--hours', '40', '--provider', 'local', '--json'], {cwd: proj, env})
    expect(r.exitCode).toBe(0)
    const ws = parseJson(r).rows.find((x: any) => x.id === 'workstation-gpu')
    expect(ws).toMatchObject({gpu: 'RTX 3090', realtimeFactor: 40, factorBasis: 'config'})
    expect(ws.pricePerHour).toBeCloseTo(0.35 * 0.5, 9)
    // 40 audio h at 40x = 1 h at 350 W and $0.50/kWh.
    expect(ws.monthlyCost).toBeCloseTo(0.175, 9)

    await writeFile(join(proj, 'jarvis.yaml'), 'version: 1\ncost:\n  electricityPerKwh: cheap\n  workstation: {gpu: RTX 3090, wats: 350}\n')
    const bad = await runCli(['cost', 'estimate'], {cwd: proj, env})
    expect(bad.exitCode).toBe(1)
    expect(bad.stderr).toContain('jarvis.yaml:3:22 cost.electricityPerKwh: expected number')
    expect(bad.stderr).toContain('jarvis.yaml:4:32 cost.workstation: unknown key "wats"')
  })
})

describe('jarvis cost gpus', () => {
  it('lists the catalog with VRAM, price, billing, availability, as-of date and source', async () => {
    const r = await runCli(['cost', 'gpus'], {cwd: dir, env})
    expect(r.exitCode).toBe(0)
    expect(r.stdout).toMatch(/PROVIDER\s+GPU\s+VRAM\s+OPTION\s+\$\/HOUR\s+BILLING\s+STORAGE\s+AVAILABLE\s+AS OF\s+SOURCE/)
    expect(r.stdout).toMatch(/modal\s+T4\s+16 GB\s+Modal function\s+\$0\.59\s+per second/)
    expect(r.stdout).toMatch(/fly\s+A10\s+.*NO\s+2026-11-22/)
    expect(r.stdout).toContain('https://aws.amazon.com/ec2/pricing/on-demand/')
  })

  it('filters by provider, GPU and max price; --json gives the rows', async () => {
    const r = await runCli(['cost', 'gpus', '--gpu', 'L4,T4', '--max-price', '0.6', '--available', '--json'], {cwd: dir, env})
    expect(r.exitCode).toBe(0)
    const {rows} = parseJson(r)
    expect(rows.length).toBeGreaterThan(0)
    for (const row of rows) {
      expect(['L4', 'T4']).toContain(row.gpu)
      expect(row.pricePerHour).toBeLessThanOrEqual(0.6)
      expect(row.available).toBe(true)
    }
    expect(rows.map((x: any) => x.id)).toEqual(expect.arrayContaining(['modal-t4', 'aws-g4dn-xlarge', 'gce-t4']))
    const modal = parseJson(await runCli(['cost', 'gpus', '--provider', 'modal', '--json'], {cwd: dir, env})).rows
    expect(modal.map((x: any) => x.gpu)).toEqual(['T4', 'L4', 'A10', 'L40S', 'A100-40GB', 'A100-80GB', 'H100'])
  })

  it('an unknown provider exits 1 with the valid list', async () => {
    const r = await runCli(['cost', 'gpus', '--provider', 'azure'], {cwd: dir, env})
    expect(r.exitCode).toBe(1)
    expect(r.stderr).toMatch(/Valid providers: aws, fly, gce, gcloud, local, modal, vast/)
  })
})
