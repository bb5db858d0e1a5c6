import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { OrdersApi } from './api';
import { RustFunction } from './functions';

export interface MonitoringProps {
  readonly api: OrdersApi;
  readonly functions: RustFunction[];
  /** The functions fed by the events stream: their IteratorAge is watched. */
  readonly streamConsumers: RustFunction[];
  /** Queues that must stay empty: a message there is an event a consumer gave up on. */
  readonly deadLetterQueues: { name: string; queue: sqs.IQueue }[];
  readonly alarmEmail?: string;
  readonly environment: string;
}

/** How far a stream consumer may lag before someone is told. */
export const ITERATOR_AGE_LIMIT = Duration.seconds(60);

/**
 * The functions' own metrics: CloudWatch Embedded Metric Format lines in their logs
 * (orders_lambda::metrics; no IAM grant, CloudWatch Logs extracts them). Names as `orders serve`
 * exports them at /metrics; each label set is one dimension set.
 */
export const METRICS_NAMESPACE = 'Orders';
export const APP_METRICS = {
  /** Dimensions command, outcome. */
  commands: 'orders_commands_total',
  projectionLag: 'orders_projection_lag_seconds',
  publishLag: 'orders_publish_lag_seconds',
  gapHeals: 'orders_projection_gap_heals_total',
  /** Dimension consumer. */
  decodeFailures: 'orders_decode_failures_total',
  /** Dimension code. */
  publishFailedEntries: 'orders_publish_failed_entries_total',
} as const;

/** The projection lag (event occurredAt to view written) whose p99 over 5 minutes alarms. */
export const PROJECTION_LAG_P99_LIMIT = Duration.seconds(10);

/**
 * Alarms to one SNS topic, and one dashboard. Every alarm also notifies when it recovers, and
 * treats missing data (no traffic) as fine.
 */
export class Monitoring extends Construct {
  readonly topic: sns.Topic;
  readonly alarms: cloudwatch.Alarm[] = [];
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    this.topic = new sns.Topic(this, 'Alarms', {
      displayName: `Orders alarms (${props.environment})`,
      enforceSSL: true,
    });
    if (props.alarmEmail) {
      this.topic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
    }

