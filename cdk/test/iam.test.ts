import { RecordedCall, needsOf } from '../iam/calls';
import { Finding, check } from '../iam/check';
import { TemplateJson, evaluate, matches, tableArn } from '../iam/policy';
import { logicalId, synth } from './synth';

// The IAM conformance check's own tests: the mapping from requests to IAM actions, the policy
// evaluation, and that the check fails both ways. The real recordings are checked by
// scripts/iam-check.sh.

const call = (principal: string, target: string, body: unknown, names: Record<string, string> = {}): RecordedCall =>
  ({ principal, target, names, status: 200, body });

describe('mapping a request to what IAM authorises', () => {
  test('each TransactWriteItems member is its own action on its own table', () => {
    const needs = needsOf(call('p', 'DynamoDB_20120810.TransactWriteItems', {
      TransactItems: [
        { ConditionCheck: { TableName: 'events', Key: {} } },
        { Put: { TableName: 'events', Item: {} } },
        { Put: { TableName: 'idempotency', Item: {} } },
        { Update: { TableName: 'a', Key: {} } },
        { Delete: { TableName: 'b', Key: {} } },
      ],
    }));
    expect(needs.map((n) => `${n.call} ${n.action} ${JSON.stringify(n.resource)}`)).toEqual([
      'TransactWriteItems.ConditionCheck dynamodb:ConditionCheckItem {"kind":"table","name":"events"}',
      'TransactWriteItems.Put dynamodb:PutItem {"kind":"table","name":"events"}',
      'TransactWriteItems.Put dynamodb:PutItem {"kind":"table","name":"idempotency"}',
      'TransactWriteItems.Update dynamodb:UpdateItem {"kind":"table","name":"a"}',
      'TransactWriteItems.Delete dynamodb:DeleteItem {"kind":"table","name":"b"}',
    ]);
  });

  test('a Query or Scan of an index is authorised on the index', () => {
    const [query] = needsOf(call('p', 'DynamoDB_20120810.Query', { TableName: 'orders', IndexName: 'byStatus' }));
    expect(query.resource).toEqual({ kind: 'index', table: 'orders', index: 'byStatus' });
    const [scan] = needsOf(call('p', 'DynamoDB_20120810.Scan', { TableName: 'orders' }));
    expect(scan).toMatchObject({ action: 'dynamodb:Scan', resource: { kind: 'table', name: 'orders' } });
  });

  test('batches are authorised per table, PutEvents per entry bus', () => {
    const batch = needsOf(call('p', 'DynamoDB_20120810.BatchGetItem', { RequestItems: { a: {}, b: {} } }));
    expect(batch.map((n) => n.resource)).toEqual([{ kind: 'table', name: 'a' }, { kind: 'table', name: 'b' }]);
    const put = needsOf(call('p', 'AWSEvents.PutEvents', { Entries: [{ EventBusName: 'bus' }, {}] }));
    expect(put.map((n) => `${n.action} ${JSON.stringify(n.resource)}`)).toEqual([
      'events:PutEvents {"kind":"bus","name":"bus"}',
      'events:PutEvents {"kind":"bus","name":"default"}',
    ]);
  });

  test('an operation with no mapping is refused, not passed', () => {
    expect(() => needsOf(call('p', 'DynamoDB_20120810.ExecuteStatement', { Statement: 'SELECT' })))
      .toThrow('no IAM mapping for DynamoDB_20120810.ExecuteStatement');
  });
});

describe('policy evaluation', () => {
  test('IAM wildcards: * and ?, actions case-insensitive, resources not', () => {
    expect(matches('dynamodb:Get*', 'dynamodb:GetItem', true)).toBe(true);
    expect(matches('DynamoDB:getitem', 'dynamodb:GetItem', true)).toBe(true);
    expect(matches('arn:*:table/orders/index/*', 'arn:aws:table/orders/index/byStatus')).toBe(true);
    expect(matches('arn:*:table/orders/index/*', 'arn:aws:table/orders')).toBe(false);
    expect(matches('table/Orders', 'table/orders')).toBe(false);
    expect(matches('table/o?ders', 'table/orders')).toBe(true);
  });

  test('an explicit Deny wins over an Allow', () => {
    const statements = [
      { source: 'a', effect: 'Allow' as const, actions: ['dynamodb:*'], resources: ['*'] },
      { source: 'd', effect: 'Deny' as const, actions: ['dynamodb:DeleteItem'], resources: ['*'] },
    ];
    expect(evaluate(statements, 'dynamodb:GetItem', 'x')).toEqual({ allowed: true, by: 'a' });
    expect(evaluate(statements, 'dynamodb:DeleteItem', 'x')).toEqual({ allowed: false, why: 'denied by d' });
  });
});

