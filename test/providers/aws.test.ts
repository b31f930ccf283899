// `jarvis deploy|status|destroy aws` against an aws CLI stand-in answering with the JSON
// shapes of the EC2, IAM, STS, SSM, Service Quotas and Secrets Manager references. The
// user-data is checked with `bash -n`; the secret travels in a 0600 file only.
import {execFileSync} from 'node:child_process'
import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {beforeAll, describe, expect, it} from 'vitest'
import {parseJson, runCli} from '../helpers/cli.js'
import {createStandIns, type Rule, type StandIns} from '../helpers/standins.js'
import {tempDir} from '../helpers/tmp.js'
import {startFakeServer, type FakeServer} from './fake-server.js'

const HF = 'hf_aws_test_token_77ab31'
const IMAGE = '123456789012.dkr.ecr.us-east-1.amazonaws.com/jarvis-gpu-server:1.0'
const AMI = 'ami-0abc1234def567890'
const SG = 'sg-0123456789abcdef0'
const INSTANCE = 'i-0fedcba9876543210'

function rules(overrides: Rule[] = []): Rule[] {
  return [
    ...overrides,
    {match: ['--version'], stdout: 'aws-cli/2.31.12 Python/3.13.7 Linux/6.8.0 exe/x86_64.ubuntu.24\n'},
    {match: ['sts', 'get-caller-identity'], stdout: {UserId: 'AIDAEXAMPLE', Account: '123456789012', Arn: 'arn:aws:iam::123456789012:user/dev'}},
    {match: ['ec2', 'describe-instance-type-offerings'], stdout: {InstanceTypeOfferings: [{InstanceType: 'g4dn.xlarge', LocationType: 'region', Location: 'us-east-1'}]}},
    {
      match: ['ec2', 'describe-instance-types'],
      stdout: {InstanceTypes: [{InstanceType: 'g4dn.xlarge', VCpuInfo: {DefaultVCpus: 4}, GpuInfo: {Gpus: [{Name: 'T4', Manufacturer: 'NVIDIA', Count: 1, MemoryInfo: {SizeInMiB: 16384}}]}}]},
    },
    {match: ['service-quotas', 'get-service-quota'], stdout: {Quota: {ServiceCode: 'ec2', QuotaCode: 'L-DB2E81BA', QuotaName: 'Running On-Demand G and VT instances', Value: 8.0}}},
    {match: ['ssm', 'get-parameter'], stdout: {Parameter: {Name: '/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id', Type: 'String', Value: AMI, Version: 42}}},
    {match: ['secretsmanager', 'create-secret'], stdout: {ARN: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:jarvis/jarvis/server-AbCdEf', Name: 'jarvis/jarvis/server'}},
    {match: ['secretsmanager', 'put-secret-value'], stdout: {ARN: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:jarvis/jarvis/server-AbCdEf', VersionId: 'v1', VersionStages: ['AWSCURRENT']}},
    {match: ['iam', 'create-role'], stdout: {Role: {RoleName: 'jarvis-gpu-server', Arn: 'arn:aws:iam::123456789012:role/jarvis-gpu-server'}}},
    {match: ['iam', 'put-role-policy'], stdout: ''},
    {match: ['iam', 'create-instance-profile'], stdout: {InstanceProfile: {InstanceProfileName: 'jarvis-gpu-server', Roles: []}}},
    {match: ['iam', 'add-role-to-instance-profile'], stdout: ''},
    {match: ['ec2', 'create-security-group'], stdout: {GroupId: SG}},
    {match: ['ec2', 'authorize-security-group-ingress'], stdout: {Return: true, SecurityGroupRules: [{SecurityGroupRuleId: 'sgr-1', GroupId: SG, IpProtocol: 'tcp'}]}},
    {match: ['ec2', 'run-instances'], stdout: {Instances: [{InstanceId: INSTANCE, InstanceType: 'g4dn.xlarge', State: {Code: 0, Name: 'pending'}}]}},
    {match: ['ec2', 'wait'], stdout: ''},
    {
      match: ['ec2', 'describe-instances'],
      stdout: {Reservations: [{Instances: [{InstanceId: INSTANCE, InstanceType: 'g4dn.xlarge', PublicIpAddress: '127.0.0.1', State: {Code: 16, Name: 'running'}}]}]},
    },
    {match: ['ec2', 'terminate-instances'], stdout: {TerminatingInstances: [{InstanceId: INSTANCE, CurrentState: {Name: 'shutting-down'}}]}},
    {match: ['ec2', 'delete-security-group'], stdout: {Return: true, GroupId: SG}},
    {match: ['iam'], stdout: ''},
    {match: ['secretsmanager', 'delete-secret'], stdout: {ARN: 'arn:...', Name: 'jarvis/jarvis/server', DeletionDate: '2026-11-22T10:00:00Z'}},
  ]
}

async function project(port: number | string, section = ''): Promise<string> {
  const dir = await tempDir('jarvis-aws-')
  writeFileSync(join(dir, 'jarvis.yaml'), `version: 1\ndeploy:\n  aws:\n    region: us-east-1\n    image: ${IMAGE}\n    allowCidr: 203.0.113.7/32\n    port: ${port}\n${section}`)
  return dir
}

/** argv without the --region/--output every call carries (asserted separately). */
const argvOf = (s: StandIns) => s.calls('aws').map((c) => c.argv.join(' ').replace(' --region us-east-1 --output json', '').replace(' --region us-east-1', ''))
const stateOf = (dir: string) => JSON.parse(readFileSync(join(dir, '.jarvis', 'state.json'), 'utf8'))

describe('deploy aws', () => {
  let server: FakeServer
  let port: string
  beforeAll(async () => {
    server = await startFakeServer()
    port = new URL(server.url).port
  })

  it('--dry-run: preflight reads identity, offering, quota and the DLAMI id; user-data is valid bash without secrets', async () => {
    const dir = await project(port)
    const s = await createStandIns({aws: rules()})
    const r = await runCli(['deploy', 'aws', '--dry-run', '--json'], {cwd: dir, env: s.env({HF_TOKEN: HF})})
    expect(r.exitCode, r.stderr).toBe(0)
    const plan = parseJson(r).plan
    expect(plan.ready).toBe(true)
    expect(argvOf(s)).toEqual([
      '--version',
      'sts get-caller-identity',
      'ec2 describe-instance-type-offerings --location-type region --filters Name=instance-type,Values=g4dn.xlarge',
      'ec2 describe-instance-types --instance-types g4dn.xlarge',
      'service-quotas get-service-quota --service-code ec2 --quota-code L-DB2E81BA',
      'ssm get-parameter --name /aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id',
    ])
    expect(plan.checks.find((c: {id: string}) => c.id === 'gpu-offered').detail).toBe('1× NVIDIA T4 16 GiB, 4 vCPU')
    expect(plan.settings.find((x: {key: string}) => x.key === 'ami').value).toBe(AMI)

    const userData = plan.files.find((f: {path: string}) => f.path.endsWith('user-data.sh'))
    const script = join(dir, 'user-data-check.sh')
    writeFileSync(script, userData.content)
    execFileSync('bash', ['-n', script]) // throws on a syntax error
    expect(userData.content).toContain(`IMAGE='${IMAGE}'`)
    expect(userData.content).toContain("SECRET_ID='jarvis/jarvis/server'")
    expect(userData.content).toContain('aws ecr get-login-password')
    expect(userData.content).not.toMatch(/\{\{\w+\}\}/)
    const policy = JSON.parse(plan.files.find((f: {path: string}) => f.path.endsWith('role-policy.json')).content)
    expect(policy.Statement[0]).toEqual({Sid: 'ReadServerSecret', Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:jarvis/jarvis/server-*'})
    expect(policy.Statement[1].Action).toContain('ecr:GetAuthorizationToken')

    const secretValue = plan.steps.find((x: {id: string}) => x.id === 'secret-value')
    expect(secretValue.command).toBe("aws secretsmanager put-secret-value --secret-id jarvis/jarvis/server --secret-string 'file://<0600 temp file server-secret.json>' --region us-east-1 --output json")
    expect(plan.steps.find((x: {id: string}) => x.id === 'instance').describe).toContain(`--image-id ${AMI} --instance-type g4dn.xlarge`)
    for (const f of plan.files) expect(f.content).not.toContain(HF)
    expect(r.stdout + r.stderr).not.toContain(HF)
  })

  it('applies: secret from a 0600 file, role, profile, security group to one CIDR, instance, health; status; destroy', async () => {
    const dir = await project(port, '    keyName: my-key\n')
    const s = await createStandIns({aws: rules([{match: ['ec2', 'run-instances'], times: 1, exitCode: 254, stderr: '\nAn error occurred (InvalidParameterValue) when calling the RunInstances operation: Value (jarvis-gpu-server) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name\n'}])})
    const r = await runCli(['deploy', 'aws', '--yes', '--json', '--health-timeout', '10'], {cwd: dir, env: s.env({HF_TOKEN: HF, JARVIS_AWS_RETRY_MS: '20'})})
    expect(r.exitCode, r.stderr).toBe(0)
    const apiKey = JSON.parse(readFileSync(join(dir, '.jarvis', 'secrets.json'), 'utf8'))['aws.apiKey']
    const deployDir = join(dir, '.jarvis', 'deploy', 'aws')
    const calls = argvOf(s).slice(6)
    const token = stateOf(dir).deployments.aws.details.clientToken
    expect(token).toMatch(/^jarvis-[0-9a-f]{24}$/)
    const tags = 'Tags=[{Key=Name,Value=jarvis-gpu-server},{Key=jarvis-deployment,Value=jarvis}]'
    const run = `ec2 run-instances --image-id ${AMI} --instance-type g4dn.xlarge --count 1 --security-group-ids ${SG} --iam-instance-profile Name=jarvis-gpu-server --user-data file://${deployDir}/user-data.sh --metadata-options HttpTokens=required,HttpPutResponseHopLimit=2,HttpEndpoint=enabled --tag-specifications ResourceType=instance,${tags} --client-token ${token} --key-name my-key`
    expect(calls[1]).toMatch(/^secretsmanager put-secret-value --secret-id jarvis\/jarvis\/server --secret-string file:\/\/\/tmp\/jarvis-secret-\w+\/server-secret\.json$/)
    expect(calls.filter((_, i) => i !== 1)).toEqual([
      'secretsmanager create-secret --name jarvis/jarvis/server --description jarvis gpu-server jarvis: API key and HF token',
      `iam create-role --role-name jarvis-gpu-server --assume-role-policy-document file://${deployDir}/trust-policy.json --description jarvis gpu-server jarvis`,
      `iam put-role-policy --role-name jarvis-gpu-server --policy-name jarvis-gpu-server --policy-document file://${deployDir}/role-policy.json`,
      'iam create-instance-profile --instance-profile-name jarvis-gpu-server',
      'iam add-role-to-instance-profile --instance-profile-name jarvis-gpu-server --role-name jarvis-gpu-server',
      `ec2 create-security-group --group-name jarvis-gpu-server --description jarvis gpu-server jarvis --tag-specifications ResourceType=security-group,${tags}`,
      `ec2 authorize-security-group-ingress --group-id ${SG} --protocol tcp --port ${port} --cidr 203.0.113.7/32`,
      `ec2 authorize-security-group-ingress --group-id ${SG} --protocol tcp --port 22 --cidr 203.0.113.7/32`,
      run, // refused once: the new instance profile was not visible to EC2 yet
      run,
      `ec2 wait instance-running --instance-ids ${INSTANCE}`,
      `ec2 describe-instances --instance-ids ${INSTANCE}`,
    ])
    // Every call names the region, and all but the waiter ask for JSON.
    for (const c of s.calls('aws').slice(1)) expect(c.argv.join(' ')).toContain('--region us-east-1')
    // The secret went in a 0600 file (gone afterwards), as JSON the user-data turns into an env file.
    const put = s.calls('aws').find((c) => c.argv[1] === 'put-secret-value')!
    const [secretPath, secretFile] = Object.entries(put.files)[0]
    expect(secretFile.mode).toBe(0o600)
    expect(JSON.parse(secretFile.content)).toEqual({JARVIS_GPU_API_KEY: apiKey, JARVIS_GPU_HF_TOKEN: HF})
    expect(() => readFileSync(secretPath)).toThrow()
    const launched = s.calls('aws').find((c) => c.argv[1] === 'run-instances')!
    for (const secret of [apiKey, HF]) {
      expect(s.argvText()).not.toContain(secret)
      expect(r.stdout + r.stderr).not.toContain(secret)
      for (const f of Object.values(launched.files)) expect(f.content).not.toContain(secret)
      expect(readFileSync(join(dir, '.jarvis', 'state.json'), 'utf8')).not.toContain(secret)
    }
    const dep = stateOf(dir).deployments.aws
    expect(dep).toMatchObject({status: 'ready', url: `http://127.0.0.1:${port}`, details: {instanceId: INSTANCE, securityGroupId: SG, publicIp: '127.0.0.1'}})
    expect(server.keysSeen).toContain(apiKey)

    const st = await runCli(['status', '--json'], {cwd: dir, env: s.env()})
    const row = parseJson(st).backends.find((b: {name: string}) => b.name === 'aws')
    expect(row.providerStatus).toMatchObject({state: 'running', summary: `${INSTANCE} running (g4dn.xlarge, us-east-1)`, url: `http://127.0.0.1:${port}`})

    s.clearCalls()
    const d = await runCli(['destroy', 'aws', '--yes', '--json'], {cwd: dir, env: s.env()})
    expect(d.exitCode, d.stderr).toBe(0)
    expect(argvOf(s)).toEqual([
      `ec2 terminate-instances --instance-ids ${INSTANCE}`,
      `ec2 wait instance-terminated --instance-ids ${INSTANCE}`,
      `ec2 delete-security-group --group-id ${SG}`,
      'iam remove-role-from-instance-profile --instance-profile-name jarvis-gpu-server --role-name jarvis-gpu-server',
      'iam delete-instance-profile --instance-profile-name jarvis-gpu-server',
      'iam delete-role-policy --role-name jarvis-gpu-server --policy-name jarvis-gpu-server',
      'iam delete-role --role-name jarvis-gpu-server',
      'secretsmanager delete-secret --secret-id jarvis/jarvis/server --force-delete-without-recovery',
    ])
    expect(stateOf(dir).deployments.aws).toBeUndefined()
  })

  it('no capacity at launch: what was made is recorded, the re-run reuses the client token, destroy cleans up', async () => {
    const dir = await project(port)
    const s = await createStandIns({
      aws: rules([{match: ['ec2', 'run-instances'], exitCode: 254, stderr: 'An error occurred (InsufficientInstanceCapacity) when calling the RunInstances operation: We currently do not have sufficient g4dn.xlarge capacity in the Availability Zone you requested (us-east-1a).\n'}]),
    })
    const r = await runCli(['deploy', 'aws', '--yes', '--json'], {cwd: dir, env: s.env()})
    expect(r.exitCode).toBe(1)
    expect(parseJson(r).error.message).toContain('InsufficientInstanceCapacity')
    const dep = stateOf(dir).deployments.aws
    expect(dep.status).toBe('failed')
    expect(dep.resources.map((x: {kind: string}) => x.kind)).toEqual(['aws-secret', 'aws-iam-role', 'aws-instance-profile', 'aws-security-group'])
    const token = dep.details.clientToken

    s.rules('aws', rules())
    s.clearCalls()
    const again = await runCli(['deploy', 'aws', '--yes', '--json', '--health-timeout', '10'], {cwd: dir, env: s.env()})
    expect(again.exitCode, again.stderr).toBe(0)
    const ran = argvOf(s).slice(6)
    expect(ran.filter((a) => /create-(secret|role|instance-profile|security-group)/.test(a))).toEqual([])
    expect(ran.find((a) => a.startsWith('ec2 run-instances'))).toContain(`--client-token ${token}`)

    s.rules('aws', rules([{match: ['ec2', 'delete-security-group'], exitCode: 254, stderr: "An error occurred (InvalidGroup.NotFound) when calling the DeleteSecurityGroup operation: The security group 'sg-0123456789abcdef0' does not exist\n"}]))
    const d = await runCli(['destroy', 'aws', '--yes', '--json'], {cwd: dir, env: s.env()})
    expect(d.exitCode, d.stderr).toBe(0)
    expect(stateOf(dir).deployments.aws).toBeUndefined()
  })

  it('preflight: missing allowCidr, no quota, not logged in and aws missing are ✗ rows with their fix', async () => {
    const noCidr = await tempDir('jarvis-aws-')
    writeFileSync(join(noCidr, 'jarvis.yaml'), `version: 1\ndeploy:\n  aws: {region: us-east-1, image: ${IMAGE}}\n`)
    const s = await createStandIns({aws: rules([{match: ['service-quotas'], stdout: {Quota: {QuotaCode: 'L-DB2E81BA', Value: 0.0}}}])})
    const r = await runCli(['deploy', 'aws', '--dry-run', '--json'], {cwd: noCidr, env: s.env()})
    const checks = parseJson(r).plan.checks
    expect(checks.find((c: {id: string}) => c.id === 'allow-cidr')).toMatchObject({ok: false, fix: expect.stringContaining('--allow-cidr')})
    expect(checks.find((c: {id: string}) => c.id === 'quota')).toMatchObject({
      ok: false,
      detail: '0 vCPU allowed, g4dn.xlarge needs 4',
      fix: 'Request an increase: aws service-quotas request-service-quota-increase --service-code ec2 --quota-code L-DB2E81BA --desired-value 4 --region us-east-1',
    })
    // The CIDR may come from the environment instead.
    const viaEnv = await runCli(['deploy', 'aws', '--dry-run', '--json'], {cwd: noCidr, env: s.env({JARVIS_AWS_ALLOW_CIDR: '198.51.100.0/24'})})
    expect(parseJson(viaEnv).plan.checks.find((c: {id: string}) => c.id === 'allow-cidr')).toMatchObject({ok: true, detail: '198.51.100.0/24'})
    // ... or from --allow-cidr, which wins over both.
    const viaFlag = await runCli(['deploy', 'aws', '--dry-run', '--json', '--allow-cidr', '203.0.113.7/32'], {cwd: noCidr, env: s.env({JARVIS_AWS_ALLOW_CIDR: '198.51.100.0/24'})})
    expect(parseJson(viaFlag).plan.checks.find((c: {id: string}) => c.id === 'allow-cidr')).toMatchObject({ok: true, detail: '203.0.113.7/32'})
    expect(parseJson(viaFlag).plan.settings).toContainEqual({key: 'allowCidr', value: '203.0.113.7/32', source: 'flag'})
    const wrongProvider = await runCli(['deploy', 'fly', '--dry-run', '--allow-cidr', '203.0.113.7/32'], {cwd: noCidr, env: s.env()})
    expect(wrongProvider.exitCode).toBe(2)

    const out = await createStandIns({aws: rules([{match: ['sts'], exitCode: 253, stderr: '\nUnable to locate credentials. You can configure credentials by running "aws configure".\n'}])})
    const n = await runCli(['deploy', 'aws', '--yes', '--json'], {cwd: noCidr, env: out.env()})
    expect(n.exitCode).toBe(1)
    expect(parseJson(n).error.message).toContain('Unable to locate credentials')
    expect(argvOf(out)).toEqual(['--version', 'sts get-caller-identity'])

    out.remove('aws')
    const m = await runCli(['deploy', 'aws', '--dry-run', '--json'], {cwd: noCidr, env: out.env()})
    expect(parseJson(m).plan.checks[0]).toMatchObject({id: 'tool:aws', ok: false, fix: expect.stringContaining('Install the AWS CLI v2')})
  })

  it('--gpu l4 picks g6.xlarge; a type the region does not offer is a ✗', async () => {
    const dir = await project(port)
    const s = await createStandIns({aws: rules([{match: ['ec2', 'describe-instance-type-offerings'], stdout: {InstanceTypeOfferings: []}}])})
    const r = await runCli(['deploy', 'aws', '--gpu', 'l4', '--dry-run', '--json'], {cwd: dir, env: s.env()})
    const plan = parseJson(r).plan
    expect(plan.settings.find((x: {key: string}) => x.key === 'instanceType')).toEqual({key: 'instanceType', value: 'g6.xlarge', source: 'flag'})
    expect(plan.checks.find((c: {id: string}) => c.id === 'gpu-offered')).toMatchObject({ok: false, detail: 'us-east-1 does not offer g6.xlarge'})
  })
})
