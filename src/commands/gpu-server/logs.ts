import {createReadStream} from 'node:fs'
import {stat} from 'node:fs/promises'
import {Flags} from '@oclif/core'
import {BaseCommand} from '../../lib/base-command.js'
import {portFlag} from '../../gpu-server/flags.js'
import {logFileFor, logTail} from '../../gpu-server/manager.js'
import {UserError} from '../../lib/errors.js'
import {maskSecrets} from '../../lib/secrets.js'

export default class GpuServerLogs extends BaseCommand {
  static summary = "Show the local gpu-server's log"
  static examples = ['<%= config.bin %> gpu-server logs', '<%= config.bin %> gpu-server logs --lines 200', '<%= config.bin %> gpu-server logs --follow']
  static flags = {
    port: portFlag,
    lines: Flags.integer({char: 'n', description: 'how many of the last lines to show', default: 50, min: 1}),
    follow: Flags.boolean({char: 'f', description: 'keep printing new lines until Ctrl-C', default: false}),
  }

  async run(): Promise<{logFile: string; lines: string[]}> {
    const {flags} = await this.parse(GpuServerLogs)
    const file = await logFileFor(flags.port)
    if (!file) throw new UserError('No gpu-server log found', {code: 'no_log', suggestion: 'Start the server with `jarvis gpu-server start` first.'})
    const text = await logTail(file, flags.lines)
    this.log(maskSecrets(text))
    if (flags.follow && !this.jsonEnabled()) {
      let pos = (await stat(file)).size
      while (!this.abort.signal.aborted) {
        await new Promise((r) => setTimeout(r, 500))
        const size = (await stat(file).catch(() => ({size: pos}))).size
        if (size < pos) pos = 0 // rotated or restarted
        if (size > pos) {
          for await (const chunk of createReadStream(file, {start: pos, end: size - 1})) process.stdout.write(maskSecrets(String(chunk)))
          pos = size
        }
      }
    }
    return {logFile: file, lines: text ? text.split('\n').map(maskSecrets) : []}
  }
}
