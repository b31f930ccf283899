// Any Kubernetes cluster with NVIDIA GPUs (DESIGN.md §6), through kubectl and the
// kubeconfig's context.
//
// `jarvis deploy k8s`: create the namespace when it is missing → apply the Secret (API key,
// HF token) from stdin → apply the rendered PVC, Deployment, Service and HPA
// (.jarvis/deploy/k8s/) → wait for `kubectl rollout status` (readiness is /health, so this
// waits for the model) → with a LoadBalancer, wait for its address and check /health from
// here; otherwise print the port-forward command.
//
// Every kubectl call names the context and namespace, so switching contexts mid-deploy
// never sends a step to another cluster.
//
// Facts used (kubernetes.io, 2026-11):
//   kubectl apply -f - (stdin): https://kubernetes.io/docs/reference/kubectl/generated/kubectl_apply/
//   rollout status --timeout: https://kubernetes.io/docs/reference/kubectl/generated/kubectl_rollout/kubectl_rollout_status/
//   GPUs (nvidia.com/gpu, device plugin): https://kubernetes.io/docs/tasks/manage-gpus/scheduling-gpus/
//   Service sessionAffinity ClientIP: https://kubernetes.io/docs/reference/networking/virtual-ips/#session-affinity
//   HPA autoscaling/v2: https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/
import {createHash} from 'node:crypto'
import {join} from 'node:path'
import {parseDocument} from 'yaml'
import {z} from 'zod'
import {installHint} from '../exec/exec.js'
import {UserError} from '../lib/errors.js'
import {checkData, parseJson, pick, probe, sleep, toolCheck} from './cloud-common.js'
import {applyDestroy, applyPlan, parseSection} from './engine.js'
import {readTemplate, renderYaml} from './template-render.js'
import type {Check, DeployOptions, DeployPlan, DestroyPlan, Provider, ProviderContext, ProviderStatus, RenderedFile, Step, Deployment} from './types.js'

const dnsLabel = z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'expected a DNS label: lowercase letters, digits and "-"')
const quantity = z.string().regex(/^\d+(\.\d+)?(m|Ki|Mi|Gi|Ti)?$/, 'expected a Kubernetes quantity such as 2, 500m or 16Gi')

export const k8sConfigSchema = z.strictObject({
  /** kubeconfig context; default: the current context, recorded at deploy time. */
  context: z.string().min(1).optional(),
  namespace: dnsLabel.optional(),
  /** Name of the Deployment, Service, HPA (default "jarvis"). */
  name: dnsLabel.optional(),
  /** The gpu-server image, in a registry the cluster can pull from. */
  image: z.string().min(1).optional(),
  gpus: z.number().int().min(1).max(8).optional(),
  cpu: quantity.optional(),
  memory: quantity.optional(),
  cacheSize: quantity.optional(),
  cacheAccessMode: z.enum(['ReadWriteOnce', 'ReadWriteOncePod', 'ReadWriteMany']).optional(),
  storageClassName: z.string().min(1).optional(),
  serviceType: z.enum(['ClusterIP', 'NodePort', 'LoadBalancer']).optional(),
  minReplicas: z.number().int().min(1).optional(),
  maxReplicas: z.number().int().min(1).optional(),
  cpuTargetPercent: z.number().int().min(1).max(100).optional(),
  /** Port of the Service (and of the load balancer); default 8000. */
  servicePort: z.number().int().min(1).max(65535).optional(),
  /** How long the startup probe lets a model download and load before the pod is restarted. */
  startupTimeoutSeconds: z.number().int().min(60).optional(),
})
export type K8sConfig = z.infer<typeof k8sConfigSchema>

const TOOL = {command: 'kubectl', purpose: 'applies the manifests to your cluster', installHint: installHint('kubectl')}
const MANIFESTS = ['pvc.yaml', 'deployment.yaml', 'service.yaml', 'hpa.yaml'] as const
const LABELS = (name: string) => ({'app.kubernetes.io/name': 'jarvis-gpu-server', 'app.kubernetes.io/instance': name, 'app.kubernetes.io/managed-by': 'jarvis'})

