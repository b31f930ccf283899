// AWS: one EC2 GPU instance running the gpu-server container (DESIGN.md §6).
//
// `jarvis deploy aws`: store the API key and HF token in Secrets Manager (from a 0600
// file, never argv) → an IAM role that may read that one secret (and pull from ECR when
// the image is there), in an instance profile → a security group open on port 8000 to
// deploy.aws.allowCidr only → run the instance from the Deep Learning Base OSS Nvidia
// Driver GPU AMI with the rendered user-data (which holds no secret) → wait for it to run,
// learn its public IP → wait for /health.
//
// Why Secrets Manager and not the user-data: user-data is readable from inside the
// instance (instance metadata) and by any IAM user with ec2:DescribeInstanceAttribute.
// The server is reached over plain HTTP on the instance's address: the security group
// limits who can connect, but for use beyond a trusted network, tunnel (`jarvis tunnel`)
// or put TLS in front.
//
// Facts used (AWS docs, 2026-11):
//   DLAMI id from SSM: https://docs.aws.amazon.com/dlami/latest/devguide/find-dlami-id.html
//   run-instances: https://docs.aws.amazon.com/cli/latest/reference/ec2/run-instances.html
//     (--client-token makes a retried launch return the same instance)
//   describe-instance-type-offerings: https://docs.aws.amazon.com/cli/latest/reference/ec2/describe-instance-type-offerings.html
//   secrets: https://docs.aws.amazon.com/cli/latest/reference/secretsmanager/put-secret-value.html
//     (file:// loads a parameter from a file), delete-secret --force-delete-without-recovery
//   G/VT vCPU quota L-DB2E81BA: https://docs.aws.amazon.com/cli/latest/reference/service-quotas/get-service-quota.html
import {randomBytes} from 'node:crypto'
import {join} from 'node:path'
import {z} from 'zod'
import {installHint} from '../exec/exec.js'
import {UserError} from '../lib/errors.js'
import {checkData, lastLine, parseJson, pick, probe, sleep, toolCheck} from './cloud-common.js'
import {applyDestroy, applyPlan, parseSection} from './engine.js'
import {readTemplate, renderShell} from './template-render.js'
import type {Check, CommandStep, DeployOptions, DeployPlan, DestroyPlan, Provider, ProviderContext, ProviderStatus, Step, StepOutput, Deployment} from './types.js'

export const DLAMI_PARAMETER = '/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id'
/** --gpu shorthands: the smallest instance with that GPU. */
export const GPU_INSTANCE_TYPES: Record<string, string> = {t4: 'g4dn.xlarge', a10g: 'g5.xlarge', a10: 'g5.xlarge', l4: 'g6.xlarge', l40s: 'g6e.xlarge'}
/** vCPU quota per instance family (Service Quotas, service code ec2). */
const QUOTAS: [RegExp, string, string][] = [
  [/^(g|vt)\d/, 'L-DB2E81BA', 'Running On-Demand G and VT instances'],
  [/^p\d/, 'L-417A185B', 'Running On-Demand P instances'],
]
const DEFAULT_PORT = 8000

export function isCidr(value: string): boolean {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(value)
  return Boolean(m && m.slice(1, 5).every((o) => Number(o) <= 255) && Number(m[5]) <= 32)
}

export const awsConfigSchema = z.strictObject({
  region: z.string().regex(/^[a-z]{2}(-gov)?-[a-z]+-\d$/, 'expected a region such as us-east-1').optional(),
  /** Prefix of every resource jarvis creates (default "jarvis"). */
  name: z.string().regex(/^[a-zA-Z][a-zA-Z0-9-]{0,31}$/, 'expected letters, digits and "-", at most 32').optional(),
  instanceType: z.string().regex(/^[a-z][a-z0-9-]*\.[a-z0-9]+$/, 'expected an EC2 instance type such as g4dn.xlarge').optional(),
  /** The gpu-server container image the instance pulls (ECR, GHCR, Docker Hub, ...). */
  image: z.string().min(1).optional(),
  /** Who may reach port 8000, e.g. "203.0.113.7/32" (your address). Env: JARVIS_AWS_ALLOW_CIDR. */
  allowCidr: z.string().refine(isCidr, 'expected an IPv4 CIDR such as 203.0.113.7/32').optional(),
  /** An existing EC2 key pair, to allow SSH (port 22, same CIDR). */
  keyName: z.string().min(1).optional(),
  amiId: z.string().regex(/^ami-[0-9a-f]+$/, 'expected an AMI id such as ami-0123456789abcdef0').optional(),
  amiParameter: z.string().startsWith('/aws/service/').optional(),
  vpcId: z.string().regex(/^vpc-[0-9a-f]+$/).optional(),
  subnetId: z.string().regex(/^subnet-[0-9a-f]+$/).optional(),
  /** Root volume size; default: the AMI's. */
  diskGb: z.number().int().min(30).max(4096).optional(),
  /** Port the instance serves on (mapped to the container's 8000); default 8000. */
  port: z.number().int().min(1).max(65535).optional(),
})
export type AwsConfig = z.infer<typeof awsConfigSchema>

