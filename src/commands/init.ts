import {existsSync} from 'node:fs'
import {resolve} from 'node:path'
import {Flags} from '@oclif/core'
import {BaseCommand} from '../lib/base-command.js'
import {FORMATS, type Format} from '../config/schema.js'
import {parseConfigText} from '../config/load.js'
import {writeFileAtomic} from '../lib/atomic.js'
import {ConfigError, UserError, UsageError} from '../lib/errors.js'
import {renderConfig, type InitAnswers} from '../init/render.js'

const MODAL_GPUS = ['T4', 'L4', 'A10', 'L40S', 'A100-40GB', 'A100-80GB', 'H100']

export default class Init extends BaseCommand {
  static summary = 'Write a jarvis.yaml (asks with a TTY; every answer is also a flag)'
  static examples = [
    '<%= config.bin %> init',
    '<%= config.bin %> init --yes --external-url http://100.64.0.5:8000 --no-modal',
    '<%= config.bin %> init --yes --local-engine pocketsphinx --path ./jarvis.yaml --force',
  ]
  static flags = {
    path: Flags.string({description: 'where to write it', default: 'jarvis.yaml'}),
    force: Flags.boolean({description: 'overwrite an existing file', default: false}),
    yes: Flags.boolean({char: 'y', description: 'take the defaults and flags without asking', default: false}),
    'external-url': Flags.string({description: 'URL of a gpu-server on your workstation (e.g. over Tailscale)'}),
    'api-key-env': Flags.string({description: 'environment variable that holds its API key', default: 'EXTERNAL_GPU_API_KEY'}),
    modal: Flags.boolean({description: 'add Modal as a fallback backend', allowNo: true}),
    'modal-gpu': Flags.string({description: 'Modal GPU type', options: MODAL_GPUS}),
    local: Flags.boolean({description: 'add this machine as the last fallback', allowNo: true}),
    'local-engine': Flags.string({description: 'engine for the local fallback', options: ['auto', 'whisperx', 'pocketsphinx']}),
    model: Flags.string({description: 'default Whisper model'}),
    language: Flags.string({description: 'default language code, or auto'}),
    diarize: Flags.string({description: 'speaker labels by default', options: ['auto', 'true', 'false']}),
    formats: Flags.string({description: `default output formats, comma-separated (${FORMATS.join(', ')})`}),
  }

  async run(): Promise<{path: string; config: string}> {
    const {flags} = await this.parse(Init)
    const path = resolve(flags.path)
    if (existsSync(path) && !flags.force) {
      throw new UserError(`${path} already exists`, {code: 'config_exists', suggestion: 'Pass --force to overwrite it, or --path to write elsewhere.'})
    }
    const formats = (flags.formats ?? 'txt,srt').split(',').map((f) => f.trim()) as Format[]
    const bad = formats.filter((f) => !FORMATS.includes(f))
    if (bad.length) throw new UsageError(`Unknown format ${bad.join(', ')}`, {suggestion: `Use: ${FORMATS.join(', ')}.`})
    const answers: InitAnswers = {
      externalUrl: flags['external-url'],
      apiKeyEnv: flags['api-key-env'],
      modal: flags.modal ?? false,
      modalGpu: flags['modal-gpu'] ?? 'T4',
      local: flags.local ?? true,
      localEngine: (flags['local-engine'] ?? 'auto') as InitAnswers['localEngine'],
      model: flags.model ?? 'large-v3',
      language: flags.language ?? 'auto',
      diarize: flags.diarize === undefined || flags.diarize === 'auto' ? 'auto' : flags.diarize === 'true',
      formats,
    }
    // Ask only what the flags left open, and only with a terminal: CI never hangs here.
    if (this.canPrompt(flags.yes)) await this.ask(answers, flags)
    if (answers.externalUrl && !/^https?:\/\/\S+$/.test(answers.externalUrl)) {
      throw new UsageError(`--external-url ${answers.externalUrl} is not an http(s) URL`, {suggestion: 'Pass it like --external-url http://100.64.0.5:8000'})
    }
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(answers.apiKeyEnv)) {
      throw new UsageError(`--api-key-env ${answers.apiKeyEnv} is not an environment variable name`, {suggestion: 'Pass a name like EXTERNAL_GPU_API_KEY.'})
    }
    const text = renderConfig(answers)
    // What we write must validate. Nothing is on disk yet, so a problem is reported against the answers, not file lines.
    try {
      parseConfigText(text.replaceAll(`\${${answers.apiKeyEnv}}`, 'placeholder'), path)
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error
      throw new UsageError(`These answers don't make a valid jarvis.yaml (nothing was written): ${error.problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('; ')}`, {
        suggestion: 'Check the values given to --model, --language and --external-url.',
      })
    }
    await writeFileAtomic(path, text)
    this.log(`✓ wrote ${path}`)
    if (answers.externalUrl) this.log(`  Set ${answers.apiKeyEnv} in your environment; jarvis reads it at run time.`)
    this.log('  Next: jarvis config validate && jarvis status')
    return {path, config: text}
  }

  private async ask(a: InitAnswers, flags: Record<string, unknown>): Promise<void> {
    const {input, confirm, select} = await import('@inquirer/prompts')
    const opts = {signal: this.abort.signal}
    if (flags['external-url'] === undefined) {
      const url = await input({message: 'URL of a gpu-server on your workstation (empty for none):', default: '', validate: (v) => !v || /^https?:\/\/\S+$/.test(v) || 'an http(s) URL, e.g. http://100.64.0.5:8000'}, opts)
      a.externalUrl = url || undefined
    }
    if (flags.modal === undefined) a.modal = await confirm({message: 'Use Modal as a fallback?', default: false}, opts)
    if (a.modal && flags['modal-gpu'] === undefined) a.modalGpu = await select({message: 'Modal GPU:', choices: MODAL_GPUS.map((g) => ({value: g})), default: 'T4'}, opts)
    if (flags.local === undefined) a.local = await confirm({message: 'Fall back to this machine (CPU) last?', default: true}, opts)
    if (flags.model === undefined) a.model = await input({message: 'Default Whisper model:', default: a.model}, opts)
  }
}
