import {Flags} from '@oclif/core'
import chalk from 'chalk'
import {BaseCommand} from '../lib/base-command.js'
import {collectStatus, type BackendStatus, type StatusReport} from '../deploy/status.js'
import {renderTable} from '../ui/ui.js'

export default class Status extends BaseCommand {
  static summary = 'Check every backend and recorded deployment in parallel: health, latency, GPU, model, engine, URL'
  static description = `Backends come from jarvis.yaml, EXTERNAL_GPU_URL and deployments recorded by \`jarvis deploy\`; for deployments the provider's own view (fly status, modal app list, ...) is shown too. vast/ssh backends are checked through a short-lived SSH tunnel (host keys must already be pinned: \`jarvis tunnel NAME\`).
Exit code: 0 when every backend is healthy (a local server that is not running does not count: it starts on demand), 1 otherwise.`
  static examples = ['<%= config.bin %> status', '<%= config.bin %> status --json', '<%= config.bin %> status --watch 10']

  static flags = {
    watch: Flags.integer({description: 're-check every N seconds until Ctrl-C', min: 1, exclusive: ['json']}),
    timeout: Flags.integer({description: 'seconds to wait for each health check', default: 5, min: 1}),
  }

  async run(): Promise<StatusReport> {
    const {flags} = await this.parse(Status)
    const loaded = await this.loadConfig(flags)
    for (;;) {
      const report = await collectStatus(loaded, {timeoutMs: flags.timeout * 1000, signal: this.abort.signal})
      if (flags.watch) process.stdout.write('\u001B[2J\u001B[H')
      this.log(render(report))
      process.exitCode = report.healthy ? 0 : 1
      if (!flags.watch) return report
      this.log(chalk.dim(`\nRe-checking every ${flags.watch} s; Ctrl-C to stop.`))
      const stopped = await sleep(flags.watch * 1000, this.abort.signal)
      if (stopped) {
        // Ctrl-C ends a watch normally: the last report stands.
        process.exitCode = report.healthy ? 0 : 1
        return report
      }
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(true)
    const t = setTimeout(() => resolve(false), ms)
    signal.addEventListener('abort', () => (clearTimeout(t), resolve(true)), {once: true})
  })
}

const MARK: Record<string, string> = {healthy: chalk.green('✓'), stopped: chalk.dim('–')}

function render(report: StatusReport): string {
  if (report.backends.length === 0) return 'No backends configured and no deployments recorded.'
  const rows = report.backends.map((b: BackendStatus) => ({
    mark: MARK[b.health] ?? (b.ok ? chalk.green('✓') : chalk.red('✗')),
    name: b.name,
    kind: b.provider ?? b.kind,
    health: b.health.replace('_', ' '),
    latency: b.latencyMs === undefined ? undefined : `${b.latencyMs} ms`,
    gpu: b.gpu ?? (b.device === 'cpu' ? 'cpu' : b.device),
    model: b.model,
    engine: b.engine,
    url: b.url,
  }))
  const table = renderTable(rows, [
    {key: 'mark', header: ''},
    {key: 'name', header: 'NAME'},
    {key: 'kind', header: 'KIND'},
    {key: 'health', header: 'HEALTH'},
    {key: 'latency', header: 'LATENCY', align: 'right'},
    {key: 'gpu', header: 'GPU'},
    {key: 'model', header: 'MODEL'},
    {key: 'engine', header: 'ENGINE'},
    {key: 'url', header: 'URL'},
  ])
  const notes: string[] = []
  for (const b of report.backends) {
    if (b.reason && !b.ok) notes.push(`  ${b.name}: ${b.reason}`)
    if (b.providerStatus) notes.push(`  ${b.name} (${b.provider}): ${b.providerStatus.state} — ${b.providerStatus.summary}`)
  }
  // A stopped local server counts as fine (it starts on demand), but "all healthy" would overstate it.
  const anyUp = report.backends.some((b) => b.ok)
  const summary = !report.healthy
    ? chalk.red('Some backends are not healthy.')
    : anyUp
      ? chalk.green('All backends healthy.')
      : chalk.yellow('No backend is running; the local server starts on demand.')
  return [table, ...(notes.length ? ['', ...notes] : []), '', summary].join('\n')
}
