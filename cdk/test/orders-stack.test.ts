import { Match } from 'aws-cdk-lib/assertions';
import { TagManager } from 'aws-cdk-lib';
import { CfnResource } from 'aws-cdk-lib';
import { COMMAND_ROUTES, QUERY_ROUTES } from '../lib/api';
import { CONFIRMED_MAX_RECEIVE_COUNT } from '../lib/bus';
import { APP_METRICS, METRICS_NAMESPACE, PROJECTION_LAG_P99_LIMIT } from '../lib/monitoring';
import { StreamConsumer } from '../lib/streams';
import { grantsOf, logicalId, synth } from './synth';

// The numbered items of issue 6, in order. One synthesis serves the default-context checks.
const { stack, template } = synth();
const tables = {
  events: logicalId(stack, stack.tables.events),
  orders: logicalId(stack, stack.tables.orders),
  idempotency: logicalId(stack, stack.tables.idempotency),
};
const fns = stack.functions;

describe('1. tables', () => {
  test('there are exactly the three tables', () => {
    template.resourceCountIs('AWS::DynamoDB::Table', 3);
  });

  test('every table is on-demand, encrypted at rest with KMS, with point-in-time recovery', () => {
    for (const id of Object.values(tables)) {
      const table = template.toJSON().Resources[id];
      expect(table.Properties).toMatchObject({
        BillingMode: 'PAY_PER_REQUEST',
        // Enabled with no key of ours: KMS with the AWS-managed key, alias/aws/dynamodb.
        SSESpecification: { SSEEnabled: true },
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      });
      expect(table.Properties.ProvisionedThroughput).toBeUndefined();
    }
  });

  test('events: key (orderId S, version N), NEW_IMAGE stream, retained, deletion-protected', () => {
    const events = template.toJSON().Resources[tables.events];
    expect(events.Properties.KeySchema).toEqual([
      { AttributeName: 'orderId', KeyType: 'HASH' },
      { AttributeName: 'version', KeyType: 'RANGE' },
    ]);
    expect(events.Properties.AttributeDefinitions).toEqual([
      { AttributeName: 'orderId', AttributeType: 'S' },
      { AttributeName: 'version', AttributeType: 'N' },
    ]);
    expect(events.Properties.StreamSpecification).toEqual({ StreamViewType: 'NEW_IMAGE' });
    expect(events.Properties.DeletionProtectionEnabled).toBe(true);
    expect(events.DeletionPolicy).toBe('Retain');
    expect(events.UpdateReplacePolicy).toBe('Retain');
    expect(events.Properties.GlobalSecondaryIndexes).toBeUndefined();
  });

  test('orders: key orderId, GSIs byCustomer (customerId, createdAt) and byStatus (status, updatedAt)', () => {
    const orders = template.toJSON().Resources[tables.orders];
    expect(orders.Properties.KeySchema).toEqual([{ AttributeName: 'orderId', KeyType: 'HASH' }]);
    expect(orders.Properties.GlobalSecondaryIndexes).toEqual([
      {
        IndexName: 'byCustomer',
        KeySchema: [
          { AttributeName: 'customerId', KeyType: 'HASH' },
          { AttributeName: 'createdAt', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      },
      {
        IndexName: 'byStatus',
        KeySchema: [
          { AttributeName: 'status', KeyType: 'HASH' },
          { AttributeName: 'updatedAt', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      },
    ]);
    for (const name of ['orderId', 'customerId', 'createdAt', 'status', 'updatedAt']) {
      expect(orders.Properties.AttributeDefinitions).toContainEqual({ AttributeName: name, AttributeType: 'S' });
    }
    expect(orders.Properties.StreamSpecification).toBeUndefined();
    // Rebuildable with `orders replay`: it goes with the stack.
    expect(orders.DeletionPolicy).toBe('Delete');
  });

  test('idempotency: key idempotencyKey, TTL on expiresAt', () => {
    const idempotency = template.toJSON().Resources[tables.idempotency];
    expect(idempotency.Properties.KeySchema).toEqual([{ AttributeName: 'idempotencyKey', KeyType: 'HASH' }]);
    expect(idempotency.Properties.TimeToLiveSpecification).toEqual({ AttributeName: 'expiresAt', Enabled: true });
    expect(idempotency.DeletionPolicy).toBe('Delete');
  });
});

describe('2. functions', () => {
  const all = Object.values(fns);

  test('four arm64 provided.al2023 functions, each with its own bootstrap', () => {
    template.resourceCountIs('AWS::Lambda::Function', 4);
    template.allResourcesProperties('AWS::Lambda::Function', {
      Runtime: 'provided.al2023',
      Architectures: ['arm64'],
      Handler: 'bootstrap',
      Code: { S3Bucket: Match.anyValue(), S3Key: Match.stringLikeRegexp('\\.zip$') },
    });
  });

  test('memory and timeout: 256 MB; 10 s for the APIs, 60 s for the stream consumers', () => {
    const settings = (fn: (typeof all)[number]) => {
      const props = template.toJSON().Resources[logicalId(stack, fn.function)].Properties;
      return [props.MemorySize, props.Timeout];
    };
    expect(settings(fns.commands)).toEqual([256, 10]);
    expect(settings(fns.queries)).toEqual([256, 10]);
    expect(settings(fns.projector)).toEqual([256, 60]);
    expect(settings(fns.publisher)).toEqual([256, 60]);
  });

  test('env vars name the tables and the bus; the query API gets a generated cursor key', () => {
    const env = (fn: (typeof all)[number]) =>
      template.toJSON().Resources[logicalId(stack, fn.function)].Properties.Environment.Variables;
    const tableNames = {
      EVENTS_TABLE: { Ref: tables.events },
      ORDERS_TABLE: { Ref: tables.orders },
      IDEMPOTENCY_TABLE: { Ref: tables.idempotency },
    };
    expect(env(fns.commands)).toEqual(tableNames);
    const queries = env(fns.queries);
    expect(queries).toMatchObject(tableNames);
    // A dynamic reference, resolved by CloudFormation: the key never appears in the template.
    const cursorKey = JSON.stringify(queries.CURSOR_KEY);
    expect(cursorKey).toContain('{{resolve:secretsmanager:');
    template.hasResourceProperties('AWS::SecretsManager::Secret', {
      GenerateSecretString: { PasswordLength: 64, ExcludePunctuation: true },
    });
    expect(env(fns.projector)).toEqual({ EVENTS_TABLE: { Ref: tables.events }, ORDERS_TABLE: { Ref: tables.orders } });
    expect(env(fns.publisher)).toEqual({
      EVENT_BUS_NAME: { Ref: logicalId(stack, stack.bus.bus) },
      EVENT_SOURCE: 'orders',
    });
  });

  test('JSON logs into a log group of its own with a retention period', () => {
    for (const fn of all) {
      const props = template.toJSON().Resources[logicalId(stack, fn.function)].Properties;
      const group = logicalId(stack, fn.logGroup);
      expect(props.LoggingConfig).toEqual({
        LogFormat: 'JSON',
        ApplicationLogLevel: 'INFO',
        SystemLogLevel: 'WARN',
        LogGroup: { Ref: group },
      });
      expect(template.toJSON().Resources[group].Properties.RetentionInDays).toBe(30);
    }
  });

  test('X-Ray active tracing', () => {
    template.allResourcesProperties('AWS::Lambda::Function', { TracingConfig: { Mode: 'Active' } });
  });

  test('one role per function, assumed only by Lambda, with no managed policies', () => {
    const roles = all.map((fn) => logicalId(stack, fn.role));
    expect(new Set(roles).size).toBe(4);
    for (const fn of all) {
      const props = template.toJSON().Resources[logicalId(stack, fn.function)].Properties;
      expect(props.Role).toEqual({ 'Fn::GetAtt': [logicalId(stack, fn.role), 'Arn'] });
    }
    for (const role of roles) {
      const props = template.toJSON().Resources[role].Properties;
      expect(props.ManagedPolicyArns).toBeUndefined();
      expect(props.AssumeRolePolicyDocument.Statement).toEqual([
        { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' } },
      ]);
    }
  });

  // Which grants each role holds is not listed here by hand: the IAM conformance check
  // (scripts/iam-check.sh, cdk/iam/check.ts, test/iam.test.ts) derives them from the requests
  // the functions really make, and fails on a missing grant and on an unused one.
  const grants = (fn: (typeof all)[number]) => grantsOf(template, logicalId(stack, fn.role));

  test('no wildcard actions anywhere, and "*" resources only for actions that take no resource', () => {
    // X-Ray's and ListStreams' IAM actions have no resource types: "*" is the only form.
    const resourceless = new Set(['xray:PutTraceSegments', 'xray:PutTelemetryRecords', 'dynamodb:ListStreams']);
    for (const fn of all) {
      for (const grant of grants(fn)) {
        const [action, resource] = grant.split(' on ');
        expect(action).not.toContain('*');
        if (resource === '*') expect(resourceless).toContain(action);
        else expect(resource).not.toMatch(/^\*|:\*$/);
      }
    }
  });
});

describe('3. HTTP API', () => {
  const integrationOf = (routeKey: string): string => {
    const route = Object.values(template.findResources('AWS::ApiGatewayV2::Route')).find(
      (r) => r.Properties.RouteKey === routeKey,
    );
    expect(route).toBeDefined();
    const integrationId = (route!.Properties.Target['Fn::Join'][1] as unknown[])[1] as { Ref: string };
    const integration = template.toJSON().Resources[integrationId.Ref];
    return integration.Properties.IntegrationUri.Ref;
  };

  test('POST routes go to command-api, GET routes to query-api, both through the live alias', () => {
    template.resourceCountIs('AWS::ApiGatewayV2::Route', COMMAND_ROUTES.length + QUERY_ROUTES.length);
    for (const path of COMMAND_ROUTES) {
      expect(integrationOf(`POST ${path}`)).toBe(logicalId(stack, fns.commands.alias));
    }
    for (const path of QUERY_ROUTES) {
      expect(integrationOf(`GET ${path}`)).toBe(logicalId(stack, fns.queries.alias));
    }
    template.allResourcesProperties('AWS::ApiGatewayV2::Integration', {
      IntegrationType: 'AWS_PROXY',
      PayloadFormatVersion: '2.0',
    });
  });

  test('the $default stage is throttled and writes a JSON access log', () => {
    const stage = Object.values(template.findResources('AWS::ApiGatewayV2::Stage'))[0];
    expect(stage.Properties).toMatchObject({
      StageName: '$default',
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingRateLimit: 100, ThrottlingBurstLimit: 200 },
      AccessLogSettings: { DestinationArn: { 'Fn::GetAtt': [logicalId(stack, stack.api.accessLog), 'Arn'] } },
    });
    const format = JSON.parse(stage.Properties.AccessLogSettings.Format);
    expect(format).toMatchObject({ requestId: '$context.requestId', status: '$context.status', routeKey: '$context.routeKey' });
  });

  test('the access log keeps its entries for the log retention period', () => {
    expect(template.toJSON().Resources[logicalId(stack, stack.api.accessLog)].Properties.RetentionInDays).toBe(30);
  });

  test("API Gateway may invoke each function's live alias, from this API only", () => {
    const permissions = Object.values(template.findResources('AWS::Lambda::Permission'));
    // One per route: HttpLambdaIntegration scopes each to its route.
    expect(permissions).toHaveLength(COMMAND_ROUTES.length + QUERY_ROUTES.length);
    const aliases = [fns.commands, fns.queries].map((fn) => logicalId(stack, fn.alias));
    for (const permission of permissions) {
      expect(permission.Properties.Action).toBe('lambda:InvokeFunction');
      expect(permission.Properties.Principal).toBe('apigateway.amazonaws.com');
      expect(aliases).toContain(permission.Properties.FunctionName.Ref);
      expect(JSON.stringify(permission.Properties.SourceArn)).toContain(`"${logicalId(stack, stack.api.httpApi)}"`);
    }
  });

  test('throttling limits come from context', () => {
    const { template: t } = synth({ throttleRate: '25', throttleBurst: '50' });
    t.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      DefaultRouteSettings: { ThrottlingRateLimit: 25, ThrottlingBurstLimit: 50 },
    });
  });

  test('CORS is off by default, and configurable', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', { CorsConfiguration: Match.absent() });
    const { template: t } = synth({ corsAllowOrigins: 'https://shop.example.com, https://admin.example.com' });
    t.hasResourceProperties('AWS::ApiGatewayV2::Api', {
      CorsConfiguration: {
        AllowOrigins: ['https://shop.example.com', 'https://admin.example.com'],
        AllowMethods: ['GET', 'POST'],
        AllowHeaders: Match.arrayWith(['content-type', 'idempotency-key', 'if-match']),
        ExposeHeaders: Match.arrayWith(['etag', 'location']),
      },
    });
  });

  test('no authorizer by default; a JWT authorizer on every route from jwtIssuer and jwtAudience', () => {
    template.resourceCountIs('AWS::ApiGatewayV2::Authorizer', 0);
    template.allResourcesProperties('AWS::ApiGatewayV2::Route', { AuthorizationType: 'NONE' });

    const { stack: s, template: t } = synth({
      jwtIssuer: 'https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_example',
      jwtAudience: 'orders-web,orders-mobile',
    });
    t.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
      AuthorizerType: 'JWT',
      IdentitySource: ['$request.header.Authorization'],
      JwtConfiguration: {
        Issuer: 'https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_example',
        Audience: ['orders-web', 'orders-mobile'],
      },
    });
    const authorizer = Object.keys(t.findResources('AWS::ApiGatewayV2::Authorizer'))[0];
    t.allResourcesProperties('AWS::ApiGatewayV2::Route', {
      AuthorizationType: 'JWT',
      AuthorizerId: { Ref: authorizer },
    });
    expect(s.api.httpApi.defaultAuthorizer).toBeDefined();
  });
});

