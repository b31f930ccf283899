import {stringify} from 'yaml'
import {BaseCommand} from '../../lib/base-command.js'
import {redactConfig} from '../../config/show.js'
import {effectiveBackends} from '../../config/env.js'

export default class ConfigShow extends BaseCommand {
  static summary = 'Print the resolved config (defaults and environment applied, secrets redacted)'
  static examples = ['<%= config.bin %> config show', '<%= config.bin %> config show --json']

  async run(): Promise<Record<string, unknown>> {
    const {flags} = await this.parse(ConfigShow)
    const loaded = await this.loadConfig(flags)
    const resolved = redactConfig({
      source: loaded.path ?? '(none: built-in defaults)',
      ...loaded.config,
      backends: effectiveBackends(loaded.config).map((b) => ({...b})),
    })
    this.log(stringify(resolved).trimEnd())
    return resolved
  }
}