/** deploy.k8s from jarvis.yaml, validated (problems name the file, line and key). */
function cfg(ctx: ProviderContext): Promise<K8sConfig> {
  return parseSection(ctx, 'k8s', k8sConfigSchema)
}

/** `--context=C --namespace=N` first, so no step can reach another cluster. */
export function kube(context: string, namespace: string | undefined, args: string[]): string[] {
  return [`--context=${context}`, ...(namespace ? [`--namespace=${namespace}`] : []), ...args]
}

async function preflight(ctx: ProviderContext, opts: DeployOptions): Promise<Check[]> {
  const c = await cfg(ctx)
  const checks: Check[] = []
  const tool = await toolCheck(ctx, TOOL, ['version', '--client', '-o', 'json'])
  if (tool.ok) {
    const v = parseJson<{clientVersion?: {gitVersion?: string}}>(String(tool.data?.output ?? tool.detail ?? ''))
    if (v?.clientVersion?.gitVersion) tool.detail = `kubectl ${v.clientVersion.gitVersion}`
  }
  checks.push(tool)
  if (!tool.ok) return checks

  let context = c.context
  if (!context) {
    const cur = await probe(ctx, 'kubectl', ['config', 'current-context'])
    if (cur.ok && cur.result.stdout.trim()) context = cur.result.stdout.trim()
    else {
      checks.push({id: 'context', label: 'kubeconfig context', ok: false, detail: cur.ok ? 'none' : cur.message, fix: 'Pick one with `kubectl config use-context NAME` or set deploy.k8s.context'})
      return checks
    }
  }
  const namespace = c.namespace ?? 'jarvis'
  const ns = await probe(ctx, 'kubectl', kube(context, undefined, ['get', 'namespace', namespace, '-o', 'json']))
  if (!ns.ok && !/NotFound|not found/i.test(ns.message)) {
    checks.push({id: 'context', label: 'cluster reachable', ok: false, detail: `${context}: ${ns.message}`, fix: `Check that \`kubectl --context=${context} get namespaces\` works (credentials, VPN)`})
    return checks
  }
  const namespaceExists = ns.ok
  checks.push({
    id: 'context',
    label: 'cluster reachable',
    ok: true,
    detail: `${context}, namespace ${namespace}${namespaceExists ? '' : ' (will be created)'}`,
    data: {context, namespace, namespaceExists},
  })

  if (!opts.cpu) {
    const nodes = await probe(ctx, 'kubectl', kube(context, undefined, ['get', 'nodes', '-o', 'json']))
    const list = nodes.ok ? (parseJson<{items?: {metadata?: {name?: string}; status?: {allocatable?: Record<string, string>}}[]}>(nodes.result.stdout)?.items ?? []) : []
    const gpuNodes = list.filter((n) => Number(n.status?.allocatable?.['nvidia.com/gpu'] ?? 0) > 0)
    checks.push({
      id: 'gpu-offered',
      label: 'GPU nodes',
      ok: gpuNodes.length > 0,
      severity: 'warning',
      detail: !nodes.ok
        ? `could not list nodes: ${nodes.message}`
        : gpuNodes.length > 0
          ? `${gpuNodes.length} node(s) with nvidia.com/gpu: ${gpuNodes.map((n) => n.metadata?.name).join(', ')}`
          : 'no node advertises nvidia.com/gpu',
      fix: gpuNodes.length > 0 ? undefined : 'Install the NVIDIA device plugin (or GPU operator) on GPU nodes, or let a cluster autoscaler add one',
    })
  }
  if (!c.image) {
    checks.push({
      id: 'image',
      label: 'gpu-server image',
      ok: false,
      detail: 'deploy.k8s.image is not set',
      fix: 'Build and push the gpu-server image (docker build -t REGISTRY/jarvis-gpu-server gpu-server && docker push ...), then set deploy.k8s.image',
    })
  }
  return checks
}

