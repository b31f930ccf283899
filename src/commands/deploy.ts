import {Args, Flags} from '@oclif/core'
import chalk from 'chalk'
import {BaseCommand} from '../lib/base-command.js'
import {UsageError} from '../lib/errors.js'
import {applyDeploy, DEFAULT_HEALTH_TIMEOUT_S, prepareDeploy, type DeployFlags} from '../deploy/deploy.js'
import {renderPlan} from '../deploy/render.js'
import {blockingChecks, capabilityRows, planData, preflightError} from '../providers/engine.js'
import {providerNames} from '../providers/registry.js'
import type {ProgressEvent} from '../providers/types.js'
import type {Spinner} from '../ui/ui.js'

export default class Deploy extends BaseCommand {
  static summary = 'Deploy the transcription server to a provider: preflight, plan, confirm, apply, wait for /health'
  static description = `Works without a jarvis.yaml (defaults are shown in the plan) and without the provider's tool installed (the ✗ rows show the fix). Rendered files go to .jarvis/deploy/PROVIDER/ beside the config. The deployment is recorded in .jarvis/state.json after every step: a failed deploy can be re-run to resume, or removed with \`jarvis destroy PROVIDER\`. One deployment per provider per project.`
  static examples = [
    '<%= config.bin %> deploy modal --gpu L4 --dry-run',
    '<%= config.bin %> deploy fly --cpu --model small --yes',
    '<%= config.bin %> deploy local --yes',
    '<%= config.bin %> deploy fly --dry-run --json',
    '<%= config.bin %> deploy ssh --host gpu.example.com --user ubuntu --engine whisperx --yes',
    '<%= config.bin %> deploy vast --gpu RTX_4090 --max-price 0.6 --yes',
  ]

  static args = {
    provider: Args.string({description: `where to deploy: ${providerNames.join(', ')}`, required: true}),
  }

  static flags = {
    yes: Flags.boolean({char: 'y', description: 'apply without asking for confirmation', default: false}),
    'dry-run': Flags.boolean({description: 'print the plan (preflight, files, exact commands) and change nothing', default: false}),
    name: Flags.string({description: 'app / service name on the platform (default: from the project directory)'}),
    region: Flags.string({description: 'region (default: the provider section of jarvis.yaml, else a provider default)'}),
    gpu: Flags.string({description: 'GPU kind, in the provider\'s words (fly: a10; modal: T4, L4, A10, L40S, A100, H100; vast: RTX_4090, RTX_3090, L40S ...)', exclusive: ['cpu']}),
    cpu: Flags.boolean({description: 'deploy the CPU image (int8) instead of a GPU one', exclusive: ['gpu']}),
    model: Flags.string({description: 'Whisper model (default: WHISPER_MODEL, else jarvis.yaml defaults.model, else large-v3)'}),
    engine: Flags.string({description: 'server engine', options: ['whisperx', 'pocketsphinx'], default: undefined}),
    url: Flags.string({description: 'the URL the deployment answers at, when not the provider default (custom domain, proxy)'}),
    'api-key': Flags.string({description: 'API key the server requires (default: keep the stored one, else generate one); prefer leaving it out: argv is visible to other users'}),
    'health-timeout': Flags.integer({description: `seconds to wait for /health after deploying (default ${DEFAULT_HEALTH_TIMEOUT_S})`, min: 1}),
    // Deploying over SSH (ssh; vast onto an existing instance).
    host: Flags.string({description: 'ssh, vast: the SSH host to install the server on (name, address or ~/.ssh/config Host alias)', helpGroup: 'SSH and Vast.ai'}),
    port: Flags.integer({description: 'ssh, vast: SSH port (default: ~/.ssh/config, else 22)', min: 1, max: 65535, helpGroup: 'SSH and Vast.ai'}),
    user: Flags.string({description: 'ssh, vast: SSH user (default: ~/.ssh/config, else your login name; root on Vast.ai)', helpGroup: 'SSH and Vast.ai'}),
    identity: Flags.string({char: 'i', description: 'ssh, vast: private key file', helpGroup: 'SSH and Vast.ai'}),
    'accept-new': Flags.boolean({description: 'ssh, vast: pin an unknown host key without asking (same as --strict-host-key accept-new)', default: false, helpGroup: 'SSH and Vast.ai'}),
    'strict-host-key': Flags.string({description: "ssh, vast: unknown host keys: ask (on a terminal), yes (refuse), accept-new (pin), no (accept, don't pin)", options: ['ask', 'yes', 'accept-new', 'no'], helpGroup: 'SSH and Vast.ai'}),
    'remote-dir': Flags.string({description: 'ssh, vast: where the server is installed on the host (default ~/.jarvis-gpu-server/PROVIDER)', helpGroup: 'SSH and Vast.ai'}),
    'remote-port': Flags.integer({description: "ssh, vast: the server's port on the host's loopback (default 8000)", min: 1, max: 65535, helpGroup: 'SSH and Vast.ai'}),
    'allow-cidr': Flags.string({description: 'aws: the only addresses allowed to reach the server, e.g. 203.0.113.7/32 (default: deploy.aws.allowCidr, else JARVIS_AWS_ALLOW_CIDR)'}),
    'max-price': Flags.string({description: 'vast: highest price in $/hour for an offer (default: deploy.vast.maxPrice, else 1.0)', helpGroup: 'SSH and Vast.ai'}),
  }

