import { CfnOutput, Duration, RemovalPolicy, Stack, StackProps, Tags } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { OrdersApi } from './api';
import { OrdersBus } from './bus';
import { FunctionName, OrdersConfig } from './config';
import { RustFunction } from './functions';
import { Monitoring } from './monitoring';
import { acknowledgeCursorKeyRotation } from './nag';
import { OperatorPolicy } from './operator';
import { StreamConsumer } from './streams';
import { OrdersTables } from './tables';

export interface OrdersStackProps extends StackProps {
  readonly config: OrdersConfig;
}

/**
 * The whole service (DESIGN §8): commands append events, the events stream feeds the read
 * model and the bus, queries read the read model.
 *
 *   HTTP API ─POST─▶ command-api ─▶ events table ─stream─┬▶ projector ─▶ orders table ◀─ query-api ◀─GET─ HTTP API
 *                                  (+ idempotency)       └▶ publisher ─▶ EventBridge bus ─▶ rules
 */
export class OrdersStack extends Stack {
  readonly tables: OrdersTables;
  /** The read model the query API and the projector use: the stack's own, or `readModelTable`. */
  readonly readModel: dynamodb.ITable;
  readonly functions: Record<'commands' | 'queries' | 'projector' | 'publisher', RustFunction>;
  readonly api: OrdersApi;
  readonly bus: OrdersBus;
  readonly monitoring: Monitoring;
  /** What `orders replay` and `orders tables create` need, to attach to an operator. */
  readonly operatorPolicy: iam.ManagedPolicy;
  /** The table variables the operator's commands read, as the functions are given them. */
  readonly operatorNames: Record<string, string>;