interface Resolved {
  context: string
  namespace: string
  name: string
  namespaceExists: boolean
  serviceType: string
  secretName: string
  servicePort: number
  files: Record<string, string>
}

async function plan(ctx: ProviderContext, opts: DeployOptions, checks: Check[]): Promise<DeployPlan> {
  const c = await cfg(ctx)
  const context = checkData<string>(checks, 'context', 'context') ?? c.context ?? 'CURRENT_CONTEXT'
  const namespace = pick('namespace', opts, undefined, c.namespace, 'jarvis')
  const name = pick('name', opts, opts.name, c.name, 'jarvis')
  const gpus = opts.cpu ? 0 : (c.gpus ?? 1)
  const serviceType = pick('serviceType', opts, undefined, c.serviceType, 'ClusterIP')
  const accessMode = pick('cacheAccessMode', opts, undefined, c.cacheAccessMode, 'ReadWriteOnce')
  const minReplicas = pick('minReplicas', opts, undefined, c.minReplicas, 1)
  const maxReplicas = pick('maxReplicas', opts, undefined, c.maxReplicas, Math.max(1, c.minReplicas ?? 1))
  const startup = pick('startupTimeoutSeconds', opts, undefined, c.startupTimeoutSeconds, 1800)
  const cpu = pick('cpu', opts, undefined, c.cpu, '2')
  const memory = pick('memory', opts, undefined, c.memory, '16Gi')
  const cacheSize = pick('cacheSize', opts, undefined, c.cacheSize, '50Gi')
  if (maxReplicas.value < minReplicas.value) throw new UserError(`deploy.k8s.maxReplicas (${maxReplicas.value}) is below minReplicas (${minReplicas.value})`, {code: 'config_invalid'})
  const secretName = `${name.value}-secrets`
  const values = {
    name: name.value,
    namespace: namespace.value,
    image: c.image ?? 'IMAGE_NOT_SET',
    engine: opts.engine,
    model: opts.model,
    secretName,
    secretChecksum: createHash('sha256').update(`${opts.apiKey}\0${opts.hfToken ?? ''}`).digest('hex').slice(0, 16),
    cpu: cpu.value,
    memory: memory.value,
    gpuCount: String(gpus),
    startupFailureThreshold: Math.ceil(startup.value / 10),
    cacheAccessMode: accessMode.value,
    storageClassName: c.storageClassName,
    cacheSize: cacheSize.value,
    serviceType: serviceType.value,
    externalTrafficPolicy: serviceType.value === 'ClusterIP' ? undefined : 'Local',
    minReplicas: minReplicas.value,
    maxReplicas: maxReplicas.value,
    cpuTargetPercent: c.cpuTargetPercent ?? 80,
    servicePort: c.servicePort ?? 8000,
  }
  const files: Record<string, string> = {}
  for (const f of ['namespace.yaml', ...MANIFESTS]) {
    let text = renderYaml(await readTemplate(ctx.packageRoot, `k8s/${f}`), values, `k8s/${f}`)
    if (f === 'deployment.yaml' && gpus === 0) text = withoutGpu(text)
    files[f] = text
  }
  const r: Resolved = {
    context,
    namespace: namespace.value,
    name: name.value,
    namespaceExists: checkData<boolean>(checks, 'context', 'namespaceExists') ?? false,
    serviceType: serviceType.value,
    secretName,
    servicePort: values.servicePort,
    files,
  }

  const warnings: string[] = []
  if (maxReplicas.value > 1 && accessMode.value !== 'ReadWriteMany') {
    warnings.push(`maxReplicas ${maxReplicas.value} with a ${accessMode.value} cache volume: a second pod on another node cannot mount it; use a ReadWriteMany storage class (deploy.k8s.cacheAccessMode)`)
  }
  if (serviceType.value === 'LoadBalancer') warnings.push('The LoadBalancer serves plain HTTP to whoever can reach it; the API key travels unencrypted. Put TLS in front (an Ingress) for use beyond a private network.')
  const portForward = `kubectl --context=${context} --namespace=${r.namespace} port-forward svc/${r.name} 8000:${r.servicePort}`
  if (serviceType.value !== 'LoadBalancer' && !opts.url) warnings.push(`The service is reachable inside the cluster only; from here: ${portForward} (then use --url http://127.0.0.1:8000, or expose it with an Ingress)`)

  const rendered: RenderedFile[] = Object.entries(files)
    .filter(([f]) => f !== 'namespace.yaml' || !r.namespaceExists)
    .map(([f, content]) => ({path: join(ctx.deployDir, f), content, description: DESCRIPTIONS[f]}))

  return {
    provider: 'k8s',
    name: 'k8s',
    settings: [
      {key: 'context', value: context, source: c.context ? 'config' : 'platform'},
      namespace,
      name,
      {key: 'image', value: values.image, source: 'config'},
      {key: 'gpus', value: gpus, source: opts.cpu ? 'flag' : c.gpus ? 'config' : 'default'},
      cpu,
      memory,
      cacheSize,
      accessMode,
      serviceType,
      minReplicas,
      maxReplicas,
      startup,
      {key: 'model', value: opts.model, source: opts.fromFlags.has('model') ? 'flag' : 'default'},
    ],
    checks,
    files: rendered,
    steps: deploySteps(ctx, opts, r),
    url: opts.url?.replace(/\/+$/, ''),
    secrets: ['JARVIS_GPU_API_KEY', ...(opts.hfToken ? ['JARVIS_GPU_HF_TOKEN'] : [])],
    warnings,
    // A namespace made by an earlier (interrupted) run of this deployment still counts as jarvis's.
    details: {context, namespace: r.namespace, name: r.name, serviceType: r.serviceType, namespaceCreated: !r.namespaceExists || createdNamespaceBefore(opts, r.namespace), portForward},
  }
}

