// Host key verification with OpenSSH's StrictHostKeyChecking semantics:
//   ask (default): a known key passes; an unknown one is shown as a SHA256 fingerprint and
//                  pinned only if the user says yes on a terminal; without one it's refused
//                  with a message naming --accept-new.
//   yes:           only keys already in known_hosts pass.
//   accept-new:    unknown keys are pinned without asking (like OpenSSH's accept-new).
//   no:            unknown keys pass without being pinned; a changed key passes with the
//                  OpenSSH warning printed. Only for throwaway hosts.
// In every mode but `no` a changed key is refused, with OpenSSH's warning, fingerprints and
// the offending known_hosts line; a key marked @revoked is refused in every mode.
import {appendKnownHost, checkHostKey, fingerprint, hostKeyName, keyTypeOfBlob, readKnownHostsFile, type KnownHostsFile} from './known-hosts.js'
import {SshError} from './errors.js'

export const HOST_KEY_POLICIES = ['ask', 'yes', 'accept-new', 'no'] as const
export type HostKeyPolicy = (typeof HOST_KEY_POLICIES)[number]

/** StrictHostKeyChecking values from ~/.ssh/config, mapped to a policy. */
export function policyFromSshConfig(value: string | undefined): HostKeyPolicy | undefined {
  switch (value?.toLowerCase()) {
    case 'yes':
      return 'yes'
    case 'accept-new':
      return 'accept-new'
    case 'no':
    case 'off':
      return 'no'
    case 'ask':
      return 'ask'
    default:
      return undefined
  }
}

export interface UnknownHostKey {
  /** `[host]:port` or `host`, as looked up in known_hosts. */
  name: string
  keyType: string
  fingerprint: string
  /** Where the key would be pinned. */
  knownHostsPath: string
  /** Keys of other types already pinned for this host (OpenSSH mentions them too). */
  otherTypes: {keyType: string; fingerprint: string; file: string; line: number}[]
}

export interface HostKeyContext {
  host: string
  port: number
  policy: HostKeyPolicy
  /** Files read, in order; the first is where new keys are pinned. */
  knownHostsFiles: string[]
  hashKnownHosts?: boolean
  /** Present only when a terminal can answer. */
  confirm?: (q: UnknownHostKey) => Promise<boolean>
  info?: (message: string) => void
  warn?: (message: string) => void
}

/** Short name of a key type for messages: ED25519, ECDSA, RSA. */
export function keyTypeLabel(keyType: string): string {
  if (keyType.includes('ed25519')) return 'ED25519'
  if (keyType.includes('ecdsa')) return 'ECDSA'
  if (keyType.includes('rsa')) return 'RSA'
  if (keyType.includes('dss')) return 'DSA'
  return keyType
}

/** OpenSSH's warning text for a changed key (sshconnect.c, "REMOTE HOST IDENTIFICATION HAS CHANGED"). */
export function changedKeyWarning(o: {name: string; keyType: string; fingerprint: string; knownFingerprint: string; file: string; line: number}): string {
  const label = keyTypeLabel(o.keyType)
  return [
    '@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@',
    '@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @',
    '@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@',
    'IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!',
    'Someone could be eavesdropping on you right now (man-in-the-middle attack)!',
    'It is also possible that a host key has just been changed.',
    `The fingerprint for the ${label} key sent by the remote host ${o.name} is`,
    `${o.fingerprint}.`,
    `The key pinned for it is ${o.knownFingerprint}.`,
    `Offending ${label} key in ${o.file}:${o.line}`,
  ].join('\n')
}

export async function verifyHostKey(blob: Buffer, ctx: HostKeyContext): Promise<void> {
  const name = hostKeyName(ctx.host, ctx.port)
  const files: KnownHostsFile[] = await Promise.all(ctx.knownHostsFiles.map((f) => readKnownHostsFile(f)))
  const result = checkHostKey(files, name, blob)
  const keyType = keyTypeOfBlob(blob)
  const fp = fingerprint(blob)
  const pinPath = ctx.knownHostsFiles[0]
  switch (result.status) {
    case 'known':
      return
    case 'revoked':
      throw new SshError(`The ${keyTypeLabel(keyType)} host key of ${name} (${fp}) is marked as revoked in ${result.file}:${result.line}. Host key verification failed.`, {
        code: 'ssh_host_key_revoked',
        suggestion: 'Do not connect to this host until its owner issues a new key.',
      })
    case 'changed': {
      const warning = changedKeyWarning({name, keyType, fingerprint: fp, knownFingerprint: result.knownFingerprint, file: result.file, line: result.line})
      const fix = `If the host was really reinstalled, remove the old key with: ssh-keygen -f "${result.file}" -R "${name}"`
      if (ctx.policy === 'no') {
        ctx.warn?.(`${warning}\n--strict-host-key no: connecting anyway. ${fix}`)
        return
      }
      throw new SshError(`${warning}\nHost key verification failed.`, {code: 'ssh_host_key_changed', suggestion: fix})
    }
    case 'unknown':
      break
  }
  const question: UnknownHostKey = {name, keyType, fingerprint: fp, knownHostsPath: pinPath, otherTypes: result.otherTypes}
  const described = `The authenticity of host '${name}' can't be established.\n${keyTypeLabel(keyType)} key fingerprint is ${fp}.` +
    (result.otherTypes.length ? `\nThis host already has pinned keys of other types: ${result.otherTypes.map((o) => `${keyTypeLabel(o.keyType)} ${o.fingerprint} (${o.file}:${o.line})`).join(', ')}.` : '')
  const pin = async () => {
    await appendKnownHost(pinPath, name, blob, {hash: ctx.hashKnownHosts})
    ctx.info?.(`Permanently added '${name}' (${keyTypeLabel(keyType)}) to the list of known hosts (${pinPath}).`)
  }
  switch (ctx.policy) {
    case 'no':
      ctx.warn?.(`${described}\n--strict-host-key no: connecting without pinning the key.`)
      return
    case 'accept-new':
      await pin()
      return
    case 'yes':
      throw new SshError(`No ${keyTypeLabel(keyType)} host key is known for '${name}' and --strict-host-key is yes. Host key verification failed.\n${keyTypeLabel(keyType)} key fingerprint is ${fp}.`, {
        code: 'ssh_host_key_unknown',
        suggestion: `Check the fingerprint with the host's owner, then pin it with --accept-new (or add it to ${pinPath}).`,
      })
    case 'ask': {
      if (!ctx.confirm) {
        throw new SshError(`${described}\nNot pinned: there is no terminal to confirm it on.`, {
          code: 'ssh_host_key_unknown',
          suggestion: `Check the fingerprint with the host's owner, then re-run with --accept-new (or --strict-host-key accept-new) to pin it in ${pinPath}.`,
        })
      }
      if (await ctx.confirm(question)) {
        await pin()
        return
      }
      throw new SshError(`Host key for '${name}' not accepted. Host key verification failed.`, {code: 'ssh_host_key_rejected'})
    }
  }
}
