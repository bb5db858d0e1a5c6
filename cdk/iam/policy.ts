/**
 * IAM policy evaluation over a synthesized template, for the conformance check.
 *
 * The template's intrinsics are resolved to concrete ARNs in a fixed account and region, with
 * each resource's logical ID as its physical name: a table `TablesEvents1234` has the ARN
 * `arn:aws:dynamodb:us-east-1:123456789012:table/TablesEvents1234`. Requests and policies are
 * resolved the same way, so comparing them is comparing what AWS would compare.
 *
 * Evaluation follows the IAM policy evaluation logic for identity-based policies within one
 * account: a request is allowed when an `Allow` statement matches its action and resource and
 * no `Deny` does. Action and resource patterns take `*` and `?` (actions case-insensitively).
 * A statement with `NotAction`, `NotResource` or a `Condition` is not evaluated here: the
 * check reports it rather than guess.
 */

export const ACCOUNT = '123456789012';
export const REGION = 'us-east-1';
const PSEUDO: Record<string, string> = {
  'AWS::AccountId': ACCOUNT,
  'AWS::Region': REGION,
  'AWS::Partition': 'aws',
  'AWS::URLSuffix': 'amazonaws.com',
  'AWS::StackName': 'Orders-test',
};

type Json = Record<string, unknown>;
export interface TemplateJson {
  Resources: Record<string, { Type: string; Properties?: Json }>;
}

/** The ARN of a stream of a table (the timestamp is fixed: one stream per table). */
export const streamArn = (table: string) =>
  `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${table}/stream/1970-01-01T00:00:00.000`;
export const tableArn = (table: string) => `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${table}`;
export const busArn = (bus: string) =>
  bus.startsWith('arn:') ? bus : `arn:aws:events:${REGION}:${ACCOUNT}:event-bus/${bus}`;
export const queueArnOfUrl = (url: string) => `arn:aws:sqs:${REGION}:${ACCOUNT}:${url.split('/').pop()}`;

/** Resolves CloudFormation intrinsics in `value` to a string (see the module docs). */
export function resolve(template: TemplateJson, value: unknown): string {
  if (typeof value === 'string') return value;
  const v = value as Json;
  if (typeof v.Ref === 'string') return ref(template, v.Ref);
  if (Array.isArray(v['Fn::GetAtt'])) {
    const [logical, attribute] = v['Fn::GetAtt'] as [string, string];
    return getAtt(template, logical, attribute);
  }
  if (Array.isArray(v['Fn::Join'])) {
    const [separator, parts] = v['Fn::Join'] as [string, unknown[]];
    return parts.map((part) => resolve(template, part)).join(separator);
  }
  if (Array.isArray(v['Fn::Select'])) {
    const [index, list] = v['Fn::Select'] as [number, unknown];
    const items = Array.isArray(list) ? list.map((i) => resolve(template, i)) : resolveList(template, list);
    return items[Number(index)];
  }
  if (v['Fn::Sub'] !== undefined) {
    const text = Array.isArray(v['Fn::Sub']) ? (v['Fn::Sub'] as [string])[0] : (v['Fn::Sub'] as string);
    return text.replace(/\$\{([^}]+)\}/g, (_, name: string) => {
      const [logical, attribute] = name.split('.');
      return attribute ? getAtt(template, logical, attribute) : ref(template, logical);
    });
  }
  throw new Error(`cannot resolve ${JSON.stringify(value)}`);
}

function resolveList(template: TemplateJson, value: unknown): string[] {
  const v = value as Json;
  if (Array.isArray(v['Fn::Split'])) {
    const [separator, source] = v['Fn::Split'] as [string, unknown];
    return resolve(template, source).split(separator);
  }
  throw new Error(`cannot resolve the list ${JSON.stringify(value)}`);
}

function resource(template: TemplateJson, logical: string) {
  const found = template.Resources[logical];
  if (!found) throw new Error(`the template has no resource ${logical}`);
  return found;
}

function ref(template: TemplateJson, logical: string): string {
  if (PSEUDO[logical]) return PSEUDO[logical];
  const { Type } = resource(template, logical);
  switch (Type) {
    case 'AWS::SQS::Queue':
      return `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${logical}`;
    case 'AWS::Lambda::Alias': {
      // An alias's Ref is its ARN: the function's, qualified with the alias name.
      const props = resource(template, logical).Properties!;
      return `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${resolve(template, props.FunctionName)}:${props.Name}`;
    }
    default:
      // Tables, buses, log groups, roles, functions: the logical ID stands for the name.
      return logical;
  }
}