const DESCRIPTIONS: Record<string, string> = {
  'namespace.yaml': 'Namespace (created only when missing)',
  'pvc.yaml': 'PersistentVolumeClaim for the model cache and job store',
  'deployment.yaml': 'Deployment: the gpu-server on nvidia.com/gpu, probes on /health and /livez',
  'service.yaml': 'Service with ClientIP session affinity (job polls reach the pod holding the job)',
  'hpa.yaml': 'HorizontalPodAutoscaler',
}

function createdNamespaceBefore(opts: DeployOptions, namespace: string): boolean {
  const prior = opts.existing
  return Boolean(prior && prior.status !== 'destroyed' && prior.resources.some((x) => x.kind === 'k8s-namespace' && x.id === namespace))
}

function withoutGpu(text: string): string {
  const doc = parseDocument(text)
  const container = ['spec', 'template', 'spec', 'containers', 0, 'resources']
  doc.deleteIn([...container, 'requests', 'nvidia.com/gpu'])
  doc.deleteIn([...container, 'limits', 'nvidia.com/gpu'])
  return doc.toString({lineWidth: 0})
}

/** The Secret, as JSON for `kubectl apply -f -`: values travel on stdin only, never to disk or argv. */
export function secretManifest(name: string, namespace: string, secretName: string, opts: {apiKey: string; hfToken?: string}): string {
  const stringData: Record<string, string> = {JARVIS_GPU_API_KEY: opts.apiKey}
  if (opts.hfToken) stringData.JARVIS_GPU_HF_TOKEN = opts.hfToken
  return JSON.stringify({apiVersion: 'v1', kind: 'Secret', metadata: {name: secretName, namespace, labels: LABELS(name)}, type: 'Opaque', stringData})
}

