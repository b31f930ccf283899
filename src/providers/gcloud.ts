// Google Cloud Run with an NVIDIA L4 (DESIGN.md §6).
//
// What `jarvis deploy gcloud` does, in order (each a step of the plan, shown by --dry-run):
//   enable the APIs it needs → build the gpu-server image with Cloud Build into Artifact
//   Registry (unless deploy.gcloud.image names one) → put the API key and HF token in
//   Secret Manager (values on stdin) and let the service's identity read them → apply the
//   rendered service.yaml with `gcloud run services replace` → let anyone invoke it (the
//   server checks its own API key) → read the URL → wait for /health.
//
// Facts used, checked against Google's docs (2026-11):
//   GPU services: https://cloud.google.com/run/docs/configuring/services/gpu
//     one L4 per instance, at least 4 CPU and 16 GiB, instance-based billing; quota per
//     region, zonal redundancy on by default (https://cloud.google.com/run/docs/configuring/services/gpu-zonal-redundancy)
//   services replace: https://cloud.google.com/sdk/gcloud/reference/run/services/replace
//   secrets: https://cloud.google.com/sdk/gcloud/reference/secrets/versions/add
//     (`--data-file=-` reads stdin), https://cloud.google.com/run/docs/configuring/services/secrets
//   session affinity (cookie based, best effort): https://cloud.google.com/run/docs/configuring/session-affinity
//   describe: https://cloud.google.com/sdk/gcloud/reference/run/services/describe (status.url, status.conditions)
import {existsSync} from 'node:fs'
import {join} from 'node:path'
import {parseDocument, isMap, isSeq} from 'yaml'
import {z} from 'zod'
import {installHint} from '../exec/exec.js'
import {checkData, imageTag, parseJson, pick, probe, toolCheck} from './cloud-common.js'
import {applyDestroy, applyPlan, parseSection} from './engine.js'
import {readTemplate, renderYaml} from './template-render.js'
import type {Check, CommandStep, DeployOptions, DeployPlan, DestroyPlan, Provider, ProviderContext, ProviderStatus, Step, Deployment} from './types.js'

/** Regions listed with Cloud Run GPU support (services page above, 2026-11). Others: a warning, not a block. */
export const GPU_REGIONS = ['us-central1', 'us-east4', 'europe-west1', 'europe-west4', 'asia-southeast1', 'asia-south1']
const REQUIRED_APIS = ['run.googleapis.com', 'secretmanager.googleapis.com']
const BUILD_APIS = ['cloudbuild.googleapis.com', 'artifactregistry.googleapis.com']

const serviceName = z
  .string()
  .regex(/^[a-z]([-a-z0-9]{0,47}[a-z0-9])?$/, 'expected lowercase letters, digits and "-", starting with a letter, at most 49 characters')

export const gcloudConfigSchema = z.strictObject({
  project: z.string().regex(/^[a-z][-a-z0-9]{4,28}[a-z0-9]$/, 'expected a Google Cloud project id').optional(),
  region: z.string().regex(/^[a-z]+-[a-z]+\d$/, 'expected a region such as us-central1').optional(),
  service: serviceName.optional(),
  gpu: z.enum(['nvidia-l4'], {error: 'Cloud Run offers nvidia-l4'}).optional(),
  cpu: z.number().int().min(4, 'a GPU instance needs at least 4 CPU').max(8).optional(),
  memory: z.string().regex(/^\d+Gi$/, 'expected e.g. 16Gi').optional(),
  minInstances: z.number().int().min(0).optional(),
  maxInstances: z.number().int().min(1).optional(),
  concurrency: z.number().int().min(1).max(1000).optional(),
  timeoutSeconds: z.number().int().min(1).max(3600).optional(),
  /** Default false: best-effort zonal failover, cheaper, and the quota new projects get first. */
  zonalRedundancy: z.boolean().optional(),
  /** A prebuilt gpu-server image; without it jarvis builds one with Cloud Build. */
  image: z.string().min(1).optional(),
  /** Artifact Registry repository for built images (created when missing). */
  repository: z.string().regex(/^[a-z][-a-z0-9]{0,61}[a-z0-9]$/).optional(),
  /** Identity the service runs as; default: the project's Compute Engine default service account. */
  serviceAccount: z.string().email().optional(),
  /** Default true: Cloud Run lets anyone reach the URL; the server still requires its API key. */
  allowUnauthenticated: z.boolean().optional(),
})
export type GcloudConfig = z.infer<typeof gcloudConfigSchema>