    const fiveMinutes = { period: Duration.minutes(5) };
    for (const fn of props.functions) {
      const name = fn.node.id;
      this.alarm(`${name}Errors`, `${name}: invocations failed`, fn.function.metricErrors({ ...fiveMinutes, statistic: 'Sum' }), 1);
      this.alarm(`${name}Throttles`, `${name}: invocations throttled`, fn.function.metricThrottles({ ...fiveMinutes, statistic: 'Sum' }), 1);
    }
    for (const fn of props.streamConsumers) {
      const name = fn.node.id;
      this.alarm(
        `${name}IteratorAge`,
        `${name}: behind the events stream by over ${ITERATOR_AGE_LIMIT.toSeconds()} s`,
        fn.function.metric('IteratorAge', { period: Duration.minutes(1), statistic: 'Maximum' }),
        ITERATOR_AGE_LIMIT.toMilliseconds(),
        cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      );
    }
    for (const { name, queue } of props.deadLetterQueues) {
      this.alarm(
        `${name}Depth`,
        `${name}: holds events a consumer gave up on`,
        queue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: 'Maximum' }),
        0,
        cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      );
    }
    this.alarm('Api5xx', 'API: answered 5xx', props.api.httpApi.metricServerError({ ...fiveMinutes, statistic: 'Sum' }), 1);
    this.alarm(
      'ProjectionLagP99',
      `projector: p99 of event occurredAt to view written over ${PROJECTION_LAG_P99_LIMIT.toSeconds()} s`,
      appMetric(APP_METRICS.projectionLag, { ...fiveMinutes, statistic: 'p99' }),
      PROJECTION_LAG_P99_LIMIT.toSeconds(),
      cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    );

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      defaultInterval: Duration.hours(3),
      widgets: [
        [
          graph('API requests', [props.api.httpApi.metricCount({ statistic: 'Sum' })]),
          graph('API errors', [
            props.api.httpApi.metricClientError({ statistic: 'Sum' }),
            props.api.httpApi.metricServerError({ statistic: 'Sum' }),
          ]),
          graph('API latency p99 (ms)', [
            props.api.httpApi.metricLatency({ statistic: 'p99' }),
            props.api.httpApi.metricIntegrationLatency({ statistic: 'p99' }),
          ]),
        ],
        [
          graph('Invocations', props.functions.map((fn) => labelled(fn, fn.function.metricInvocations({ statistic: 'Sum' })))),
          graph('Errors', props.functions.map((fn) => labelled(fn, fn.function.metricErrors({ statistic: 'Sum' })))),
          graph('Duration p99 (ms)', props.functions.map((fn) => labelled(fn, fn.function.metricDuration({ statistic: 'p99' })))),
        ],
        [
          graph(
            'Stream IteratorAge max (ms)',
            props.streamConsumers.map((fn) => labelled(fn, fn.function.metric('IteratorAge', { statistic: 'Maximum' }))),
          ),
          graph(
            'Dead-letter queue depth',
            props.deadLetterQueues.map(({ name, queue }) =>
              queue.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', label: name }),
            ),
          ),
          new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 8 }),
        ],
        [
          graph('Commands by type and outcome', [search(APP_METRICS.commands, ['command', 'outcome'], 'Sum')]),
          graph('Projection lag (s)', lagPercentiles(APP_METRICS.projectionLag)),
          graph('Publish lag (s)', lagPercentiles(APP_METRICS.publishLag)),
        ],
        [
          graph('Projection gap heals', [appMetric(APP_METRICS.gapHeals, { statistic: 'Sum' })]),
          graph('Decode failures by consumer', [search(APP_METRICS.decodeFailures, ['consumer'], 'Sum')]),
          graph('PutEvents failed entries by code', [search(APP_METRICS.publishFailedEntries, ['code'], 'Sum')]),
        ],
      ],
    });
  }

  private alarm(
    id: string,
    description: string,
    metric: cloudwatch.IMetric,
    threshold: number,
    comparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
  ): void {
    const alarm = new cloudwatch.Alarm(this, id, {
      alarmDescription: description,
      metric,
      threshold,
      comparisonOperator,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    alarm.addAlarmAction(new actions.SnsAction(this.topic));
    alarm.addOkAction(new actions.SnsAction(this.topic));
    this.alarms.push(alarm);
  }
}

function graph(title: string, left: cloudwatch.IMetric[]): cloudwatch.GraphWidget {
  return new cloudwatch.GraphWidget({ title, left, width: 8 });
}

/** One of the functions' EMF metrics, without dimensions. */
function appMetric(metricName: string, options: cloudwatch.MetricOptions): cloudwatch.Metric {
  return new cloudwatch.Metric({ namespace: METRICS_NAMESPACE, metricName, ...options });
}

/** p50, p90 and p99 of a lag histogram. */
function lagPercentiles(metricName: string): cloudwatch.IMetric[] {
  return ['p50', 'p90', 'p99'].map((statistic) => appMetric(metricName, { statistic, label: statistic }));
}

/** Every series of an EMF metric that has these dimensions (one per label set seen). */
function search(metricName: string, dimensions: string[], statistic: string): cloudwatch.IMetric {
  const schema = [METRICS_NAMESPACE, ...dimensions].join(',');
  return new cloudwatch.MathExpression({
    expression: `SEARCH('{${schema}} MetricName="${metricName}"', '${statistic}', 300)`,
    label: '',
    usingMetrics: {},
    period: Duration.minutes(5),
  });
}

function labelled(fn: RustFunction, metric: cloudwatch.Metric): cloudwatch.Metric {
  return metric.with({ label: fn.node.id });
}