describe('4. event source mappings', () => {
  const mappings = template.findResources('AWS::Lambda::EventSourceMapping');
  const mappingOf = (fn: (typeof fns)['projector']) => {
    // The alias's name-qualified form: `<function name>:live`.
    const found = Object.values(mappings).filter((m) => {
      const name = JSON.stringify(m.Properties.FunctionName);
      return name.includes(`"${logicalId(stack, fn.alias)}"`) && name.includes(':live');
    });
    expect(found).toHaveLength(1);
    return found[0].Properties;
  };

  test('two, on the events stream, to the projector and publisher aliases', () => {
    expect(Object.keys(mappings)).toHaveLength(2);
    for (const fn of [fns.projector, fns.publisher]) {
      expect(mappingOf(fn).EventSourceArn).toEqual({ 'Fn::GetAtt': [tables.events, 'StreamArn'] });
    }
  });

  test.each([
    ['projector', 0],
    ['publisher', 1],
  ] as const)('%s: TRIM_HORIZON, batching, partial failures, bisect, bounded retries, failure queue, factor 1', (name, window) => {
    const props = mappingOf(fns[name]);
    const queue = logicalId(
      stack,
      stack.node.findChild(name === 'projector' ? 'ProjectorStream' : 'PublisherStream').node.findChild('Failures') as never,
    );
    expect(props).toEqual({
      FunctionName: expect.anything(),
      EventSourceArn: { 'Fn::GetAtt': [tables.events, 'StreamArn'] },
      StartingPosition: 'TRIM_HORIZON',
      BatchSize: 100,
      MaximumBatchingWindowInSeconds: window,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BisectBatchOnFunctionError: true,
      MaximumRetryAttempts: StreamConsumer.RETRY_ATTEMPTS,
      MaximumRecordAgeInSeconds: StreamConsumer.MAX_RECORD_AGE.toSeconds(),
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [queue, 'Arn'] } } },
      ParallelizationFactor: 1,
      Tags: expect.anything(),
    });
    expect(props.MaximumRetryAttempts).toBeLessThanOrEqual(10);
    expect(props.MaximumRecordAgeInSeconds).toBeLessThanOrEqual(24 * 3600);
    const failures = template.toJSON().Resources[queue].Properties;
    expect(failures).toMatchObject({ MessageRetentionPeriod: 14 * 24 * 3600, SqsManagedSseEnabled: true });
  });
});

