// Every deploy target, in one map of lazy imports: only the provider a command names is
// loaded, so a heavy or missing one never slows down or breaks another.
// Adding a provider: write src/providers/<name>.ts (default export: a Provider) and add
// one line here.
import {PROVIDER_NAMES, type ProviderName} from '../config/schema.js'
import {BugError, UsageError, UserError} from '../lib/errors.js'
import type {Provider} from './types.js'

type Loader = () => Promise<{default: Provider}>

// The specifier goes through a variable so TypeScript does not require every module to
// exist at compile time (some providers ship separately); a missing one is reported below.
const lazy =
  (file: string): Loader =>
  () =>
    import(new URL(file, import.meta.url).href) as Promise<{default: Provider}>

const PROVIDERS: Record<ProviderName, {file: string; load: Loader}> = {
  fly: {file: './fly.js', load: lazy('./fly.js')},
  modal: {file: './modal.js', load: lazy('./modal.js')},
  gcloud: {file: './gcloud.js', load: lazy('./gcloud.js')},
  aws: {file: './aws.js', load: lazy('./aws.js')},
  k8s: {file: './k8s.js', load: lazy('./k8s.js')},
  vast: {file: './vast.js', load: lazy('./vast.js')},
  ssh: {file: './ssh.js', load: lazy('./ssh.js')},
  local: {file: './local.js', load: lazy('./local.js')},
}

export const providerNames: readonly ProviderName[] = PROVIDER_NAMES

export function isProviderName(name: string): name is ProviderName {
  return Object.hasOwn(PROVIDERS, name)
}

/** The provider named by a user; an unknown name lists the valid ones. */
export async function loadProvider(name: string): Promise<Provider> {
  if (!isProviderName(name)) {
    throw new UsageError(`Unknown provider "${name}"`, {suggestion: `Valid providers: ${providerNames.join(', ')}.`})
  }
  const entry = PROVIDERS[name]
  let mod: {default: Provider}
  try {
    mod = await entry.load()
  } catch (error) {
    const e = error as NodeJS.ErrnoException & {url?: string}
    const missingSelf = e.code === 'ERR_MODULE_NOT_FOUND' && String(e.url ?? e.message).includes(entry.file.replace(/^\.\//, '/providers/'))
    if (missingSelf) {
      throw new UserError(`The ${name} provider is not available in this build`, {
        code: 'provider_unavailable',
        suggestion: `Available here: ${(await availableProviders()).join(', ') || 'none'}.`,
      })
    }
    throw new BugError(`Could not load the ${name} provider: ${(error as Error).message}`, error)
  }
  if (!mod.default || mod.default.name !== name) throw new BugError(`src/providers/${entry.file} does not export the ${name} provider as default`)
  return mod.default
}

/** Providers whose module is present in this build (checked without importing them). */
export async function availableProviders(): Promise<ProviderName[]> {
  const {existsSync} = await import('node:fs')
  const {fileURLToPath} = await import('node:url')
  return providerNames.filter((n) => existsSync(fileURLToPath(new URL(PROVIDERS[n].file, import.meta.url))))
}
