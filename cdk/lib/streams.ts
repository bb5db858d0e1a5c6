import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as iam from 'aws-cdk-lib/aws-iam';
import { DynamoEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export interface StreamConsumerProps {
  /** The table whose stream is read (the events table). */
  readonly table: dynamodb.ITable;
  /** The consumer: a function alias, so a new version takes over the mapping. */
  readonly target: lambda.Alias;
  readonly batchSize: number;
  readonly maxBatchingWindow: Duration;
}

/**
 * An event source mapping from the events stream to one consumer, with the failure handling
 * that keeps a stream consumer correct and unstuck:
 * - the function reports the first record it could not handle (ReportBatchItemFailures), so
 *   the records before it are not processed twice and the ones after it are not skipped;
 * - a failing batch is bisected, so a poison record is isolated from the good ones;
 * - retries and record age are bounded, so a poison record holds its shard back for at most
 *   RETRY_ATTEMPTS tries or MAX_RECORD_AGE, and then goes to the failure queue, which alarms.
 */
export class StreamConsumer extends Construct {
  /** Where Lambda sends a record it gave up on: the shard, the sequence-number range, the error. */
  readonly failures: sqs.Queue;

  static readonly RETRY_ATTEMPTS = 10;
  static readonly MAX_RECORD_AGE = Duration.hours(6);

  constructor(scope: Construct, id: string, props: StreamConsumerProps) {
    super(scope, id);
    this.failures = new sqs.Queue(this, 'Failures', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // The longest SQS keeps a message: time to find the cause and replay.
      retentionPeriod: Duration.days(14),
      removalPolicy: RemovalPolicy.DESTROY,
    });
    Validations.of(this.failures).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason:
        'This queue is itself a dead-letter queue: the on-failure destination of the event source ' +
        "mapping below (cdk-nag only recognizes other queues' RedrivePolicy and functions' " +
        'DeadLetterConfig). Nothing consumes it; its depth alarms (lib/monitoring.ts), and a DLQ of a ' +
        'DLQ would only move the records once more.',
    });
    const source = new DynamoEventSource(props.table, {
      // Every event the table holds, also those written before the mapping existed.
      startingPosition: lambda.StartingPosition.TRIM_HORIZON,
      batchSize: props.batchSize,
      maxBatchingWindow: props.maxBatchingWindow,
      reportBatchItemFailures: true,
      bisectBatchOnError: true,
      retryAttempts: StreamConsumer.RETRY_ATTEMPTS,
      maxRecordAge: StreamConsumer.MAX_RECORD_AGE,
      onFailure: failureQueue(this.failures),
      // Per-order ordering: an order's events share a partition key, so they sit on one shard
      // in version order, and with a factor of 1 each shard's batches are handled one at a
      // time, in that order. The projector then folds versions in sequence and subscribers see
      // an order's events in order. (A higher factor keeps order per key too, but runs batches
      // of one shard concurrently; raise it only if IteratorAge shows a consumer falling behind.
      // The projector already works on 16 orders of a batch at once.)
      parallelizationFactor: 1,
    });
    props.target.addEventSource(source);
  }
}

/**
 * The mapping's on-failure destination. Lambda sends the failed batch's description with the
 * function's role, which needs `sqs:SendMessage` on the queue and nothing else (Lambda
 * Developer Guide, "Retaining discarded batches for a DynamoDB event source"). CDK's `SqsDlq`
 * also grants `sqs:GetQueueAttributes` and `sqs:GetQueueUrl`, which nothing calls: the IAM
 * conformance check (scripts/iam-check.sh) would report them as unused.
 */
function failureQueue(queue: sqs.IQueue): lambda.IEventSourceDlq {
  return {
    bind: (_target, targetHandler) => {
      targetHandler.addToRolePolicy(new iam.PolicyStatement({
        actions: ['sqs:SendMessage'],
        resources: [queue.queueArn],
      }));
      return { destination: queue.queueArn };
    },
  };
}
