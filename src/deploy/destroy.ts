// The destroy service: find the recorded deployment, plan its teardown, run it, and forget
// it (state entry and stored API key) once everything is gone. Safe to run twice.
import type {LoadedConfig} from '../config/load.js'
import {createContext, recordedDeployment} from '../providers/engine.js'
import {loadProvider} from '../providers/registry.js'
import type {DestroyPlan, ProgressEvent, Provider, ProviderContext} from '../providers/types.js'
import {removeDeployment, setSecret, type Deployment} from '../state/state.js'
import {apiKeySecretName} from './deploy.js'

export interface PreparedDestroy {
  provider: Provider
  ctx: ProviderContext
  /** Undefined: nothing recorded, nothing to do. */
  deployment?: Deployment
  plan?: DestroyPlan
}

export async function prepareDestroy(
  providerName: string,
  loaded: LoadedConfig,
  io: {signal: AbortSignal; log?: (line: string) => void; progress?: (e: ProgressEvent) => void},
): Promise<PreparedDestroy> {
  const provider = await loadProvider(providerName)
  const ctx = createContext({projectDir: loaded.projectDir, configPath: loaded.path, config: loaded.config, provider: provider.name, signal: io.signal, log: io.log, progress: io.progress})
  const deployment = await recordedDeployment(loaded.projectDir, provider.name)
  if (!deployment) return {provider, ctx}
  return {provider, ctx, deployment, plan: await provider.planDestroy(ctx, deployment)}
}

export async function runDestroy(p: PreparedDestroy): Promise<void> {
  if (!p.deployment || !p.plan) return
  await p.provider.destroy(p.ctx, p.deployment, p.plan)
  await removeDeployment(p.ctx.projectDir, p.deployment.name)
  await setSecret(p.ctx.projectDir, apiKeySecretName(p.deployment.name), undefined)
}
