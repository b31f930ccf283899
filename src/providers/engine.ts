// The plan/apply engine every provider shares (Pulumi-style: a plan is data, apply runs it).
// One place runs steps, records state after each, waits for health, checks capabilities,
// validates provider config sections and renders templates.
import {createHash} from 'node:crypto'
import {existsSync} from 'node:fs'
import {chmod, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {basename, join} from 'node:path'
import {LineCounter, parseDocument} from 'yaml'
import type {ZodType} from 'zod'
import {zodProblems} from '../config/load.js'
import type {JarvisConfig, ProviderName} from '../config/schema.js'
import {formatCommand, runTool, which, type RunOptions, type RunResult} from '../exec/exec.js'
import {writeFileAtomic} from '../lib/atomic.js'
import {ConfigError, errorMessage, ExternalError, InterruptedError, UserError} from '../lib/errors.js'
import {packageRoot} from '../lib/paths.js'
import {maskDeep, maskSecrets} from '../lib/secrets.js'
import {checkServer, type ServerHealth} from '../server/client.js'
import {readState, saveDeployment, stateDir, type Deployment, type Resource} from '../state/state.js'
import {
  FEATURES,
  type Check,
  type CommandStep,
  type DeployOptions,
  type DeployPlan,
  type DestroyPlan,
  type Feature,
  type ProgressEvent,
  type Provider,
  type ProviderContext,
  type Step,
  type StepOutput,
  type ToolRequirement,
} from './types.js'

// ---------------------------------------------------------------- context

export function deployDirFor(projectDir: string, provider: ProviderName): string {
  return join(stateDir(projectDir), 'deploy', provider)
}

export function createContext(opts: {
  projectDir: string
  configPath?: string
  config: JarvisConfig
  provider: ProviderName
  signal: AbortSignal
  log?: (line: string) => void
  progress?: (event: ProgressEvent) => void
}): ProviderContext {
  const log = opts.log ?? (() => {})
  return {
    projectDir: opts.projectDir,
    configPath: opts.configPath,
    config: opts.config,
    deployDir: deployDirFor(opts.projectDir, opts.provider),
    packageRoot: packageRoot(),
    signal: opts.signal,
    log,
    progress: opts.progress,
    run: (cmd: string, args: string[], runOpts: RunOptions = {}) =>
      runTool(cmd, args, {
        signal: opts.signal,
        onLine: (line) => log(line),
        ...runOpts,
      }),
  }
}

// ---------------------------------------------------------------- capabilities & config

/** Features a deploy request asks for, from the generic flags. */
export function requestedFeatures(opts: Pick<DeployOptions, 'gpu' | 'cpu' | 'region' | 'url' | 'fromFlags'>): Feature[] {
  const out: Feature[] = []
  if (opts.fromFlags.has('gpu') && opts.gpu) out.push('gpu')
  if (opts.cpu) out.push('cpuOnly')
  if (opts.fromFlags.has('region') && opts.region) out.push('regions')
  if (opts.fromFlags.has('url') && opts.url) out.push('customUrl')
  return out
}

/** The one capability check: an unsupported feature is a usage error naming the reason. */
export function assertSupported(provider: Provider, features: Feature[]): void {
  const problems = features.filter((f) => provider.capabilities[f]).map((f) => `${FEATURES[f]}: ${provider.capabilities[f]}`)
  if (problems.length > 0) {
    throw new UserError(`${provider.name} cannot do what was asked:\n  ${problems.join('\n  ')}`, {
      code: 'unsupported_feature',
      suggestion: `See \`jarvis deploy ${provider.name} --help\`, or pick another provider.`,
    })
  }
}

/** Rows for a capability table: every feature, supported or the reason it is not. */
export function capabilityRows(provider: Provider): {feature: Feature; description: string; supported: boolean; reason?: string}[] {
  return (Object.keys(FEATURES) as Feature[]).map((f) => ({feature: f, description: FEATURES[f], supported: !provider.capabilities[f], reason: provider.capabilities[f]}))
}

/**
 * Validate deploy.<provider> with the provider's schema. Problems carry the file's
 * line:column when there is a config file.
 */
export async function parseSection<T>(ctx: ProviderContext, provider: ProviderName, schema: ZodType<T>): Promise<T> {
  const raw = ctx.config.deploy?.[provider] ?? {}
  const result = schema.safeParse(raw)
  if (result.success) return result.data
  const file = ctx.configPath ?? 'jarvis.yaml'
  let problems
  if (ctx.configPath && existsSync(ctx.configPath)) {
    const lc = new LineCounter()
    const doc = parseDocument(await readFile(ctx.configPath, 'utf8'), {lineCounter: lc})
    problems = zodProblems(prefixIssues(result.error, provider), file, doc, lc)
  } else problems = zodProblems(prefixIssues(result.error, provider), file)
  throw new ConfigError(problems)
}

function prefixIssues<E extends {issues: {path: PropertyKey[]}[]}>(error: E, provider: string): E {
  for (const issue of error.issues) issue.path = ['deploy', provider, ...issue.path]
  return error
}

// ---------------------------------------------------------------- preflight helpers

/** ✓/✗ for a required program: found on PATH (under its name or an alias)? */
export async function toolCheck(req: ToolRequirement): Promise<Check> {
  for (const name of [req.command, ...(req.aliases ?? [])]) {
    const path = await which(name)
    if (path) return {id: `tool:${req.command}`, label: `${req.command} installed`, ok: true, detail: path, data: {command: name, path}}
  }
  return {id: `tool:${req.command}`, label: `${req.command} installed`, ok: false, detail: `not found on PATH (needed for ${req.purpose})`, fix: req.installHint}
}

/** A check that could not run because an earlier one failed. */
export function skippedCheck(id: string, label: string, because: string): Check {
  return {id, label, ok: false, detail: `not checked: ${because}`}
}

/** Checks whose ✗ stops apply. */
export function blockingChecks(checks: Check[]): Check[] {
  return checks.filter((c) => !c.ok && c.severity !== 'warning')
}

// ---------------------------------------------------------------- naming & templates

/**
 * Default app/service name: the project directory's name plus a short hash of its path,
 * so it is stable for this project and unlikely to collide in a global namespace (Fly).
 */
export function defaultAppName(projectDir: string, max = 40): string {
  const slug =
    basename(projectDir)
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, max - 14) || 'app'
  const hash = createHash('sha256').update(projectDir).digest('hex').slice(0, 6)
  return `${/^[a-z]/.test(slug) ? slug : `j-${slug}`}-jarvis-${hash}`
}

