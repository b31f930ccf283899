import {Flags} from '@oclif/core'
import {BaseCommand} from '../../lib/base-command.js'
import {serverFlags} from '../../gpu-server/flags.js'
import {ensureVenv, serverArgs, serverEnv, startServer, type Engine} from '../../gpu-server/manager.js'
import {runAttached} from '../../exec/exec.js'
import {hfToken} from '../../config/env.js'
import {describeServer} from '../../gpu-server/describe.js'

export default class GpuServerStart extends BaseCommand {
  static summary = 'Start the bundled transcription server on this workstation'
  static description =
    'Creates a Python venv in the user cache dir, installs the bundled gpu-server with the engine\'s extra, starts it detached (pid and log files in the user data dir) and waits for /health. Secrets reach the server through its environment, never its argv.'
  static examples = [
    '<%= config.bin %> gpu-server start',
    '<%= config.bin %> gpu-server start --engine pocketsphinx --port 8001',
    'EXTERNAL_GPU_API_KEY=... <%= config.bin %> gpu-server start --host 0.0.0.0 --model large-v3-turbo',
    '<%= config.bin %> gpu-server start --foreground',
  ]
  static flags = {
    ...serverFlags,
    foreground: Flags.boolean({description: 'run attached to this terminal (Ctrl-C stops it)', default: false}),
  }

  async run(): Promise<Record<string, unknown> | undefined> {
    const {flags} = await this.parse(GpuServerStart)
    const opts = {
      host: flags.host,
      port: flags.port,
      engine: flags.engine as Engine,
      model: flags.model,
      device: flags.device,
      computeType: flags['compute-type'],
      batchSize: flags['batch-size'],
      apiKey: flags['api-key'],
      hfToken: flags['hf-token'] ?? hfToken(),
      python: flags.python,
      timeoutMs: flags.timeout * 1000,
    }
    if (flags.foreground) {
      const python = await ensureVenv({python: opts.python, engine: opts.engine}, {onStage: (s) => this.ui.info(s), signal: this.abort.signal})
      // The child gets Ctrl-C from the terminal itself; we only wait for it.
      process.removeAllListeners('SIGINT')
      process.on('SIGINT', () => {})
      const code = await runAttached(python, serverArgs(opts, opts.port), {env: serverEnv(opts)})
      this.exit(code)
    }
    const spinner = await this.ui.spinner(`Starting gpu-server on port ${opts.port}`)
    try {
      const {record, health, alreadyRunning, mismatch} = await startServer(opts, {
        signal: this.abort.signal,
        onStage: (stage, ms) => spinner.update(`Starting gpu-server (${Math.round(ms / 1000)}s): ${stage.slice(0, 100)}`),
      })
      spinner.succeed(alreadyRunning ? `gpu-server already running (pid ${record.pid})` : `gpu-server ready (pid ${record.pid})`)
      if (mismatch) this.ui.warn(`The server already running on port ${record.port} has ${mismatch}. Stop it first (jarvis gpu-server stop --port ${record.port}) to restart with what you asked for.`)
      const summary = describeServer(health)
      this.log(`URL      ${record.url}`)
      for (const [k, v] of Object.entries(summary)) if (v !== undefined) this.log(`${k.padEnd(8)} ${v}`)
      this.log(`log      ${record.logFile}`)
      this.log(`\nUse it:  export EXTERNAL_GPU_URL=${record.url}`)
      return {url: record.url, pid: record.pid, port: record.port, logFile: record.logFile, alreadyRunning, ...summary, health: health.health, info: health.info}
    } catch (error) {
      spinner.fail()
      throw error
    }
  }
}
