/**
 * From a request on the wire to the IAM authorisations it needs, per AWS's Service
 * Authorization Reference (SAR): "Actions, resources, and condition keys for Amazon DynamoDB",
 * "... for Amazon EventBridge", "... for Amazon SQS".
 *
 * A recorded request names its resources the way the code does: a table by name, an index by
 * table and name, a bus by name or ARN. The names are kept symbolic here (`Named`); the
 * evaluator turns them into the ARNs of the synthesized template.
 */

/** A request as `tests/support/recorder.rs` writes it. */
export interface RecordedCall {
  principal: string;
  /** The wire operation, e.g. `DynamoDB_20120810.TransactWriteItems`. */
  target: string;
  /** The resource names the principal was configured with: variable → name. */
  names: Record<string, string>;
  status: number;
  body: unknown;
}

/** A resource a request names, before it is resolved against a template. */
export type Named =
  | { kind: 'table'; name: string }
  | { kind: 'index'; table: string; index: string }
  | { kind: 'stream'; arn: string }
  | { kind: 'bus'; name: string }
  | { kind: 'queue'; url: string }
  /** Actions without a resource type (SAR: no resource types), authorised on `*`. */
  | { kind: 'any' };

/** One authorisation a request needs. `call` says where in the request it comes from. */
export interface Need {
  call: string;
  action: string;
  resource: Named;
}

type Json = Record<string, unknown>;

const obj = (value: unknown, what: string): Json => {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new Error(`${what}: expected an object, got ${JSON.stringify(value)}`);
  }
  return value as Json;
};
const str = (value: unknown, what: string): string => {
  if (typeof value !== 'string' || value === '') throw new Error(`${what}: expected a name, got ${JSON.stringify(value)}`);
  return value;
};

/** `TransactWriteItems` members → the action IAM authorises each one as (SAR, DynamoDB). */
const TRANSACT_WRITE_MEMBER: Record<string, string> = {
  Put: 'dynamodb:PutItem',
  Update: 'dynamodb:UpdateItem',
  Delete: 'dynamodb:DeleteItem',
  ConditionCheck: 'dynamodb:ConditionCheckItem',
};

/** DynamoDB operations authorised as the action of the same name on the request's `TableName`. */
const ON_TABLE = new Set([
  'GetItem', 'PutItem', 'UpdateItem', 'DeleteItem',
  'CreateTable', 'DescribeTable', 'UpdateTable', 'DeleteTable',
  'DescribeTimeToLive', 'UpdateTimeToLive', 'DescribeContinuousBackups', 'UpdateContinuousBackups',
]);

/** Streams reads authorised on the request's `StreamArn`. */
const ON_STREAM = new Set(['DescribeStream', 'GetShardIterator', 'GetRecords']);

/**
 * Every authorisation `call` needs. Throws on an operation this table does not know: a new
 * AWS call must be mapped here (and get a row in docs/aws-behaviours.md) before it passes.
 */
export function needsOf(call: RecordedCall): Need[] {
  const [service, operation] = call.target.split('.');
  const body = obj(call.body, `${call.target} body`);
  const need = (action: string, resource: Named, where = operation): Need => ({ call: where, action, resource });

  if (service.startsWith('DynamoDB_')) {
    if (ON_TABLE.has(operation)) {
      return [need(`dynamodb:${operation}`, { kind: 'table', name: str(body.TableName, operation) })];
    }
    switch (operation) {
      case 'Query':
      case 'Scan': {
        const table = str(body.TableName, operation);
        // A read of an index is authorised on the index's ARN, not the table's.
        const resource: Named = typeof body.IndexName === 'string'
          ? { kind: 'index', table, index: body.IndexName }
          : { kind: 'table', name: table };
        return [need(`dynamodb:${operation}`, resource)];
      }
      case 'BatchGetItem':
      case 'BatchWriteItem':
        // Authorised per table named in RequestItems.
        return Object.keys(obj(body.RequestItems, operation)).map((name) =>
          need(`dynamodb:${operation}`, { kind: 'table', name }));
      case 'TransactWriteItems':
        return (body.TransactItems as unknown[]).map((item, i) => {
          const [member, value] = Object.entries(obj(item, `${operation}[${i}]`))[0];
          const action = TRANSACT_WRITE_MEMBER[member];
          if (!action) throw new Error(`TransactWriteItems member ${member} has no known IAM action`);
          return need(action, { kind: 'table', name: str(obj(value, member).TableName, member) },
            `${operation}.${member}`);
        });
      case 'TransactGetItems':
        return (body.TransactItems as unknown[]).map((item) =>
          need('dynamodb:GetItem', { kind: 'table', name: str(obj(obj(item, operation).Get, 'Get').TableName, 'Get') },
            `${operation}.Get`));
      case 'ListTables':
        return [need('dynamodb:ListTables', { kind: 'any' })];
    }
  }
  if (service.startsWith('DynamoDBStreams_')) {
    if (ON_STREAM.has(operation)) {
      return [need(`dynamodb:${operation}`, { kind: 'stream', arn: str(body.StreamArn, operation) })];
    }
    if (operation === 'ListStreams') return [need('dynamodb:ListStreams', { kind: 'any' })];
  }
  if (service === 'AWSEvents' && operation === 'PutEvents') {
    // Authorised per entry's bus; an entry without one goes to the account's default bus.
    return (body.Entries as Json[]).map((entry) =>
      need('events:PutEvents', { kind: 'bus', name: (entry.EventBusName as string | undefined) ?? 'default' }));
  }
  if (service === 'AmazonSQS' && operation === 'SendMessage') {
    return [need('sqs:SendMessage', { kind: 'queue', url: str(body.QueueUrl, operation) })];
  }
  throw new Error(`no IAM mapping for ${call.target}: add it to cdk/iam/calls.ts and docs/aws-behaviours.md`);
}