const TOOL = {command: 'aws', purpose: 'creates the EC2 instance, security group, IAM role and secret', installHint: installHint('aws')}

function cfg(ctx: ProviderContext): Promise<AwsConfig> {
  return parseSection(ctx, 'aws', awsConfigSchema)
}

/** Every call: JSON out and the region named, never the CLI profile's by accident. */
export function awsArgs(region: string, args: string[]): string[] {
  return [...args, '--region', region, '--output', 'json']
}

function instanceTypeFor(c: AwsConfig, opts: DeployOptions) {
  const fromGpu = opts.gpu ? (GPU_INSTANCE_TYPES[opts.gpu.toLowerCase()] ?? opts.gpu) : undefined
  return pick('instanceType', {...opts, fromFlags: opts.fromFlags.has('gpu') ? new Set([...opts.fromFlags, 'instanceType']) : opts.fromFlags}, fromGpu, c.instanceType, 'g4dn.xlarge')
}

function allowCidrOf(c: AwsConfig, opts: DeployOptions): string | undefined {
  return opts.allowCidr ?? c.allowCidr ?? (process.env.JARVIS_AWS_ALLOW_CIDR?.trim() || undefined)
}

async function preflight(ctx: ProviderContext, opts: DeployOptions): Promise<Check[]> {
  const c = await cfg(ctx)
  const checks: Check[] = []
  const tool = await toolCheck(ctx, TOOL, ['--version'])
  checks.push(tool)
  if (!tool.ok) return checks

  let region = opts.fromFlags.has('region') ? opts.region : (c.region ?? opts.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION)
  if (!region) {
    const r = await probe(ctx, 'aws', ['configure', 'get', 'region'])
    if (r.ok && r.result.stdout.trim()) region = r.result.stdout.trim()
  }
  const who = await probe(ctx, 'aws', ['sts', 'get-caller-identity', ...(region ? ['--region', region] : []), '--output', 'json'])
  const identity = who.ok ? parseJson<{Account?: string; Arn?: string}>(who.result.stdout) : undefined
  if (!identity?.Account) {
    checks.push({id: 'auth', label: 'AWS credentials', ok: false, detail: who.ok ? 'no account in the answer' : who.message, fix: 'Run `aws configure` (or `aws sso login`), or set AWS_PROFILE'})
    return checks
  }
  checks.push({id: 'auth', label: 'AWS credentials', ok: true, detail: `${identity.Arn} (account ${identity.Account})`, data: {account: identity.Account}})
  if (!region) {
    checks.push({id: 'region', label: 'AWS region', ok: false, detail: 'none given', fix: 'Pass --region, set deploy.aws.region, or run `aws configure set region us-east-1`'})
    return checks
  }
  checks.push({id: 'region', label: 'AWS region', ok: true, detail: region, data: {region}})

  const type = instanceTypeFor(c, opts).value
  const offered = await probe(ctx, 'aws', awsArgs(region, ['ec2', 'describe-instance-type-offerings', '--location-type', 'region', '--filters', `Name=instance-type,Values=${type}`]))
  const offers = offered.ok ? (parseJson<{InstanceTypeOfferings?: unknown[]}>(offered.result.stdout)?.InstanceTypeOfferings ?? []) : []
  if (!offered.ok || offers.length === 0) {
    checks.push({
      id: 'gpu-offered',
      label: `${type} offered in ${region}`,
      ok: false,
      detail: offered.ok ? `${region} does not offer ${type}` : offered.message,
      fix: 'Pick another region (--region) or instance type (deploy.aws.instanceType: g4dn.xlarge, g5.xlarge, g6.xlarge)',
    })
    return checks
  }
  const described = await probe(ctx, 'aws', awsArgs(region, ['ec2', 'describe-instance-types', '--instance-types', type]))
  const info = described.ok ? parseJson<{InstanceTypes?: InstanceTypeInfo[]}>(described.result.stdout)?.InstanceTypes?.[0] : undefined
  const vcpus = info?.VCpuInfo?.DefaultVCpus
  const gpu = info?.GpuInfo?.Gpus?.[0]
  checks.push({
    id: 'gpu-offered',
    label: `${type} offered in ${region}`,
    ok: true,
    detail: gpu ? `${gpu.Count ?? 1}× ${gpu.Manufacturer ?? ''} ${gpu.Name ?? ''} ${gpu.MemoryInfo?.SizeInMiB ? `${Math.round(gpu.MemoryInfo.SizeInMiB / 1024)} GiB` : ''}, ${vcpus ?? '?'} vCPU`.replace(/\s+/g, ' ') : 'offered',
    data: {vcpus},
  })

  const quota = QUOTAS.find(([re]) => re.test(type))
  if (quota && vcpus) {
    const q = await probe(ctx, 'aws', awsArgs(region, ['service-quotas', 'get-service-quota', '--service-code', 'ec2', '--quota-code', quota[1]]))
    const value = q.ok ? parseJson<{Quota?: {Value?: number}}>(q.result.stdout)?.Quota?.Value : undefined
    if (value === undefined) {
      checks.push({id: 'quota', label: `vCPU quota (${quota[2]})`, ok: false, severity: 'warning', detail: `could not read it: ${q.ok ? 'no value' : q.message}`})
    } else {
      checks.push({
        id: 'quota',
        label: `vCPU quota (${quota[2]})`,
        ok: value >= vcpus,
        detail: `${value} vCPU allowed, ${type} needs ${vcpus}`,
        fix: value >= vcpus ? undefined : `Request an increase: aws service-quotas request-service-quota-increase --service-code ec2 --quota-code ${quota[1]} --desired-value ${vcpus} --region ${region}`,
      })
    }
  }

  if (c.amiId) checks.push({id: 'ami', label: 'machine image', ok: true, detail: `${c.amiId} (deploy.aws.amiId)`, data: {amiId: c.amiId}})
  else {
    const param = c.amiParameter ?? DLAMI_PARAMETER
    const ami = await probe(ctx, 'aws', awsArgs(region, ['ssm', 'get-parameter', '--name', param]))
    const amiId = ami.ok ? parseJson<{Parameter?: {Value?: string}}>(ami.result.stdout)?.Parameter?.Value : undefined
    checks.push(
      amiId
        ? {id: 'ami', label: 'machine image', ok: true, detail: `${amiId} (Deep Learning Base OSS Nvidia Driver GPU AMI, Ubuntu 22.04)`, data: {amiId}}
        : {id: 'ami', label: 'machine image', ok: false, detail: `${param}: ${ami.ok ? 'no value' : ami.message}`, fix: 'Set deploy.aws.amiId to an AMI with the NVIDIA driver, Docker and the NVIDIA Container Toolkit'},
    )
  }

  if (!c.image) {
    checks.push({
      id: 'image',
      label: 'gpu-server image',
      ok: false,
      detail: 'deploy.aws.image is not set',
      fix: 'Push the gpu-server image to a registry the instance can pull from (ECR works with the instance role) and set deploy.aws.image',
    })
  }
  const cidr = allowCidrOf(c, opts)
  if (!cidr) {
    checks.push({
      id: 'allow-cidr',
      label: 'who may connect',
      ok: false,
      detail: 'no address range given for port 8000',
      fix: 'Pass --allow-cidr (or set deploy.aws.allowCidr / JARVIS_AWS_ALLOW_CIDR) to your public address, e.g. 203.0.113.7/32 (https://checkip.amazonaws.com shows it)',
    })
  } else if (!isCidr(cidr)) {
    checks.push({id: 'allow-cidr', label: 'who may connect', ok: false, detail: `${cidr} is not an IPv4 CIDR`, fix: 'Use the form 203.0.113.7/32'})
  } else {
    checks.push({id: 'allow-cidr', label: 'who may connect', ok: !cidr.endsWith('/0'), severity: cidr.endsWith('/0') ? 'warning' : undefined, detail: cidr.endsWith('/0') ? `${cidr}: the whole internet (the API key is the only guard, over plain HTTP)` : cidr})
  }
  return checks
}

