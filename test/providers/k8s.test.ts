// `jarvis deploy|status|destroy k8s` against a kubectl stand-in (JSON shaped like
// `kubectl get ... -o json`). Every rendered manifest, and the Secret that goes to kubectl on
// stdin, is validated against the Kubernetes schemas (kubernetes-models).
import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {Deployment} from 'kubernetes-models/apps/v1'
import {HorizontalPodAutoscaler} from 'kubernetes-models/autoscaling/v2'
import {Namespace, PersistentVolumeClaim, Secret, Service} from 'kubernetes-models/v1'
import {beforeAll, describe, expect, it} from 'vitest'
import {parse} from 'yaml'
import {parseJson, runCli} from '../helpers/cli.js'
import {createStandIns, type Rule, type StandIns} from '../helpers/standins.js'
import {tempDir} from '../helpers/tmp.js'
import {startFakeServer, type FakeServer} from './fake-server.js'

const HF = 'hf_k8s_test_token_8c1d0e'
const IMAGE = 'registry.example.com/jarvis/gpu-server:1.0'
const CTX = 'gpu-cluster'

const MODELS: Record<string, new (data: any) => {validate(): void}> = {
  Namespace,
  PersistentVolumeClaim,
  Deployment,
  Service,
  HorizontalPodAutoscaler,
  Secret,
}

function validate(obj: {kind: string}): void {
  const Model = MODELS[obj.kind]
  expect(Model, `no model for ${obj.kind}`).toBeDefined()
  new Model(obj).validate() // throws with the schema's reason when invalid
}

function rules(opts: {namespaceExists?: boolean; lbHost?: string} = {}, overrides: Rule[] = []): Rule[] {
  return [
    ...overrides,
    {match: ['version', '--client', '-o', 'json'], stdout: {clientVersion: {major: '1', minor: '34', gitVersion: 'v1.34.2'}, kustomizeVersion: 'v5.7.1'}},
    {match: ['config', 'current-context'], stdout: `${CTX}\n`},
    opts.namespaceExists
      ? {match: [`--context=${CTX}`, 'get', 'namespace'], stdout: {apiVersion: 'v1', kind: 'Namespace', metadata: {name: 'jarvis'}, status: {phase: 'Active'}}}
      : {match: [`--context=${CTX}`, 'get', 'namespace'], exitCode: 1, stderr: 'Error from server (NotFound): namespaces "jarvis" not found\n'},
    {
      match: [`--context=${CTX}`, 'get', 'nodes', '-o', 'json'],
      stdout: {
        apiVersion: 'v1',
        kind: 'List',
        items: [
          {metadata: {name: 'cpu-node-1'}, status: {allocatable: {cpu: '8', memory: '32Gi', pods: '110'}}},
          {metadata: {name: 'gpu-node-1'}, status: {allocatable: {cpu: '8', memory: '61Gi', 'nvidia.com/gpu': '1', pods: '110'}}},
        ],
      },
    },
    {match: [`--context=${CTX}`, 'apply', '-f'], stdout: 'namespace/jarvis created\n'},
    {match: [`--context=${CTX}`, '--namespace=jarvis', 'apply', '-f', '-'], stdout: 'secret/jarvis-secrets configured\n'},
    {match: [`--context=${CTX}`, '--namespace=jarvis', 'apply'], stdout: 'persistentvolumeclaim/jarvis-cache created\ndeployment.apps/jarvis created\nservice/jarvis created\nhorizontalpodautoscaler.autoscaling/jarvis created\n'},
    {match: [`--context=${CTX}`, '--namespace=jarvis', 'rollout', 'status'], stdout: 'Waiting for deployment "jarvis" rollout to finish: 0 of 1 updated replicas are available...\ndeployment "jarvis" successfully rolled out\n'},
    {
      match: [`--context=${CTX}`, '--namespace=jarvis', 'get', 'service', 'jarvis', '-o', 'json'],
      times: 1,
      stdout: {kind: 'Service', spec: {type: 'LoadBalancer'}, status: {loadBalancer: {}}},
    },
    {
      match: [`--context=${CTX}`, '--namespace=jarvis', 'get', 'service', 'jarvis', '-o', 'json'],
      stdout: {kind: 'Service', spec: {type: 'LoadBalancer'}, status: {loadBalancer: {ingress: [{ip: opts.lbHost ?? '127.0.0.1', ipMode: 'VIP'}]}}},
    },
    {
      match: [`--context=${CTX}`, '--namespace=jarvis', 'get', 'deployment', 'jarvis', '-o', 'json'],
      stdout: {kind: 'Deployment', spec: {replicas: 1}, status: {replicas: 1, readyReplicas: 1, availableReplicas: 1, conditions: [{type: 'Available', status: 'True'}]}},
    },
    {match: [`--context=${CTX}`, '--namespace=jarvis', 'delete'], stdout: 'deployment.apps "jarvis" deleted\nservice "jarvis" deleted\n'},
    {match: [`--context=${CTX}`, 'delete', 'namespace', 'jarvis'], stdout: 'namespace "jarvis" deleted\n'},
  ]
}

