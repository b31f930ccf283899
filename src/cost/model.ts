// The cost model, as small pure functions: what a month of transcription costs on one
// option, given its price, how it bills, and how the work arrives. No I/O here.

/** Hours in an average month (365 × 24 / 12), the convention cloud price pages use. */
export const HOURS_PER_MONTH = 730

export interface Billing {
  unit: 'second' | 'minute' | 'hour'
  /** Billed at least this long each time it starts (EC2 Linux and Compute Engine: 60 s). */
  minimumSeconds?: number
}

/** Seconds billed for one continuous run of `active` seconds: the minimum, then rounded up to the billing unit. */
export function billedSeconds(active: number, billing: Billing): number {
  if (active <= 0) return 0
  const step = billing.unit === 'hour' ? 3600 : billing.unit === 'minute' ? 60 : 1
  const atLeast = Math.max(active, billing.minimumSeconds ?? 0)
  // The epsilon keeps 3600.0000001 (float noise) from becoming two hours.
  return Math.ceil(atLeast / step - 1e-9) * step
}

export interface CostInputs {
  pricePerHour: number
  billing: Billing
  /** Processing seconds the month's audio needs (transcription + alignment/diarization). */
  processingSeconds: number
  /** Times per month the option starts from zero (each pays a cold start and an idle tail). */
  wakes: number
  coldStartSeconds: number
  idleSeconds: number
  /** Instances kept running all month (min instances, or a VM left on). 0 = scale to zero. */
  alwaysOnInstances: number
  storageGb: number
  storagePricePerGbMonth: number
  fixedMonthly: number
}

export interface CostBreakdown {
  /** Hours the option is running (and billed) in the month. */
  activeHours: number
  billedHours: number
  /** Pay-per-use compute: wakes × (cold start + processing + idle tail), rounded as billed. */
  usageCost: number
  /** The floor of always-on instances: N × 730 h × price. */
  alwaysOnCost: number
  storageCost: number
  fixedCost: number
  total: number
}

export function monthlyCost(i: CostInputs): CostBreakdown {
  const storageCost = i.storageGb * i.storagePricePerGbMonth
  const fixedCost = i.fixedMonthly
  let activeSeconds = 0
  let billed = 0
  let alwaysOnCost = 0
  let usageCost = 0
  if (i.alwaysOnInstances > 0) {
    // Warm all month: no cold starts; work beyond their capacity spills onto extra
    // scale-to-zero instances, billed as used.
    const capacity = i.alwaysOnInstances * HOURS_PER_MONTH * 3600
    alwaysOnCost = i.alwaysOnInstances * HOURS_PER_MONTH * i.pricePerHour
    const overflow = Math.max(0, i.processingSeconds - capacity)
    const overflowBilled = billedSeconds(overflow, i.billing)
    usageCost = (overflowBilled / 3600) * i.pricePerHour
    activeSeconds = capacity + overflow
    billed = capacity + overflowBilled
  } else if (i.processingSeconds > 0) {
    const wakes = Math.max(1, Math.round(i.wakes))
    const perWake = i.coldStartSeconds + i.processingSeconds / wakes + i.idleSeconds
    activeSeconds = perWake * wakes
    billed = billedSeconds(perWake, i.billing) * wakes
    usageCost = (billed / 3600) * i.pricePerHour
  }
  return {
    activeHours: activeSeconds / 3600,
    billedHours: billed / 3600,
    usageCost,
    alwaysOnCost,
    storageCost,
    fixedCost,
    total: usageCost + alwaysOnCost + storageCost + fixedCost,
  }
}

/** Electricity cost of running a machine for an hour: watts × $/kWh. */
export function electricityPerHour(watts: number, pricePerKwh: number): number {
  return (watts / 1000) * pricePerKwh
}