interface InstanceTypeInfo {
  VCpuInfo?: {DefaultVCpus?: number}
  GpuInfo?: {Gpus?: {Name?: string; Manufacturer?: string; Count?: number; MemoryInfo?: {SizeInMiB?: number}}[]}
}

interface Resolved {
  region: string
  account: string
  name: string
  instanceType: string
  amiId: string
  image: string
  cidr: string
  secretName: string
  roleName: string
  profileName: string
  groupName: string
  clientToken: string
  userDataPath: string
  trustPath: string
  policyPath: string
  port: number
}

async function plan(ctx: ProviderContext, opts: DeployOptions, checks: Check[]): Promise<DeployPlan> {
  const c = await cfg(ctx)
  const region = checkData<string>(checks, 'region', 'region') ?? c.region ?? opts.region ?? 'REGION'
  const account = checkData<string>(checks, 'auth', 'account') ?? 'ACCOUNT_ID'
  const name = pick('name', opts, opts.name, c.name, 'jarvis')
  const instanceType = instanceTypeFor(c, opts)
  const existing = opts.existing?.provider === 'aws' && opts.existing.status !== 'destroyed' ? opts.existing : undefined
  const r: Resolved = {
    region,
    account,
    name: name.value,
    instanceType: instanceType.value,
    amiId: checkData<string>(checks, 'ami', 'amiId') ?? c.amiId ?? 'AMI_ID',
    image: c.image ?? 'IMAGE_NOT_SET',
    cidr: allowCidrOf(c, opts) ?? 'CIDR_NOT_SET',
    secretName: `jarvis/${name.value}/server`,
    roleName: `${name.value}-gpu-server`,
    profileName: `${name.value}-gpu-server`,
    groupName: `${name.value}-gpu-server`,
    // Same token on a resumed deploy: a launch that succeeded but was not recorded is found, not repeated.
    clientToken: (existing?.details.clientToken as string | undefined) ?? `jarvis-${randomBytes(12).toString('hex')}`,
    userDataPath: join(ctx.deployDir, 'user-data.sh'),
    trustPath: join(ctx.deployDir, 'trust-policy.json'),
    policyPath: join(ctx.deployDir, 'role-policy.json'),
    port: c.port ?? DEFAULT_PORT,
  }
  const userData = renderShell(
    await readTemplate(ctx.packageRoot, 'aws/user-data.sh'),
    {region: r.region, secretId: r.secretName, image: r.image, engine: opts.engine, model: opts.model, port: r.port},
    'aws/user-data.sh',
  )
  const trust = {Version: '2012-10-17', Statement: [{Effect: 'Allow', Principal: {Service: 'ec2.amazonaws.com'}, Action: 'sts:AssumeRole'}]}
  const statements: object[] = [
    // Secrets Manager appends "-" and 6 random characters to a secret's ARN.
    {Sid: 'ReadServerSecret', Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: `arn:aws:secretsmanager:${r.region}:${r.account}:secret:${r.secretName}-*`},
  ]
  if (/\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com\//.test(r.image)) {
    statements.push({Sid: 'PullFromEcr', Effect: 'Allow', Action: ['ecr:GetAuthorizationToken', 'ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchCheckLayerAvailability'], Resource: '*'})
  }
  const policy = {Version: '2012-10-17', Statement: statements}

  const warnings = ['The server answers plain HTTP on the instance address (port 8000, open to the allowed range only). Beyond a trusted network, use `jarvis tunnel` or put TLS in front.']
  if (existing?.details.instanceId) warnings.push(`Instance ${existing.details.instanceId} exists: it keeps its image, model and user-data. To change them: jarvis destroy aws, then deploy again.`)
  warnings.push('The first boot pulls the image and downloads the model: allow 10–20 minutes (--health-timeout).')

  return {
    provider: 'aws',
    name: 'aws',
    settings: [
      {key: 'region', value: r.region, source: opts.fromFlags.has('region') ? 'flag' : c.region ? 'config' : 'platform'},
      name,
      instanceType,
      {key: 'ami', value: r.amiId, source: c.amiId ? 'config' : 'platform'},
      {key: 'image', value: r.image, source: c.image ? 'config' : 'default'},
      {key: 'allowCidr', value: r.cidr, source: opts.allowCidr ? 'flag' : c.allowCidr ? 'config' : process.env.JARVIS_AWS_ALLOW_CIDR?.trim() ? 'env' : 'default'},
      ...(c.keyName ? [{key: 'keyName', value: c.keyName, source: 'config' as const}] : []),
      {key: 'model', value: opts.model, source: opts.fromFlags.has('model') ? 'flag' : 'default'},
    ],
    checks,
    files: [
      {path: r.userDataPath, content: userData, description: 'EC2 user-data: starts the gpu-server container (holds no secret)'},
      {path: r.trustPath, content: JSON.stringify(trust, null, 2) + '\n', description: 'IAM trust policy: EC2 may assume the role'},
      {path: r.policyPath, content: JSON.stringify(policy, null, 2) + '\n', description: 'IAM role policy: read the server secret (and pull from ECR)'},
    ],
    steps: deploySteps(opts, c, r),
    secrets: ['JARVIS_GPU_API_KEY', ...(opts.hfToken ? ['JARVIS_GPU_HF_TOKEN'] : [])],
    warnings,
    details: {region: r.region, name: r.name, port: r.port, instanceType: r.instanceType, secretName: r.secretName, roleName: r.roleName, profileName: r.profileName, clientToken: r.clientToken},
  }
}