async function project(section = ''): Promise<string> {
  const dir = await tempDir('jarvis-k8s-')
  writeFileSync(join(dir, 'jarvis.yaml'), `version: 1\ndeploy:\n  k8s:\n    image: ${IMAGE}\n${section}`)
  return dir
}

const argvOf = (s: StandIns) => s.calls('kubectl').map((c) => c.argv.join(' '))
const stateOf = (dir: string) => JSON.parse(readFileSync(join(dir, '.jarvis', 'state.json'), 'utf8'))

describe('deploy k8s', () => {
  let server: FakeServer
  beforeAll(async () => {
    server = await startFakeServer()
  })

  it('--dry-run renders manifests that validate against the Kubernetes schemas', async () => {
    const dir = await project()
    const s = await createStandIns({kubectl: rules()})
    const r = await runCli(['deploy', 'k8s', '--dry-run', '--json'], {cwd: dir, env: s.env({HF_TOKEN: HF})})
    expect(r.exitCode, r.stderr).toBe(0)
    const plan = parseJson(r).plan
    expect(plan.ready).toBe(true)
    expect(argvOf(s)).toEqual(['version --client -o json', 'config current-context', `--context=${CTX} get namespace jarvis -o json`, `--context=${CTX} get nodes -o json`])
    expect(plan.checks.find((c: {id: string}) => c.id === 'gpu-offered').detail).toContain('gpu-node-1')
    // kubectl pretty-prints its version JSON over many lines; the row shows the version, not "{".
    expect(plan.checks.find((c: {id: string}) => c.id === 'tool:kubectl').detail).toBe('kubectl v1.34.2')

    const objs: Record<string, any> = {}
    for (const f of plan.files) {
      const obj = parse(f.content)
      validate(obj)
      objs[obj.kind] = obj
    }
    expect(Object.keys(objs).sort()).toEqual(['Deployment', 'HorizontalPodAutoscaler', 'Namespace', 'PersistentVolumeClaim', 'Service'])
    const pod = objs.Deployment.spec.template.spec
    const c = pod.containers[0]
    expect(c.image).toBe(IMAGE)
    expect(c.resources.limits['nvidia.com/gpu']).toBe('1')
    expect(c.readinessProbe.httpGet).toEqual({path: '/health', port: 'http'})
    expect(c.livenessProbe.httpGet).toEqual({path: '/livez', port: 'http'})
    expect(c.startupProbe.httpGet.path).toBe('/health')
    expect(c.startupProbe.periodSeconds * c.startupProbe.failureThreshold).toBe(1800)
    const env = Object.fromEntries(c.env.map((e: any) => [e.name, e.value ?? e.valueFrom]))
    expect(env.JARVIS_GPU_API_KEY).toEqual({secretKeyRef: {name: 'jarvis-secrets', key: 'JARVIS_GPU_API_KEY'}})
    expect(env.JARVIS_GPU_MODEL).toBe('large-v3')
    expect(pod.volumes[0].persistentVolumeClaim.claimName).toBe('jarvis-cache')
    expect(objs.Deployment.spec.strategy.type).toBe('Recreate')
    expect(objs.Deployment.spec.replicas).toBeUndefined()
    expect(objs.Service.spec).toMatchObject({type: 'ClusterIP', sessionAffinity: 'ClientIP', sessionAffinityConfig: {clientIP: {timeoutSeconds: 10800}}})
    expect(objs.Service.spec.externalTrafficPolicy).toBeUndefined()
    expect(objs.PersistentVolumeClaim.spec).toEqual({accessModes: ['ReadWriteOnce'], resources: {requests: {storage: '50Gi'}}})
    expect(objs.HorizontalPodAutoscaler.spec).toMatchObject({minReplicas: 1, maxReplicas: 1, scaleTargetRef: {kind: 'Deployment', name: 'jarvis'}})

    const ids = plan.steps.map((x: {id: string}) => x.id)
    expect(ids).toEqual(['namespace', 'secret', 'manifests', 'rollout'])
    const secretStep = plan.steps.find((x: {id: string}) => x.id === 'secret')
    expect(secretStep.command).toBe(`kubectl --context=${CTX} --namespace=jarvis apply -f -  < stdin (secrets masked)`)
    expect(plan.warnings.join('\n')).toContain(`kubectl --context=${CTX} --namespace=jarvis port-forward svc/jarvis 8000:8000`)
    expect(r.stdout + r.stderr).not.toContain(HF)
  })

  it('applies: Secret from stdin (valid, never in argv or on disk), manifests, rollout; status; destroy removes the namespace it made', async () => {
    const dir = await project(`    serviceType: LoadBalancer\n    servicePort: ${new URL(server.url).port}\n    storageClassName: fast-ssd\n`)
    const s = await createStandIns({kubectl: rules()})
    const r = await runCli(['deploy', 'k8s', '--yes', '--json', '--health-timeout', '10'], {cwd: dir, env: s.env({HF_TOKEN: HF, JARVIS_K8S_POLL_MS: '50'})})
    expect(r.exitCode, r.stderr).toBe(0)
    const apiKey = JSON.parse(readFileSync(join(dir, '.jarvis', 'secrets.json'), 'utf8'))['k8s.apiKey']
    const deployDir = join(dir, '.jarvis', 'deploy', 'k8s')
    expect(argvOf(s).slice(4)).toEqual([
      `--context=${CTX} apply -f ${deployDir}/namespace.yaml`,
      `--context=${CTX} --namespace=jarvis apply -f -`,
      `--context=${CTX} --namespace=jarvis apply -f ${deployDir}/pvc.yaml -f ${deployDir}/deployment.yaml -f ${deployDir}/service.yaml -f ${deployDir}/hpa.yaml`,
      `--context=${CTX} --namespace=jarvis rollout status deployment/jarvis --timeout=10s`,
      `--context=${CTX} --namespace=jarvis get service jarvis -o json`,
      `--context=${CTX} --namespace=jarvis get service jarvis -o json`,
    ])
    const secretCall = s.calls('kubectl').find((c) => c.argv.includes('-') && c.argv.includes('apply'))!
    const secret = JSON.parse(secretCall.stdin)
    validate(secret)
    expect(secret).toMatchObject({kind: 'Secret', metadata: {name: 'jarvis-secrets', namespace: 'jarvis'}, stringData: {JARVIS_GPU_API_KEY: apiKey, JARVIS_GPU_HF_TOKEN: HF}})
    // The manifests kubectl read are the rendered, valid files; the LoadBalancer keeps client IPs.
    const manifests = s.calls('kubectl').find((c) => c.argv.includes(`${deployDir}/service.yaml`))!
    for (const f of Object.values(manifests.files)) validate(parse(f.content))
    const svc = parse(manifests.files[`${deployDir}/service.yaml`].content)
    expect(svc.spec).toMatchObject({type: 'LoadBalancer', externalTrafficPolicy: 'Local', sessionAffinity: 'ClientIP'})
    expect(parse(manifests.files[`${deployDir}/pvc.yaml`].content).spec.storageClassName).toBe('fast-ssd')
    for (const secretValue of [apiKey, HF]) {
      expect(s.argvText()).not.toContain(secretValue)
      expect(r.stdout + r.stderr).not.toContain(secretValue)
      for (const f of Object.values(manifests.files)) expect(f.content).not.toContain(secretValue)
    }
    const dep = stateOf(dir).deployments.k8s
    expect(dep).toMatchObject({status: 'ready', url: `http://127.0.0.1:${new URL(server.url).port}`, details: {context: CTX, namespace: 'jarvis', namespaceCreated: true}})
    expect(server.keysSeen).toContain(apiKey)

    const st = await runCli(['status', '--json'], {cwd: dir, env: s.env()})
    const row = parseJson(st).backends.find((b: {name: string}) => b.name === 'k8s')
    expect(row.providerStatus).toMatchObject({state: 'running', summary: `1/1 pods ready (jarvis, ${CTX})`})

    s.clearCalls()
    const d = await runCli(['destroy', 'k8s', '--yes', '--json'], {cwd: dir, env: s.env()})
    expect(d.exitCode, d.stderr).toBe(0)
    expect(argvOf(s)).toEqual([
      `--context=${CTX} --namespace=jarvis delete deployment,service,horizontalpodautoscaler,persistentvolumeclaim,secret -l app.kubernetes.io/instance=jarvis,app.kubernetes.io/managed-by=jarvis --ignore-not-found --wait=true`,
      `--context=${CTX} delete namespace jarvis --ignore-not-found`,
    ])
    expect(stateOf(dir).deployments.k8s).toBeUndefined()
  })

  it('a namespace that already existed is neither created nor deleted', async () => {
    const dir = await project()
    const s = await createStandIns({kubectl: rules({namespaceExists: true})})
    const r = await runCli(['deploy', 'k8s', '--yes', '--json'], {cwd: dir, env: s.env()})
    expect(r.exitCode, r.stderr).toBe(0)
    expect(argvOf(s).some((a) => a.includes('namespace.yaml'))).toBe(false)
    s.clearCalls()
    const d = await runCli(['destroy', 'k8s', '--yes', '--json'], {cwd: dir, env: s.env()})
    expect(d.exitCode, d.stderr).toBe(0)
    expect(argvOf(s).some((a) => a.includes('delete namespace'))).toBe(false)
  })

  it('a rollout that times out leaves the deployment failed; the re-run resumes and skips the namespace', async () => {
    const dir = await project()
    const timeout: Rule = {match: [`--context=${CTX}`, '--namespace=jarvis', 'rollout', 'status'], exitCode: 1, stderr: 'error: timed out waiting for the condition\n'}
    const s = await createStandIns({kubectl: rules({}, [timeout])})
    const r = await runCli(['deploy', 'k8s', '--yes', '--json', '--health-timeout', '5'], {cwd: dir, env: s.env()})
    expect(r.exitCode).toBe(1)
    expect(parseJson(r).error.message).toContain('timed out waiting for the condition')
    expect(stateOf(dir).deployments.k8s).toMatchObject({status: 'failed', completedSteps: ['namespace', 'secret', 'manifests']})

    // The namespace now exists; the recorded step is skipped anyway.
    s.rules('kubectl', rules({namespaceExists: true}))
    s.clearCalls()
    const again = await runCli(['deploy', 'k8s', '--yes', '--json'], {cwd: dir, env: s.env()})
    expect(again.exitCode, again.stderr).toBe(0)
    expect(argvOf(s).some((a) => a.includes('namespace.yaml'))).toBe(false)
    expect(argvOf(s).some((a) => a.includes('rollout status'))).toBe(true)
    // It was created by jarvis (first run), so destroy still removes it.
    s.clearCalls()
    expect((await runCli(['destroy', 'k8s', '--yes'], {cwd: dir, env: s.env()})).exitCode).toBe(0)
    expect(argvOf(s)).toContain(`--context=${CTX} delete namespace jarvis --ignore-not-found`)
  })

  it('--cpu drops the GPU request; no context or no image is a ✗ with the fix', async () => {
    const dir = await project()
    const s = await createStandIns({kubectl: rules()})
    const r = await runCli(['deploy', 'k8s', '--cpu', '--dry-run', '--json'], {cwd: dir, env: s.env()})
    const plan = parseJson(r).plan
    const dep = parse(plan.files.find((f: {path: string}) => f.path.endsWith('deployment.yaml')).content)
    validate(dep)
    expect(dep.spec.template.spec.containers[0].resources).toEqual({requests: {cpu: '2', memory: '16Gi'}, limits: {memory: '16Gi'}})

    const none = await createStandIns({kubectl: rules({}, [{match: ['config', 'current-context'], exitCode: 1, stderr: 'error: current-context is not set\n'}])})
    const n = await runCli(['deploy', 'k8s', '--dry-run', '--json'], {cwd: dir, env: none.env()})
    expect(parseJson(n).plan.checks.find((c: {id: string}) => c.id === 'context')).toMatchObject({ok: false, detail: 'error: current-context is not set', fix: expect.stringContaining('kubectl config use-context')})

    const noImage = await tempDir('jarvis-k8s-')
    writeFileSync(join(noImage, 'jarvis.yaml'), 'version: 1\n')
    const m = await runCli(['deploy', 'k8s', '--yes', '--json'], {cwd: noImage, env: s.env()})
    expect(m.exitCode).toBe(1)
    expect(parseJson(m).error.message).toContain('deploy.k8s.image is not set')
  })
})
