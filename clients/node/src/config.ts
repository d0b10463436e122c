// Where the SDK finds the servers and its trust settings: the same sources, keys and
// order as cohortctl's (docs/config.md). Explicit options win over the environment
// (COHORT_SERVER, COHORT_SCHEDULER, COHORT_TLS_CA, COHORT_TLS_CERT, COHORT_TLS_KEY,
// COHORT_TLS_SERVER_NAME, COHORT_TOKEN, COHORT_TOKEN_FILE), which wins over the config
// file: $COHORT_CONFIG (which must exist), else ${XDG_CONFIG_HOME:-~/.config}/cohort/config
// (which may not), lines `key = value` with `#` comments.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';

/** The settings a connection is made from; every field is optional. */
export interface Settings {
  /** The broker, HOST:PORT (default 127.0.0.1:7070). */
  server?: string;
  /** The scheduler, HOST:PORT (default: the broker's address, where cohort-dev serves it). */
  scheduler?: string;
  /** PEM CA bundle file that signed the servers' certificates; turns TLS on. */
  tlsCa?: string;
  /** PEM client certificate chain file, for mutual TLS (with tlsKey). */
  tlsCert?: string;
  tlsKey?: string;
  /** Name to expect in the server's certificate if not the host. */
  tlsServerName?: string;
  /** Bearer token sent on every call (never logged). */
  token?: string;
  /** File holding the bearer token (whitespace around it dropped). */
  tokenFile?: string;
  /** HTTP/2 keepalive: ping after this long without traffic, even on a quiet stream, and
   * redial when a ping goes unanswered for min(keepaliveMs, 10 s); 1 s..1 h, default
   * 20 s (the C++ clients' --broker-keepalive). Given here only, not by env or file. */
  keepaliveMs?: number;
}

const KEYS: Record<string, SourcedKey> = {
  server: 'server', scheduler: 'scheduler', tls_ca: 'tlsCa', tls_cert: 'tlsCert', tls_key: 'tlsKey',
  tls_server_name: 'tlsServerName', token: 'token', token_file: 'tokenFile',
};
// Settings read from the environment and the config file (keepaliveMs is explicit only).
type SourcedKey = Exclude<keyof Settings, 'keepaliveMs'>;
const ENV: Record<SourcedKey, string> = {
  server: 'COHORT_SERVER', scheduler: 'COHORT_SCHEDULER', tlsCa: 'COHORT_TLS_CA', tlsCert: 'COHORT_TLS_CERT',
  tlsKey: 'COHORT_TLS_KEY', tlsServerName: 'COHORT_TLS_SERVER_NAME', token: 'COHORT_TOKEN', tokenFile: 'COHORT_TOKEN_FILE',
};
export const DEFAULT_SERVER = '127.0.0.1:7070';
const MAX_CONFIG_BYTES = 64 * 1024;

/** A setting that cannot be used: a malformed config file, an unreadable file it names. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** The config file's path: $COHORT_CONFIG, else ${XDG_CONFIG_HOME:-~/.config}/cohort/config. */
export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.COHORT_CONFIG) return env.COHORT_CONFIG;
  const base = env.XDG_CONFIG_HOME || path.join(env.HOME || os.homedir(), '.config');
  return path.join(base, 'cohort', 'config');
}

const PATH_KEYS = new Set(['tls_ca', 'tls_cert', 'tls_key', 'token_file']);

/**
 * Parses a config file's text, as cohortctl does (docs/config.md): path values
 * (tls_ca, tls_cert, tls_key, token_file) are made absolute, "~/" being `home` and a
 * relative path relative to the file's directory. Errors name the file and line (no `=`,
 * an unknown key, a key set twice, an empty value) and never quote a value.
 */
export function parseConfig(text: string, file: string, home = os.homedir()): Settings {
  const settings: Settings = {};
  const firstLine = new Map<string, number>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const where = `${file}:${i + 1}`;
    const eq = line.indexOf('=');
    if (eq < 0) throw new ConfigError(`${where}: expected \`key = value\``);
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    const field = KEYS[key];
    if (field === undefined) throw new ConfigError(`${where}: unknown key "${key.slice(0, 64)}": use ${Object.keys(KEYS).join(', ')}`);
    const first = firstLine.get(key);
    if (first !== undefined) throw new ConfigError(`${where}: "${key}" is set twice (first on line ${first})`);
    firstLine.set(key, i + 1);
    if (value === '') throw new ConfigError(`${where}: "${key}" has no value`);
    let resolved = value;
    if (PATH_KEYS.has(key)) {
      if (value.startsWith('~/') && home !== '') resolved = path.join(home, value.slice(2));
      else if (!path.isAbsolute(value)) resolved = path.normalize(path.join(path.dirname(file), value));
    }
    settings[field] = resolved;
  });
  return settings;
}

