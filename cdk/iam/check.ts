/**
 * The IAM conformance check (DESIGN §8): what each principal is allowed to do, against what
 * its code really calls.
 *
 * Inputs: the requests the end-to-end tests recorded per principal (`tests/iam_conformance.rs`
 * through `tests/support/recorder.rs`), and the stack as `cdk synth` makes it. For each
 * principal (the four functions' roles, and the operator's managed policy):
 *
 * 1. every recorded request is mapped to the IAM actions and resources it needs
 *    (`calls.ts`), its names resolved to the template's ARNs through the variable that
 *    configured them (`EVENTS_TABLE` of `command-api` is the template's `EVENTS_TABLE` of
 *    that function, and so on);
 * 2. the calls AWS makes on a function's behalf are added from the template itself: the event
 *    source mappings' stream reads and failure destination, the log group's writes, X-Ray;
 * 3. each need is evaluated against the role's policies: one that would be denied is a finding;
 * 4. each granted (action, resource) that no need uses is a finding too (least privilege,
 *    both ways), unless it is in `UNUSED_BUT_NEEDED` with its reason.
 *
 * Run: `npx ts-node iam/check.ts [--calls DIR] [--context key=value ...]` (scripts/iam-check.sh).
 */
import * as fs from 'fs';
import * as path from 'path';
import { Need, Named, RecordedCall, needsOf } from './calls';
import {
  Statement, TemplateJson, busArn, evaluate, matches, queueArnOfUrl, resolve, roleStatements,
  statementsOf, streamArn, tableArn,
} from './policy';
import { OrdersStack } from '../lib/orders-stack';

/** The principals of the stack: the functions by name, and the operator. */
export const FUNCTIONS = {
  'command-api': 'commands',
  'query-api': 'queries',
  projector: 'projector',
  publisher: 'publisher',
} as const;
export const OPERATOR = 'operator';
export type Principal = keyof typeof FUNCTIONS | typeof OPERATOR;
export const PRINCIPALS: Principal[] = [...(Object.keys(FUNCTIONS) as (keyof typeof FUNCTIONS)[]), OPERATOR];

/**
 * Grants that no recorded call uses but that the code needs all the same, each with why it
 * cannot be recorded. Empty: every grant is exercised by tests/iam_conformance.rs.
 */
export const UNUSED_BUT_NEEDED: { principal: Principal; action: string; resource: RegExp; reason: string }[] = [];

/** One authorisation a principal needs, resolved. */
export interface Resolved {
  principal: Principal;
  call: string;
  action: string;
  resource: string;
  /** `recorded` (the code made the call) or the template feature AWS calls on its behalf. */
  origin: string;
}

export interface Finding {
  principal: Principal;
  kind: 'denied' | 'unused' | 'unmapped' | 'unrecorded';
  message: string;
}

export interface Verdict extends Resolved {
  count: number;
  allowedBy?: string;
}

export interface Report {
  verdicts: Verdict[];
  findings: Finding[];
  statements: Record<string, Statement[]>;
}

const LOG_STREAM = '2026/01/01/[$LATEST]0123456789abcdef';

/** Reads every `*.jsonl` recording in `dir`. */
export function readCalls(dir: string): RecordedCall[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl'))
    .flatMap((f) => fs.readFileSync(path.join(dir, f), 'utf8').split('\n').filter((l) => l.trim())
      .map((l) => JSON.parse(l) as RecordedCall));
}

/** The template's value of a principal's configuration variable, as an intrinsic. */
function variableOf(stack: OrdersStack, template: TemplateJson, principal: Principal, variable: string): unknown {
  if (principal === OPERATOR) {
    const token = stack.operatorNames[variable];
    return token === undefined ? undefined : stack.resolve(token);
  }
  const fn = stack.functions[FUNCTIONS[principal]];
  const props = template.Resources[stack.getLogicalId(fn.function.node.defaultChild as never)].Properties!;
  return ((props.Environment as { Variables: Record<string, unknown> }).Variables ?? {})[variable];
}

/**
 * The template's name for a name in a request: the variable that configured it (exactly, or
 * as its prefix, as a shadow table `<ORDERS_TABLE>-v2` is named), resolved.
 */
function templateName(
  stack: OrdersStack, template: TemplateJson, call: RecordedCall, name: string,
): string {
  const principal = call.principal as Principal;
  for (const [variable, local] of Object.entries(call.names)) {
    const suffix = name === local ? '' : name.startsWith(`${local}-`) ? name.slice(local.length) : undefined;
    if (suffix === undefined) continue;
    const value = variableOf(stack, template, principal, variable);
    if (value === undefined) {
      throw new Error(`${principal} was given ${variable}, which the stack does not give it`);
    }
    return resolve(template, value) + suffix;
  }
  throw new Error(`${call.target} names "${name}", which none of ${principal}'s variables configure`);
}