const TOOL = {command: 'gcloud', purpose: 'deploys to Cloud Run, Secret Manager, Cloud Build', installHint: installHint('gcloud')}

/** deploy.gcloud from jarvis.yaml, validated (problems name the file, line and key). */
function cfg(ctx: ProviderContext): Promise<GcloudConfig> {
  return parseSection(ctx, 'gcloud', gcloudConfigSchema)
}

function regionOf(c: GcloudConfig, opts: DeployOptions) {
  return pick('region', opts, opts.region, c.region, 'us-central1')
}

/** Where the Dockerfile for the gpu-server image lives (the build context sent to Cloud Build). */
export function buildContext(packageRoot: string): string | undefined {
  for (const dir of [join(packageRoot, 'gpu-server')]) if (existsSync(join(dir, 'Dockerfile'))) return dir
  return undefined
}

async function preflight(ctx: ProviderContext, opts: DeployOptions): Promise<Check[]> {
  const c = await cfg(ctx)
  const checks: Check[] = []
  const tool = await toolCheck(ctx, TOOL, ['--version'])
  checks.push(tool)
  if (!tool.ok) return checks

  const auth = await probe(ctx, 'gcloud', ['auth', 'list', '--format=json'])
  const active = auth.ok ? parseJson<{account: string; status: string}[]>(auth.result.stdout)?.find((a) => a.status === 'ACTIVE') : undefined
  checks.push(
    active
      ? {id: 'auth', label: 'gcloud logged in', ok: true, detail: active.account, data: {account: active.account}}
      : {id: 'auth', label: 'gcloud logged in', ok: false, detail: auth.ok ? 'no active account' : auth.message, fix: 'Run `gcloud auth login`'},
  )
  if (!active) return checks

  let project = c.project
  if (!project) {
    const p = await probe(ctx, 'gcloud', ['config', 'get-value', 'project', '--quiet'])
    const value = p.ok ? p.result.stdout.trim() : ''
    if (value && value !== '(unset)') project = value
  }
  if (!project) {
    checks.push({id: 'project', label: 'Google Cloud project', ok: false, detail: 'none set', fix: 'Set deploy.gcloud.project in jarvis.yaml or run `gcloud config set project PROJECT_ID`'})
    return checks
  }
  const described = await probe(ctx, 'gcloud', ['projects', 'describe', project, '--format=json'])
  const number = described.ok ? parseJson<{projectNumber?: string}>(described.result.stdout)?.projectNumber : undefined
  if (!number) {
    checks.push({
      id: 'project',
      label: 'Google Cloud project',
      ok: false,
      detail: `${project}: ${described.ok ? 'no project number in the answer' : described.message}`,
      fix: `Check the project id and that ${active.account} may use it (gcloud projects list)`,
    })
    return checks
  }
  // Cloud Run's default identity is the Compute Engine default service account.
  const serviceAccount = c.serviceAccount ?? `${number}-compute@developer.gserviceaccount.com`
  checks.push({id: 'project', label: 'Google Cloud project', ok: true, detail: `${project} (${number})`, data: {project, projectNumber: number, serviceAccount}})

  const needed = [...REQUIRED_APIS, ...(c.image ? [] : BUILD_APIS)]
  const services = await probe(ctx, 'gcloud', ['services', 'list', '--enabled', `--project=${project}`, '--format=json'])
  if (services.ok) {
    const enabled = new Set(
      (parseJson<{name?: string; config?: {name?: string}}[]>(services.result.stdout) ?? []).map((s) => s.config?.name ?? s.name?.split('/').at(-1) ?? ''),
    )
    const missing = needed.filter((api) => !enabled.has(api))
    checks.push({
      id: 'apis',
      label: 'APIs enabled',
      ok: missing.length === 0,
      severity: 'warning',
      detail: missing.length === 0 ? needed.join(', ') : `not yet enabled: ${missing.join(', ')} (the deploy enables them)`,
      data: {missing},
    })
  } else {
    checks.push({id: 'apis', label: 'APIs enabled', ok: false, severity: 'warning', detail: `could not list services: ${services.message}`, data: {missing: needed}})
  }

  const region = regionOf(c, opts).value
  const gpuRegion = GPU_REGIONS.includes(region)
  checks.push({
    id: 'gpu-offered',
    label: 'L4 GPUs in region',
    ok: opts.cpu === true || gpuRegion,
    severity: 'warning',
    detail: opts.cpu ? 'CPU-only deploy' : gpuRegion ? `${region} (L4 quota is requested per project and region)` : `${region} is not among the documented GPU regions (${GPU_REGIONS.join(', ')})`,
    fix: gpuRegion ? undefined : 'Pick a GPU region with --region, e.g. us-central1',
  })

  if (!c.image && !buildContext(ctx.packageRoot)) {
    checks.push({
      id: 'image',
      label: 'gpu-server image',
      ok: false,
      detail: 'no image configured and no gpu-server/Dockerfile in this jarvis install to build one',
      fix: 'Set deploy.gcloud.image to a gpu-server image in a registry Cloud Run can pull from',
    })
  }
  return checks
}

