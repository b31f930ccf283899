import {Flags} from '@oclif/core'
import {BaseCommand} from '../../lib/base-command.js'
import {UserError} from '../../lib/errors.js'
import {renderTable} from '../../ui/ui.js'
import {historyPath, readRuns} from '../../history/history.js'
import {DEFAULT_ELECTRICITY_PER_KWH, parseCostConfig} from '../../cost/config.js'
import {loadCatalog, loadRealtimeTable} from '../../cost/data.js'
import {configureWorkstation, estimateAll, filterRows, type EstimateRow, type Workload} from '../../cost/estimate.js'
import {num, usd} from '../../cost/format.js'
import {canonicalModel, measuredFactors} from '../../cost/realtime.js'

const nonNegative = Flags.custom<number>({
  parse: async (input) => {
    const n = Number(input)
    if (input.trim() === '' || !Number.isFinite(n) || n < 0) throw new Error(`expected a number ≥ 0, got "${input}"`)
    return n
  },
})

const BASIS_MARK: Record<string, string> = {scaled: '~', runs: '*', measured: '', published: '', config: '†'}

export default class CostEstimate extends BaseCommand {
  static summary = 'What transcription costs per audio hour and per month on each provider and GPU'
  static description =
    'Prices come from a dated catalog shipped with jarvis (see `jarvis cost gpus`), speeds from a realtime-factor table ' +
    '(or your own runs with --measured). Scale-to-zero options pay a cold start and an idle tail each time they wake; ' +
    'always-on options pay 730 hours a month. Fly.io GPUs ended on 2026-08-01 and are left out unless --include-unavailable.'

  static examples = [
    '<%= config.bin %> cost estimate --hours 40',
    '<%= config.bin %> cost estimate --files 120 --avg-minutes 45 --diarize',
    '<%= config.bin %> cost estimate --hours 100 --provider modal,gcloud --model large-v3-turbo',
    '<%= config.bin %> cost estimate --hours 200 --provider gcloud --min-instances 1',
    '<%= config.bin %> cost estimate --hours 20 --measured',
    '<%= config.bin %> cost estimate --hours 20 --catalog my-prices.yaml --json',
  ]

  static flags = {
    hours: nonNegative({description: 'audio hours per month (default 10 when --files is not given)'}),
    files: Flags.integer({min: 0, description: 'files per month (default: hours ÷ --avg-minutes)'}),
    'avg-minutes': nonNegative({description: 'average file length in minutes', default: 30}),
    model: Flags.string({description: 'Whisper model: large-v3, large-v3-turbo (turbo), medium, small (default: defaults.model in jarvis.yaml, else large-v3)'}),
    diarize: Flags.boolean({description: 'include word alignment and speaker diarization time', default: false, allowNo: true}),
    provider: Flags.string({description: 'only these providers (comma-separated): modal, gcloud, gce, aws, vast, fly, local', multiple: true, delimiter: ','}),
    gpu: Flags.string({description: 'only these GPUs (comma-separated), e.g. T4,L4,A100-80GB,"RTX 4090",CPU-8', multiple: true, delimiter: ','}),
    catalog: Flags.string({description: 'a YAML/JSON price file merged over the built-in catalog (same id replaces a row)'}),
    measured: Flags.boolean({description: 'use realtime factors measured on your own transcribe/bench runs (the history file)', default: false}),
    'min-instances': Flags.integer({min: 0, default: 0, description: 'always-on instances where the platform has a minimum (Modal, Cloud Run, Fly): adds 730 h × price'}),
    'always-on': Flags.boolean({description: 'keep one instance of every cloud option running all month instead of scaling to zero', default: false}),
    batches: Flags.integer({min: 1, description: 'times per month the backend wakes from zero (default: once per file)'}),
    'storage-gb': nonNegative({description: 'volume/disk size for options that keep one (default per row, e.g. 30 GB on Fly)'}),
    electricity: nonNegative({description: 'electricity price in $/kWh for your workstation (default cost.electricityPerKwh, else 0.17)'}),
    'include-unavailable': Flags.boolean({description: 'also show options that can no longer be bought (Fly.io GPUs), flagged', default: false}),
  }