export function templatePath(name: string): string {
  return join(packageRoot(), 'templates', name)
}

/** `{{name}}` placeholders filled from vars; an unknown placeholder is a bug, not a silent blank. */
export function fillTemplate(text: string, vars: Record<string, string | number | boolean>): string {
  return text.replace(/\{\{\s*([a-zA-Z0-9_]+)\s*\}\}/g, (_m, key: string) => {
    if (!(key in vars)) throw new Error(`template placeholder {{${key}}} has no value`)
    return String(vars[key])
  })
}

export async function renderTemplate(name: string, vars: Record<string, string | number | boolean>): Promise<string> {
  return fillTemplate(await readFile(templatePath(name), 'utf8'), vars)
}

/** TOML basic string (used for fly.toml values). */
export function tomlString(value: string): string {
  return JSON.stringify(value)
}

// ---------------------------------------------------------------- plan as data

const SECRET_FILE_ARG = /\{\{secretFile:([^}]+)\}\}/g

/** The printable command line of a step (secrets masked, secret files named, not shown). */
export function stepCommand(step: Step): string | undefined {
  if (step.kind !== 'command') return undefined
  const args = step.args.map((a) => a.replace(SECRET_FILE_ARG, (_m, name: string) => `<0600 temp file ${name}>`))
  let line = maskSecrets(formatCommand(step.cmd, args))
  if (step.input !== undefined) line += '  < stdin (secrets masked)'
  return line
}

function stepData(step: Step): Record<string, unknown> {
  const base = {id: step.id, title: step.title, kind: step.kind, always: Boolean(step.always), ...(step.creates ? {creates: step.creates} : {})}
  switch (step.kind) {
    case 'command':
      return {
        ...base,
        command: stepCommand(step),
        argv: [step.cmd, ...step.args],
        ...(step.cwd ? {cwd: step.cwd} : {}),
        ...(step.input !== undefined ? {stdin: step.input} : {}),
        ...(step.secretFiles ? {secretFiles: step.secretFiles.map((f) => ({name: f.name, mode: '0600', content: f.content}))} : {}),
      }
    case 'health':
      return {...base, url: step.url ?? '(learned during apply)', timeoutMs: step.timeoutMs}
    case 'task':
      return {...base, describe: step.describe}
  }
}

/** The plan as plain JSON data (what --dry-run --json prints). Every secret is masked. */
export function planData(plan: DeployPlan): Record<string, unknown> {
  return maskDeep({
    provider: plan.provider,
    name: plan.name,
    ready: blockingChecks(plan.checks).length === 0,
    url: plan.url,
    settings: plan.settings,
    checks: plan.checks.map(({data: _data, ...c}) => ({...c, severity: c.severity ?? 'error'})),
    files: plan.files.map((f) => ({path: f.path, mode: (f.mode ?? 0o644).toString(8), description: f.description, content: f.content})),
    steps: plan.steps.map(stepData),
    secrets: plan.secrets,
    warnings: plan.warnings,
    details: plan.details,
  })
}

