// jarvis.yaml, as data. Backends are a discriminated union on `kind` so a mistake in one
// backend produces one readable error instead of a wall of union alternatives.
import {z} from 'zod'

export const FORMATS = ['txt', 'srt', 'vtt', 'json', 'tsv'] as const
export type Format = (typeof FORMATS)[number]

export const PROVIDER_NAMES = ['fly', 'modal', 'gcloud', 'aws', 'k8s', 'vast', 'ssh', 'local'] as const
export type ProviderName = (typeof PROVIDER_NAMES)[number]

const name = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]*$/i, 'expected a name of letters, digits, "-" and "_"')
  .max(63)

const httpUrl = z.url({protocol: /^https?$/, error: 'expected an http(s) URL such as http://127.0.0.1:8000'})

export const sshTargetSchema = z.strictObject({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).optional(),
  user: z.string().min(1).optional(),
  identity: z.string().min(1).optional(),
})
export type SshTarget = z.infer<typeof sshTargetSchema>

const common = {
  name,
  apiKey: z.string().min(1).optional(),
  /** Rank for routing: backends of equal priority share a batch. Default: config order. */
  priority: z.number().int().optional(),
  enabled: z.boolean().optional(),
}

export const backendSchema = z.discriminatedUnion('kind', [
  z.strictObject({...common, kind: z.literal('external'), url: httpUrl}),
  z.strictObject({...common, kind: z.literal('modal'), app: z.string().min(1).optional(), gpu: z.string().optional(), url: httpUrl.optional()}),
  z.strictObject({
    ...common,
    kind: z.literal('vast'),
    ssh: sshTargetSchema,
    remotePort: z.number().int().min(1).max(65535).default(8000),
  }),
  z.strictObject({
    ...common,
    kind: z.literal('ssh'),
    ssh: sshTargetSchema,
    remotePort: z.number().int().min(1).max(65535).default(8000),
  }),
  z.strictObject({
    ...common,
    kind: z.literal('local'),
    engine: z.enum(['auto', 'whisperx', 'pocketsphinx']).optional(),
    device: z.enum(['auto', 'cuda', 'cpu']).optional(),
    model: z.string().optional(),
    port: z.number().int().min(1).max(65535).optional(),
  }),
])
export type BackendConfig = z.infer<typeof backendSchema>
export type BackendKind = BackendConfig['kind']

export const defaultsSchema = z.strictObject({
  model: z.string().min(1).default('large-v3'),
  language: z.string().min(1).default('auto'),
  diarize: z.union([z.literal('auto'), z.boolean()], {error: 'expected auto, true or false'}).default('auto'),
  formats: z.array(z.enum(FORMATS)).min(1).default(['txt', 'srt']),
})

export const configSchema = z
  .strictObject({
    version: z.literal(1, {error: 'expected version: 1'}),
    defaults: defaultsSchema.default({model: 'large-v3', language: 'auto', diarize: 'auto', formats: ['txt', 'srt']}),
    backends: z.array(backendSchema).default([]),
    /** Per-provider deploy options; each provider validates its own section (src/providers/<name>). */
    deploy: z.partialRecord(z.enum(PROVIDER_NAMES), z.record(z.string(), z.unknown())).default({}),
    /** Cost inputs: your workstation's GPU power and electricity price, realtime-factor overrides. */
    cost: z.record(z.string(), z.unknown()).optional(),
  })
  .superRefine((cfg, ctx) => {
    const seen = new Map<string, number>()
    cfg.backends.forEach((b, i) => {
      if (seen.has(b.name)) ctx.addIssue({code: 'custom', path: ['backends', i, 'name'], message: `duplicate backend name "${b.name}" (also backends[${seen.get(b.name)}])`})
      seen.set(b.name, i)
    })
  })

export type JarvisConfig = z.infer<typeof configSchema>

/** Keys whose values are secrets wherever they appear in the config. */
export const SECRET_KEYS = new Set(['apiKey', 'hfToken', 'token', 'password', 'secret', 'apiSecret', 'modalSecret'])
