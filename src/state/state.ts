// .jarvis/state.json beside the config: what `deploy` created, so `status`, `transcribe`
// and `destroy` know it. Written atomically after every step, so an interrupted deploy
// still lists what it made. Secrets (generated API keys) live apart in a 0600 file.
import {mkdir, readFile, writeFile} from 'node:fs/promises'
import {existsSync} from 'node:fs'
import {join} from 'node:path'
import {z} from 'zod'
import {UserError} from '../lib/errors.js'
import {writeFileAtomic} from '../lib/atomic.js'
import {registerSecret} from '../lib/secrets.js'

export const resourceSchema = z.object({
  /** e.g. "fly-app", "fly-volume", "gcloud-secret", "ec2-instance", "k8s-manifest". */
  kind: z.string(),
  id: z.string(),
  createdAt: z.string().optional(),
  details: z.record(z.string(), z.unknown()).optional(),
})
export type Resource = z.infer<typeof resourceSchema>

export const deploymentSchema = z.object({
  name: z.string(),
  provider: z.string(),
  /** creating: apply in progress or interrupted; ready: healthy at the end of deploy. */
  status: z.enum(['creating', 'ready', 'failed', 'destroying', 'destroyed']),
  url: z.string().optional(),
  createdAt: z.string(),
  updatedAt: z.string(),
  /** Steps of the plan already applied (by id), so a re-run resumes after them. */
  completedSteps: z.array(z.string()).default([]),
  resources: z.array(resourceSchema).default([]),
  details: z.record(z.string(), z.unknown()).default({}),
  lastError: z.string().optional(),
})
export type Deployment = z.infer<typeof deploymentSchema>

const stateSchema = z.object({
  version: z.literal(1),
  deployments: z.record(z.string(), deploymentSchema).default({}),
})
export type State = z.infer<typeof stateSchema>

export function stateDir(projectDir: string): string {
  return join(projectDir, '.jarvis')
}

export function statePath(projectDir: string): string {
  return join(stateDir(projectDir), 'state.json')
}

async function ensureStateDir(projectDir: string): Promise<void> {
  const dir = stateDir(projectDir)
  await mkdir(dir, {recursive: true})
  const ignore = join(dir, '.gitignore')
  // Rendered deploy files are meant to be committed; secrets and caches are not.
  if (!existsSync(ignore)) await writeFile(ignore, 'secrets.json\ncache/\n')
}

export async function readState(projectDir: string): Promise<State> {
  let text: string
  try {
    text = await readFile(statePath(projectDir), 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {version: 1, deployments: {}}
    throw error
  }
  try {
    return stateSchema.parse(JSON.parse(text))
  } catch (error) {
    throw new UserError(`The state file ${statePath(projectDir)} is damaged: ${(error as Error).message.split('\n')[0]}`, {
      code: 'state_invalid',
      suggestion: 'Restore it from version control or a backup; jarvis will not overwrite it.',
    })
  }
}

// Serialise read-modify-write cycles within this process (parallel deploy steps, status).
let queue: Promise<unknown> = Promise.resolve()

export async function updateState<T>(projectDir: string, fn: (state: State) => T | Promise<T>): Promise<T> {
  const run = queue.then(async () => {
    await ensureStateDir(projectDir)
    const state = await readState(projectDir)
    const result = await fn(state)
    await writeFileAtomic(statePath(projectDir), JSON.stringify(state, null, 2) + '\n')
    return result
  })
  queue = run.catch(() => {})
  return run
}

export async function saveDeployment(projectDir: string, dep: Deployment): Promise<void> {
  await updateState(projectDir, (s) => {
    s.deployments[dep.name] = {...dep, updatedAt: new Date().toISOString()}
  })
}

export async function removeDeployment(projectDir: string, name: string): Promise<void> {
  await updateState(projectDir, (s) => {
    delete s.deployments[name]
  })
}

// --- secrets (generated API keys and the like), 0600, never in state.json ---

function secretsPath(projectDir: string): string {
  return join(stateDir(projectDir), 'secrets.json')
}

export async function readSecrets(projectDir: string): Promise<Record<string, string>> {
  try {
    const s = JSON.parse(await readFile(secretsPath(projectDir), 'utf8')) as Record<string, string>
    for (const v of Object.values(s)) registerSecret(v)
    return s
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {}
    throw error
  }
}

export async function getSecret(projectDir: string, key: string): Promise<string | undefined> {
  return (await readSecrets(projectDir))[key]
}

export async function setSecret(projectDir: string, key: string, value: string | undefined): Promise<void> {
  await ensureStateDir(projectDir)
  const s = await readSecrets(projectDir)
  if (value === undefined) delete s[key]
  else {
    registerSecret(value)
    s[key] = value
  }
  await writeFileAtomic(secretsPath(projectDir), JSON.stringify(s, null, 2) + '\n', {mode: 0o600})
}