describe('the check fails both ways', () => {
  const { stack, template } = synth();
  const events = logicalId(stack, stack.tables.events);
  const names = { EVENTS_TABLE: 'local-events', ORDERS_TABLE: 'local-orders', IDEMPOTENCY_TABLE: 'local-idem' };
  // A keyed confirm's transaction, less its idempotency Put (without a key, a confirm is a PutItem).
  const confirm = call('command-api', 'DynamoDB_20120810.TransactWriteItems', {
    TransactItems: [{ ConditionCheck: { TableName: 'local-events' } }, { Put: { TableName: 'local-events' } }],
  }, names);
  const of = (findings: Finding[], principal: string, kind: Finding['kind']) =>
    findings.filter((f) => f.principal === principal && f.kind === kind).map((f) => f.message);

  /** The template with `action` taken out of every statement of the command-api role. */
  const without = (action: string): TemplateJson => {
    const json = JSON.parse(JSON.stringify(template.toJSON())) as TemplateJson;
    const role = logicalId(stack, stack.functions.commands.role);
    for (const resource of Object.values(json.Resources)) {
      const props = resource.Properties as { Roles?: { Ref: string }[]; PolicyDocument?: { Statement: { Action: string | string[] }[] } };
      if (resource.Type !== 'AWS::IAM::Policy' || !props.Roles?.some((r) => r.Ref === role)) continue;
      for (const statement of props.PolicyDocument!.Statement) {
        statement.Action = [statement.Action].flat().filter((a) => a !== action);
      }
    }
    return json;
  };

  test('the stack allows a confirm: its ConditionCheck is granted', () => {
    const report = check(stack, template.toJSON() as TemplateJson, [confirm]);
    expect(of(report.findings, 'command-api', 'denied')).toEqual([]);
    expect(report.verdicts.find((v) => v.action === 'dynamodb:ConditionCheckItem')).toMatchObject({
      principal: 'command-api', resource: tableArn(events), allowedBy: expect.any(String),
    });
  });

  test('without dynamodb:ConditionCheckItem, the check names the function, the call, the action and the table', () => {
    const report = check(stack, without('dynamodb:ConditionCheckItem'), [confirm]);
    expect(of(report.findings, 'command-api', 'denied')).toEqual([
      `TransactWriteItems.ConditionCheck needs dynamodb:ConditionCheckItem on ${tableArn(events)}: no statement allows it`,
    ]);
  });

  test('a grant that no call uses is a finding', () => {
    const report = check(stack, template.toJSON() as TemplateJson, [confirm]);
    const unused = of(report.findings, 'command-api', 'unused');
    // The confirm used the events grants it needs; the idempotency table's and Query are unused.
    expect(unused.some((m) => m.includes('dynamodb:GetItem') && m.includes(logicalId(stack, stack.tables.idempotency)))).toBe(true);
    expect(unused.some((m) => m.includes('dynamodb:ConditionCheckItem'))).toBe(false);
    // The calls Lambda makes on a function's behalf (logs, X-Ray) count as used.
    expect(unused.some((m) => m.includes('logs:') || m.includes('xray:'))).toBe(false);
  });

  test('a principal with no recording, or a name no variable configures, is a finding', () => {
    const stray = call('command-api', 'DynamoDB_20120810.GetItem', { TableName: 'somebody-elses' }, names);
    const report = check(stack, template.toJSON() as TemplateJson, [stray]);
    expect(of(report.findings, 'command-api', 'unmapped')).toEqual([
      `DynamoDB_20120810.GetItem names "somebody-elses", which none of command-api's variables configure`,
    ]);
    expect(of(report.findings, 'publisher', 'unrecorded')).toHaveLength(1);
  });

  test('the operator policy is its own principal, with a shadow table under the read model\'s name', () => {
    const shadow = call('operator', 'DynamoDB_20120810.PutItem', { TableName: 'local-orders-v2' }, names);
    const report = check(stack, template.toJSON() as TemplateJson, [shadow]);
    expect(of(report.findings, 'operator', 'denied')).toEqual([]);
    const other = call('operator', 'DynamoDB_20120810.DeleteItem', { TableName: 'local-orders-v2' }, names);
    expect(of(check(stack, template.toJSON() as TemplateJson, [other]).findings, 'operator', 'denied')).toHaveLength(1);
  });
});
