// `jarvis deploy|status|destroy gcloud` against a gcloud stand-in shaped like the real CLI's
// JSON (auth list, projects describe, services list, run services describe), and a fake
// gpu-server for the health wait. Asserts the exact command sequence, that secrets travel on
// stdin only, the rendered Cloud Run YAML, and the failure paths.
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {beforeAll, describe, expect, it} from 'vitest'
import {parse} from 'yaml'
import {parseJson, repoRoot, runCli} from '../helpers/cli.js'
import {createStandIns, type Rule, type StandIns} from '../helpers/standins.js'
import {tempDir} from '../helpers/tmp.js'
import {closedPortUrl, startFakeServer, type FakeServer} from './fake-server.js'

const HF = 'hf_gcloud_test_token_5f2a9c'
const IMAGE = 'us-central1-docker.pkg.dev/my-proj/jarvis/gpu-server:v1'

function rules(url: string, overrides: Rule[] = []): Rule[] {
  return [
    ...overrides,
    {match: ['--version'], stdout: 'Google Cloud SDK 530.0.0\nbq 2.1.18\ncore 2026.10.31\n'},
    {match: ['auth', 'list', '--format=json'], stdout: [{account: 'dev@example.com', status: 'ACTIVE'}]},
    {match: ['projects', 'describe', 'my-proj'], stdout: {projectId: 'my-proj', projectNumber: '123456789012', lifecycleState: 'ACTIVE'}},
    {
      match: ['services', 'list', '--enabled'],
      stdout: [{name: 'projects/123456789012/services/run.googleapis.com', config: {name: 'run.googleapis.com'}, state: 'ENABLED'}],
    },
    {match: ['services', 'enable'], stderr: 'Operation "operations/acf.p2-123" finished successfully.\n'},
    {match: ['secrets', 'create'], stderr: 'Created secret [x].\n'},
    {match: ['secrets', 'versions', 'add'], stderr: 'Created version [1] of the secret [x].\n'},
    {match: ['secrets', 'add-iam-policy-binding'], stderr: 'Updated IAM policy for secret [x].\n'},
    {match: ['run', 'services', 'replace'], stderr: 'Applying new configuration to Cloud Run service [jarvis-test]...\nDone.\n'},
    {match: ['run', 'services', 'add-iam-policy-binding'], stderr: 'Updated IAM policy for service [jarvis-test].\n'},
    {
      match: ['run', 'services', 'describe', 'jarvis-test'],
      stdout: {
        apiVersion: 'serving.knative.dev/v1',
        kind: 'Service',
        metadata: {name: 'jarvis-test'},
        spec: {template: {metadata: {annotations: {'autoscaling.knative.dev/minScale': '0', 'autoscaling.knative.dev/maxScale': '1'}}}},
        status: {url, latestReadyRevisionName: 'jarvis-test-00001-abc', conditions: [{type: 'Ready', status: 'True'}]},
      },
    },
    {match: ['run', 'services', 'delete'], stderr: 'Deleted service [jarvis-test].\n'},
    {match: ['secrets', 'delete'], stderr: 'Deleted secret [x].\n'},
  ]
}

async function project(extra = ''): Promise<string> {
  const dir = await tempDir('jarvis-gcloud-')
  writeFileSync(
    join(dir, 'jarvis.yaml'),
    `version: 1\ndeploy:\n  gcloud:\n    project: my-proj\n    region: us-central1\n    service: jarvis-test\n    image: ${IMAGE}\n${extra}`,
  )
  return dir
}

const argvOf = (s: StandIns) => s.calls('gcloud').map((c) => c.argv.filter((a) => a !== '--quiet' && !a.startsWith('--project=')).join(' '))
const secretsOf = (dir: string) => JSON.parse(readFileSync(join(dir, '.jarvis', 'secrets.json'), 'utf8')) as Record<string, string>
const stateOf = (dir: string) => JSON.parse(readFileSync(join(dir, '.jarvis', 'state.json'), 'utf8'))