function deploySteps(ctx: ProviderContext, opts: DeployOptions, r: Resolved): Step[] {
  const steps: Step[] = []
  const at = (args: string[]) => kube(r.context, r.namespace, args)
  if (!r.namespaceExists) {
    steps.push({
      kind: 'command',
      id: 'namespace',
      title: `Create namespace ${r.namespace}`,
      cmd: 'kubectl',
      args: kube(r.context, undefined, ['apply', '-f', join(ctx.deployDir, 'namespace.yaml')]),
      creates: {kind: 'k8s-namespace', id: r.namespace, details: {context: r.context}},
    })
  }
  steps.push(
    {
      kind: 'command',
      id: 'secret',
      title: `Secret ${r.secretName} (from stdin)`,
      cmd: 'kubectl',
      args: at(['apply', '-f', '-']),
      input: secretManifest(r.name, r.namespace, r.secretName, opts),
      always: true,
      creates: {kind: 'k8s-secret', id: r.secretName, details: {namespace: r.namespace}},
    },
    {
      kind: 'command',
      id: 'manifests',
      title: `Apply ${MANIFESTS.join(', ')}`,
      cmd: 'kubectl',
      args: at(['apply', ...MANIFESTS.flatMap((f) => ['-f', join(ctx.deployDir, f)])]),
      always: true,
      creates: {kind: 'k8s-app', id: r.name, details: {namespace: r.namespace, context: r.context}},
    },
    {
      kind: 'command',
      id: 'rollout',
      title: `Wait for deployment/${r.name} to be ready (readiness is /health: the model is loaded)`,
      cmd: 'kubectl',
      args: at(['rollout', 'status', `deployment/${r.name}`, `--timeout=${Math.ceil(opts.healthTimeoutMs / 1000)}s`]),
      always: true,
      timeoutMs: opts.healthTimeoutMs + 60_000,
    },
  )
  if (r.serviceType === 'LoadBalancer') {
    steps.push(
      {
        kind: 'task',
        id: 'service-address',
        title: 'Wait for the load balancer address',
        describe: `poll \`kubectl ${at(['get', 'service', r.name, '-o', 'json']).join(' ')}\` until status.loadBalancer.ingress has an address`,
        always: true,
        run: async (c) => ({url: await loadBalancerUrl(c, r, Math.min(opts.healthTimeoutMs, 15 * 60_000))}),
      },
      {kind: 'health', id: 'health', title: 'Check /health through the load balancer', timeoutMs: opts.healthTimeoutMs, apiKey: opts.apiKey, always: true},
    )
  } else if (opts.url) {
    // --url: where the user reaches the Service (an Ingress, or a running port-forward).
    steps.push({kind: 'health', id: 'health', title: `Check ${opts.url}/health`, url: opts.url, timeoutMs: opts.healthTimeoutMs, apiKey: opts.apiKey, always: true})
  }
  return steps
}

interface KService {
  spec?: {type?: string; ports?: {port: number; nodePort?: number}[]}
  status?: {loadBalancer?: {ingress?: {ip?: string; hostname?: string}[]}}
}

async function loadBalancerUrl(ctx: ProviderContext, r: Pick<Resolved, 'context' | 'namespace' | 'name' | 'servicePort'>, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const res = await ctx.run('kubectl', kube(r.context, r.namespace, ['get', 'service', r.name, '-o', 'json']), {timeoutMs: 30_000})
    const ingress = parseJson<KService>(res.stdout)?.status?.loadBalancer?.ingress?.[0]
    const host = ingress?.ip ?? ingress?.hostname
    if (host) return `http://${host.includes(':') ? `[${host}]` : host}:${r.servicePort}`
    if (Date.now() > deadline) {
      throw new UserError(`The load balancer of service ${r.name} has no address after ${Math.round(timeoutMs / 1000)} s`, {
        code: 'deploy_timeout',
        suggestion: `Check \`kubectl --context=${r.context} --namespace=${r.namespace} describe service ${r.name}\`; clusters without a load-balancer controller need serviceType ClusterIP and a port-forward.`,
      })
    }
    await sleep(Number(process.env.JARVIS_K8S_POLL_MS ?? 5000), ctx.signal)
  }
}

