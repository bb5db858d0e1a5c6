import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

/** Receives of an OrderConfirmed message before it goes to the dead-letter queue. */
export const CONFIRMED_MAX_RECEIVE_COUNT = 5;

export interface OrdersBusProps {
  /** The `Source` the publisher gives every entry (`EVENT_SOURCE`). */
  readonly source: string;
  readonly archiveRetentionDays: number;
}

/**
 * The bus downstream services subscribe to. Every entry is one order event: `Source` is the
 * service, `DetailType` the event type, `Detail` the envelope (DESIGN §6).
 */
export class OrdersBus extends Construct {
  readonly bus: events.EventBus;
  readonly archive: events.Archive;
  /** The example subscriber: every `OrderConfirmed`, e.g. for a fulfilment service. */
  readonly confirmedQueue: sqs.Queue;
  /** Entries the example rule could not deliver to its queue. */
  readonly confirmedDeadLetters: sqs.Queue;

  constructor(scope: Construct, id: string, props: OrdersBusProps) {
    super(scope, id);
    this.bus = new events.EventBus(this, 'Bus', {
      description: 'Order events from the Orders service',
    });

    // A new consumer can be given the history it missed: `StartReplay` from this archive into
    // the bus, with a rule of its own.
    this.archive = this.bus.archive('Archive', {
      description: 'Every order event, for replay to new or repaired consumers',
      eventPattern: { source: [props.source] },
      retention: Duration.days(props.archiveRetentionDays),
    });

    const queue = (name: string, deadLetterQueue?: sqs.DeadLetterQueue) =>
      new sqs.Queue(this, name, {
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        retentionPeriod: Duration.days(14),
        removalPolicy: RemovalPolicy.DESTROY,
        deadLetterQueue,
      });
    this.confirmedDeadLetters = queue('OrderConfirmedDeadLetters');
    // An event the subscriber fails on 5 times moves to the same dead-letter queue as those
    // EventBridge could not deliver (the body is the event in both), which alarms, instead of
    // being received again until the queue's retention drops it.
    this.confirmedQueue = queue('OrderConfirmed', {
      queue: this.confirmedDeadLetters,
      maxReceiveCount: CONFIRMED_MAX_RECEIVE_COUNT,
    });
    new events.Rule(this, 'OrderConfirmedRule', {
      eventBus: this.bus,
      description: 'Example subscription: OrderConfirmed to an SQS queue',
      eventPattern: { source: [props.source], detailType: ['OrderConfirmed'] },
      targets: [
        new targets.SqsQueue(this.confirmedQueue, {
          deadLetterQueue: this.confirmedDeadLetters,
          retryAttempts: 10,
          maxEventAge: Duration.hours(24),
        }),
      ],
    });
  }
}
