import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { bootstrapZip, ConfigError, readConfig } from '../lib/config';
import { synth } from './synth';

const config = (context: Record<string, unknown>) => readConfig((key) => context[key]);

describe('context', () => {
  test('defaults: dev, no CORS, no authorizer, no canary, 100/200 req/s, 30-day logs, 90-day archive', () => {
    const c = config({});
    expect(c).toMatchObject({
      environment: 'dev',
      corsAllowOrigins: [],
      jwt: undefined,
      canary: false,
      throttle: { rateLimit: 100, burstLimit: 200 },
      logRetentionDays: 30,
      archiveRetentionDays: 90,
      eventSource: 'orders',
      alarmEmail: undefined,
    });
    expect(c.assetDir).toBe(path.resolve(__dirname, '..', '..', 'target', 'lambda'));
  });

  test('values are trimmed and lists split on commas', () => {
    const c = config({ jwtIssuer: ' https://issuer.example.com/ ', jwtAudience: 'a, b,,c', canary: 'true' });
    expect(c.jwt).toEqual({ issuer: 'https://issuer.example.com/', audience: ['a', 'b', 'c'] });
    expect(c.canary).toBe(true);
  });

  test.each([
    [{ environment: 'Prod!' }, "context 'environment'"],
    [{ jwtIssuer: 'https://issuer.example.com/' }, "context 'jwtAudience': the JWT authorizer needs both"],
    [{ jwtAudience: 'web' }, "context 'jwtIssuer': the JWT authorizer needs both"],
    [{ jwtIssuer: 'http://issuer.example.com/', jwtAudience: 'web' }, 'expected an https:// URL'],
    [{ corsAllowOrigins: 'shop.example.com' }, "'shop.example.com' is not an origin"],
    [{ canary: 'yes' }, "context 'canary': expected true or false, got 'yes'"],
    [{ throttleRate: '0' }, "context 'throttleRate': expected a whole number from 1 to 10000, got '0'"],
    [{ throttleBurst: '1.5' }, "context 'throttleBurst'"],
    [{ logRetentionDays: '31' }, "context 'logRetentionDays': CloudWatch Logs accepts"],
    [{ archiveRetentionDays: 'forever' }, "context 'archiveRetentionDays'"],
    [{ eventSource: 'aws.orders' }, 'reserved for AWS services'],
    [{ alarmEmail: 'oncall' }, "'oncall' is not an e-mail address"],
    [{ environment: { nested: true } }, 'expected a string'],
  ])('%j is refused', (context, message) => {
    expect(() => config(context)).toThrow(ConfigError);
    expect(() => config(context)).toThrow(message);
  });

  test('a missing bootstrap.zip names the build command', () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'orders-cdk-empty-'));
    expect(() => bootstrapZip(empty, 'command-api')).toThrow(
      `${path.join(empty, 'command-api', 'bootstrap.zip')} is missing: build the functions first, ` +
        'from the repository root, with ./scripts/package-lambdas.sh',
    );
    expect(() => synth({ assetDir: empty })).toThrow(ConfigError);
  });
});
