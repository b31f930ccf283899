import {Args, Flags} from '@oclif/core'
import chalk from 'chalk'
import {BaseCommand} from '../lib/base-command.js'
import {UsageError} from '../lib/errors.js'
import {prepareDestroy, runDestroy} from '../deploy/destroy.js'
import {renderDestroyPlan} from '../deploy/render.js'
import {destroyPlanData} from '../providers/engine.js'
import {providerNames} from '../providers/registry.js'
import type {Spinner} from '../ui/ui.js'

export default class Destroy extends BaseCommand {
  static summary = 'Tear down what `jarvis deploy PROVIDER` created, after confirmation'
  static description = 'Reads the deployment recorded in .jarvis/state.json (including one left half-made by a failed deploy), removes its resources on the platform, then forgets it and its stored API key. Resources already gone count as removed, so it is safe to run twice.'
  static examples = ['<%= config.bin %> destroy fly', '<%= config.bin %> destroy modal --yes', '<%= config.bin %> destroy local --dry-run --json']

  static args = {
    provider: Args.string({description: `the provider deployed to: ${providerNames.join(', ')}`, required: true}),
  }

  static flags = {
    yes: Flags.boolean({char: 'y', description: 'destroy without asking for confirmation', default: false}),
    'dry-run': Flags.boolean({description: 'print what would be removed and change nothing', default: false}),
  }

  async run(): Promise<Record<string, unknown>> {
    const {args, flags} = await this.parse(Destroy)
    const loaded = await this.loadConfig(flags)
    let streaming = false
    let spinner: Spinner | undefined
    const p = await prepareDestroy(args.provider, loaded, {
      signal: this.abort.signal,
      log: (line) => streaming && this.ui.info(chalk.dim(`  │ ${line}`)),
      progress: async (e) => {
        if (e.phase === 'start') spinner = await this.ui.spinner(e.step.title)
        else if (e.phase === 'done') spinner?.succeed(e.step.title)
        else if (e.phase === 'fail') spinner?.fail(e.step.title)
      },
    })
    if (!p.deployment || !p.plan) {
      this.log(`No ${p.provider.name} deployment is recorded in ${loaded.projectDir}/.jarvis/state.json: nothing to destroy.`)
      return {provider: p.provider.name, destroyed: false, reason: 'not_recorded'}
    }
    this.log(renderDestroyPlan(p.plan))
    if (flags['dry-run']) {
      this.log(chalk.dim('\nDry run: nothing was changed.'))
      return {provider: p.provider.name, dryRun: true, destroyed: false, plan: destroyPlanData(p.plan), deployment: p.deployment}
    }
    if (!flags.yes) {
      if (!this.canPrompt()) throw new UsageError('Destroying needs confirmation, and there is no terminal to ask on', {suggestion: 'Pass --yes to destroy (or --dry-run to see what would go).'})
      const {confirm} = await import('@inquirer/prompts')
      const ok = await confirm({message: `Destroy the ${p.provider.name} deployment? This cannot be undone.`, default: false}, {signal: this.abort.signal})
      if (!ok) {
        this.log('Nothing was changed.')
        return {provider: p.provider.name, destroyed: false, reason: 'declined'}
      }
    }
    streaming = true
    await runDestroy(p)
    this.log(`${chalk.green('✓')} ${p.provider.name} deployment destroyed and removed from the state file`)
    return {provider: p.provider.name, destroyed: true, plan: destroyPlanData(p.plan)}
  }
}