  async run(): Promise<Record<string, unknown>> {
    const {flags} = await this.parse(CostEstimate)
    const loaded = await this.loadConfig(flags)
    const costCfg = await parseCostConfig(loaded.config.cost, loaded.path)
    const [catalog, table] = await Promise.all([loadCatalog(flags.catalog), loadRealtimeTable()])

    // Volume: hours and files inform each other through the average file length.
    let audioHours = flags.hours
    let files = flags.files
    const assumedHours = audioHours === undefined && files === undefined
    if (audioHours === undefined) audioHours = files !== undefined ? (files * flags['avg-minutes']) / 60 : 10
    if (files === undefined) files = flags['avg-minutes'] > 0 ? Math.ceil((audioHours * 60) / flags['avg-minutes']) : 0
    if (audioHours > 0 && files === 0) files = 1

    const model = canonicalModel(flags.model ?? loaded.config.defaults.model ?? 'large-v3')
    const electricityPerKwh = flags.electricity ?? costCfg.electricityPerKwh ?? DEFAULT_ELECTRICITY_PER_KWH

    let measured
    if (flags.measured) {
      const runs = await readRuns()
      if (runs.length === 0) {
        throw new UserError(`No measured runs yet: the history file ${historyPath()} is empty or missing`, {
          code: 'no_measurements',
          suggestion: 'Transcribe some audio with `jarvis transcribe` (or run `jarvis gpu-server bench`) first, or drop --measured to use the published figures.',
        })
      }
      measured = measuredFactors(runs)
      if (!measured.some((m) => m.model === model)) {
        const have = measured.map((m) => `${m.gpu}/${m.model}`).join(', ') || 'none with a known GPU and model'
        throw new UserError(`No measured runs with model ${model} (measured: ${have})`, {code: 'no_measurements', suggestion: 'Pass --model to match your runs, or drop --measured.'})
      }
    }

    const rows = filterRows(configureWorkstation(catalog.rows, costCfg.workstation), {providers: flags.provider, gpus: flags.gpu, includeUnavailable: flags['include-unavailable']}, electricityPerKwh)
    const hidden = flags['include-unavailable'] ? [] : filterRows(catalog.rows, {providers: flags.provider, gpus: flags.gpu, includeUnavailable: true}).filter((r) => !r.available)
    const workload: Workload = {
      audioHours,
      files,
      wakes: flags.batches,
      model,
      diarize: flags.diarize,
      minInstances: flags['min-instances'],
      alwaysOn: flags['always-on'],
      storageGb: flags['storage-gb'],
    }
    const result = estimateAll(rows, workload, {table, overrides: costCfg.realtimeFactors ?? [], measured, electricityPerKwh})

    this.render(result, workload, {assumedHours, hiddenUnavailable: hidden.length, electricityPerKwh, measured: Boolean(measured)})
    return {
      inputs: {...workload, wakes: workload.wakes ?? files, avgMinutes: files > 0 ? (audioHours * 60) / files : null, electricityPerKwh, measured: Boolean(measured), catalogFiles: catalog.files},
      assumptions: {
        hoursPerMonth: 730,
        overheads: table.overheads,
        notes: [
          'Scale-to-zero options pay cold start + processing + idle tail per wake, rounded to their billing unit.',
          'Always-on instances cost 730 h × price; work beyond their capacity is billed on extra instances.',
          'Workstation: electricity only (watts × $/kWh), hardware not included.',
          'Realtime factors marked "scaled" are estimates (±50%); measure with --measured.',
        ],
      },
      rows: result,
      cheapest: result.find((r) => r.cheapest)?.id ?? null,
      fastest: result.find((r) => r.fastest)?.id ?? null,
      hiddenUnavailable: hidden.map((r) => r.id),
    }
  }

  private render(rows: EstimateRow[], w: Workload, ctx: {assumedHours: boolean; hiddenUnavailable: number; electricityPerKwh: number; measured: boolean}): void {
    if (rows.length === 0) {
      this.log('No option matches the filters.')
      return
    }
    const tableRows = rows.map((r) => ({
      provider: r.provider,
      gpu: r.gpu,
      product: r.available ? r.product : `${r.product} (unavailable)`,
      price: usd(r.pricePerHour),
      rt: r.realtimeFactor === null ? '-' : `${num(r.realtimeFactor)}x${BASIS_MARK[r.factorBasis!]}`,
      proc: num(r.processingMinutesPerAudioHour),
      perAudio: usd(r.costPerAudioHour),
      month: usd(r.monthlyCost),
      mode: r.mode,
      mark: [r.cheapest ? '← cheapest' : '', r.fastest ? '← fastest' : ''].filter(Boolean).join(' '),
    }))
    this.log(
      renderTable(tableRows, [
        {key: 'provider', header: 'PROVIDER'},
        {key: 'gpu', header: 'GPU'},
        {key: 'product', header: 'OPTION'},
        {key: 'price', header: '$/HOUR', align: 'right'},
        {key: 'rt', header: 'SPEED', align: 'right'},
        {key: 'proc', header: 'MIN/AUDIO-H', align: 'right'},
        {key: 'perAudio', header: '$/AUDIO-H', align: 'right'},
        {key: 'month', header: '$/MONTH', align: 'right'},
        {key: 'mode', header: 'MODE'},
        {key: 'mark', header: ''},
      ]),
    )
    const lines: string[] = ['']
    const files = w.files
    lines.push(
      `${num(w.audioHours)} audio h/month${ctx.assumedHours ? ' (assumed: pass --hours or --files)' : ''} in ${files} file${files === 1 ? '' : 's'}, ${w.model}, ${w.diarize ? 'with alignment + diarization' : 'transcription only'}; ` +
        `${w.alwaysOn ? 'always on' : w.minInstances > 0 ? `${w.minInstances} min instance(s) where supported` : `scale to zero, ${w.wakes ?? files} wake(s)/month`}.`,
    )
    lines.push(`SPEED is × realtime: ~ estimated by scaling (±50%), * measured on your runs, † from jarvis.yaml. Workstation: electricity at $${ctx.electricityPerKwh}/kWh only.`)
    const missing = rows.filter((r) => r.realtimeFactor === null)
    for (const r of missing) lines.push(`${r.id}: ${r.notes[0]}`)
    if (ctx.hiddenUnavailable > 0) lines.push(`${ctx.hiddenUnavailable} unavailable option(s) hidden (Fly.io GPUs ended 2026-08-01); --include-unavailable shows them.`)
    lines.push(`Prices as of ${[...new Set(rows.map((r) => r.asOf))].sort().at(-1)}; sources: \`jarvis cost gpus\`.`)
    this.log(lines.join('\n'))
  }
}
