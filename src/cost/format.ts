// Number formatting for the cost tables: enough digits to compare cents per audio hour,
// not so many that a $700 month reads as $700.0000.
export function usd(v: number | null | undefined): string {
  if (v === null || v === undefined) return '-'
  const a = Math.abs(v)
  if (a >= 1000) return `$${Math.round(v).toLocaleString('en-US')}`
  if (a >= 10) return `$${v.toFixed(2)}`
  if (a >= 1) return `$${v.toFixed(2)}`
  if (a === 0) return '$0'
  // Three significant digits below a dollar (cents per audio hour matter), never fewer than two decimals.
  const s = v.toPrecision(3)
  return `$${s.replace(/(\.\d\d\d*?)0+$/, '$1')}`
}

export function num(v: number | null | undefined, digits = 1): string {
  if (v === null || v === undefined) return '-'
  return Number.isInteger(v) ? String(v) : v.toFixed(digits)
}

export function billingText(b: {unit: string; minimumSeconds?: number}): string {
  return `per ${b.unit}${b.minimumSeconds ? `, min ${b.minimumSeconds}s` : ''}`
}
