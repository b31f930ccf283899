// The one interface every deploy target implements (DESIGN.md §6). A provider is an
// object (default export of src/providers/<name>.ts or <name>/index.ts) that:
//   - declares the tools it needs and what it cannot do, as data (SkyPilot style);
//   - preflights: installed? logged in? GPU offered? — checks as data, never throws;
//   - plans: files to render + exact steps, as data (printed by --dry-run, asserted by tests);
//   - applies / destroys through the shared engine in ./engine.ts (state after every step).
//
// Stability: other providers are written against this file. Change it additively only.
import type {ZodType} from 'zod'
import type {JarvisConfig, ProviderName} from '../config/schema.js'
import type {RunOptions, RunResult} from '../exec/exec.js'
import type {Deployment, Resource} from '../state/state.js'

export type {ProviderName, Deployment, Resource}

/** Features a provider may lack; `capabilities` maps each unsupported one to the reason. */
export const FEATURES = {
  gpu: 'GPU instances (--gpu)',
  cpuOnly: 'CPU-only deployment, int8 (--cpu)',
  regions: 'choosing a region (--region)',
  scaleToZero: 'scale to zero when idle',
  persistentCache: 'model weights cached across restarts (volume)',
  customUrl: 'serving at a URL other than the provider default (--url)',
  jobsAcrossReplicas: 'job polls reach the replica that holds the job',
  providerStatus: "the provider's own view of the deployment in `jarvis status`",
} as const
export type Feature = keyof typeof FEATURES

export interface ToolRequirement {
  /** Program looked up on PATH, e.g. "fly". */
  command: string
  /** Other names of the same program, tried after `command`, e.g. ["flyctl"]. */
  aliases?: string[]
  /** What it is needed for, shown in the preflight table. */
  purpose: string
  /** How to install it (and log in). */
  installHint: string
}

/** One preflight row: ✓/✗ with the fix for each ✗. */
export interface Check {
  /** Stable id: "tool:fly", "auth", "gpu-offered", ... */
  id: string
  label: string
  ok: boolean
  /** Version, account, sizes found, or why it failed. */
  detail?: string
  /** What the user can do about a ✗. */
  fix?: string
  /** "error" (default) blocks apply; "warning" is shown but apply goes ahead. */
  severity?: 'error' | 'warning'
  /** Facts learned while checking (tool path, VM sizes offered, account), for plan(). Not printed. */
  data?: Record<string, unknown>
}

/** A file rendered into .jarvis/deploy/<provider>/ so users can read and commit it. */
export interface RenderedFile {
  /** Absolute path. */
  path: string
  content: string
  /** Unix mode; default 0o644. */
  mode?: number
  /** One line: what this file is. */
  description?: string
}

/**
 * A file holding secrets, written 0600 into a private temp dir just before its step runs
 * and removed right after (e.g. the dotenv file for `modal secret create --from-dotenv`).
 * Refer to it in args as `{{secretFile:NAME}}`.
 */
export interface SecretFile {
  name: string
  content: string
}

/** What a step learned: recorded in the deployment right after the step succeeds. */
export interface StepOutput {
  url?: string
  resources?: Resource[]
  details?: Record<string, unknown>
}

interface StepBase {
  /** Stable id: recorded in deployment.completedSteps so a re-run resumes after it. */
  id: string
  /** One line, shown in the plan and the spinner. */
  title: string
  /**
   * Run again on every deploy even if an earlier run completed it (code deploys, secret
   * updates, health waits). Default false: a completed step (creating an app, a volume)
   * is skipped on a re-run of the same deployment.
   */
  always?: boolean
  /** Recorded as created when the step succeeds, so `destroy` knows what to remove. */
  creates?: Resource
}

/** Run an outside program: the exact argv is shown in the plan (secrets masked). */
export interface CommandStep extends StepBase {
  kind: 'command'
  cmd: string
  args: string[]
  cwd?: string
  /** Written to stdin; may hold secrets (they are registered, so masked when shown). */
  input?: string
  secretFiles?: SecretFile[]
  timeoutMs?: number
  /**
   * A failure whose output matches (regex source, case-insensitive) counts as success:
   * "already exists" when creating, "not found" when destroying.
   */
  okIfOutputMatches?: string
  /** Learn from the output (URL, ids). Not part of the printed plan. */
  parse?: (result: RunResult) => StepOutput | undefined
}

/** Wait until GET URL/health says ok (checkServer), or fail with the last health error. */
export interface HealthStep extends StepBase {
  kind: 'health'
  /** Omitted: the URL learned by earlier steps (e.g. from `modal deploy`). */
  url?: string
  timeoutMs: number
  /** Sent to /info, so "unauthorized" is detected. */
  apiKey?: string
}

/** In-process work that is not a command (e.g. starting the local server). */
export interface TaskStep extends StepBase {
  kind: 'task'
  /** What it does, in words, for the plan. */
  describe: string
  run: (ctx: ProviderContext, deployment: Deployment) => Promise<StepOutput | void>
}

export type Step = CommandStep | HealthStep | TaskStep

/** A setting the plan settled on, and where it came from (so defaults are visible). */
export interface PlanSetting {
  key: string
  value: string | number | boolean
  source: 'flag' | 'config' | 'env' | 'default' | 'platform' | 'state'
}

