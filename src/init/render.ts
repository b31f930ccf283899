// The jarvis.yaml that `jarvis init` writes: plain YAML with comments, secrets only as ${ENV}.
import type {Format} from '../config/schema.js'

export interface InitAnswers {
  externalUrl?: string
  apiKeyEnv: string
  modal: boolean
  modalGpu: string
  local: boolean
  localEngine: 'auto' | 'whisperx' | 'pocketsphinx'
  model: string
  language: string
  diarize: 'auto' | boolean
  formats: Format[]
}

export function renderConfig(a: InitAnswers): string {
  const lines = [
    '# jarvis.yaml: written by `jarvis init`. Check it with `jarvis config validate`.',
    'version: 1',
    'defaults:',
    `  model: ${a.model}`,
    `  language: ${a.language}`,
    `  diarize: ${a.diarize}`,
    `  formats: [${a.formats.join(', ')}]`,
    '# Tried in this order by `jarvis transcribe`; a backend that is down passes files to the next.',
    'backends:',
  ]
  if (a.externalUrl) {
    lines.push(`  - name: workstation`, `    kind: external`, `    url: ${a.externalUrl}`, `    apiKey: \${${a.apiKeyEnv}}  # read from the environment, never stored here`)
  }
  if (a.modal) lines.push('  - name: modal', '    kind: modal', `    gpu: ${a.modalGpu}  # URL recorded by \`jarvis deploy modal\``)
  if (a.local) lines.push('  - name: local', '    kind: local', `    engine: ${a.localEngine}`)
  if (!a.externalUrl && !a.modal && !a.local) lines[lines.length - 1] = 'backends: []'
  return lines.join('\n') + '\n'
}
