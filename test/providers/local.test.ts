// `jarvis deploy local`, all real: the bundled server (pocketsphinx engine, no model
// download) started detached by the gpu-server manager, recorded as a deployment, seen by
// `status`, stopped by `destroy`. Shares the e2e suite's venv cache.
import {readFileSync} from 'node:fs'
import {writeFile} from 'node:fs/promises'
import {createServer} from 'node:net'
import {join} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {parseJson, repoRoot, runCli} from '../helpers/cli.js'
import {tempDir} from '../helpers/tmp.js'

async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const port = (s.address() as {port: number}).port
  await new Promise<void>((r) => s.close(() => r()))
  return port
}

describe('deploy local', () => {
  let dir: string
  let env: Record<string, string>
  afterAll(async () => {
    if (dir) await runCli(['destroy', 'local', '--yes'], {cwd: dir, env})
  })

  it('starts the server, records it, status sees it healthy, destroy stops it', async () => {
    dir = await tempDir('jarvis-local-')
    const work = await tempDir('jarvis-local-data-')
    env = {
      JARVIS_CACHE_DIR: join(repoRoot, '.cache', 'jarvis-test'),
      JARVIS_DATA_DIR: join(work, 'data'),
      EXTERNAL_GPU_URL: '',
      JARVIS_CONFIG: '',
      HF_TOKEN: '',
      HUGGINGFACE_TOKEN: '',
    }
    const port = await freePort()
    await writeFile(join(dir, 'jarvis.yaml'), `version: 1\ndeploy:\n  local:\n    port: ${port}\n`)

    const dry = parseJson(await runCli(['deploy', 'local', '--engine', 'pocketsphinx', '--dry-run', '--json'], {cwd: dir, env}))
    expect(dry.plan.url).toBe(`http://127.0.0.1:${port}`)
    expect(dry.plan.steps.map((s: any) => s.id)).toEqual(['start', 'health'])

    const r = await runCli(['deploy', 'local', '--engine', 'pocketsphinx', '--yes', '--json'], {cwd: dir, env, timeoutMs: 300_000})
    expect(r.exitCode, r.stderr).toBe(0)
    const dep = parseJson(r).deployment
    expect(dep).toMatchObject({provider: 'local', status: 'ready', url: `http://127.0.0.1:${port}`})
    expect(dep.details.health.engine).toBe('pocketsphinx')
    const apiKey = JSON.parse(readFileSync(join(dir, '.jarvis', 'secrets.json'), 'utf8'))['local.apiKey']
    expect(r.stdout + r.stderr).not.toContain(apiKey)

    const st = await runCli(['status', '--json'], {cwd: dir, env})
    const report = parseJson(st)
    const rows = report.backends.filter((b: any) => b.name === 'local')
    expect(rows).toHaveLength(1)
    expect(rows[0]).toMatchObject({health: 'healthy', engine: 'pocketsphinx', provider: 'local'})
    expect(rows[0].providerStatus.state).toBe('running')
    expect(st.exitCode).toBe(0)

    const d = await runCli(['destroy', 'local', '--yes'], {cwd: dir, env})
    expect(d.exitCode, d.stderr).toBe(0)
    const after = parseJson(await runCli(['status', '--json'], {cwd: dir, env}))
    expect(after.backends.find((b: any) => b.name === 'local')).toMatchObject({kind: 'local', health: 'stopped'})
  }, 300_000)
})
