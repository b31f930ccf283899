// The one base class: --json, --config, --verbose, errors → messages and exit codes
// (0 ok, 1 failure, 2 usage, 130 Ctrl-C). A command's run() returns its result; under
// --json that value *is* the output, printed once on stdout by oclif.
import {Command, Flags, type Interfaces} from '@oclif/core'
import chalk from 'chalk'
import {runCleanup} from './cleanup.js'
import {loadConfig, type LoadedConfig} from '../config/load.js'
import {Ui} from '../ui/ui.js'
import {EXIT, InterruptedError, JarvisError, UsageError} from './errors.js'
import {maskDeep, maskSecrets} from './secrets.js'

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>

export abstract class BaseCommand extends Command {
  static enableJsonFlag = true
  static baseFlags = {
    config: Flags.string({description: 'path to jarvis.yaml (default: ./jarvis.yaml, then the user config dir)', env: 'JARVIS_CONFIG', helpGroup: 'GLOBAL'}),
    verbose: Flags.boolean({description: 'show the commands run and debug detail', helpGroup: 'GLOBAL', default: false}),
  }

  protected ui!: Ui
  /** Aborted on Ctrl-C: pass it to every wait, request and child process. */
  protected readonly abort = new AbortController()
  private sigintHandler?: () => void

  protected override async init(): Promise<void> {
    await super.init()
    this.ui = new Ui({json: this.jsonEnabled(), verbose: this.argv.includes('--verbose')})
    let presses = 0
    this.sigintHandler = () => {
      presses++
      this.ui.stopAll()
      if (presses > 1) process.exit(EXIT.interrupted)
      this.abort.abort(new InterruptedError())
      // A command that doesn't wind down promptly is ended; nothing it owns outlives it.
      setTimeout(() => process.exit(EXIT.interrupted), 5000).unref()
    }
    process.on('SIGINT', this.sigintHandler)
  }

  /** Load jarvis.yaml (or defaults when there is none and `required` is false). */
  protected async loadConfig(flags: {config?: string}, opts: {required?: boolean} = {}): Promise<LoadedConfig> {
    return loadConfig({path: flags.config, required: opts.required})
  }

  /** Whether a prompt may be shown. Never without a TTY; the caller names the flag to pass instead. */
  protected canPrompt(yes = false): boolean {
    return !yes && Boolean(process.stdin.isTTY) && Boolean(process.stdout.isTTY) && !this.jsonEnabled()
  }

  protected override toSuccessJson(result: unknown): unknown {
    return maskDeep(result)
  }

  protected override async catch(err: Error & {oclif?: {exit?: number}; exitCode?: number}): Promise<unknown> {
    this.ui?.stopAll()
    let error: JarvisError
    if (this.abort.signal.aborted && !(err instanceof JarvisError && err.exitCode === EXIT.usage)) error = new InterruptedError()
    else if (err instanceof JarvisError) error = err
    else if (err.oclif?.exit === 2 || /Nonexistent flag|Unexpected argument|Missing required|Expected --|Parsing --|flag.*requires|is not one of|Missing \d+ required arg/i.test(err.message)) {
      error = new UsageError(usageMessage(err.message), {suggestion: `See \`jarvis ${this.id?.replaceAll(':', ' ') ?? ''} --help\`.`})
    } else if (err.oclif?.exit !== undefined && err.oclif.exit !== 1) {
      // oclif's own exit() (e.g. --help/--version paths): keep its code.
      throw err
    } else {
      error = new JarvisError(`Unexpected error: ${err.message}`, {code: 'unexpected', suggestion: 'Re-run with --verbose for details; if it persists, report it.'})
      if (this.argv.includes('--verbose') && err.stack) process.stderr.write(maskSecrets(err.stack) + '\n')
    }
    process.exitCode = error.exitCode
    if (this.jsonEnabled()) {
      this.logJson({error: error.toJSON()})
    } else {
      process.stderr.write(chalk.red(`✗ ${maskSecrets(error.message)}`) + '\n')
      if (error.suggestion) process.stderr.write(`  ${maskSecrets(error.suggestion)}\n`)
    }
    return undefined
  }

  protected override async finally(err: Error | undefined): Promise<unknown> {
    if (this.sigintHandler) process.off('SIGINT', this.sigintHandler)
    await runCleanup()
    return super.finally(err)
  }
}

/** oclif's first line only; for a flag whose parse failed ("Parsing --x") the reason is on the next line. */
function usageMessage(message: string): string {
  // eslint-disable-next-line no-control-regex
  const lines = message.replace(/\u001B\[[0-9;]*m/g, '').split('\n')
  const first = lines[0].replace(/^Error: /, '').trim()
  // "The following error occurred:" (flag validation: "--json cannot also be provided when using --watch")
  // and "Missing 1 required arg:" carry their substance on the lines below.
  if (/^The following errors? occurred:$/.test(first) || /^Missing \d+ required args?:$/.test(first)) {
    const rest = lines.slice(1)
    if (/^Missing/.test(first)) {
      // One "name  description" row per argument; wrapped description lines are indented.
      const names = rest.filter((l) => /^\S/.test(l) && !/^(See more help with|Note:|Alternatively)/.test(l)).map((l) => l.split(/\s{2,}/)[0])
      if (names.length) return `${first} ${names.join(', ')}`
    } else {
      const reasons = rest.map((l) => l.trim()).filter((l) => l && !/^See more help with/.test(l))
      if (reasons.length) return reasons.join('; ')
    }
  }
  const reason = lines[1]?.trim()
  return /^Parsing --/.test(first) && reason ? `${first}: ${reason}` : first
}