describe('deploy gcloud', () => {
  let server: FakeServer
  beforeAll(async () => {
    server = await startFakeServer()
  })

  it('--dry-run prints the plan: Cloud Run YAML with L4, session affinity and secret references; changes nothing', async () => {
    const dir = await project()
    const s = await createStandIns({gcloud: rules(server.url)})
    const r = await runCli(['deploy', 'gcloud', '--dry-run', '--json'], {cwd: dir, env: s.env({HF_TOKEN: HF})})
    expect(r.exitCode, r.stderr).toBe(0)
    const out = parseJson(r)
    const plan = out.plan
    expect(plan.ready).toBe(true)
    // Only read-only calls ran.
    expect(argvOf(s)).toEqual([
      '--version',
      'auth list --format=json',
      'projects describe my-proj --format=json',
      'services list --enabled --format=json',
    ])
    const steps = plan.steps.map((x: {id: string}) => x.id)
    expect(steps).toEqual([
      'enable-apis',
      'secret-jarvis-test-api-key',
      'secret-value-jarvis-test-api-key',
      'secret-access-jarvis-test-api-key',
      'secret-jarvis-test-hf-token',
      'secret-value-jarvis-test-hf-token',
      'secret-access-jarvis-test-hf-token',
      'service',
      'invoker',
      'service-url',
      'health',
    ])
    const cmd = (id: string) => plan.steps.find((x: {id: string}) => x.id === id).command as string
    expect(cmd('enable-apis')).toBe('gcloud services enable secretmanager.googleapis.com --project=my-proj --quiet')
    expect(cmd('secret-value-jarvis-test-api-key')).toContain('gcloud secrets versions add jarvis-test-api-key --data-file=- --project=my-proj --quiet  < stdin')
    expect(cmd('secret-access-jarvis-test-api-key')).toContain('--member=serviceAccount:123456789012-compute@developer.gserviceaccount.com --role=roles/secretmanager.secretAccessor')
    expect(cmd('service')).toMatch(/^gcloud run services replace \S+\/\.jarvis\/deploy\/gcloud\/service\.yaml --region=us-central1 --project=my-proj --quiet$/)
    expect(cmd('invoker')).toContain('--member=allUsers --role=roles/run.invoker')

    const file = plan.files.find((f: {path: string}) => f.path.endsWith('service.yaml'))
    const svc = parse(file.content)
    expect(svc.apiVersion).toBe('serving.knative.dev/v1')
    expect(svc.metadata.name).toBe('jarvis-test')
    const tpl = svc.spec.template
    expect(tpl.metadata.annotations).toMatchObject({
      'autoscaling.knative.dev/minScale': '0',
      'autoscaling.knative.dev/maxScale': '1',
      'run.googleapis.com/cpu-throttling': 'false',
      'run.googleapis.com/sessionAffinity': 'true',
      'run.googleapis.com/gpu-zonal-redundancy-disabled': 'true',
    })
    expect(tpl.spec.nodeSelector).toEqual({'run.googleapis.com/accelerator': 'nvidia-l4'})
    expect(tpl.spec.containerConcurrency).toBe(8)
    expect(tpl.spec.timeoutSeconds).toBe(3600)
    const c = tpl.spec.containers[0]
    expect(c.image).toBe(IMAGE)
    expect(c.resources.limits).toEqual({cpu: '4', memory: '16Gi', 'nvidia.com/gpu': '1'})
    expect(c.ports).toEqual([{name: 'http1', containerPort: 8000}])
    expect(c.startupProbe.httpGet.path).toBe('/health')
    expect(c.startupProbe.periodSeconds * c.startupProbe.failureThreshold).toBeLessThanOrEqual(240)
    expect(c.livenessProbe.httpGet.path).toBe('/livez')
    const env = Object.fromEntries(c.env.map((e: {name: string; value?: string; valueFrom?: unknown}) => [e.name, e.value ?? e.valueFrom]))
    expect(env.JARVIS_GPU_API_KEY).toEqual({secretKeyRef: {name: 'jarvis-test-api-key', key: 'latest'}})
    expect(env.JARVIS_GPU_HF_TOKEN).toEqual({secretKeyRef: {name: 'jarvis-test-hf-token', key: 'latest'}})
    expect(env.JARVIS_GPU_MODEL).toBe('large-v3')
    // Nothing was written or deployed, and no secret is anywhere in the output.
    expect(existsSync(join(dir, '.jarvis', 'state.json'))).toBe(false)
    expect(r.stdout + r.stderr).not.toContain(HF)
    expect(JSON.stringify(out)).toContain('****')
  })

  it('--cpu leaves out the GPU; without an HF token the token secret is not created or referenced', async () => {
    const dir = await project()
    const s = await createStandIns({gcloud: rules(server.url)})
    const r = await runCli(['deploy', 'gcloud', '--cpu', '--dry-run', '--json'], {cwd: dir, env: s.env()})
    expect(r.exitCode, r.stderr).toBe(0)
    const plan = parseJson(r).plan
    const svc = parse(plan.files[0].content)
    expect(svc.spec.template.spec.nodeSelector).toBeUndefined()
    expect(svc.spec.template.spec.containers[0].resources.limits).toEqual({cpu: '4', memory: '16Gi'})
    expect(svc.spec.template.spec.containers[0].env.map((e: {name: string}) => e.name)).not.toContain('JARVIS_GPU_HF_TOKEN')
    expect(plan.steps.map((x: {id: string}) => x.id).filter((id: string) => id.includes('hf-token'))).toEqual([])
  })

  it('without deploy.gcloud.image it builds with Cloud Build into Artifact Registry (or says what is missing)', async () => {
    const dir = await tempDir('jarvis-gcloud-')
    writeFileSync(join(dir, 'jarvis.yaml'), 'version: 1\ndeploy:\n  gcloud: {project: my-proj, service: jarvis-test}\n')
    const s = await createStandIns({gcloud: rules(server.url)})
    const r = await runCli(['deploy', 'gcloud', '--dry-run', '--json'], {cwd: dir, env: s.env()})
    const plan = parseJson(r).plan
    if (existsSync(join(repoRoot, 'gpu-server', 'Dockerfile'))) {
      const build = plan.steps.find((x: {id: string}) => x.id === 'build-image')
      expect(build.command).toMatch(/^gcloud builds submit \S+\/gpu-server --tag=us-central1-docker\.pkg\.dev\/my-proj\/jarvis\/jarvis-test:v\d{8}-\d{6} /)
      expect(plan.steps.find((x: {id: string}) => x.id === 'artifact-repository').command).toContain('artifacts repositories create jarvis --repository-format=docker --location=us-central1')
      expect(plan.steps.find((x: {id: string}) => x.id === 'enable-apis').command).toContain('cloudbuild.googleapis.com artifactregistry.googleapis.com')
    } else {
      expect(plan.ready).toBe(false)
      expect(plan.checks.find((c: {id: string}) => c.id === 'image')).toMatchObject({ok: false, fix: expect.stringContaining('deploy.gcloud.image')})
    }
  })

  it('applies: secrets on stdin only, service replaced, URL from describe, healthy; status and destroy', async () => {
    const dir = await project()
    const s = await createStandIns({gcloud: rules(server.url)})
    const r = await runCli(['deploy', 'gcloud', '--yes', '--json', '--health-timeout', '10'], {cwd: dir, env: s.env({HF_TOKEN: HF})})
    expect(r.exitCode, r.stderr).toBe(0)
    const apiKey = secretsOf(dir)['gcloud.apiKey']
    expect(apiKey).toMatch(/^\S{20,}$/)
    expect(argvOf(s).slice(4)).toEqual([
      'services enable secretmanager.googleapis.com',
      'secrets create jarvis-test-api-key --replication-policy=automatic',
      'secrets versions add jarvis-test-api-key --data-file=-',
      'secrets add-iam-policy-binding jarvis-test-api-key --member=serviceAccount:123456789012-compute@developer.gserviceaccount.com --role=roles/secretmanager.secretAccessor',
      'secrets create jarvis-test-hf-token --replication-policy=automatic',
      'secrets versions add jarvis-test-hf-token --data-file=-',
      'secrets add-iam-policy-binding jarvis-test-hf-token --member=serviceAccount:123456789012-compute@developer.gserviceaccount.com --role=roles/secretmanager.secretAccessor',
      `run services replace ${join(dir, '.jarvis/deploy/gcloud/service.yaml')} --region=us-central1`,
      'run services add-iam-policy-binding jarvis-test --region=us-central1 --member=allUsers --role=roles/run.invoker',
      'run services describe jarvis-test --region=us-central1 --format=json',
    ])
    const versions = s.calls('gcloud').filter((c) => c.argv[1] === 'versions')
    expect(versions.map((c) => c.stdin)).toEqual([apiKey, HF])
    // The service.yaml gcloud read is the rendered file, with secret names and no values.
    const replace = s.calls('gcloud').find((c) => c.argv[2] === 'replace')!
    const yamlText = Object.values(replace.files)[0].content
    expect(yamlText).toContain('jarvis-test-api-key')
    for (const secret of [apiKey, HF]) {
      expect(s.argvText()).not.toContain(secret)
      expect(yamlText).not.toContain(secret)
      expect(r.stdout + r.stderr).not.toContain(secret)
      expect(readFileSync(join(dir, '.jarvis', 'state.json'), 'utf8')).not.toContain(secret)
    }
    const dep = stateOf(dir).deployments.gcloud
    expect(dep).toMatchObject({status: 'ready', url: server.url, details: {project: 'my-proj', region: 'us-central1', service: 'jarvis-test'}})
    expect(dep.resources.map((x: {kind: string; id: string}) => `${x.kind}:${x.id}`)).toEqual([
      'gcloud-secret:jarvis-test-api-key',
      'gcloud-secret:jarvis-test-hf-token',
      'cloudrun-service:jarvis-test',
    ])
    expect(server.keysSeen).toContain(apiKey)

    // status: the provider's view from `run services describe`.
    const st = await runCli(['status', '--json'], {cwd: dir, env: s.env()})
    const row = parseJson(st).backends.find((b: {name: string}) => b.name === 'gcloud')
    expect(row.providerStatus).toMatchObject({state: 'running', url: server.url})
    expect(row.providerStatus.summary).toContain('ready (us-central1, instances 0–1)')

    s.clearCalls()
    const d = await runCli(['destroy', 'gcloud', '--yes', '--json'], {cwd: dir, env: s.env()})
    expect(d.exitCode, d.stderr).toBe(0)
    expect(argvOf(s)).toEqual(['run services delete jarvis-test --region=us-central1', 'secrets delete jarvis-test-api-key', 'secrets delete jarvis-test-hf-token'])
    expect(stateOf(dir).deployments.gcloud).toBeUndefined()
  })

  it('a failure mid-deploy keeps the state; the re-run resumes; destroy cleans what was made', async () => {
    const dir = await project()
    const failing: Rule = {
      match: ['run', 'services', 'replace'],
      exitCode: 1,
      stderr: 'ERROR: (gcloud.run.services.replace) spec.template.metadata.annotations[autoscaling.knative.dev/maxScale]: You do not have quota for using GPUs without zonal redundancy.\n',
    }
    const s = await createStandIns({gcloud: rules(server.url, [failing])})
    const r = await runCli(['deploy', 'gcloud', '--yes', '--json'], {cwd: dir, env: s.env()})
    expect(r.exitCode).toBe(1)
    const err = parseJson(r).error
    expect(err.message).toContain('gcloud run services replace')
    expect(err.message).toContain('You do not have quota for using GPUs without zonal redundancy')
    const apiKey = secretsOf(dir)['gcloud.apiKey']
    expect(JSON.stringify(err)).not.toContain(apiKey)
    let dep = stateOf(dir).deployments.gcloud
    expect(dep.status).toBe('failed')
    expect(dep.completedSteps).toContain('secret-jarvis-test-api-key')
    expect(dep.lastError).toContain('quota')

    // Re-run with the quota granted: the secret is not created again, its value is re-sent.
    s.rules('gcloud', rules(server.url))
    s.clearCalls()
    const again = await runCli(['deploy', 'gcloud', '--yes', '--json', '--health-timeout', '10'], {cwd: dir, env: s.env()})
    expect(again.exitCode, again.stderr).toBe(0)
    const ran = argvOf(s)
    expect(ran.filter((a) => a.startsWith('secrets create'))).toEqual([])
    expect(ran).toContain('secrets versions add jarvis-test-api-key --data-file=-')
    expect(secretsOf(dir)['gcloud.apiKey']).toBe(apiKey)
    dep = stateOf(dir).deployments.gcloud
    expect(dep.status).toBe('ready')

    s.clearCalls()
    expect((await runCli(['destroy', 'gcloud', '--yes'], {cwd: dir, env: s.env()})).exitCode).toBe(0)
    expect(argvOf(s)).toContain('secrets delete jarvis-test-api-key')
  })

  it('health never arriving: fails with the last health error, deployment kept as failed', async () => {
    const dir = await project()
    const dead = await closedPortUrl()
    const s = await createStandIns({gcloud: rules(dead)})
    const r = await runCli(['deploy', 'gcloud', '--yes', '--json', '--health-timeout', '2'], {cwd: dir, env: s.env()})
    expect(r.exitCode).toBe(1)
    const err = parseJson(r).error
    expect(err.code).toBe('health_timeout')
    expect(err.message).toContain(`${dead} did not become healthy within 2 s (last: unreachable`)
    expect(stateOf(dir).deployments.gcloud).toMatchObject({status: 'failed', url: dead})
  })

  it('not logged in, or gcloud missing: a ✗ with the fix, nothing run', async () => {
    const dir = await project()
    const s = await createStandIns({gcloud: rules(server.url, [{match: ['auth', 'list'], stdout: []}])})
    const r = await runCli(['deploy', 'gcloud', '--yes', '--json'], {cwd: dir, env: s.env()})
    expect(r.exitCode).toBe(1)
    const err = parseJson(r).error
    expect(err.code).toBe('preflight_failed')
    expect(err.message).toContain('gcloud logged in — no active account')
    expect(err.message).toContain('gcloud auth login')
    expect(argvOf(s)).toEqual(['--version', 'auth list --format=json'])

    s.remove('gcloud')
    const m = await runCli(['deploy', 'gcloud', '--dry-run', '--json'], {cwd: dir, env: s.env()})
    const plan = parseJson(m).plan
    expect(plan.ready).toBe(false)
    expect(plan.checks[0]).toMatchObject({id: 'tool:gcloud', ok: false, fix: expect.stringContaining('https://cloud.google.com/sdk/docs/install')})
  })

  it('a region without documented L4 GPUs is a warning; config errors name the key', async () => {
    const dir = await project('    maxInstances: 0\n')
    const s = await createStandIns({gcloud: rules(server.url)})
    const bad = await runCli(['deploy', 'gcloud', '--dry-run', '--json'], {cwd: dir, env: s.env()})
    expect(bad.exitCode).toBe(1)
    expect(parseJson(bad).error.message).toMatch(/jarvis\.yaml:\d+:\d+ deploy\.gcloud\.maxInstances/)

    const ok = await project()
    const r = await runCli(['deploy', 'gcloud', '--dry-run', '--json', '--region', 'southamerica-east1'], {cwd: ok, env: s.env()})
    const plan = parseJson(r).plan
    expect(plan.ready).toBe(true)
    expect(plan.checks.find((c: {id: string}) => c.id === 'gpu-offered')).toMatchObject({ok: false, severity: 'warning'})
  })
})