  async run(): Promise<Record<string, unknown>> {
    const {args, flags} = await this.parse(Deploy)
    const sshFlags = ['host', 'port', 'user', 'identity', 'remote-dir', 'remote-port', 'strict-host-key', 'accept-new'].filter((f) => {
      const v = (flags as Record<string, unknown>)[f]
      return v !== undefined && v !== false
    })
    if (sshFlags.length > 0 && args.provider !== 'ssh' && args.provider !== 'vast') {
      throw new UsageError(`--${sshFlags[0]} is for deploying over SSH (jarvis deploy ssh / vast), not ${args.provider}`)
    }
    if (flags['allow-cidr'] !== undefined && args.provider !== 'aws') throw new UsageError(`--allow-cidr is for jarvis deploy aws, not ${args.provider}`)
    if (flags['max-price'] !== undefined && args.provider !== 'vast') throw new UsageError(`--max-price is for jarvis deploy vast, not ${args.provider}`)
    if (flags['accept-new'] && flags['strict-host-key'] && flags['strict-host-key'] !== 'accept-new') {
      throw new UsageError(`--accept-new contradicts --strict-host-key ${flags['strict-host-key']}`)
    }
    const maxPrice = flags['max-price'] === undefined ? undefined : Number(flags['max-price'])
    if (maxPrice !== undefined && !(maxPrice > 0)) throw new UsageError(`--max-price ${flags['max-price']} is not a price in $/hour`, {suggestion: 'Write it as a number, e.g. --max-price 0.6'})
    const loaded = await this.loadConfig(flags)
    let streaming = false
    let spinner: Spinner | undefined
    let stepNo = 0

    const prepared = await prepareDeploy(
      args.provider,
      {
        name: flags.name,
        region: flags.region,
        gpu: flags.gpu,
        cpu: flags.cpu,
        model: flags.model,
        engine: flags.engine,
        url: flags.url,
        apiKey: flags['api-key'],
        healthTimeoutS: flags['health-timeout'],
        host: flags.host,
        port: flags.port,
        user: flags.user,
        identity: flags.identity,
        hostKeyPolicy: (flags['accept-new'] ? 'accept-new' : flags['strict-host-key']) as DeployFlags['hostKeyPolicy'],
        remoteDir: flags['remote-dir'],
        remotePort: flags['remote-port'],
        maxPrice,
        allowCidr: flags['allow-cidr'],
      },
      loaded,
      {
        signal: this.abort.signal,
        // Tool output is streamed only while applying (preflight probes stay quiet).
        log: (line) => streaming && this.ui.info(chalk.dim(`  │ ${line}`)),
        progress: (e) => void this.onProgress(e, () => spinner, (s) => (spinner = s), () => ++stepNo),
      },
    )
    const {plan} = prepared
    const total = plan.steps.length
    this.total = total
    this.log(renderPlan(plan, loaded.projectDir))

    if (flags['dry-run']) {
      this.log(chalk.dim('\nDry run: nothing was changed.'))
      return {dryRun: true, plan: planData(plan), capabilities: capabilityRows(prepared.provider)}
    }
    const blocking = blockingChecks(plan.checks)
    if (blocking.length > 0) throw preflightError(plan.provider, blocking)

    if (!flags.yes) {
      if (!this.canPrompt()) {
        throw new UsageError('Deploying needs confirmation, and there is no terminal to ask on', {suggestion: 'Pass --yes to apply the plan above (or --dry-run to only print it).'})
      }
      const {confirm} = await import('@inquirer/prompts')
      const ok = await confirm({message: `Apply this plan to ${plan.provider}?`, default: false}, {signal: this.abort.signal})
      if (!ok) {
        this.log('Nothing was changed.')
        return {dryRun: false, applied: false, plan: planData(plan)}
      }
    }

    streaming = true
    const dep = await applyDeploy(prepared)
    streaming = false
    this.log(
      dep.url
        ? `\n${chalk.green('✓')} ${plan.provider} is healthy at ${dep.url}`
        : `\n${chalk.green('✓')} ${plan.provider} is deployed and ready (no URL outside the cluster; reach it with: ${String(dep.details.portForward ?? 'see the plan above')})`,
    )
    const health = dep.details.health as {engine?: string; model?: string; device?: string; gpu?: string} | undefined
    if (health) this.log(`  engine ${health.engine ?? '?'}, model ${health.model ?? '?'}, device ${health.device ?? '?'}${health.gpu ? `, GPU ${health.gpu}` : ''}`)
    this.log(chalk.dim(`  API key stored in .jarvis/secrets.json; \`jarvis status\` and \`jarvis transcribe\` use it.`))
    return {dryRun: false, applied: true, plan: planData(plan), deployment: dep}
  }

  private total = 0

  private async onProgress(e: ProgressEvent, get: () => Spinner | undefined, set: (s: Spinner | undefined) => void, next: () => number): Promise<void> {
    if (e.phase === 'start') {
      set(await this.ui.spinner(`[${next()}/${this.total}] ${e.step.title}`))
    } else if (e.phase === 'skip') {
      next()
      this.ui.info(chalk.dim(`  – ${e.step.title}: ${e.message ?? 'skipped'}`))
    } else if (e.phase === 'wait') {
      get()?.update(`${e.step.title} (${e.message ?? 'waiting'})`)
    } else if (e.phase === 'done') {
      get()?.succeed(e.step.title)
      set(undefined)
    } else if (e.phase === 'fail') {
      get()?.fail(e.step.title)
      set(undefined)
    }
  }
}
