import {Flags} from '@oclif/core'
import {BaseCommand} from '../../lib/base-command.js'
import {portFlag} from '../../gpu-server/flags.js'
import {findServer} from '../../gpu-server/manager.js'
import {runBench, type BenchResult} from '../../gpu-server/bench.js'
import {historyPath} from '../../history/history.js'
import {UserError} from '../../lib/errors.js'
import {registerSecret} from '../../lib/secrets.js'

export default class GpuServerBench extends BaseCommand {
  static summary = 'Measure a server: realtime factor and throughput on a standard speech sample'
  static description = 'Results are appended to the run history that `jarvis cost estimate --measured` reads.'
  static examples = [
    '<%= config.bin %> gpu-server bench',
    '<%= config.bin %> gpu-server bench --url https://me--jarvis.modal.run --api-key "$KEY" --runs 5',
    '<%= config.bin %> gpu-server bench --repeat 10 --json',
  ]
  static flags = {
    url: Flags.string({description: 'server URL (default: the local server, else EXTERNAL_GPU_URL)'}),
    'api-key': Flags.string({description: 'API key', env: 'EXTERNAL_GPU_API_KEY'}),
    port: portFlag,
    name: Flags.string({description: 'name recorded in the history (default: local, or the URL host)'}),
    runs: Flags.integer({description: 'measured requests', default: 3, min: 1, max: 100}),
    repeat: Flags.integer({description: 'sample length in units of the ~25 s standard sample', default: 1, min: 1, max: 240}),
  }

  async run(): Promise<BenchResult> {
    const {flags} = await this.parse(GpuServerBench)
    let url = flags.url
    let apiKey = flags['api-key']
    let name = flags.name
    if (!url) {
      const local = await findServer(flags.port)
      if (local) {
        url = local.url
        apiKey ??= local.apiKey
        name ??= 'local'
      } else url = process.env.EXTERNAL_GPU_URL
    }
    if (!url) throw new UserError('No server to measure: none is running locally and EXTERNAL_GPU_URL is not set', {code: 'no_server', suggestion: 'Pass --url, or start one with `jarvis gpu-server start`.'})
    registerSecret(apiKey)
    const spinner = await this.ui.spinner(`Measuring ${url} (${flags.runs} runs after a warm-up)`)
    let result: BenchResult
    try {
      result = await runBench(
        {url, apiKey, name: name ?? new URL(url).host},
        {runs: flags.runs, repeat: flags.repeat, signal: this.abort.signal, onRun: (i, r) => spinner.update(`run ${i + 1}/${flags.runs}: ${r.realtimeFactor.toFixed(1)}× realtime`)},
      )
    } finally {
      spinner.stop()
    }
    this.log(`${url}  ${[result.engine, result.model, result.device, result.gpu].filter(Boolean).join(' · ')}`)
    this.log(`sample   ${result.audioSeconds.toFixed(1)} s of speech × ${result.runs.length} runs`)
    for (const [i, r] of result.runs.entries()) this.log(`run ${i + 1}    ${r.wallSeconds.toFixed(2)} s  ${r.realtimeFactor.toFixed(1)}× realtime`)
    this.log(`median   ${result.medianRealtimeFactor.toFixed(1)}× realtime = ${result.audioHoursPerHour.toFixed(1)} audio hours per hour (one request at a time)`)
    this.log(`recorded in ${historyPath()} (used by \`jarvis cost estimate --measured\`)`)
    return result
  }
}
