import {Flags} from '@oclif/core'
import {BaseCommand} from '../../lib/base-command.js'
import {portFlag} from '../../gpu-server/flags.js'
import {findServer} from '../../gpu-server/manager.js'
import {checkServer, type ServerHealth} from '../../server/client.js'
import {describeServer} from '../../gpu-server/describe.js'
import {UsageError, UserError} from '../../lib/errors.js'
import {registerSecret} from '../../lib/secrets.js'

export default class GpuServerHealth extends BaseCommand {
  static summary = "Check a gpu-server's /health and /info; exit 1 when it is not healthy"
  static examples = [
    '<%= config.bin %> gpu-server health',
    '<%= config.bin %> gpu-server health --url http://100.64.0.5:8000 --api-key "$EXTERNAL_GPU_API_KEY"',
    '<%= config.bin %> gpu-server health --json',
  ]
  static flags = {
    url: Flags.string({description: 'server URL (default: the local server, else EXTERNAL_GPU_URL)'}),
    'api-key': Flags.string({description: 'API key for /info', env: 'EXTERNAL_GPU_API_KEY'}),
    port: portFlag,
    timeout: Flags.integer({description: 'seconds to wait for an answer', default: 5, min: 1}),
  }

  async run(): Promise<ServerHealth & Record<string, unknown>> {
    const {flags} = await this.parse(GpuServerHealth)
    let url = flags.url
    let apiKey = flags['api-key']
    if (!url) {
      const local = await findServer(flags.port)
      if (local) {
        url = local.url
        apiKey ??= local.apiKey
      } else if (flags.port !== undefined) {
        // Asked about a port: check that port on this machine, even if jarvis did not start what runs there.
        url = `http://127.0.0.1:${flags.port}`
      } else url = process.env.EXTERNAL_GPU_URL
    }
    if (url && !/^https?:\/\/\S+$/.test(url)) {
      throw new UsageError(`${url} is not an http(s) URL`, {suggestion: 'Pass it like --url http://100.64.0.5:8000 (or fix EXTERNAL_GPU_URL).'})
    }
    if (!url) throw new UserError('No server to check: none is running locally and EXTERNAL_GPU_URL is not set', {code: 'no_server', suggestion: 'Pass --url http://HOST:PORT, or start one with `jarvis gpu-server start`.'})
    registerSecret(apiKey)
    const h = await checkServer({url, apiKey}, {timeoutMs: flags.timeout * 1000, signal: this.abort.signal})
    const summary = describeServer(h)
    if (h.ok) {
      this.log(`✓ ${url} healthy (${h.latencyMs} ms)`)
      for (const [k, v] of Object.entries(summary)) if (v !== undefined) this.log(`  ${k.padEnd(7)} ${v}`)
    } else {
      process.exitCode = 1
      this.log(`✗ ${url} ${h.state}: ${h.reason}`)
    }
    return {...h, ...summary}
  }
}