  constructor(scope: Construct, id: string, props: OrdersStackProps) {
    super(scope, id, props);
    const { config } = props;
    Tags.of(this).add('application', 'orders');
    Tags.of(this).add('environment', config.environment);
    Tags.of(this).add('managed-by', 'cdk');

    const tables = (this.tables = new OrdersTables(this, 'Tables'));
    const bus = (this.bus = new OrdersBus(this, 'Events', {
      source: config.eventSource,
      archiveRetentionDays: config.archiveRetentionDays,
    }));

    // The query API signs listing cursors with this key (HMAC-SHA256). CloudFormation resolves
    // it into the function's environment at deploy time, so the function needs no Secrets
    // Manager call at INIT (and no permission for one); the value is then visible to whoever
    // may read the function's configuration. Rotating it invalidates the cursors in flight.
    const cursorKey = new secretsmanager.Secret(this, 'CursorKey', {
      description: 'Orders query API: the key that signs listing cursors',
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
      removalPolicy: RemovalPolicy.DESTROY,
    });
    acknowledgeCursorKeyRotation(cursorKey);

    // A shadow table built by `orders replay --into` is not part of the stack: it is imported
    // by name, and the two functions that use the read model are pointed and granted at it.
    const readModel = (this.readModel = config.readModelTable
      ? dynamodb.Table.fromTableName(this, 'ReadModelOverride', config.readModelTable)
      : tables.orders);
    const tableNames = {
      EVENTS_TABLE: tables.events.tableName,
      ORDERS_TABLE: readModel.tableName,
      IDEMPOTENCY_TABLE: tables.idempotency.tableName,
    };
    const fn = (id: string, name: FunctionName, description: string, settings: {
      memorySize: number;
      timeout: Duration;
      environment: Record<string, string>;
      canary?: boolean;
    }) =>
      new RustFunction(this, id, {
        name,
        description,
        assetDir: config.assetDir,
        logRetentionDays: config.logRetentionDays,
        ...settings,
      });

    // Memory: a bootstrap's peak RSS is under 40 MB, so 128 MB would fit, but Lambda's CPU
    // share grows with memory. 256 MB halves the CPU-bound part of a cold start (TLS to
    // DynamoDB, the first request) for the same cost per request when the saved time is
    // billed. Timeouts: the APIs give up after 10 s, well before API Gateway's 30 s, so the
    // client gets our 503 rather than a gateway timeout; a stream batch gets 60 s, ample for
    // 100 records with the SDK's bounded retries, and a timed-out batch is simply retried.
    const api = { memorySize: 256, timeout: Duration.seconds(10), canary: config.canary };
    const stream = { memorySize: 256, timeout: Duration.seconds(60) };
    this.functions = {
      commands: fn('CommandApi', 'command-api', 'Orders command API (DESIGN §4)', {
        ...api,
        environment: tableNames,
      }),
      queries: fn('QueryApi', 'query-api', 'Orders query API (DESIGN §5)', {
        ...api,
        environment: { ...tableNames, CURSOR_KEY: cursorKey.secretValue.unsafeUnwrap() },
      }),
      projector: fn('Projector', 'projector', 'Folds order events into the read model (DESIGN §6)', {
        ...stream,
        environment: { EVENTS_TABLE: tables.events.tableName, ORDERS_TABLE: readModel.tableName },
      }),
      publisher: fn('Publisher', 'publisher', 'Publishes order events to EventBridge (DESIGN §6)', {
        ...stream,
        environment: { EVENT_BUS_NAME: bus.bus.eventBusName, EVENT_SOURCE: config.eventSource },
      }),
    };
    const { commands, queries, projector, publisher } = this.functions;

    // Least privilege: exactly the calls each function's code makes. The IAM conformance check
    // (scripts/iam-check.sh) records every request of the four functions in the end-to-end tests
    // and fails on a call these grants would deny, and on a grant no call uses.
    const allow = (target: RustFunction, actions: string[], resources: string[]) =>
      target.role.addToPolicy(new iam.PolicyStatement({ actions, resources }));
    const indexes = `${readModel.tableArn}/index/*`;
    // An append of one event without an Idempotency-Key is one conditional PutItem. Any other
    // is a TransactWriteItems: each new event a conditional Put, the idempotency record a Put,
    // and, on an existing order, a ConditionCheck that its version is still the one decided on.
    // IAM authorises each member as its own action (ConditionCheckItem for the check). The
    // history is a Query; a replayed key a consistent GetItem.
    allow(commands, ['dynamodb:ConditionCheckItem', 'dynamodb:PutItem', 'dynamodb:Query'], [tables.events.tableArn]);
    allow(commands, ['dynamodb:GetItem', 'dynamodb:PutItem'], [tables.idempotency.tableArn]);
    // A view is a GetItem; a listing a Query on one of the indexes; minVersion, atVersion and
    // the history fold the events (Query).
    allow(queries, ['dynamodb:GetItem'], [readModel.tableArn]);
    allow(queries, ['dynamodb:Query'], [indexes, tables.events.tableArn]);
    // Views are read (GetItem, BatchGetItem) and each written with a version condition
    // (PutItem); a gap is healed from the events (Query).
    allow(projector, ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:PutItem'], [readModel.tableArn]);
    allow(projector, ['dynamodb:Query'], [tables.events.tableArn]);
    allow(publisher, ['events:PutEvents'], [bus.bus.eventBusArn]);

    // The operator's `orders tables create` and `orders replay`, which run outside Lambda.
    this.operatorNames = tableNames;
    this.operatorPolicy = new OperatorPolicy(this, 'Operator', {
      events: tables.events,
      readModel,
      idempotency: tables.idempotency,
    }).policy;

    this.api = new OrdersApi(this, 'Api', { commands: commands.alias, queries: queries.alias, config });

    // The stream consumers' mappings also grant their roles the stream reads and the failure
    // queue's SendMessage. The projector takes batches as soon as they come (the read model
    // should be fresh); the publisher waits up to 1 s to fill them (subscribers are
    // asynchronous, and fuller batches mean fewer PutEvents calls).
    const projection = new StreamConsumer(this, 'ProjectorStream', {
      table: tables.events,
      target: projector.alias,
      batchSize: 100,
      maxBatchingWindow: Duration.seconds(0),
    });
    const publication = new StreamConsumer(this, 'PublisherStream', {
      table: tables.events,
      target: publisher.alias,
      batchSize: 100,
      maxBatchingWindow: Duration.seconds(1),
    });

    this.monitoring = new Monitoring(this, 'Monitoring', {
      api: this.api,
      functions: [commands, queries, projector, publisher],
      streamConsumers: [projector, publisher],
      deadLetterQueues: [
        { name: 'ProjectorFailures', queue: projection.failures },
        { name: 'PublisherFailures', queue: publication.failures },
        { name: 'OrderConfirmedDeadLetters', queue: bus.confirmedDeadLetters },
      ],
      alarmEmail: config.alarmEmail,
      environment: config.environment,
    });

    const output = (id: string, value: string, description: string) =>
      new CfnOutput(this, id, { value, description });
    output('ApiUrl', this.api.url, 'The HTTP API base URL, e.g. POST <url>orders');
    output('EventsTableName', tables.events.tableName, 'EVENTS_TABLE (retained on teardown)');
    output('OrdersTableName', readModel.tableName, 'ORDERS_TABLE, the read model the functions use');
    output('IdempotencyTableName', tables.idempotency.tableName, 'IDEMPOTENCY_TABLE');
    output('EventBusName', bus.bus.eventBusName, 'The EventBridge bus order events are published to');
    output('EventArchiveName', bus.archive.archiveName, 'The bus archive, for StartReplay');
    output('OrderConfirmedQueueUrl', bus.confirmedQueue.queueUrl, 'The example rule\'s queue');
    output('ProjectorFailuresQueueUrl', projection.failures.queueUrl, 'Records the projector gave up on');
    output('PublisherFailuresQueueUrl', publication.failures.queueUrl, 'Records the publisher gave up on');
    output('OperatorPolicyArn', this.operatorPolicy.managedPolicyArn,
      'Attach to whoever runs orders replay and orders tables create');
    output('AlarmTopicArn', this.monitoring.topic.topicArn, 'Subscribe to it for alarms');
  }
}