function resolveNamed(stack: OrdersStack, template: TemplateJson, call: RecordedCall, named: Named): string {
  const name = (n: string) => templateName(stack, template, call, n);
  switch (named.kind) {
    case 'table': return tableArn(name(named.name));
    case 'index': return `${tableArn(name(named.table))}/index/${named.index}`;
    case 'stream': return streamArn(name(named.arn.split(':table/')[1].split('/')[0]));
    case 'bus': return busArn(name(named.name));
    case 'queue': return queueArnOfUrl(name(named.url.split('/').pop()!));
    case 'any': return '*';
  }
}

/** What AWS calls on a function's behalf, from the function's and its mappings' settings. */
function platformNeeds(stack: OrdersStack, template: TemplateJson, principal: keyof typeof FUNCTIONS): Resolved[] {
  const fn = stack.functions[FUNCTIONS[principal]];
  const logical = stack.getLogicalId(fn.function.node.defaultChild as never);
  const props = template.Resources[logical].Properties!;
  const out: Resolved[] = [];
  const add = (origin: string, action: string, resource: string) =>
    out.push({ principal, call: origin, action, resource, origin });

  const logging = props.LoggingConfig as { LogGroup?: unknown } | undefined;
  if (logging?.LogGroup) {
    const group = resolve(template, logging.LogGroup);
    const arn = `arn:aws:logs:us-east-1:123456789012:log-group:${group}`;
    add('Lambda logging (LoggingConfig.LogGroup)', 'logs:CreateLogStream', `${arn}:*`);
    add('Lambda logging (LoggingConfig.LogGroup)', 'logs:PutLogEvents', `${arn}:log-stream:${LOG_STREAM}`);
  }
  if ((props.TracingConfig as { Mode?: string } | undefined)?.Mode === 'Active') {
    add('X-Ray active tracing', 'xray:PutTraceSegments', '*');
    add('X-Ray active tracing', 'xray:PutTelemetryRecords', '*');
  }
  for (const r of Object.values(template.Resources)) {
    if (r.Type !== 'AWS::Lambda::EventSourceMapping') continue;
    // A function name, name:qualifier or ARN (arn:aws:lambda:region:account:function:name[:qualifier]).
    const target = resolve(template, r.Properties!.FunctionName).split(':');
    if ((target[0] === 'arn' ? target[6] : target[0]) !== logical) continue;
    const origin = 'event source mapping';
    const source = resolve(template, r.Properties!.EventSourceArn);
    for (const action of ['DescribeStream', 'GetShardIterator', 'GetRecords']) add(origin, `dynamodb:${action}`, source);
    add(origin, 'dynamodb:ListStreams', '*');
    const onFailure = (r.Properties!.DestinationConfig as { OnFailure?: { Destination: unknown } } | undefined)?.OnFailure;
    if (onFailure) add(`${origin} (on-failure destination)`, 'sqs:SendMessage', resolve(template, onFailure.Destination));
  }
  return out;
}

function statementsFor(stack: OrdersStack, template: TemplateJson, principal: Principal): Statement[] {
  if (principal === OPERATOR) {
    const logical = stack.getLogicalId(stack.operatorPolicy.node.defaultChild as never);
    return statementsOf(template, logical, template.Resources[logical].Properties!.PolicyDocument);
  }
  const fn = stack.functions[FUNCTIONS[principal]];
  return roleStatements(template, stack.getLogicalId(fn.role.node.defaultChild as never));
}

