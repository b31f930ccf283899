import {existsSync, statSync} from 'node:fs'
import {basename} from 'node:path'
import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../lib/base-command.js'
import {effectiveDefaults} from '../config/env.js'
import {FORMATS, type Format} from '../config/schema.js'
import {UsageError} from '../lib/errors.js'
import {transcribeFiles, type FileOutcome, type TranscribeReport} from '../transcribe/service.js'
import {ProgressMeter} from '../transcribe/progress.js'
import {renderTable} from '../ui/ui.js'

export default class Transcribe extends BaseCommand {
  static summary = 'Transcribe audio files on the best healthy backend'
  static description =
    'Backends are tried in config order (EXTERNAL_GPU_URL first, local last); a backend that is down, answers 5xx or drops the connection passes the file to the next one. Outputs are written atomically beside each input (or in --output-dir); files whose outputs are complete are skipped.'
  static strict = false
  static args = {files: Args.string({description: 'audio or video files (anything ffmpeg reads)', required: true})}
  static examples = [
    '<%= config.bin %> transcribe call.mp3',
    '<%= config.bin %> transcribe meetings/*.m4a --format txt,srt,json --output-dir transcripts/',
    '<%= config.bin %> transcribe interview.wav --diarize --min-speakers 2 --max-speakers 2',
    'TRANSCRIPTION_BACKEND=local <%= config.bin %> transcribe clip.wav --json',
  ]
  static flags = {
    format: Flags.string({description: `comma-separated: ${FORMATS.join(', ')} (default txt,srt)`}),
    'output-dir': Flags.string({char: 'o', description: 'where transcripts go (default: beside each input)'}),
    backend: Flags.string({char: 'b', description: 'use only this backend (a name from jarvis.yaml or a deployment, or external_gpu, modal, local)', env: 'TRANSCRIPTION_BACKEND'}),
    language: Flags.string({description: 'language code such as en or de (default: detect)'}),
    model: Flags.string({description: 'only use backends serving this model (e.g. large-v3)'}),
    diarize: Flags.boolean({description: 'speaker labels: --diarize requires them, --no-diarize turns them off (default: where the backend can)', allowNo: true}),
    'min-speakers': Flags.integer({description: 'lower bound on speakers for diarization', min: 1}),
    'max-speakers': Flags.integer({description: 'upper bound on speakers for diarization', min: 1}),
    concurrency: Flags.integer({char: 'c', description: 'files in flight at once (default: one per healthy backend of the first rank)', min: 1, max: 64}),
    force: Flags.boolean({description: 'redo files whose outputs already exist', default: false}),
    'health-timeout': Flags.integer({description: 'milliseconds a backend has to answer its health check', default: 2000, min: 100}),
    mode: Flags.string({description: 'sync (POST /transcribe), job (submit then poll; no proxy timeout), or auto (jobs for files over 25 MB)', options: ['auto', 'sync', 'job'], default: 'auto'}),
  }

  async run(): Promise<TranscribeReport> {
    const {argv, flags} = await this.parse(Transcribe)
    const loaded = await this.loadConfig(flags)
    const defaults = effectiveDefaults(loaded.config)
    const formats = flags.format ? parseFormats(flags.format) : defaults.formats
    if (flags['min-speakers'] && flags['max-speakers'] && flags['min-speakers'] > flags['max-speakers']) {
      throw new UsageError('--min-speakers is larger than --max-speakers')
    }
    const outDir = flags['output-dir']
    if (outDir && existsSync(outDir) && !statSync(outDir).isDirectory()) {
      throw new UsageError(`--output-dir ${outDir} is a file, not a directory`, {suggestion: 'Pass a directory (it is created when missing).'})
    }
    const spinner = await this.ui.spinner('Routing audio')
    const meter = new Map<string, ProgressMeter>()
    let report: TranscribeReport
    try {
      report = await transcribeFiles(
        loaded,
        {
          files: argv as string[],
          formats,
          outputDir: flags['output-dir'],
          force: flags.force,
          backend: flags.backend,
          language: flags.language ?? defaults.language,
          model: flags.model,
          diarize: flags.diarize ?? defaults.diarize,
          minSpeakers: flags['min-speakers'],
          maxSpeakers: flags['max-speakers'],
          concurrency: flags.concurrency,
          healthTimeoutMs: flags['health-timeout'],
          mode: flags.mode as 'auto' | 'sync' | 'job',
          jobThresholdBytes: 25 * 1024 * 1024,
        },
        {
          signal: this.abort.signal,
          onStage: (t) => spinner.update(t),
          onProgress: (file, backend, sent, total) => {
            if (!meter.has(file)) meter.set(file, new ProgressMeter())
            spinner.update(meter.get(file)!.line(`${basename(file)} → ${backend}`, sent, total))
          },
          onFileDone: (o) => this.ui.debug(`${basename(o.input)}: ${o.status}${o.reason ? ` (${o.reason})` : ''}`),
        },
      )
    } finally {
      spinner.stop()
    }
    this.render(report)
    if (report.files.some((f) => f.status === 'failed')) process.exitCode = 1
    return report
  }

  private render(report: TranscribeReport): void {
    const skipped = report.backends.filter((b) => b.state === 'skipped' || b.state === 'failed')
    for (const b of skipped) this.ui.info(`skipped ${b.name}: ${b.reason ?? 'unavailable'}`)
    const rows = report.files.map((f: FileOutcome) => ({
      file: basename(f.input),
      status: f.status,
      backend: f.backend,
      audio: f.audioSeconds === undefined ? undefined : `${f.audioSeconds.toFixed(1)} s`,
      time: f.wallSeconds === undefined ? undefined : `${f.wallSeconds.toFixed(1)} s`,
      rtf: f.realtimeFactor === undefined ? undefined : `${f.realtimeFactor}×`,
    }))
    this.log(
      renderTable(rows, [
        {key: 'file', header: 'FILE'},
        {key: 'status', header: 'STATUS'},
        {key: 'backend', header: 'BACKEND'},
        {key: 'audio', header: 'AUDIO', align: 'right'},
        {key: 'time', header: 'TIME', align: 'right'},
        {key: 'rtf', header: 'SPEED', align: 'right'},
      ]),
    )
    for (const f of report.files) {
      if (f.status === 'failed') this.log(`✗ ${basename(f.input)}: ${f.reason}`)
      else if (f.status === 'skipped') this.log(`  ${basename(f.input)}: ${f.reason}`)
      else if (f.status === 'done' && f.attempts.length) this.log(`  ${basename(f.input)} failed over: ${f.attempts.map((a) => `${a.backend} (${a.error})`).join(', ')}`)
      if (f.status === 'done') for (const o of f.outputs ?? []) this.log(`  → ${o}`)
    }
  }
}

function parseFormats(value: string): Format[] {
  const list = value.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean)
  const bad = list.filter((f) => !(FORMATS as readonly string[]).includes(f))
  if (bad.length || !list.length) throw new UsageError(`Unknown format ${bad.join(', ') || '(empty)'}`, {suggestion: `Use a comma-separated list of: ${FORMATS.join(', ')}.`})
  return [...new Set(list)] as Format[]
}
