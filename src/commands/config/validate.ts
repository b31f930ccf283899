import {BaseCommand} from '../../lib/base-command.js'

export default class ConfigValidate extends BaseCommand {
  static summary = 'Check jarvis.yaml and report every problem with file:line:column'
  static examples = ['<%= config.bin %> config validate', '<%= config.bin %> config validate --config deploy/jarvis.yaml --json']

  async run(): Promise<{valid: true; path: string; backends: number}> {
    const {flags} = await this.parse(ConfigValidate)
    const loaded = await this.loadConfig(flags, {required: true})
    this.log(`✓ ${loaded.path} is valid (${loaded.config.backends.length} backend${loaded.config.backends.length === 1 ? '' : 's'})`)
    return {valid: true, path: loaded.path!, backends: loaded.config.backends.length}
  }
}