function readConfigFile(env: NodeJS.ProcessEnv): Settings {
  const file = configPath(env);
  let text: string;
  try {
    const stat = fs.statSync(file);
    if (stat.size > MAX_CONFIG_BYTES) throw new ConfigError(`${file}: over ${MAX_CONFIG_BYTES} bytes`);
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    // Only the default file may be absent; one named by $COHORT_CONFIG must exist.
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' && !env.COHORT_CONFIG) return {};
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(`config file ${file} cannot be read: ${(e as Error).message}`);
  }
  return parseConfig(text, file, env.HOME || os.homedir());
}

function defined(s: Settings): Settings {
  return Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined && v !== '')) as Settings;
}

/**
 * The settings in effect: `explicit` over the environment over the config file, key by
 * key, except that token and tokenFile are one setting (the highest source that gives
 * either decides; within it, token wins).
 */
export function resolveSettings(explicit: Settings = {}, env: NodeJS.ProcessEnv = process.env): Settings {
  const fromEnv: Settings = {};
  for (const [field, name] of Object.entries(ENV) as [SourcedKey, string][]) {
    if (env[name]) fromEnv[field] = env[name];
  }
  const layers = [defined(explicit), fromEnv, readConfigFile(env)];
  const result: Settings = {};
  for (const field of Object.keys(ENV) as SourcedKey[]) {
    if (field === 'token' || field === 'tokenFile') continue;
    const value = layers.find((l) => l[field] !== undefined)?.[field];
    if (value !== undefined) result[field] = value;
  }
  const tokenLayer = layers.find((l) => l.token !== undefined || l.tokenFile !== undefined);
  if (tokenLayer?.token !== undefined) result.token = tokenLayer.token;
  else if (tokenLayer?.tokenFile !== undefined) result.tokenFile = tokenLayer.tokenFile;
  if (explicit.keepaliveMs !== undefined) result.keepaliveMs = explicit.keepaliveMs;
  return result;
}

function readFile(file: string, what: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new ConfigError(`${what} file ${file} cannot be read: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

/** The bearer token the settings give, read from tokenFile if need be; undefined for none. */
export function tokenOf(settings: Settings): string | undefined {
  if (settings.token !== undefined) return settings.token;
  if (settings.tokenFile === undefined) return undefined;
  const token = readFile(settings.tokenFile, 'token').toString('utf8').trim();
  if (token === '') throw new ConfigError(`token file ${settings.tokenFile} is empty`);
  return token;
}

/** Ping interval when Settings.keepaliveMs is unset, and the longest wait for a ping's answer. */
export const DEFAULT_KEEPALIVE_MS = 20_000;
const KEEPALIVE_TIMEOUT_MS = 10_000;

/** What a grpc-js client is built from: credentials, options (keepalive, TLS name, token interceptor). */
export interface ChannelParts {
  credentials: grpc.ChannelCredentials;
  options: grpc.ClientOptions;
}

/**
 * Channel credentials and options for the settings: TLS when tlsCa is set (mutual with
 * tlsCert and tlsKey), plaintext otherwise; with a token, every call carries
 * `authorization: Bearer <token>` (as cohortctl, also over plaintext: use TLS off
 * loopback). Every channel pings as Settings.keepaliveMs says. Unreadable files, a
 * certificate without its key and a keepaliveMs out of range are ConfigError.
 */
export function channelParts(settings: Settings): ChannelParts {
  if ((settings.tlsCert === undefined) !== (settings.tlsKey === undefined)) {
    throw new ConfigError('tls_cert and tls_key go together');
  }
  if (settings.tlsCert !== undefined && settings.tlsCa === undefined) throw new ConfigError('tls_cert needs tls_ca');
  const keepaliveMs = settings.keepaliveMs ?? DEFAULT_KEEPALIVE_MS;
  if (!Number.isInteger(keepaliveMs) || keepaliveMs < 1_000 || keepaliveMs > 3_600_000) {
    throw new ConfigError(`keepaliveMs must be an integer in 1000..3600000, got ${String(keepaliveMs).slice(0, 32)}`);
  }
  const options: grpc.ClientOptions = {
    'grpc.keepalive_time_ms': keepaliveMs,
    'grpc.keepalive_timeout_ms': Math.min(keepaliveMs, KEEPALIVE_TIMEOUT_MS),
    'grpc.keepalive_permit_without_calls': 1,
  };
  let credentials = grpc.credentials.createInsecure();
  if (settings.tlsCa !== undefined) {
    credentials = grpc.credentials.createSsl(readFile(settings.tlsCa, 'tls_ca'),
      settings.tlsKey !== undefined ? readFile(settings.tlsKey, 'tls_key') : null,
      settings.tlsCert !== undefined ? readFile(settings.tlsCert, 'tls_cert') : null);
    if (settings.tlsServerName !== undefined) options['grpc.ssl_target_name_override'] = settings.tlsServerName;
  }
  const token = tokenOf(settings);
  if (token !== undefined) {
    const header = `Bearer ${token}`;
    options.interceptors = [(callOptions, next) => new grpc.InterceptingCall(next(callOptions), {
      start(metadata, listener, nextStart) {
        metadata.set('authorization', header);
        nextStart(metadata, listener);
      },
    })];
  }
  return { credentials, options };
}