interface KDeployment {
  spec?: {replicas?: number}
  status?: {replicas?: number; readyReplicas?: number; availableReplicas?: number; updatedReplicas?: number; conditions?: {type: string; status: string; reason?: string; message?: string}[]}
}

async function status(ctx: ProviderContext, dep: Deployment): Promise<ProviderStatus> {
  const {context, namespace, name} = dep.details as {context?: string; namespace?: string; name?: string}
  if (!context || !namespace || !name) return {state: 'unknown', summary: 'the deployment record lacks context, namespace or name'}
  const p = await probe(ctx, 'kubectl', kube(context, namespace, ['get', 'deployment', name, '-o', 'json']))
  if (!p.ok) {
    if (p.missing) return {state: 'unknown', summary: 'kubectl is not installed'}
    if (/NotFound|not found/i.test(p.message)) return {state: 'missing', summary: `deployment/${name} not found in ${namespace} (${context})`}
    return {state: 'error', summary: p.message}
  }
  const d = parseJson<KDeployment>(p.result.stdout)
  const want = d?.spec?.replicas ?? 1
  const ready = d?.status?.readyReplicas ?? 0
  const details = {context, namespace, replicas: want, readyReplicas: ready}
  const summary = `${ready}/${want} pods ready (${namespace}, ${context})`
  if (want === 0) return {state: 'stopped', summary: `scaled to 0 (${namespace}, ${context})`, url: dep.url, details}
  if (ready >= want) return {state: 'running', summary, url: dep.url, details}
  const progressing = d?.status?.conditions?.find((cnd) => cnd.type === 'Progressing')
  if (progressing?.status === 'False') return {state: 'error', summary: `${summary}: ${progressing.message ?? progressing.reason}`, url: dep.url, details}
  return {state: 'deploying', summary, url: dep.url, details}
}

async function planDestroy(_ctx: ProviderContext, dep: Deployment): Promise<DestroyPlan> {
  const {context, namespace, name} = dep.details as {context?: string; namespace?: string; name?: string}
  const steps: Step[] = []
  const warnings: string[] = []
  if (!context || !namespace || !name) warnings.push('the deployment record lacks context, namespace or name: nothing can be removed safely')
  else {
    const selector = Object.entries(LABELS(name))
      .filter(([k]) => k !== 'app.kubernetes.io/name')
      .map(([k, v]) => `${k}=${v}`)
      .join(',')
    steps.push({
      kind: 'command',
      id: 'delete-app',
      title: `Delete the Deployment, Service, HPA, cache volume and Secret of ${name}`,
      cmd: 'kubectl',
      args: kube(context, namespace, ['delete', 'deployment,service,horizontalpodautoscaler,persistentvolumeclaim,secret', '-l', selector, '--ignore-not-found', '--wait=true']),
      timeoutMs: 600_000,
    })
    // Only a namespace this deployment created (recorded as its resource) is deleted.
    if (dep.resources.some((r) => r.kind === 'k8s-namespace' && r.id === namespace)) {
      steps.push({kind: 'command', id: 'delete-namespace', title: `Delete namespace ${namespace} (jarvis created it)`, cmd: 'kubectl', args: kube(context, undefined, ['delete', 'namespace', namespace, '--ignore-not-found']), timeoutMs: 600_000})
    } else warnings.push(`Namespace ${namespace} existed before jarvis and is kept.`)
  }
  return {provider: 'k8s', name: dep.name, steps, warnings}
}

const provider: Provider = {
  name: 'k8s',
  description: 'Any Kubernetes cluster with NVIDIA GPUs (kubectl, current context)',
  tools: [TOOL],
  capabilities: {
    regions: 'the cluster decides where pods run; use a kubeconfig context per cluster',
    scaleToZero: 'an HPA keeps at least one replica; scale to zero needs KEDA or Knative',
  },
  configSchema: k8sConfigSchema,
  preflight,
  plan,
  apply: (ctx, p) => applyPlan(ctx, p),
  status,
  planDestroy,
  destroy: (ctx, dep, p) => applyDestroy(ctx, dep, p),
}

export default provider