describe('5. EventBridge', () => {
  const bus = logicalId(stack, stack.bus.bus);

  test('a custom bus, and the publisher is pointed at it', () => {
    template.resourceCountIs('AWS::Events::EventBus', 1);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: { EVENT_BUS_NAME: { Ref: bus } } },
    });
  });

  test('an archive of every order event, with a retention period', () => {
    template.hasResourceProperties('AWS::Events::Archive', {
      SourceArn: { 'Fn::GetAtt': [bus, 'Arn'] },
      RetentionDays: 90,
      EventPattern: { source: ['orders'] },
    });
    const { template: t } = synth({ archiveRetentionDays: '365', eventSource: 'shop.orders' });
    t.hasResourceProperties('AWS::Events::Archive', { RetentionDays: 365, EventPattern: { source: ['shop.orders'] } });
  });

  test('an example rule routes OrderConfirmed to an SQS queue, with a dead-letter queue', () => {
    const queue = logicalId(stack, stack.bus.confirmedQueue);
    template.hasResourceProperties('AWS::Events::Rule', {
      EventBusName: { Ref: bus },
      EventPattern: { source: ['orders'], 'detail-type': ['OrderConfirmed'] },
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [queue, 'Arn'] },
          DeadLetterConfig: { Arn: { 'Fn::GetAtt': [logicalId(stack, stack.bus.confirmedDeadLetters), 'Arn'] } },
          RetryPolicy: { MaximumRetryAttempts: 10, MaximumEventAgeInSeconds: 86400 },
        }),
      ],
    });
    // Only EventBridge, and only for this rule, may send to the queue.
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [{ Ref: queue }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: Match.arrayWith(['sqs:SendMessage']),
            Principal: { Service: 'events.amazonaws.com' },
            Condition: { ArnEquals: { 'aws:SourceArn': Match.anyValue() } },
          }),
        ]),
      },
    });
  });

  test("the subscriber's failures go to the same dead-letter queue after 5 receives", () => {
    const queue = template.toJSON().Resources[logicalId(stack, stack.bus.confirmedQueue)];
    expect(queue.Properties.RedrivePolicy).toEqual({
      deadLetterTargetArn: { 'Fn::GetAtt': [logicalId(stack, stack.bus.confirmedDeadLetters), 'Arn'] },
      maxReceiveCount: CONFIRMED_MAX_RECEIVE_COUNT,
    });
    expect(CONFIRMED_MAX_RECEIVE_COUNT).toBe(5);
  });
});

