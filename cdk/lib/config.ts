import * as fs from 'fs';
import * as path from 'path';
import { Node } from 'constructs';

/** The four Lambda functions, named as their cargo binaries (DESIGN §1). */
export const FUNCTION_NAMES = ['command-api', 'query-api', 'projector', 'publisher'] as const;
export type FunctionName = (typeof FUNCTION_NAMES)[number];

/**
 * Everything a deployment can choose, read from CDK context (`-c key=value` or `cdk.json`).
 * Every value is checked here, so a typo fails `cdk synth` with a message naming the key
 * instead of deploying something else.
 */
export interface OrdersConfig {
  /** `environment`: the environment tag and part of resource descriptions, e.g. `dev`, `prod`. */
  readonly environment: string;
  /** `assetDir`: where `<function>/bootstrap.zip` are (cargo lambda's output directory). */
  readonly assetDir: string;
  /** `corsAllowOrigins`: comma-separated origins allowed by CORS; none means no CORS. */
  readonly corsAllowOrigins: string[];
  /** `jwtIssuer` + `jwtAudience` (comma-separated): a JWT authorizer on every route. */
  readonly jwt?: { issuer: string; audience: string[] };
  /** `canary=true`: API functions shift traffic 10 % for 5 minutes through CodeDeploy. */
  readonly canary: boolean;
  /** `throttleRate` (requests/s, default 100) and `throttleBurst` (default 200): the stage's limits. */
  readonly throttle: { rateLimit: number; burstLimit: number };
  /** `logRetentionDays` (default 30): function and access log retention. */
  readonly logRetentionDays: number;
  /** `archiveRetentionDays` (default 90): how long the bus archive keeps events for replay. */
  readonly archiveRetentionDays: number;
  /** `eventSource` (default `orders`): the `Source` of every bus entry (`EVENT_SOURCE`). */
  readonly eventSource: string;
  /** `alarmEmail`: subscribed to the alarm topic when given. */
  readonly alarmEmail?: string;
  /**
   * `readModelTable`: serve and project into this existing table instead of the stack's own
   * read model, e.g. a shadow table built by `orders replay --into` (README: switching the query
   * API to a shadow table). Unset switches back.
   */
  readonly readModelTable?: string;
}

/** A context value that cannot be used: `cdk synth` fails with this message. */
export class ConfigError extends Error {
  constructor(key: string, problem: string) {
    super(`context '${key}': ${problem}`);
    this.name = 'ConfigError';
  }
}

type Context = (key: string) => unknown;

/** Reads the configuration from a construct's context (the app's, in `bin/orders.ts`). */
export function configFromNode(node: Node): OrdersConfig {
  return readConfig((key) => node.tryGetContext(key));
}

export function readConfig(context: Context): OrdersConfig {
  const text = (key: string): string | undefined => {
    const value = context(key);
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      throw new ConfigError(key, `expected a string, got ${JSON.stringify(value)}`);
    }
    const trimmed = String(value).trim();
    return trimmed === '' ? undefined : trimmed;
  };
  const list = (key: string): string[] =>
    (text(key) ?? '')
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item !== '');
  const integer = (key: string, fallback: number, min: number, max: number): number => {
    const value = text(key);
    if (value === undefined) return fallback;
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < min || parsed > max) {
      throw new ConfigError(key, `expected a whole number from ${min} to ${max}, got '${value}'`);
    }
    return parsed;
  };
  const flag = (key: string): boolean => {
    const value = text(key);
    if (value === undefined || value === 'false') return false;
    if (value === 'true') return true;
    throw new ConfigError(key, `expected true or false, got '${value}'`);
  };

  const environment = text('environment') ?? 'dev';
  if (!/^[a-z][a-z0-9-]{0,31}$/.test(environment)) {
    throw new ConfigError('environment', `expected lower-case letters, digits and '-', got '${environment}'`);
  }

  const corsAllowOrigins = list('corsAllowOrigins');
  for (const origin of corsAllowOrigins) {
    if (origin !== '*' && !/^https?:\/\/[^/\s]+$/.test(origin)) {
      throw new ConfigError('corsAllowOrigins', `'${origin}' is not an origin like https://app.example.com`);
    }
  }

  const issuer = text('jwtIssuer');
  const audience = list('jwtAudience');
  if ((issuer === undefined) !== (audience.length === 0)) {
    throw new ConfigError(
      issuer === undefined ? 'jwtIssuer' : 'jwtAudience',
      'the JWT authorizer needs both jwtIssuer and jwtAudience',
    );
  }
  if (issuer !== undefined && !issuer.startsWith('https://')) {
    throw new ConfigError('jwtIssuer', `expected an https:// URL, got '${issuer}'`);
  }

  const alarmEmail = text('alarmEmail');
  if (alarmEmail !== undefined && !/^[^@\s]+@[^@\s]+$/.test(alarmEmail)) {
    throw new ConfigError('alarmEmail', `'${alarmEmail}' is not an e-mail address`);
  }

  const eventSource = text('eventSource') ?? 'orders';
  if (eventSource.startsWith('aws.')) {
    throw new ConfigError('eventSource', "sources starting with 'aws.' are reserved for AWS services");
  }

  const readModelTable = text('readModelTable');
  if (readModelTable !== undefined && !/^[A-Za-z0-9_.-]{3,255}$/.test(readModelTable)) {
    throw new ConfigError('readModelTable', `'${readModelTable}' is not a DynamoDB table name`);
  }

  const rateLimit = integer('throttleRate', 100, 1, 10_000);
  const burstLimit = integer('throttleBurst', 200, 1, 5_000);

  return {
    environment,
    assetDir: text('assetDir') ?? path.join(__dirname, '..', '..', 'target', 'lambda'),
    corsAllowOrigins,
    jwt: issuer === undefined ? undefined : { issuer, audience },
    canary: flag('canary'),
    throttle: { rateLimit, burstLimit },
    logRetentionDays: retention(integer('logRetentionDays', 30, 1, 3653)),
    archiveRetentionDays: integer('archiveRetentionDays', 90, 1, 3650),
    eventSource,
    alarmEmail,
    readModelTable,
  };
}

/** The retention periods CloudWatch Logs accepts, in days. */
const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];

function retention(days: number): number {
  if (!LOG_RETENTION_DAYS.includes(days)) {
    throw new ConfigError('logRetentionDays', `CloudWatch Logs accepts ${LOG_RETENTION_DAYS.join(', ')}; got ${days}`);
  }
  return days;
}

/**
 * The zip of one function's bootstrap. Missing zips fail synth with the command that builds
 * them, rather than later with an asset error.
 */
export function bootstrapZip(assetDir: string, name: FunctionName): string {
  const zip = path.resolve(assetDir, name, 'bootstrap.zip');
  if (!fs.existsSync(zip)) {
    throw new ConfigError(
      'assetDir',
      `${zip} is missing: build the functions first, from the repository root, with ` +
        './scripts/package-lambdas.sh (cargo lambda build --arm64 --output-format zip, release ' +
        'profile), or point -c assetDir=... at a directory holding <function>/bootstrap.zip',
    );
  }
  return zip;
}