function getAtt(template: TemplateJson, logical: string, attribute: string): string {
  const { Type } = resource(template, logical);
  const key = `${Type}.${attribute}`;
  switch (key) {
    case 'AWS::DynamoDB::Table.Arn':
      return tableArn(logical);
    case 'AWS::DynamoDB::Table.StreamArn':
      return streamArn(logical);
    case 'AWS::Events::EventBus.Arn':
      return busArn(logical);
    case 'AWS::SQS::Queue.Arn':
      return `arn:aws:sqs:${REGION}:${ACCOUNT}:${logical}`;
    case 'AWS::Logs::LogGroup.Arn':
      // CloudWatch Logs gives a log group's ARN with a trailing `:*`.
      return `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:${logical}:*`;
    case 'AWS::IAM::Role.Arn':
      return `arn:aws:iam::${ACCOUNT}:role/${logical}`;
    case 'AWS::Lambda::Function.Arn':
      return `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${logical}`;
    default:
      throw new Error(`cannot resolve Fn::GetAtt ${logical}.${attribute} (${Type})`);
  }
}

/** IAM's wildcard match: `*` any run of characters, `?` any one. */
export function matches(pattern: string, value: string, ignoreCase = false): boolean {
  const escaped = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`, ignoreCase ? 'i' : '').test(value);
}

/** One statement of a policy, resolved. `source` names where it is, for the report. */
export interface Statement {
  source: string;
  effect: 'Allow' | 'Deny';
  actions: string[];
  resources: string[];
}

/** Reads a policy document's statements; refuses what this evaluator cannot judge. */
export function statementsOf(template: TemplateJson, source: string, document: unknown): Statement[] {
  const statements = [(document as Json).Statement].flat() as Json[];
  return statements.map((statement, i) => {
    for (const unsupported of ['NotAction', 'NotResource', 'Condition', 'NotPrincipal']) {
      if (statement[unsupported] !== undefined) {
        throw new Error(`${source} statement ${i} uses ${unsupported}, which the IAM check does not evaluate`);
      }
    }
    return {
      source: `${source}[${i}]`,
      effect: statement.Effect as 'Allow' | 'Deny',
      actions: [statement.Action].flat() as string[],
      resources: ([statement.Resource].flat() as unknown[]).map((r) => resolve(template, r)),
    };
  });
}

/**
 * Every statement that applies to a role: its inline `Policies`, the `AWS::IAM::Policy` and
 * `AWS::IAM::ManagedPolicy` resources attached to it. An AWS-managed policy ARN cannot be read
 * offline, so it is refused.
 */
export function roleStatements(template: TemplateJson, roleLogicalId: string): Statement[] {
  const role = resource(template, roleLogicalId);
  const props = role.Properties ?? {};
  if (props.ManagedPolicyArns !== undefined) {
    const own = (props.ManagedPolicyArns as unknown[]).every((arn) => typeof (arn as Json).Ref === 'string');
    if (!own) throw new Error(`${roleLogicalId} has a managed policy the check cannot read`);
  }
  const out: Statement[] = [];
  for (const [i, policy] of ((props.Policies as Json[] | undefined) ?? []).entries()) {
    out.push(...statementsOf(template, `${roleLogicalId}.Policies[${i}]`, policy.PolicyDocument));
  }
  for (const [logical, r] of Object.entries(template.Resources)) {
    if (r.Type !== 'AWS::IAM::Policy' && r.Type !== 'AWS::IAM::ManagedPolicy') continue;
    const roles = ((r.Properties?.Roles as Json[] | undefined) ?? []).map((x) => x.Ref);
    if (roles.includes(roleLogicalId)) out.push(...statementsOf(template, logical, r.Properties?.PolicyDocument));
  }
  return out;
}

/** The statement that allows `action` on `resource`, or why none does. */
export function evaluate(
  statements: Statement[],
  action: string,
  resource: string,
): { allowed: true; by: string } | { allowed: false; why: string } {
  const applies = (s: Statement) =>
    s.actions.some((a) => matches(a, action, true)) && s.resources.some((r) => matches(r, resource));
  const deny = statements.find((s) => s.effect === 'Deny' && applies(s));
  if (deny) return { allowed: false, why: `denied by ${deny.source}` };
  const allow = statements.find((s) => s.effect === 'Allow' && applies(s));
  return allow ? { allowed: true, by: allow.source } : { allowed: false, why: 'no statement allows it' };
}