describe('6. alarms and dashboard', () => {
  const alarms = template.findResources('AWS::CloudWatch::Alarm');
  const topic = logicalId(stack, stack.monitoring.topic);
  const alarm = (metric: string, dimension: Record<string, unknown>) =>
    Object.values(alarms).filter(
      (a) =>
        a.Properties.MetricName === metric &&
        JSON.stringify(a.Properties.Dimensions ?? []).includes(JSON.stringify(dimension)),
    );

  test('every alarm notifies the SNS topic, on alarm and on recovery', () => {
    expect(Object.keys(alarms).length).toBe(4 * 2 + 2 + 3 + 1 + 1);
    for (const a of Object.values(alarms)) {
      expect(a.Properties.AlarmActions).toEqual([{ Ref: topic }]);
      expect(a.Properties.OKActions).toEqual([{ Ref: topic }]);
      expect(a.Properties.TreatMissingData).toBe('notBreaching');
    }
  });

  test('errors and throttles of each function', () => {
    for (const fn of Object.values(fns)) {
      const dimension = { Name: 'FunctionName', Value: { Ref: logicalId(stack, fn.function) } };
      for (const metric of ['Errors', 'Throttles']) {
        const found = alarm(metric, dimension);
        expect(found).toHaveLength(1);
        expect(found[0].Properties).toMatchObject({
          Namespace: 'AWS/Lambda',
          Statistic: 'Sum',
          Threshold: 1,
          ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        });
      }
    }
  });

  test('stream IteratorAge over 60 s, for both consumers', () => {
    for (const fn of [fns.projector, fns.publisher]) {
      const found = alarm('IteratorAge', { Name: 'FunctionName', Value: { Ref: logicalId(stack, fn.function) } });
      expect(found).toHaveLength(1);
      expect(found[0].Properties).toMatchObject({
        Statistic: 'Maximum',
        Threshold: 60_000,
        ComparisonOperator: 'GreaterThanThreshold',
      });
    }
  });

  test('failure and dead-letter queue depth over 0', () => {
    const queues = [
      stack.node.findChild('ProjectorStream').node.findChild('Failures'),
      stack.node.findChild('PublisherStream').node.findChild('Failures'),
      stack.bus.confirmedDeadLetters,
    ].map((q) => logicalId(stack, q as never));
    for (const queue of queues) {
      const found = alarm('ApproximateNumberOfMessagesVisible', {
        Name: 'QueueName',
        Value: { 'Fn::GetAtt': [queue, 'QueueName'] },
      });
      expect(found).toHaveLength(1);
      expect(found[0].Properties).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold' });
    }
  });

  test('API 5xx', () => {
    const found = alarm('5xx', { Name: 'ApiId', Value: { Ref: logicalId(stack, stack.api.httpApi) } });
    expect(found).toHaveLength(1);
    expect(found[0].Properties).toMatchObject({ Namespace: 'AWS/ApiGateway', Statistic: 'Sum', Threshold: 1 });
  });

  test('projection lag p99 over 10 s, from the projector\'s EMF metric', () => {
    const found = Object.values(alarms).filter((a) => a.Properties.MetricName === APP_METRICS.projectionLag);
    expect(found).toHaveLength(1);
    expect(found[0].Properties).toMatchObject({
      Namespace: METRICS_NAMESPACE,
      ExtendedStatistic: 'p99',
      Period: 300,
      Threshold: PROJECTION_LAG_P99_LIMIT.toSeconds(),
      ComparisonOperator: 'GreaterThanThreshold',
    });
    expect(PROJECTION_LAG_P99_LIMIT.toSeconds()).toBe(10);
    // EMF metrics carry only the dimensions of their labels; the lag has none.
    expect(found[0].Properties.Dimensions).toBeUndefined();
  });

  test('an alarm e-mail subscription only when alarmEmail is given', () => {
    template.resourceCountIs('AWS::SNS::Subscription', 0);
    const { template: t } = synth({ alarmEmail: 'oncall@example.com' });
    t.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'oncall@example.com' });
  });

  test('one dashboard, with the API, function, stream and queue graphs', () => {
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    const dashboard = Object.values(template.findResources('AWS::CloudWatch::Dashboard'))[0];
    const body = (dashboard.Properties.DashboardBody['Fn::Join'][1] as unknown[])
      .filter((part): part is string => typeof part === 'string')
      .join('');
    for (const metric of ['5xx', 'Invocations', 'Errors', 'Duration', 'IteratorAge', 'ApproximateNumberOfMessagesVisible']) {
      expect(body).toContain(`"${metric}"`);
    }
  });

  test('the dashboard graphs every EMF metric of the functions, the lags as p50/p90/p99', () => {
    const dashboard = Object.values(template.findResources('AWS::CloudWatch::Dashboard'))[0];
    const body = JSON.parse(
      (dashboard.Properties.DashboardBody['Fn::Join'][1] as unknown[])
        .map((part) => (typeof part === 'string' ? part : ''))
        .join(''),
    );
    const graphs = new Map<string, unknown[][]>(
      body.widgets
        .filter((w: { type: string }) => w.type === 'metric')
        .map((w: { properties: { title: string; metrics: unknown[][] } }) => [w.properties.title, w.properties.metrics]),
    );
    for (const [title, lag] of [
      ['Projection lag (s)', APP_METRICS.projectionLag],
      ['Publish lag (s)', APP_METRICS.publishLag],
    ]) {
      expect(graphs.get(title)).toEqual(
        ['p50', 'p90', 'p99'].map((stat) => [METRICS_NAMESPACE, lag, { label: stat, stat }]),
      );
    }
    expect(graphs.get('Projection gap heals')).toEqual([[METRICS_NAMESPACE, APP_METRICS.gapHeals, { stat: 'Sum' }]]);
    for (const [title, metric, dimensions] of [
      ['Commands by type and outcome', APP_METRICS.commands, 'command,outcome'],
      ['Decode failures by consumer', APP_METRICS.decodeFailures, 'consumer'],
      ['PutEvents failed entries by code', APP_METRICS.publishFailedEntries, 'code'],
    ]) {
      expect(graphs.get(title)).toEqual([
        [{ expression: `SEARCH('{${METRICS_NAMESPACE},${dimensions}} MetricName="${metric}"', 'Sum', 300)` }],
      ]);
    }
  });
});