interface Resolved {
  project: string
  region: string
  service: string
  serviceAccount: string
  image: string
  builds: boolean
  repository: string
  apiKeySecret: string
  hfTokenSecret?: string
  allowUnauthenticated: boolean
}

async function plan(ctx: ProviderContext, opts: DeployOptions, checks: Check[]): Promise<DeployPlan> {
  const c = await cfg(ctx)
  const region = regionOf(c, opts)
  const service = pick('service', opts, opts.name, c.service, 'jarvis')
  const project = checkData<string>(checks, 'project', 'project') ?? c.project ?? 'PROJECT_ID'
  const serviceAccount = checkData<string>(checks, 'project', 'serviceAccount') ?? c.serviceAccount ?? 'PROJECT_NUMBER-compute@developer.gserviceaccount.com'
  const gpu = opts.cpu ? undefined : pick('gpu', opts, normaliseGpu(opts.gpu), c.gpu, 'nvidia-l4')
  const cpu = pick('cpu', opts, undefined, c.cpu, 4)
  const memory = pick('memory', opts, undefined, c.memory, '16Gi')
  const minInstances = pick('minInstances', opts, undefined, c.minInstances, 0)
  const maxInstances = pick('maxInstances', opts, undefined, c.maxInstances, 1)
  const concurrency = pick('concurrency', opts, undefined, c.concurrency, 8)
  const timeoutSeconds = pick('timeoutSeconds', opts, undefined, c.timeoutSeconds, 3600)
  const zonal = pick('zonalRedundancy', opts, undefined, c.zonalRedundancy, false)
  const repository = c.repository ?? 'jarvis'
  const builds = !c.image
  const image = c.image ?? `${region.value}-docker.pkg.dev/${project}/${repository}/${service.value}:${imageTag()}`
  const r: Resolved = {
    project,
    region: region.value,
    service: service.value,
    serviceAccount,
    image,
    builds,
    repository,
    apiKeySecret: `${service.value}-api-key`,
    hfTokenSecret: opts.hfToken ? `${service.value}-hf-token` : undefined,
    allowUnauthenticated: c.allowUnauthenticated ?? true,
  }

  const template = await readTemplate(ctx.packageRoot, 'cloudrun/service.yaml')
  const rendered = renderYaml(
    template,
    {
      service: r.service,
      minInstances: String(minInstances.value),
      maxInstances: String(maxInstances.value),
      gpuZonalRedundancyDisabled: String(!zonal.value),
      concurrency: concurrency.value,
      timeoutSeconds: timeoutSeconds.value,
      serviceAccount: r.serviceAccount,
      gpuType: gpu?.value ?? 'none',
      image: r.image,
      engine: opts.engine,
      model: opts.model,
      apiKeySecret: r.apiKeySecret,
      hfTokenSecret: r.hfTokenSecret ?? 'unused',
      cpu: String(cpu.value),
      memory: memory.value,
    },
    'cloudrun/service.yaml',
  )
  const serviceYaml = adjustService(rendered, {gpu: Boolean(gpu), hfToken: Boolean(r.hfTokenSecret)})
  const servicePath = join(ctx.deployDir, 'service.yaml')

  const warnings: string[] = []
  if (minInstances.value > 0) warnings.push(`min instances ${minInstances.value}: an L4 instance is billed around the clock even when idle`)
  if (!opts.cpu) warnings.push('Job polls reach the instance holding the job through Cloud Run session affinity (a cookie, best effort): with several instances, a poll after that instance is gone finds no job.')

  return {
    provider: 'gcloud',
    name: 'gcloud',
    settings: [
      {key: 'project', value: r.project, source: c.project ? 'config' : 'platform'},
      region,
      service,
      ...(gpu ? [gpu] : [{key: 'gpu', value: 'none (CPU)', source: 'flag' as const}]),
      cpu,
      memory,
      minInstances,
      maxInstances,
      concurrency,
      timeoutSeconds,
      zonal,
      {key: 'image', value: r.image, source: c.image ? 'config' : 'default'},
      {key: 'serviceAccount', value: r.serviceAccount, source: c.serviceAccount ? 'config' : 'platform'},
      {key: 'model', value: opts.model, source: opts.fromFlags.has('model') ? 'flag' : 'default'},
    ],
    checks,
    files: [{path: servicePath, content: serviceYaml, description: 'Cloud Run service (applied with gcloud run services replace)'}],
    steps: deploySteps(ctx, opts, r, checks, servicePath),
    secrets: ['JARVIS_GPU_API_KEY', ...(r.hfTokenSecret ? ['JARVIS_GPU_HF_TOKEN'] : [])],
    warnings,
    details: {project: r.project, region: r.region, service: r.service, image: r.image, builtImage: r.builds, gpu: gpu?.value ?? 'none', secrets: [r.apiKeySecret, ...(r.hfTokenSecret ? [r.hfTokenSecret] : [])]},
  }
}

