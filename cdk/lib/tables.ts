import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';

/** The read model's two indexes (DESIGN §3), as the query API names them. */
export const READ_MODEL_INDEXES = [
  { indexName: 'byCustomer', partitionKey: 'customerId', sortKey: 'createdAt' },
  { indexName: 'byStatus', partitionKey: 'status', sortKey: 'updatedAt' },
] as const;

/**
 * The three tables of DESIGN §3. All are on-demand (no capacity to plan or pay for while idle),
 * encrypted with the account's AWS-managed DynamoDB key (its use shows in CloudTrail), and
 * have point-in-time recovery.
 */
export class OrdersTables extends Construct {
  /** The event store: the source of truth. Its stream feeds the projector and publisher. */
  readonly events: dynamodb.Table;
  /** The read model: derived from the events, rebuildable with `orders replay`. */
  readonly orders: dynamodb.Table;
  /** Idempotency records, expired by TTL after 24 h. */
  readonly idempotency: dynamodb.Table;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    const common = {
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    };

    this.events = new dynamodb.Table(this, 'Events', {
      ...common,
      partitionKey: { name: 'orderId', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'version', type: dynamodb.AttributeType.NUMBER },
      // The projector and the publisher need each new event, not the old image (events are
      // never updated).
      stream: dynamodb.StreamViewType.NEW_IMAGE,
      // The one table that cannot be rebuilt: it survives `cdk destroy` and cannot be
      // deleted by accident.
      removalPolicy: RemovalPolicy.RETAIN,
      deletionProtection: true,
    });

    this.orders = new dynamodb.Table(this, 'Orders', {
      ...common,
      partitionKey: { name: 'orderId', type: dynamodb.AttributeType.STRING },
      // A view is a fold of the events: `orders replay` rebuilds it, so it goes with the stack.
      removalPolicy: RemovalPolicy.DESTROY,
    });
    for (const index of READ_MODEL_INDEXES) {
      this.orders.addGlobalSecondaryIndex({
        indexName: index.indexName,
        partitionKey: { name: index.partitionKey, type: dynamodb.AttributeType.STRING },
        sortKey: { name: index.sortKey, type: dynamodb.AttributeType.STRING },
        // Listings return whole views straight from the index, with no second read.
        projectionType: dynamodb.ProjectionType.ALL,
      });
    }

    this.idempotency = new dynamodb.Table(this, 'Idempotency', {
      ...common,
      partitionKey: { name: 'idempotencyKey', type: dynamodb.AttributeType.STRING },
      // Epoch seconds. TTL deletion lags by up to days, so the code checks the expiry too.
      timeToLiveAttribute: 'expiresAt',
      // Keys live 24 h; nothing here outlives a teardown.
      removalPolicy: RemovalPolicy.DESTROY,
    });
  }
}