/** Run an aws call from a task step; a failure whose output matches `okIf` is returned, not thrown. */
async function awsCall(ctx: ProviderContext, region: string, args: string[], okIf?: RegExp, timeoutMs = 120_000): Promise<{ok: boolean; stdout: string; output: string}> {
  const r = await ctx.run('aws', awsArgs(region, args), {allowFailure: true, timeoutMs})
  const output = `${r.stderr}\n${r.stdout}`
  if (r.exitCode === 0) return {ok: true, stdout: r.stdout, output}
  if (okIf?.test(output)) return {ok: false, stdout: r.stdout, output}
  throw new UserError(`aws ${args.slice(0, 2).join(' ')} failed: ${lastLine(r.stderr || r.stdout) || `exit ${r.exitCode}`}`, {code: 'external_command_failed'})
}

function deploySteps(opts: DeployOptions, c: AwsConfig, r: Resolved): Step[] {
  const cmd = (step: Omit<CommandStep, 'kind' | 'cmd'>): CommandStep => ({kind: 'command', cmd: 'aws', ...step, args: awsArgs(r.region, step.args)})
  const secretJson = JSON.stringify({JARVIS_GPU_API_KEY: opts.apiKey, ...(opts.hfToken ? {JARVIS_GPU_HF_TOKEN: opts.hfToken} : {})})
  const tags = `{Key=Name,Value=${r.name}-gpu-server},{Key=jarvis-deployment,Value=${r.name}}`
  const ports = [r.port, ...(c.keyName ? [22] : [])]
  const steps: Step[] = [
    cmd({
      id: 'secret',
      title: `Secrets Manager secret ${r.secretName}`,
      args: ['secretsmanager', 'create-secret', '--name', r.secretName, '--description', `jarvis gpu-server ${r.name}: API key and HF token`],
      okIfOutputMatches: 'ResourceExistsException|already exists',
      creates: {kind: 'aws-secret', id: r.secretName},
    }),
    cmd({
      // The value comes from a 0600 file (file://), never from the command line.
      id: 'secret-value',
      title: 'Store the API key and HF token in the secret (from a 0600 file)',
      args: ['secretsmanager', 'put-secret-value', '--secret-id', r.secretName, '--secret-string', 'file://{{secretFile:server-secret.json}}'],
      secretFiles: [{name: 'server-secret.json', content: secretJson}],
      always: true,
    }),
    cmd({
      id: 'role',
      title: `IAM role ${r.roleName} for the instance`,
      args: ['iam', 'create-role', '--role-name', r.roleName, '--assume-role-policy-document', `file://${r.trustPath}`, '--description', `jarvis gpu-server ${r.name}`],
      okIfOutputMatches: 'EntityAlreadyExists',
      creates: {kind: 'aws-iam-role', id: r.roleName},
    }),
    cmd({
      id: 'role-policy',
      title: 'Let the role read the secret (nothing else)',
      args: ['iam', 'put-role-policy', '--role-name', r.roleName, '--policy-name', 'jarvis-gpu-server', '--policy-document', `file://${r.policyPath}`],
      always: true,
    }),
    cmd({
      id: 'instance-profile',
      title: `Instance profile ${r.profileName}`,
      args: ['iam', 'create-instance-profile', '--instance-profile-name', r.profileName],
      okIfOutputMatches: 'EntityAlreadyExists',
      creates: {kind: 'aws-instance-profile', id: r.profileName},
    }),
    cmd({
      id: 'profile-role',
      title: 'Put the role in the instance profile',
      args: ['iam', 'add-role-to-instance-profile', '--instance-profile-name', r.profileName, '--role-name', r.roleName],
      // An instance profile holds one role: "LimitExceeded" means it is already there.
      okIfOutputMatches: 'LimitExceeded',
    }),
    {
      kind: 'task',
      id: 'security-group',
      title: `Security group ${r.groupName}`,
      describe: `aws ec2 create-security-group --group-name ${r.groupName}${c.vpcId ? ` --vpc-id ${c.vpcId}` : ''} ... (or find the existing one with describe-security-groups)`,
      run: async (ctx) => {
        const created = await awsCall(
          ctx,
          r.region,
          ['ec2', 'create-security-group', '--group-name', r.groupName, '--description', `jarvis gpu-server ${r.name}`, ...(c.vpcId ? ['--vpc-id', c.vpcId] : []), '--tag-specifications', `ResourceType=security-group,Tags=[${tags}]`],
          /InvalidGroup\.Duplicate/,
        )
        let id = parseJson<{GroupId?: string}>(created.stdout)?.GroupId
        if (!id) {
          const found = await awsCall(ctx, r.region, ['ec2', 'describe-security-groups', '--filters', `Name=group-name,Values=${r.groupName}`, ...(c.vpcId ? [`Name=vpc-id,Values=${c.vpcId}`] : [])])
          id = parseJson<{SecurityGroups?: {GroupId?: string}[]}>(found.stdout)?.SecurityGroups?.[0]?.GroupId
        }
        if (!id) throw new UserError(`Security group ${r.groupName} was neither created nor found`, {code: 'external_command_failed'})
        return {details: {securityGroupId: id}, resources: [{kind: 'aws-security-group', id}]}
      },
    },
    {
      kind: 'task',
      id: 'ingress',
      title: `Open port${ports.length > 1 ? 's' : ''} ${ports.join(', ')} to ${r.cidr}`,
      describe: ports.map((p) => `aws ec2 authorize-security-group-ingress --group-id <security group> --protocol tcp --port ${p} --cidr ${r.cidr}`).join('; '),
      run: async (ctx, dep) => {
        for (const p of ports) {
          await awsCall(ctx, r.region, ['ec2', 'authorize-security-group-ingress', '--group-id', String(dep.details.securityGroupId), '--protocol', 'tcp', '--port', String(p), '--cidr', r.cidr], /InvalidPermission\.Duplicate/)
        }
      },
    },
    {
      kind: 'task',
      id: 'instance',
      title: `Launch ${r.instanceType} from ${r.amiId}`,
      describe: `aws ec2 run-instances --image-id ${r.amiId} --instance-type ${r.instanceType} --security-group-ids <security group> --iam-instance-profile Name=${r.profileName} --user-data file://${r.userDataPath} --metadata-options HttpTokens=required --client-token ${r.clientToken}${c.keyName ? ` --key-name ${c.keyName}` : ''} ...`,
      run: async (ctx, dep) => launch(ctx, r, c, String(dep.details.securityGroupId), tags),
    },
    {
      kind: 'task',
      id: 'instance-address',
      title: 'Wait for the instance to run and read its public address',
      describe: 'aws ec2 wait instance-running --instance-ids <instance>; aws ec2 describe-instances --instance-ids <instance>',
      always: true,
      run: async (ctx, dep) => {
        const id = String(dep.details.instanceId)
        await ctx.run('aws', ['ec2', 'wait', 'instance-running', '--instance-ids', id, '--region', r.region], {timeoutMs: 15 * 60_000})
        const inst = (await describeInstance(ctx, r.region, id)).instance
        const ip = inst?.PublicIpAddress
        if (!ip) {
          throw new UserError(`Instance ${id} has no public IP address`, {
            code: 'no_public_ip',
            suggestion: 'Use a subnet that assigns public addresses (deploy.aws.subnetId), or reach it through a tunnel.',
          })
        }
        return {url: `http://${ip}:${r.port}`, details: {publicIp: ip}}
      },
    },
    {kind: 'health', id: 'health', title: 'Wait for /health (image pull and model download on first boot)', timeoutMs: opts.healthTimeoutMs, apiKey: opts.apiKey, always: true},
  ]
  return steps
}