function normaliseGpu(gpu: string | undefined): 'nvidia-l4' | undefined {
  if (!gpu) return undefined
  return /^(nvidia-)?l4$/i.test(gpu) ? 'nvidia-l4' : (gpu as 'nvidia-l4')
}

/** Drop what a deployment does not use: the GPU selector and limit on CPU-only, the HF token env without a token. */
function adjustService(yamlText: string, opts: {gpu: boolean; hfToken: boolean}): string {
  const doc = parseDocument(yamlText)
  const spec = ['spec', 'template', 'spec']
  if (!opts.gpu) {
    doc.deleteIn([...spec, 'nodeSelector'])
    doc.deleteIn([...spec, 'containers', 0, 'resources', 'limits', 'nvidia.com/gpu'])
    doc.deleteIn(['spec', 'template', 'metadata', 'annotations', 'run.googleapis.com/gpu-zonal-redundancy-disabled'])
  }
  if (!opts.hfToken) {
    const env = doc.getIn([...spec, 'containers', 0, 'env'])
    if (isSeq(env)) env.items = env.items.filter((item) => !(isMap(item) && item.get('name') === 'JARVIS_GPU_HF_TOKEN'))
  }
  return doc.toString({lineWidth: 0})
}

function g(args: string[], project: string): string[] {
  // --quiet: never prompt (stdin is not a terminal); --project: never the active config's by accident.
  return [...args, `--project=${project}`, '--quiet']
}

