import {BaseCommand} from '../../lib/base-command.js'
import {portFlag} from '../../gpu-server/flags.js'
import {stopServer} from '../../gpu-server/manager.js'

export default class GpuServerStop extends BaseCommand {
  static summary = 'Stop the local gpu-server started by `gpu-server start`'
  static examples = ['<%= config.bin %> gpu-server stop', '<%= config.bin %> gpu-server stop --port 8001']
  static flags = {port: portFlag}

  async run(): Promise<{stopped: boolean; pid?: number; port?: number}> {
    const {flags} = await this.parse(GpuServerStop)
    const r = await stopServer(flags.port)
    if (!r.record) this.log(`No gpu-server is running${flags.port ? ` on port ${flags.port}` : ''}.`)
    else this.log(`Stopped gpu-server (pid ${r.record.pid}, port ${r.record.port})${r.how === 'killed' ? ' — it ignored SIGTERM and was killed' : ''}.`)
    return {stopped: r.stopped, pid: r.record?.pid, port: r.record?.port}
  }
}