async function launch(ctx: ProviderContext, r: Resolved, c: AwsConfig, groupId: string, tags: string): Promise<StepOutput> {
  const args = [
    'ec2',
    'run-instances',
    '--image-id',
    r.amiId,
    '--instance-type',
    r.instanceType,
    '--count',
    '1',
    '--security-group-ids',
    groupId,
    '--iam-instance-profile',
    `Name=${r.profileName}`,
    '--user-data',
    `file://${r.userDataPath}`,
    // IMDSv2 only; hop limit 2 so a container could reach it too (the server does not need it).
    '--metadata-options',
    'HttpTokens=required,HttpPutResponseHopLimit=2,HttpEndpoint=enabled',
    '--tag-specifications',
    `ResourceType=instance,Tags=[${tags}]`,
    '--client-token',
    r.clientToken,
    ...(c.keyName ? ['--key-name', c.keyName] : []),
    ...(c.subnetId ? ['--subnet-id', c.subnetId] : []),
    // /dev/sda1 is the root device of the Ubuntu DLAMI.
    ...(c.diskGb ? ['--block-device-mappings', JSON.stringify([{DeviceName: '/dev/sda1', Ebs: {VolumeSize: c.diskGb, VolumeType: 'gp3', DeleteOnTermination: true}}])] : []),
  ]
  // A new instance profile takes a few seconds to become usable by EC2.
  const retries = Number(process.env.JARVIS_AWS_PROFILE_RETRIES ?? 6)
  for (let attempt = 0; ; attempt++) {
    const res = await awsCall(ctx, r.region, args, /Invalid IAM Instance Profile|iamInstanceProfile/i)
    const id = parseJson<{Instances?: {InstanceId?: string}[]}>(res.stdout)?.Instances?.[0]?.InstanceId
    if (res.ok && id) return {details: {instanceId: id}, resources: [{kind: 'aws-instance', id}]}
    if (res.ok) throw new UserError('run-instances answered without an instance id', {code: 'external_command_failed'})
    if (attempt >= retries) throw new UserError(`EC2 does not accept instance profile ${r.profileName} yet: ${lastLine(res.output)}`, {code: 'external_command_failed', suggestion: 'Re-run the same deploy in a minute; it resumes here.'})
    await sleep(Number(process.env.JARVIS_AWS_RETRY_MS ?? 10_000), ctx.signal)
  }
}

