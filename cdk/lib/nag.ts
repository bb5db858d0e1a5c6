import { Aspects, CfnResource, IAspect, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { IConstruct } from 'constructs';

/*
 * cdk-nag (the AwsSolutions pack, DESIGN §8) acknowledgments that are not written out next to
 * one construct: test/nag.test.ts fails on any finding that is not acknowledged, and on any
 * acknowledgment that no longer matches a finding.
 *
 * cdk-nag 3 reads acknowledgments from `Validations.of(construct).acknowledge({ id, reason })`,
 * on the resource or an ancestor. Rules with several findings per resource (IAM4, IAM5) are
 * acknowledged one finding at a time, as `RuleId[Finding]`, e.g.
 * `AwsSolutions-IAM5[Resource::<TablesOrdersACF7C9C0.Arn>/index/*]`.
 */

/**
 * IAM actions that have no resource type: `"Resource": "*"` is the only form IAM accepts for
 * them. X-Ray's are granted by Lambda's active tracing (lib/functions.ts), ListStreams by the
 * DynamoDB event source (lib/streams.ts); the DescribeStream/GetRecords/GetShardIterator that
 * read the records are on the events table's stream ARN.
 */
export const RESOURCELESS_ACTIONS: ReadonlySet<string> = new Set([
  'xray:PutTraceSegments',
  'xray:PutTelemetryRecords',
  'dynamodb:ListStreams',
]);

/**
 * Acknowledges AwsSolutions-IAM5 for the wildcards that least privilege cannot avoid in the IAM
 * policies under `scope` (a role with its default policy, a managed policy), worked out from
 * what those policies really grant when the app is synthesized, so they follow the grants in
 * lib/orders-stack.ts wherever those are made:
 * - `Resource::*`, only when every statement on `*` holds only RESOURCELESS_ACTIONS;
 * - `Resource::<table ARN>/index/*`, only when the same policy also grants that DynamoDB table
 *   itself: a Query on a global secondary index is authorized on `table/<T>/index/<name>`, and
 *   `index/*` reaches the indexes of that one table and nothing else.
 * Any other wildcard, e.g. a `*` resource for dynamodb:GetItem or an action like `dynamodb:*`,
 * stays a finding.
 */
export function acknowledgeGrantWildcards(scope: IConstruct): void {
  Aspects.of(scope).add(new GrantWildcards());
}

class GrantWildcards implements IAspect {
  visit(node: IConstruct): void {
    if (!(node instanceof iam.CfnPolicy || node instanceof iam.CfnManagedPolicy)) return;
    const stack = Stack.of(node);
    const statements = [stack.resolve(node.policyDocument)?.Statement ?? []]
      .flat()
      .filter((statement: { Effect?: string }) => statement.Effect === 'Allow')
      .map((statement: { Action?: unknown; Resource?: unknown }) => ({
        actions: [statement.Action ?? []].flat() as string[],
        resources: ([statement.Resource ?? []].flat() as unknown[]).map(flatten),
      }));
    const granted = new Set(statements.flatMap((statement) => statement.resources));

    const onlyResourceless = statements
      .filter((statement) => statement.resources.includes('*'))
      .every((statement) => statement.actions.every((action) => RESOURCELESS_ACTIONS.has(action)));
    if (granted.has('*') && onlyResourceless) {
      Validations.of(node).acknowledge({
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          `Only for ${[...RESOURCELESS_ACTIONS].join(', ')}, which have no resource type in IAM: ` +
          '"*" is the only resource they accept (X-Ray tracing, and the event source mapping finding the stream).',
      });
    }

    for (const resource of granted) {
      const table = resource.endsWith('/index/*') ? resource.slice(0, -'/index/*'.length) : undefined;
      if (table === undefined || table.includes('*') || !granted.has(table) || !isTableArn(stack, table)) continue;
      Validations.of(node).acknowledge({
        id: `AwsSolutions-IAM5[Resource::${resource}]`,
        reason:
          'The global secondary indexes of a table this role is granted on: a Query on an index is ' +
          'authorized on <table>/index/<name>, and index/* reaches only that table\'s indexes.',
      });
    }
  }
}

/**
 * Acknowledges AwsSolutions-IAM5 for one wildcard resource that `scope` (a policy, or a role)
 * grants, named as the grant names it (e.g. `${table.tableArn}-*`): the finding's id is worked
 * out from it, so it stays exact when the table's logical id or name changes.
 */
export function acknowledgeWildcardResource(scope: IConstruct, resource: string, reason: string): void {
  Validations.of(scope).acknowledge({
    id: `AwsSolutions-IAM5[Resource::${flatten(Stack.of(scope).resolve(resource))}]`,
    reason,
  });
}

/** A Resource as cdk-nag spells it in a finding: Ref as `<Id>`, Fn::GetAtt as `<Id.Attr>`, Fn::Join joined. */
function flatten(value: unknown): string {
  if (typeof value === 'string') return value.replace(/\$\{/g, '<').replace(/\}/g, '>');
  const node = value as Record<string, unknown>;
  if (Array.isArray(node['Fn::Join'])) {
    const [separator, parts] = node['Fn::Join'] as [string, unknown[]];
    return parts.map(flatten).join(separator);
  }
  if (Array.isArray(node['Fn::GetAtt'])) return `<${(node['Fn::GetAtt'] as string[]).join('.')}>`;
  if (typeof node.Ref === 'string') return `<${node.Ref}>`;
  return JSON.stringify(value);
}

/** `<Id.Arn>` of a table in this stack, or the ARN of a table imported by name. */
function isTableArn(stack: Stack, flat: string): boolean {
  if (/^arn:<AWS::Partition>:dynamodb:<AWS::Region>:<AWS::AccountId>:table\/[A-Za-z0-9_.-]+$/.test(flat)) return true;
  const getAtt = /^<([A-Za-z0-9]+)\.Arn>$/.exec(flat);
  return (
    getAtt !== null &&
    stack.node
      .findAll()
      .some(
        (child) =>
          CfnResource.isCfnResource(child) &&
          child.cfnResourceType === 'AWS::DynamoDB::Table' &&
          stack.resolve(child.logicalId) === getAtt[1],
      )
  );
}

/**
 * The query API's cursor-signing key (lib/orders-stack.ts) has no rotation schedule, on purpose.
 */
export function acknowledgeCursorKeyRotation(secret: secretsmanager.ISecret): void {
  Validations.of(secret).acknowledge({
    id: 'AwsSolutions-SMG4',
    reason:
      'CloudFormation resolves the key into query-api\'s environment at deploy time (a dynamic reference, ' +
      'so the function makes no Secrets Manager call), so a scheduled rotation would not reach the ' +
      'function before the next deployment; and a new key invalidates every listing cursor in flight. ' +
      'It is rotated deliberately, by a deployment that replaces it.',
  });
}