export function destroyPlanData(plan: DestroyPlan): Record<string, unknown> {
  return maskDeep({provider: plan.provider, name: plan.name, steps: plan.steps.map(stepData), warnings: plan.warnings})
}

// ---------------------------------------------------------------- apply

async function runCommandStep(ctx: ProviderContext, step: CommandStep): Promise<RunResult> {
  let dir: string | undefined
  try {
    let args = step.args
    if (step.secretFiles?.length) {
      // A private dir (0700) holding 0600 files, removed right after the command.
      dir = await mkdtemp(join(tmpdir(), 'jarvis-secret-'))
      await chmod(dir, 0o700)
      const paths: Record<string, string> = {}
      for (const f of step.secretFiles) {
        paths[f.name] = join(dir, f.name)
        await writeFile(paths[f.name], f.content, {mode: 0o600})
      }
      args = args.map((a) => a.replace(SECRET_FILE_ARG, (_m, name: string) => paths[name] ?? _m))
    }
    const r = await ctx.run(step.cmd, args, {
      cwd: step.cwd,
      input: step.input,
      timeoutMs: step.timeoutMs ?? 10 * 60_000,
      allowFailure: step.okIfOutputMatches !== undefined,
    })
    if (r.exitCode !== 0) {
      if (new RegExp(step.okIfOutputMatches!, 'i').test(r.stderr + '\n' + r.stdout)) return r
      const last = (r.stderr || r.stdout).trimEnd().split('\n').at(-1) ?? ''
      throw new ExternalError(`${maskSecrets(r.command)} failed (exit ${r.exitCode})${last ? `: ${maskSecrets(last)}` : ''}`, {
        command: r.command,
        toolExitCode: r.exitCode,
        stderrTail: (r.stderr || r.stdout).trimEnd().split('\n').slice(-15).join('\n'),
      })
    }
    return r
  } finally {
    if (dir) await rm(dir, {recursive: true, force: true})
  }
}

/**
 * Poll GET URL/health until it says ok. Fails with the last reason it was not healthy
 * (connection refused, still loading, 502 ...) once the timeout passes.
 */
export async function waitForHealth(
  url: string,
  opts: {timeoutMs: number; apiKey?: string; signal?: AbortSignal; onUpdate?: (h: ServerHealth) => void},
): Promise<ServerHealth> {
  const deadline = Date.now() + opts.timeoutMs
  const interval = Math.min(5000, Math.max(250, Math.floor(opts.timeoutMs / 20)))
  let last: ServerHealth | undefined
  for (;;) {
    if (opts.signal?.aborted) throw new InterruptedError()
    const remaining = deadline - Date.now()
    last = await checkServer({url, apiKey: opts.apiKey}, {timeoutMs: Math.max(500, Math.min(10_000, remaining)), signal: opts.signal})
    // Healthy, or healthy but refusing our key (a wrong key is not going to fix itself).
    if (last.ok || last.state === 'unauthorized') return last
    opts.onUpdate?.(last)
    if (Date.now() + interval > deadline) break
    await new Promise((r) => setTimeout(r, interval))
  }
  throw new UserError(`${url} did not become healthy within ${Math.round(opts.timeoutMs / 1000)} s (last: ${last?.state}: ${last?.reason ?? 'no answer'})`, {
    code: 'health_timeout',
    suggestion: 'Model downloads can take minutes on a cold start: re-run the same deploy to resume and wait longer (--health-timeout), or check the provider logs.',
  })
}

function mergeOutput(dep: Deployment, out: StepOutput | void | undefined): void {
  if (!out) return
  if (out.url) dep.url = out.url
  if (out.details) dep.details = {...dep.details, ...out.details}
  for (const r of out.resources ?? []) addResource(dep, r)
}

function addResource(dep: Deployment, r: Resource): void {
  const i = dep.resources.findIndex((x) => x.kind === r.kind && x.id === r.id)
  const withTime = {...r, createdAt: r.createdAt ?? new Date().toISOString()}
  if (i >= 0) dep.resources[i] = {...dep.resources[i], ...r}
  else dep.resources.push(withTime)
}

/** The deployment recorded under this name, if any. */
export async function recordedDeployment(projectDir: string, name: string): Promise<Deployment | undefined> {
  return (await readState(projectDir)).deployments[name]
}

/**
 * Run a plan: render its files, run each step (skipping those completed by an earlier
 * run unless `always`), record the deployment after every step, and finish "ready".
 * A failure leaves the deployment "failed" with what it created, so a re-run resumes
 * and `destroy` cleans up.
 */