interface Ec2Instance {
  InstanceId?: string
  InstanceType?: string
  PublicIpAddress?: string
  State?: {Name?: string}
}

async function describeInstance(ctx: ProviderContext, region: string, id: string): Promise<{instance?: Ec2Instance; notFound: boolean; error?: string}> {
  const r = await ctx.run('aws', awsArgs(region, ['ec2', 'describe-instances', '--instance-ids', id]), {allowFailure: true, timeoutMs: 60_000})
  if (r.exitCode !== 0) {
    const out = r.stderr || r.stdout
    return {notFound: /InvalidInstanceID\.NotFound/.test(out), error: lastLine(out)}
  }
  const inst = parseJson<{Reservations?: {Instances?: Ec2Instance[]}[]}>(r.stdout)?.Reservations?.[0]?.Instances?.[0]
  return {instance: inst, notFound: !inst}
}

async function status(ctx: ProviderContext, dep: Deployment): Promise<ProviderStatus> {
  const {region, instanceId, port} = dep.details as {region?: string; instanceId?: string; port?: number}
  if (!region || !instanceId) return {state: 'missing', summary: 'no instance recorded'}
  let d
  try {
    d = await describeInstance(ctx, region, instanceId)
  } catch (error) {
    return {state: 'unknown', summary: (error as Error).message}
  }
  if (d.error && !d.notFound) return {state: 'error', summary: d.error}
  if (!d.instance) return {state: 'missing', summary: `instance ${instanceId} not found in ${region}`}
  const s = d.instance.State?.Name ?? 'unknown'
  const url = d.instance.PublicIpAddress ? `http://${d.instance.PublicIpAddress}:${port ?? DEFAULT_PORT}` : undefined
  const summary = `${instanceId} ${s} (${d.instance.InstanceType ?? ''}, ${region})`.replace(' ,', ',')
  const details = {instanceId, state: s, region, publicIp: d.instance.PublicIpAddress}
  const map: Record<string, ProviderStatus['state']> = {pending: 'deploying', running: 'running', stopping: 'stopped', stopped: 'stopped', 'shutting-down': 'stopped', terminated: 'missing'}
  return {state: map[s] ?? 'unknown', summary, url, details}
}