describe('encryption in transit', () => {
  test('every queue and the alarm topic refuse requests that are not over TLS', () => {
    const denyInsecure = Match.objectLike({
      Effect: 'Deny',
      Condition: { Bool: { 'aws:SecureTransport': 'false' } },
    });
    const queues = Object.keys(template.findResources('AWS::SQS::Queue'));
    expect(queues).toHaveLength(4);
    for (const queue of queues) {
      template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [{ Ref: queue }],
        PolicyDocument: { Statement: Match.arrayWith([denyInsecure]) },
      });
    }
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      Topics: [{ Ref: logicalId(stack, stack.monitoring.topic) }],
      PolicyDocument: { Statement: Match.arrayWith([denyInsecure]) },
    });
  });
});

describe('7. tags', () => {
  test('every taggable resource carries application, environment and managed-by', () => {
    const resources = template.toJSON().Resources;
    const taggedTypes = new Set<string>();
    for (const construct of stack.node.findAll()) {
      if (!(construct instanceof CfnResource)) continue;
      if (!TagManager.isTaggable(construct) && !TagManager.isTaggableV2(construct)) continue;
      const props = resources[stack.getLogicalId(construct)].Properties;
      const tags = props.Tags ?? props.tags;
      // Key/Value lists for most types, a plain map for a few (e.g. API Gateway v2).
      const map = Array.isArray(tags)
        ? Object.fromEntries(tags.map((t: { Key: string; Value: string }) => [t.Key, t.Value]))
        : tags;
      expect({ type: construct.cfnResourceType, tags: map }).toEqual({
        type: construct.cfnResourceType,
        tags: expect.objectContaining({ application: 'orders', environment: 'dev', 'managed-by': 'cdk' }),
      });
      taggedTypes.add(construct.cfnResourceType);
    }
    for (const type of [
      'AWS::DynamoDB::Table',
      'AWS::Lambda::Function',
      'AWS::Lambda::EventSourceMapping',
      'AWS::IAM::Role',
      'AWS::Logs::LogGroup',
      'AWS::ApiGatewayV2::Api',
      'AWS::ApiGatewayV2::Stage',
      'AWS::SQS::Queue',
      'AWS::SNS::Topic',
      'AWS::Events::EventBus',
      'AWS::CloudWatch::Alarm',
      'AWS::SecretsManager::Secret',
    ]) {
      expect(taggedTypes).toContain(type);
    }
  });

  test('the environment tag comes from context', () => {
    const { template: t } = synth({ environment: 'prod' });
    t.hasResourceProperties('AWS::DynamoDB::Table', {
      Tags: Match.arrayWith([{ Key: 'environment', Value: 'prod' }]),
    });
  });
});