function deploySteps(ctx: ProviderContext, opts: DeployOptions, r: Resolved, checks: Check[], servicePath: string): Step[] {
  const steps: Step[] = []
  const missingApis = checkData<string[]>(checks, 'apis', 'missing') ?? []
  if (missingApis.length > 0) {
    steps.push({kind: 'command', id: 'enable-apis', title: `Enable ${missingApis.join(', ')}`, cmd: 'gcloud', args: g(['services', 'enable', ...missingApis], r.project), timeoutMs: 600_000})
  }
  if (r.builds) {
    const context = buildContext(ctx.packageRoot) ?? join(ctx.packageRoot, 'gpu-server')
    steps.push(
      {
        kind: 'command',
        id: 'artifact-repository',
        title: `Artifact Registry repository ${r.repository} in ${r.region}`,
        cmd: 'gcloud',
        args: g(['artifacts', 'repositories', 'create', r.repository, '--repository-format=docker', `--location=${r.region}`], r.project),
        okIfOutputMatches: 'already exists|ALREADY_EXISTS',
        timeoutMs: 120_000,
      },
      {
        kind: 'command',
        id: 'build-image',
        title: 'Build the gpu-server image with Cloud Build',
        cmd: 'gcloud',
        args: g(['builds', 'submit', context, `--tag=${r.image}`], r.project),
        always: true,
        timeoutMs: 45 * 60_000,
        creates: {kind: 'gcloud-image', id: r.image},
      },
    )
  }
  const secrets: [string, string | undefined][] = [[r.apiKeySecret, opts.apiKey]]
  if (r.hfTokenSecret) secrets.push([r.hfTokenSecret, opts.hfToken])
  for (const [name, value] of secrets) {
    steps.push(
      {
        kind: 'command',
        id: `secret-${name}`,
        title: `Secret Manager secret ${name}`,
        cmd: 'gcloud',
        args: g(['secrets', 'create', name, '--replication-policy=automatic'], r.project),
        okIfOutputMatches: 'already exists|ALREADY_EXISTS',
        creates: {kind: 'gcloud-secret', id: name},
      },
      {
        // The value goes on stdin (`--data-file=-`), never on the command line.
        kind: 'command',
        id: `secret-value-${name}`,
        title: `Store the value of ${name} (from stdin)`,
        cmd: 'gcloud',
        args: g(['secrets', 'versions', 'add', name, '--data-file=-'], r.project),
        input: value ?? '',
        always: true,
      },
      {
        kind: 'command',
        id: `secret-access-${name}`,
        title: `Let ${r.serviceAccount} read ${name}`,
        cmd: 'gcloud',
        args: g(['secrets', 'add-iam-policy-binding', name, `--member=serviceAccount:${r.serviceAccount}`, '--role=roles/secretmanager.secretAccessor'], r.project),
      },
    )
  }
  steps.push({
    kind: 'command',
    id: 'service',
    title: `Deploy Cloud Run service ${r.service} in ${r.region}`,
    cmd: 'gcloud',
    args: g(['run', 'services', 'replace', servicePath, `--region=${r.region}`], r.project),
    always: true,
    timeoutMs: 30 * 60_000,
    creates: {kind: 'cloudrun-service', id: r.service, details: {region: r.region, project: r.project}},
  })
  if (r.allowUnauthenticated) {
    steps.push({
      kind: 'command',
      id: 'invoker',
      title: 'Allow requests without Google credentials (the server checks its API key)',
      cmd: 'gcloud',
      args: g(['run', 'services', 'add-iam-policy-binding', r.service, `--region=${r.region}`, '--member=allUsers', '--role=roles/run.invoker'], r.project),
    })
  }
  const describe: CommandStep = {
    kind: 'command',
    id: 'service-url',
    title: 'Read the service URL',
    cmd: 'gcloud',
    args: describeArgs(r.service, r.region, r.project),
    always: true,
    parse: (result) => {
      const url = parseJson<CloudRunService>(result.stdout)?.status?.url
      return url ? {url} : undefined
    },
  }
  steps.push(describe, {kind: 'health', id: 'health', title: 'Wait for /health (model loaded)', timeoutMs: opts.healthTimeoutMs, apiKey: opts.apiKey, always: true})
  return steps
}

function describeArgs(service: string, region: string, project: string): string[] {
  return ['run', 'services', 'describe', service, `--region=${region}`, `--project=${project}`, '--format=json']
}