export interface DeployPlan {
  provider: ProviderName
  /** Deployment name in the state file (and backend name for `transcribe`/`status`). */
  name: string
  settings: PlanSetting[]
  /** Preflight checks plus any the plan added (e.g. "no GPU offered; pass --cpu"). */
  checks: Check[]
  files: RenderedFile[]
  steps: Step[]
  /** Public URL when known before apply (Fly: https://APP.fly.dev); Modal learns it from deploy. */
  url?: string
  /** Names (never values) of secrets the deployment receives. */
  secrets: string[]
  warnings: string[]
  /** Copied into deployment.details (app name, region, GPU, ...). */
  details: Record<string, unknown>
}

export interface DestroyPlan {
  provider: ProviderName
  name: string
  steps: Step[]
  warnings: string[]
}

/** The generic deploy flags, resolved (flags > env > config > defaults) before plan(). */
export interface DeployOptions {
  /** App / service name on the platform (--name). Default: derived from the project directory. */
  name?: string
  region?: string
  gpu?: string
  /** Deploy the CPU image (int8) instead of a GPU one. */
  cpu?: boolean
  model: string
  engine: string
  /** Public URL when not the provider default (custom domain, proxy). */
  url?: string
  /** The server API key (given with --api-key, kept from an earlier deploy, or generated). Registered as a secret. */
  apiKey: string
  /** HUGGINGFACE_TOKEN / HF_TOKEN, for diarization. Registered as a secret. */
  hfToken?: string
  healthTimeoutMs: number
  /** Which of the above came from a flag (for PlanSetting.source). */
  fromFlags: ReadonlySet<string>
  /** The deployment recorded for this provider, when there is one (resume / redeploy). */
  existing?: Deployment
  /**
   * For providers that deploy over SSH (ssh, vast): the target given with --host --port
   * --user --identity and how unknown host keys are treated (--accept-new / --strict-host-key).
   */
  ssh?: {host?: string; port?: number; user?: string; identity?: string; hostKeyPolicy?: 'ask' | 'yes' | 'accept-new' | 'no'}
  /** Where the server is installed on the remote host (--remote-dir; ssh, vast). */
  remoteDir?: string
  /** The server's port on the remote host's loopback (--remote-port; ssh, vast). */
  remotePort?: number
  /** Highest price in $/hour (--max-price; vast). */
  maxPrice?: number
  /** Who may reach the server, as a CIDR (--allow-cidr; aws). */
  allowCidr?: string
}

/** What a provider sees of the world: paths, config, cancellation, and the one way to run tools. */
export interface ProviderContext {
  projectDir: string
  configPath?: string
  config: JarvisConfig
  /** Absolute .jarvis/deploy/<provider>/ (rendered files go here). */
  deployDir: string
  /** Package root: templates/ and gpu-server/ live here. */
  packageRoot: string
  signal: AbortSignal
  /** Progress and streamed tool output (masked, on stderr, off under --json). */
  log: (line: string) => void
  /** Run a program through src/exec with the signal and output streaming wired in. */
  run: (cmd: string, args: string[], opts?: RunOptions) => Promise<RunResult>
  /** Step progress for spinners (optional: tests and --json leave it out). */
  progress?: (event: ProgressEvent) => void
}

export interface ProgressEvent {
  step: Step
  phase: 'start' | 'skip' | 'done' | 'fail' | 'wait'
  /** e.g. the last health state while waiting. */
  message?: string
}

export interface ProviderStatus {
  /** The provider's own view, normalised. */
  state: 'running' | 'stopped' | 'deploying' | 'missing' | 'error' | 'unknown'
  /** One line, e.g. "2 machines: 1 started, 1 stopped (ord)". */
  summary: string
  url?: string
  details?: Record<string, unknown>
}

export interface Provider {
  name: ProviderName
  /** One line for help and listings. */
  description: string
  tools: ToolRequirement[]
  /** Unsupported feature → reason. Checked in one place (engine.assertSupported). */
  capabilities: Partial<Record<Feature, string>>
  /** Validates deploy.<name> in jarvis.yaml (strict: unknown keys are errors). */
  configSchema: ZodType
  /** Never throws: every problem is a ✗ check with its fix. */
  preflight(ctx: ProviderContext, opts: DeployOptions): Promise<Check[]>
  /** Pure: reads only ctx, opts and the checks; changes nothing. */
  plan(ctx: ProviderContext, opts: DeployOptions, checks: Check[]): Promise<DeployPlan>
  /** Renders files, runs the steps (recording state after each), waits for health. */
  apply(ctx: ProviderContext, plan: DeployPlan): Promise<Deployment>
  /** The provider's own view; never throws (state "error"/"unknown" with the reason). */
  status(ctx: ProviderContext, dep: Deployment): Promise<ProviderStatus>
  planDestroy(ctx: ProviderContext, dep: Deployment): Promise<DestroyPlan>
  /** Runs the destroy plan; a resource already gone counts as removed (safe to run twice). */
  destroy(ctx: ProviderContext, dep: Deployment, plan: DestroyPlan): Promise<void>
}