describe('8. outputs', () => {
  test('the API URL, the table names and the bus name', () => {
    const outputs = template.toJSON().Outputs;
    expect(JSON.stringify(outputs.ApiUrl.Value)).toContain(logicalId(stack, stack.api.httpApi));
    expect(outputs.EventsTableName.Value).toEqual({ Ref: tables.events });
    expect(outputs.OrdersTableName.Value).toEqual({ Ref: tables.orders });
    expect(outputs.IdempotencyTableName.Value).toEqual({ Ref: tables.idempotency });
    expect(outputs.EventBusName.Value).toEqual({ Ref: logicalId(stack, stack.bus.bus) });
  });
});

describe('9. versions, aliases and canary deployments', () => {
  test('each function has a version and a live alias on it', () => {
    template.resourceCountIs('AWS::Lambda::Version', 4);
    template.resourceCountIs('AWS::Lambda::Alias', 4);
    for (const fn of Object.values(fns)) {
      const alias = template.toJSON().Resources[logicalId(stack, fn.alias)].Properties;
      expect(alias.Name).toBe('live');
      expect(alias.FunctionName).toEqual({ Ref: logicalId(stack, fn.function) });
      const version = alias.FunctionVersion['Fn::GetAtt'][0];
      expect(template.toJSON().Resources[version].Properties.FunctionName).toEqual({ Ref: logicalId(stack, fn.function) });
    }
  });

  test('no CodeDeploy by default', () => {
    template.resourceCountIs('AWS::CodeDeploy::DeploymentGroup', 0);
  });

  test('canary=true: the two API functions deploy 10 % for 5 minutes, rolled back on alias errors', () => {
    const { stack: s, template: t } = synth({ canary: 'true' });
    t.resourceCountIs('AWS::CodeDeploy::DeploymentGroup', 2);
    t.resourceCountIs('AWS::CodeDeploy::Application', 2);
    // CodeDeploy's own role: AWS's policy limited to invoking hooks and updating aliases.
    for (const group of Object.values(t.findResources('AWS::CodeDeploy::DeploymentGroup'))) {
      const role = t.toJSON().Resources[group.Properties.ServiceRoleArn['Fn::GetAtt'][0]];
      expect(JSON.stringify(role.Properties.ManagedPolicyArns)).toContain('AWSCodeDeployRoleForLambdaLimited');
    }
    for (const fn of [s.functions.commands, s.functions.queries]) {
      const alias = t.toJSON().Resources[logicalId(s, fn.alias)];
      expect(alias.UpdatePolicy.CodeDeployLambdaAliasUpdate).toBeDefined();
      expect(fn.aliasErrors).toBeDefined();
    }
    for (const fn of [s.functions.projector, s.functions.publisher]) {
      expect(t.toJSON().Resources[logicalId(s, fn.alias)].UpdatePolicy).toBeUndefined();
    }
    t.allResourcesProperties('AWS::CodeDeploy::DeploymentGroup', {
      DeploymentConfigName: 'CodeDeployDefault.LambdaCanary10Percent5Minutes',
      AlarmConfiguration: { Enabled: true, Alarms: [Match.objectLike({ Name: Match.anyValue() })] },
      AutoRollbackConfiguration: {
        Enabled: true,
        Events: Match.arrayWith(['DEPLOYMENT_FAILURE', 'DEPLOYMENT_STOP_ON_ALARM']),
      },
    });
  });
});