interface CloudRunService {
  metadata?: {name?: string}
  spec?: {template?: {metadata?: {annotations?: Record<string, string>}}}
  status?: {url?: string; latestReadyRevisionName?: string; conditions?: {type: string; status: string; message?: string; reason?: string}[]}
}

async function status(ctx: ProviderContext, dep: Deployment): Promise<ProviderStatus> {
  const {service, region, project} = dep.details as {service?: string; region?: string; project?: string}
  if (!service || !region || !project) return {state: 'unknown', summary: 'the deployment record lacks service, region or project'}
  const p = await probe(ctx, 'gcloud', describeArgs(service, region, project))
  if (!p.ok) {
    if (p.missing) return {state: 'unknown', summary: 'gcloud is not installed'}
    if (/could not be found|not found|NOT_FOUND/i.test(p.message)) return {state: 'missing', summary: `Cloud Run service ${service} not found in ${region}`}
    return {state: 'error', summary: p.message}
  }
  const svc = parseJson<CloudRunService>(p.result.stdout)
  const ready = svc?.status?.conditions?.find((cond) => cond.type === 'Ready')
  const ann = svc?.spec?.template?.metadata?.annotations ?? {}
  const scale = `instances ${ann['autoscaling.knative.dev/minScale'] ?? '0'}–${ann['autoscaling.knative.dev/maxScale'] ?? '?'}`
  const details = {revision: svc?.status?.latestReadyRevisionName, region, project}
  if (ready?.status === 'True') return {state: 'running', summary: `ready (${region}, ${scale})`, url: svc?.status?.url, details}
  if (ready?.status === 'Unknown') return {state: 'deploying', summary: ready.message ?? 'a revision is being deployed', url: svc?.status?.url, details}
  return {state: 'error', summary: ready?.message ?? 'not ready', url: svc?.status?.url, details}
}

async function planDestroy(_ctx: ProviderContext, dep: Deployment): Promise<DestroyPlan> {
  const {service, region, project} = dep.details as {service?: string; region?: string; project?: string}
  const steps: Step[] = []
  const warnings: string[] = []
  if (!project) warnings.push('the deployment record has no project: nothing can be removed safely')
  else {
    const notFound = 'could not be found|not found|NOT_FOUND'
    if (service && region) {
      steps.push({kind: 'command', id: 'delete-service', title: `Delete Cloud Run service ${service}`, cmd: 'gcloud', args: g(['run', 'services', 'delete', service, `--region=${region}`], project), okIfOutputMatches: notFound, timeoutMs: 600_000})
    }
    for (const res of dep.resources.filter((x) => x.kind === 'gcloud-secret')) {
      steps.push({kind: 'command', id: `delete-secret-${res.id}`, title: `Delete secret ${res.id}`, cmd: 'gcloud', args: g(['secrets', 'delete', res.id], project), okIfOutputMatches: notFound})
    }
    for (const res of dep.resources.filter((x) => x.kind === 'gcloud-image')) {
      steps.push({kind: 'command', id: `delete-image-${res.id}`, title: `Delete image ${res.id}`, cmd: 'gcloud', args: g(['artifacts', 'docker', 'images', 'delete', res.id, '--delete-tags'], project), okIfOutputMatches: notFound, timeoutMs: 300_000})
    }
    if (dep.details.builtImage) warnings.push('The Artifact Registry repository is kept (other images may live there).')
  }
  return {provider: 'gcloud', name: dep.name, steps, warnings}
}

const provider: Provider = {
  name: 'gcloud',
  description: 'Google Cloud Run with an NVIDIA L4 (scales to zero)',
  tools: [TOOL],
  capabilities: {
    persistentCache: 'Cloud Run instances have no persistent disk: bake the model into the image or each cold start downloads it',
    customUrl: 'Cloud Run serves at its run.app URL; map a domain with `gcloud beta run domain-mappings create`',
  },
  configSchema: gcloudConfigSchema,
  preflight,
  plan,
  apply: (ctx, p) => applyPlan(ctx, p),
  status,
  planDestroy,
  destroy: (ctx, dep, p) => applyDestroy(ctx, dep, p),
}

export default provider
