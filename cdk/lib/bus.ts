import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

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

    const queue = (name: string) =>
      new sqs.Queue(this, name, {
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        retentionPeriod: Duration.days(14),
        removalPolicy: RemovalPolicy.DESTROY,
      });
    this.confirmedQueue = queue('OrderConfirmed');
    this.confirmedDeadLetters = queue('OrderConfirmedDeadLetters');
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