describe('switching to a shadow read model (readModelTable)', () => {
  const { stack: s, template: t } = synth({ readModelTable: 'orders-read-model-v2' });
  const env = (fn: (typeof fns)['queries']) =>
    t.toJSON().Resources[logicalId(s, fn.function)].Properties.Environment.Variables;

  test('the query API and the projector use the shadow table; the command API is unchanged', () => {
    expect(env(s.functions.queries).ORDERS_TABLE).toBe('orders-read-model-v2');
    expect(env(s.functions.projector).ORDERS_TABLE).toBe('orders-read-model-v2');
    expect(t.toJSON().Outputs.OrdersTableName.Value).toBe('orders-read-model-v2');
    // The stack's own read model stays (and keeps its data) for switching back.
    t.resourceCountIs('AWS::DynamoDB::Table', 3);
  });

  test('their grants move to the shadow table and its indexes, and nowhere else', () => {
    const shadowArn = (grants: string[]) =>
      grants.filter((g) => g.includes('table/orders-read-model-v2')).map((g) => g.replace(/ on .*table\//, ' on table/'));
    const queries = grantsOf(t, logicalId(s, s.functions.queries.role));
    expect(shadowArn(queries).sort()).toEqual([
      'dynamodb:GetItem on table/orders-read-model-v2',
      'dynamodb:Query on table/orders-read-model-v2/index/*',
    ]);
    const projector = grantsOf(t, logicalId(s, s.functions.projector.role));
    expect(shadowArn(projector).sort()).toEqual([
      'dynamodb:BatchGetItem on table/orders-read-model-v2',
      'dynamodb:GetItem on table/orders-read-model-v2',
      'dynamodb:PutItem on table/orders-read-model-v2',
    ]);
    const ownReadModel = logicalId(s, s.tables.orders);
    for (const fn of Object.values(s.functions)) {
      expect(grantsOf(t, logicalId(s, fn.role)).join('\n')).not.toContain(ownReadModel);
    }
  });

  test('a name DynamoDB would refuse is refused at synth', () => {
    expect(() => synth({ readModelTable: 'no spaces' })).toThrow("context 'readModelTable'");
  });
});
