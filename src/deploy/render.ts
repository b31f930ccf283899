// Human rendering of preflight checks and plans (stdout), shared by deploy and destroy.
import {relative} from 'node:path'
import chalk from 'chalk'
import {maskSecrets} from '../lib/secrets.js'
import {stepCommand} from '../providers/engine.js'
import type {Check, DeployPlan, DestroyPlan, Step} from '../providers/types.js'

export function renderChecks(checks: Check[]): string {
  const width = Math.max(0, ...checks.map((c) => c.label.length))
  return checks
    .map((c) => {
      const mark = c.ok ? chalk.green('✓') : c.severity === 'warning' ? chalk.yellow('!') : chalk.red('✗')
      let line = `  ${mark} ${c.label.padEnd(width)}${c.detail ? `  ${chalk.dim(c.detail)}` : ''}`
      if (!c.ok && c.fix) line += `\n      ${chalk.cyan('fix:')} ${c.fix}`
      return maskSecrets(line)
    })
    .join('\n')
}

function renderStep(step: Step, i: number, resumable = true): string {
  const head = `  ${i + 1}. ${step.title}${step.always || !resumable ? '' : chalk.dim('  (once; skipped when resuming)')}`
  const cmd = stepCommand(step)
  if (cmd) return `${head}\n     ${chalk.dim('$')} ${cmd}`
  if (step.kind === 'health') return `${head}\n     ${chalk.dim(`GET ${step.url ?? '<url from deploy>'}/health until ok, up to ${Math.round(step.timeoutMs / 1000)} s`)}`
  if (step.kind === 'task') return `${head}\n     ${chalk.dim(step.describe)}`
  return head
}

export function renderPlan(plan: DeployPlan, projectDir: string): string {
  const out: string[] = []
  out.push(chalk.bold(`Preflight (${plan.provider})`), renderChecks(plan.checks), '')
  out.push(chalk.bold(`Plan: deploy ${plan.provider}`) + (plan.url ? ` → ${plan.url}` : ''))
  const kw = Math.max(...plan.settings.map((s) => s.key.length))
  for (const s of plan.settings) out.push(`  ${s.key.padEnd(kw)}  ${String(s.value)}  ${chalk.dim(`(${s.source})`)}`)
  if (plan.files.length) {
    out.push('', chalk.bold('Files') + chalk.dim(' (rendered beside your config; safe to commit)'))
    for (const f of plan.files) out.push(`  ${relative(projectDir, f.path) || f.path}${f.description ? chalk.dim(`  ${f.description}`) : ''}`)
  }
  out.push('', chalk.bold('Steps'))
  plan.steps.forEach((s, i) => out.push(renderStep(s, i)))
  if (plan.secrets.length) out.push('', `${chalk.bold('Secrets')}: ${plan.secrets.join(', ')} ${chalk.dim('(values never shown; passed on stdin or in 0600 files)')}`)
  if (plan.warnings.length) out.push('', ...plan.warnings.map((w) => chalk.yellow(`! ${w}`)))
  return maskSecrets(out.join('\n'))
}

export function renderDestroyPlan(plan: DestroyPlan): string {
  const out = [chalk.bold(`Destroy ${plan.provider} deployment "${plan.name}"`)]
  plan.steps.forEach((s, i) => out.push(renderStep(s, i, false)))
  if (plan.warnings.length) out.push(...plan.warnings.map((w) => chalk.yellow(`! ${w}`)))
  return maskSecrets(out.join('\n'))
}
