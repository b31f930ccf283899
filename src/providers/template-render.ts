// Filling in templates/ files. Two kinds, each rendered so a value can never change the
// file's structure:
//   - YAML: the template is parsed first and placeholders are replaced inside scalars, so
//     a value is always data (never YAML syntax); comments are kept.
//   - shell scripts: every value is single-quoted for bash.
// A placeholder is {{name}} (letters, digits, _). A name the caller did not supply is a bug.
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'
import {isScalar, parseAllDocuments, visit, type Document} from 'yaml'
import {BugError} from '../lib/errors.js'

export type TemplateValue = string | number | boolean
/** `undefined` removes the key (or list item) whose whole value is that placeholder. */
export type TemplateValues = Record<string, TemplateValue | undefined>

const PLACEHOLDER = /\{\{(\w+)\}\}/g
const WHOLE = /^\{\{(\w+)\}\}$/

export async function readTemplate(packageRoot: string, relPath: string): Promise<string> {
  return readFile(join(packageRoot, 'templates', relPath), 'utf8')
}

function lookup(values: TemplateValues, name: string, where: string): TemplateValue | undefined {
  if (!Object.hasOwn(values, name)) throw new BugError(`template ${where} uses {{${name}}}, which was not supplied`)
  return values[name]
}

/** Render a YAML template (one or more documents). */
export function renderYaml(template: string, values: TemplateValues, where = 'YAML'): string {
  const docs = parseAllDocuments(template)
  const out: string[] = []
  for (const doc of docs as Document[]) {
    if (doc.errors.length > 0) throw new BugError(`template ${where} is not valid YAML: ${doc.errors[0]!.message}`)
    visit(doc, {
      Scalar(_key, node) {
        if (typeof node.value !== 'string') return
        const whole = WHOLE.exec(node.value)
        if (whole) {
          const v = lookup(values, whole[1]!, where)
          if (v === undefined) return visit.REMOVE
          node.value = v
          // A number or boolean stays typed; a string is emitted quoted when it must be.
          if (typeof v !== 'string') node.type = 'PLAIN'
          return
        }
        if (PLACEHOLDER.test(node.value)) {
          node.value = node.value.replace(PLACEHOLDER, (_m, name: string) => {
            const v = lookup(values, name, where)
            if (v === undefined) throw new BugError(`template ${where}: {{${name}}} inside a longer value cannot be left out`)
            return String(v)
          })
        }
      },
      Pair(_key, pair) {
        // `storageClassName: "{{x}}"` with x undefined: the whole pair goes.
        const v = pair.value
        if (isScalar(v) && typeof v.value === 'string') {
          const whole = WHOLE.exec(v.value)
          if (whole && lookup(values, whole[1]!, where) === undefined) return visit.REMOVE
        }
        return undefined
      },
    })
    out.push(doc.toString({lineWidth: 0}))
  }
  return out.join('---\n')
}

/** Render a bash script: each value single-quoted (a ' inside becomes '\''). */
export function renderShell(template: string, values: TemplateValues, where = 'script'): string {
  return template.replace(PLACEHOLDER, (_m, name: string) => {
    const v = lookup(values, name, where)
    if (v === undefined) throw new BugError(`template ${where}: {{${name}}} has no value`)
    return shellQuote(String(v))
  })
}

export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`
}
