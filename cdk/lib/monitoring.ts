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

function labelled(fn: RustFunction, metric: cloudwatch.Metric): cloudwatch.Metric {
  return metric.with({ label: fn.node.id });
}