async function planDestroy(_ctx: ProviderContext, dep: Deployment): Promise<DestroyPlan> {
  const d = dep.details as {region?: string; instanceId?: string; securityGroupId?: string; roleName?: string; profileName?: string; secretName?: string}
  const has = (kind: string) => dep.resources.filter((x) => x.kind === kind).map((x) => x.id)
  const steps: Step[] = []
  const warnings: string[] = []
  if (!d.region) {
    warnings.push('the deployment record has no region: nothing can be removed safely')
    return {provider: 'aws', name: dep.name, steps, warnings}
  }
  const region = d.region
  const cmd = (id: string, title: string, args: string[], okIfOutputMatches: string, timeoutMs?: number): CommandStep => ({kind: 'command', id, title, cmd: 'aws', args: awsArgs(region, args), okIfOutputMatches, timeoutMs})
  const instances = has('aws-instance')
  if (instances.length > 0) {
    steps.push(
      cmd('terminate', `Terminate ${instances.join(', ')}`, ['ec2', 'terminate-instances', '--instance-ids', ...instances], 'InvalidInstanceID\\.NotFound'),
      {kind: 'command', id: 'wait-terminated', title: 'Wait until terminated (the security group is in use until then)', cmd: 'aws', args: ['ec2', 'wait', 'instance-terminated', '--instance-ids', ...instances, '--region', region], okIfOutputMatches: 'InvalidInstanceID\\.NotFound', timeoutMs: 15 * 60_000},
    )
  }
  for (const sg of has('aws-security-group')) steps.push(cmd(`delete-sg-${sg}`, `Delete security group ${sg}`, ['ec2', 'delete-security-group', '--group-id', sg], 'InvalidGroup\\.NotFound'))
  const profiles = has('aws-instance-profile')
  const roles = has('aws-iam-role')
  for (const p of profiles) {
    for (const role of roles) steps.push(cmd(`profile-role-${p}`, `Take role ${role} out of instance profile ${p}`, ['iam', 'remove-role-from-instance-profile', '--instance-profile-name', p, '--role-name', role], 'NoSuchEntity'))
    steps.push(cmd(`delete-profile-${p}`, `Delete instance profile ${p}`, ['iam', 'delete-instance-profile', '--instance-profile-name', p], 'NoSuchEntity'))
  }
  for (const role of roles) {
    steps.push(
      cmd(`role-policy-${role}`, `Delete the inline policy of ${role}`, ['iam', 'delete-role-policy', '--role-name', role, '--policy-name', 'jarvis-gpu-server'], 'NoSuchEntity'),
      cmd(`delete-role-${role}`, `Delete IAM role ${role}`, ['iam', 'delete-role', '--role-name', role], 'NoSuchEntity'),
    )
  }
  for (const s of has('aws-secret')) steps.push(cmd(`delete-secret-${s}`, `Delete secret ${s} (no recovery window)`, ['secretsmanager', 'delete-secret', '--secret-id', s, '--force-delete-without-recovery'], 'ResourceNotFoundException'))
  return {provider: 'aws', name: dep.name, steps, warnings}
}

const provider: Provider = {
  name: 'aws',
  description: 'An EC2 GPU instance (g4dn/g5/g6) running the gpu-server container',
  tools: [TOOL],
  capabilities: {
    cpuOnly: 'the Deep Learning GPU AMI needs a GPU instance; use the local or ssh provider for CPU',
    scaleToZero: 'one instance runs (and is billed) until `jarvis destroy aws`',
    customUrl: 'the instance answers on its public IP; put a load balancer or DNS name in front yourself',
  },
  configSchema: awsConfigSchema,
  preflight,
  plan,
  apply: (ctx, p) => applyPlan(ctx, p),
  status,
  planDestroy,
  destroy: (ctx, dep, p) => applyDestroy(ctx, dep, p),
}

export default provider
