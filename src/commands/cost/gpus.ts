import {Flags} from '@oclif/core'
import {BaseCommand} from '../../lib/base-command.js'
import {renderTable} from '../../ui/ui.js'
import {DEFAULT_ELECTRICITY_PER_KWH, parseCostConfig} from '../../cost/config.js'
import {loadCatalog} from '../../cost/data.js'
import {configureWorkstation, filterRows, rowPricePerHour} from '../../cost/estimate.js'
import {billingText, usd} from '../../cost/format.js'

export default class CostGpus extends BaseCommand {
  static summary = 'The price catalog: provider, GPU, VRAM, $/hour, billing, idle costs, availability, as-of date and source'
  static description = 'Every row carries the date its price was read and the page it came from. Prices drift: check the source, and override rows with --catalog FILE.'

  static examples = [
    '<%= config.bin %> cost gpus',
    '<%= config.bin %> cost gpus --provider modal',
    '<%= config.bin %> cost gpus --gpu L4,T4 --max-price 1',
    '<%= config.bin %> cost gpus --available --json',
  ]

  static flags = {
    provider: Flags.string({description: 'only these providers (comma-separated)', multiple: true, delimiter: ','}),
    gpu: Flags.string({description: 'only these GPUs (comma-separated), e.g. T4,L4,A100-80GB', multiple: true, delimiter: ','}),
    'max-price': Flags.custom<number>({
      description: 'only rows at or under this price per hour (US dollars)',
      parse: async (input) => {
        const n = Number(input)
        if (input.trim() === '' || !Number.isFinite(n) || n < 0) throw new Error(`expected a number ≥ 0, got "${input}"`)
        return n
      },
    })(),
    available: Flags.boolean({description: 'hide options that can no longer be bought (Fly.io GPUs)', default: false}),
    catalog: Flags.string({description: 'a YAML/JSON price file merged over the built-in catalog'}),
  }

  async run(): Promise<Record<string, unknown>> {
    const {flags} = await this.parse(CostGpus)
    const loaded = await this.loadConfig(flags)
    const costCfg = await parseCostConfig(loaded.config.cost, loaded.path)
    const electricityPerKwh = costCfg.electricityPerKwh ?? DEFAULT_ELECTRICITY_PER_KWH
    const catalog = await loadCatalog(flags.catalog)
    const rows = filterRows(configureWorkstation(catalog.rows, costCfg.workstation), {
      providers: flags.provider,
      gpus: flags.gpu,
      includeUnavailable: !flags.available,
      maxPricePerHour: flags['max-price'],
    }, electricityPerKwh)
      .map((r) => ({...r, pricePerHour: rowPricePerHour(r, electricityPerKwh)}))
      .sort((a, b) => a.provider.localeCompare(b.provider) || a.pricePerHour - b.pricePerHour)

    if (rows.length === 0) this.log('No catalog row matches the filters.')
    else {
      this.log(
        renderTable(
          rows.map((r) => ({
            provider: r.provider,
            gpu: r.gpu,
            vram: r.vramGb > 0 ? `${r.vramGb} GB` : '-',
            product: r.product,
            price: r.priceRange ? `${usd(r.pricePerHour)} (${usd(r.priceRange.low)}-${usd(r.priceRange.high)})` : r.kind === 'workstation' ? `${usd(r.pricePerHour)} (${r.watts} W)` : usd(r.pricePerHour),
            billing: billingText(r.billing),
            idle: r.storage ? `${r.storage.gb} GB × ${usd(r.storage.pricePerGbMonth)}/GB-mo` : '-',
            available: r.available ? 'yes' : 'NO',
            asOf: r.asOf,
            source: r.source,
          })),
          [
            {key: 'provider', header: 'PROVIDER'},
            {key: 'gpu', header: 'GPU'},
            {key: 'vram', header: 'VRAM', align: 'right'},
            {key: 'product', header: 'OPTION'},
            {key: 'price', header: '$/HOUR', align: 'right'},
            {key: 'billing', header: 'BILLING'},
            {key: 'idle', header: 'STORAGE'},
            {key: 'available', header: 'AVAILABLE'},
            {key: 'asOf', header: 'AS OF'},
            {key: 'source', header: 'SOURCE'},
          ],
        ),
      )
      const gone = rows.filter((r) => !r.available)
      if (gone.length > 0) this.log(`\nNot available: ${[...new Set(gone.map((r) => r.availability ?? r.id))].join('; ')}.`)
      this.log(`Workstation rows: electricity at $${electricityPerKwh}/kWh (cost.electricityPerKwh), hardware not included.`)
    }
    return {rows, electricityPerKwh, catalogFiles: catalog.files}
  }
}