export async function applyPlan(ctx: ProviderContext, plan: DeployPlan): Promise<Deployment> {
  const blocking = blockingChecks(plan.checks)
  if (blocking.length > 0) throw preflightError(plan.provider, blocking)

  const now = new Date().toISOString()
  const prior = await recordedDeployment(ctx.projectDir, plan.name)
  if (prior && prior.provider !== plan.provider) {
    throw new UserError(`A deployment named "${plan.name}" already exists for provider ${prior.provider}`, {code: 'name_taken', suggestion: `Destroy it first: jarvis destroy ${prior.provider}`})
  }
  const fresh = !prior || prior.status === 'destroyed'
  const dep: Deployment = fresh
    ? {name: plan.name, provider: plan.provider, status: 'creating', createdAt: now, updatedAt: now, completedSteps: [], resources: [], details: {...plan.details}}
    : {...prior, status: 'creating', details: {...prior.details, ...plan.details}, lastError: undefined}
  if (plan.url) dep.url = plan.url
  await saveDeployment(ctx.projectDir, dep)

  for (const f of plan.files) await writeFileAtomic(f.path, f.content, {mode: f.mode})

  for (const step of plan.steps) {
    if (!step.always && dep.completedSteps.includes(step.id)) {
      ctx.progress?.({step, phase: 'skip', message: 'done by an earlier run'})
      continue
    }
    ctx.progress?.({step, phase: 'start'})
    try {
      const out = await runStep(ctx, step, dep)
      if (step.creates) addResource(dep, step.creates)
      mergeOutput(dep, out)
      if (!dep.completedSteps.includes(step.id)) dep.completedSteps.push(step.id)
      await saveDeployment(ctx.projectDir, dep)
      ctx.progress?.({step, phase: 'done'})
    } catch (error) {
      dep.status = 'failed'
      dep.lastError = maskSecrets(`${step.title}: ${errorMessage(error)}`)
      await saveDeployment(ctx.projectDir, dep)
      ctx.progress?.({step, phase: 'fail', message: errorMessage(error)})
      throw error
    }
  }
  dep.status = 'ready'
  dep.lastError = undefined
  await saveDeployment(ctx.projectDir, dep)
  return dep
}

async function runStep(ctx: ProviderContext, step: Step, dep: Deployment): Promise<StepOutput | void> {
  switch (step.kind) {
    case 'command': {
      const r = await runCommandStep(ctx, step)
      return step.parse?.(r)
    }
    case 'health': {
      const url = step.url ?? dep.url
      if (!url) throw new UserError('No URL to check: an earlier step did not report where the deployment answers', {code: 'no_url'})
      const h = await waitForHealth(url, {
        timeoutMs: step.timeoutMs,
        apiKey: step.apiKey,
        signal: ctx.signal,
        onUpdate: (s) => ctx.progress?.({step, phase: 'wait', message: `${s.state}: ${s.reason ?? ''}`}),
      })
      if (h.state === 'unauthorized') {
        throw new UserError(`${url} is up but refused the API key (${h.reason})`, {code: 'health_unauthorized', suggestion: 'The server was started with another key: re-run deploy to update its secrets.'})
      }
      return {url, details: {health: {engine: h.health?.engine, model: h.health?.model, device: h.health?.device, gpu: (h.info?.gpu as {name?: string} | null | undefined)?.name}}}
    }
    case 'task':
      return step.run(ctx, dep)
  }
}

export function preflightError(provider: string, failed: Check[]): UserError {
  const lines = failed.map((c) => `✗ ${c.label}${c.detail ? ` — ${c.detail}` : ''}${c.fix ? `\n      fix: ${c.fix}` : ''}`)
  return new UserError(`Preflight for ${provider} failed:\n  ${lines.join('\n  ')}`, {
    code: 'preflight_failed',
    suggestion: `Fix the ✗ rows above, then re-run. \`jarvis deploy ${provider} --dry-run\` shows the plan without running anything.`,
  })
}

/** Run a destroy plan. A resource already gone counts as removed, so this is safe to run twice. */
export async function applyDestroy(ctx: ProviderContext, dep: Deployment, plan: DestroyPlan): Promise<void> {
  const current: Deployment = {...dep, status: 'destroying'}
  await saveDeployment(ctx.projectDir, current)
  for (const step of plan.steps) {
    ctx.progress?.({step, phase: 'start'})
    try {
      await runStep(ctx, step, current)
      ctx.progress?.({step, phase: 'done'})
    } catch (error) {
      current.lastError = maskSecrets(`${step.title}: ${errorMessage(error)}`)
      await saveDeployment(ctx.projectDir, current)
      ctx.progress?.({step, phase: 'fail', message: errorMessage(error)})
      throw error
    }
  }
}