/** Checks `calls` against `stack` (synthesized as `template`). */
export function check(stack: OrdersStack, template: TemplateJson, calls: RecordedCall[]): Report {
  const findings: Finding[] = [];
  const needs: Resolved[] = [];
  for (const call of calls) {
    const principal = call.principal as Principal;
    if (!PRINCIPALS.includes(principal)) {
      findings.push({ principal, kind: 'unmapped', message: `a recording from an unknown principal "${call.principal}"` });
      continue;
    }
    let mapped: Need[];
    try {
      mapped = needsOf(call);
      needs.push(...mapped.map((n) => ({
        principal, call: n.call, action: n.action, resource: resolveNamed(stack, template, call, n.resource), origin: 'recorded',
      })));
    } catch (error) {
      findings.push({ principal, kind: 'unmapped', message: (error as Error).message });
    }
  }
  for (const principal of PRINCIPALS) {
    if (!calls.some((c) => c.principal === principal)) {
      findings.push({ principal, kind: 'unrecorded', message: `no call of ${principal} was recorded: run tests/iam_conformance.rs first` });
    }
    if (principal !== OPERATOR) needs.push(...platformNeeds(stack, template, principal));
  }

  // One verdict per distinct (principal, call, action, resource), with how often it was made.
  const verdicts = new Map<string, Verdict>();
  for (const need of needs) {
    const key = [need.principal, need.call, need.action, need.resource].join('\u0000');
    const seen = verdicts.get(key);
    if (seen) seen.count++;
    else verdicts.set(key, { ...need, count: 1 });
  }
  const statements: Record<string, Statement[]> = {};
  for (const principal of PRINCIPALS) statements[principal] = statementsFor(stack, template, principal);
  for (const verdict of verdicts.values()) {
    const outcome = evaluate(statements[verdict.principal], verdict.action, verdict.resource);
    if (outcome.allowed) {
      verdict.allowedBy = outcome.by;
    } else {
      findings.push({
        principal: verdict.principal,
        kind: 'denied',
        message: `${verdict.call} needs ${verdict.action} on ${verdict.resource}: ${outcome.why}`,
      });
    }
  }

  // Least privilege the other way: every granted pair is used by some need.
  for (const principal of PRINCIPALS) {
    const mine = [...verdicts.values()].filter((v) => v.principal === principal);
    for (const statement of statements[principal].filter((s) => s.effect === 'Allow')) {
      for (const action of statement.actions) {
        for (const resource of statement.resources) {
          const used = mine.some((v) => matches(action, v.action, true) && matches(resource, v.resource));
          const excused = UNUSED_BUT_NEEDED.some((e) =>
            e.principal === principal && e.action === action && e.resource.test(resource));
          if (!used && !excused) {
            findings.push({
              principal,
              kind: 'unused',
              message: `${statement.source} grants ${action} on ${resource}, and no recorded or platform call uses it`,
            });
          }
        }
      }
    }
  }
  return { verdicts: [...verdicts.values()], findings, statements };
}

const short = (arn: string) => arn.replace(/^arn:aws:[a-z0-9-]+:[a-z0-9-]*:\d{12}:/, '');

/** The report as text: each principal's calls with the action each needs, then the findings. */
export function formatReport(report: Report, label: string): string {
  const lines: string[] = [`IAM conformance (${label})`];
  for (const principal of PRINCIPALS) {
    const verdicts = report.verdicts.filter((v) => v.principal === principal)
      .sort((a, b) => a.origin.localeCompare(b.origin) || a.call.localeCompare(b.call) || a.action.localeCompare(b.action));
    lines.push('', `${principal}: ${verdicts.filter((v) => v.origin === 'recorded').reduce((n, v) => n + v.count, 0)} recorded authorisations`);
    for (const v of verdicts) {
      const call = v.origin === 'recorded' ? `${v.call} ×${v.count}` : v.call;
      lines.push(`  ${call.padEnd(44)} ${v.action.padEnd(30)} ${short(v.resource).padEnd(56)} ${v.allowedBy ? 'allowed' : 'DENIED'}`);
    }
  }
  lines.push('');
  if (report.findings.length === 0) {
    lines.push('no findings: every call is allowed, and every grant is used');
  } else {
    lines.push(`${report.findings.length} finding(s):`);
    for (const f of report.findings) lines.push(`  ${f.kind.padEnd(10)} ${f.principal}: ${f.message}`);
  }
  return lines.join('\n');
}

function main(argv: string[]): number {
  // Loaded here, so the unit tests do not synthesize at import time.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { synth } = require('../test/synth') as typeof import('../test/synth');
  let dir = path.join(__dirname, '..', '..', 'target', 'aws-calls');
  const variants: Record<string, string>[] = [{}, { readModelTable: 'orders-read-model-v2' }];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--calls') dir = argv[++i];
    else throw new Error(`usage: check.ts [--calls DIR]; unknown argument ${argv[i]}`);
  }
  const calls = readCalls(dir);
  console.log(`${calls.length} recorded requests in ${dir}`);
  let failed = false;
  for (const context of variants) {
    const { stack, template } = synth(context);
    const label = Object.keys(context).length ? `-c ${Object.entries(context).map(([k, v]) => `${k}=${v}`).join(' ')}` : 'default context';
    const report = check(stack, template.toJSON() as TemplateJson, calls);
    console.log(formatReport(report, label));
    console.log('');
    failed ||= report.findings.length > 0;
  }
  return failed ? 1 : 0;
}

if (require.main === module) {
  try {
    process.exit(main(process.argv.slice(2)));
  } catch (error) {
    console.error(`iam-check: error: ${(error as Error).message}`);
    process.exit(2);
  }
}
