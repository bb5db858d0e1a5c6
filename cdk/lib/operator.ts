import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { acknowledgeWildcardResource } from './nag';

export interface OperatorPolicyProps {
  readonly events: dynamodb.ITable;
  /** The read model the functions use (the stack's, or `readModelTable`). */
  readonly readModel: dynamodb.ITable;
  readonly idempotency: dynamodb.ITable;
}

/**
 * A managed policy with exactly what the operator's commands call, to attach to the person or
 * role that runs them (README, "Operating"). Like the functions' roles, it is checked against
 * the requests the commands really make (scripts/iam-check.sh).
 *
 * - `orders tables create` describes each table and creates it where it is missing, with the
 *   events table's point-in-time recovery and the idempotency table's TTL.
 * - `orders replay` scans the events in parallel segments and reads the order histories it
 *   settles again (Query, BatchGetItem); it reads the views (Scan, GetItem, BatchGetItem),
 *   writes each with a version condition (PutItem) and
 *   deletes orphans (DeleteItem). `--verify` only reads.
 * - `orders replay --into NAME` creates a shadow read model and writes it. Its name must start
 *   with the read model's name and a dash (`<ORDERS_TABLE>-v2`), which is what keeps the
 *   grant to those tables. A shadow is written only by the replay, so it never needs the
 *   live table's re-read of a view that moved (GetItem) nor has orphans to delete.
 */
export class OperatorPolicy extends Construct {
  readonly policy: iam.ManagedPolicy;

  constructor(scope: Construct, id: string, props: OperatorPolicyProps) {
    super(scope, id);
    const { events, readModel, idempotency } = props;
    const shadows = `${readModel.tableArn}-*`;
    this.policy = new iam.ManagedPolicy(this, 'Policy', {
      description: 'Orders operator: orders tables create and orders replay (see the README)',
      statements: [
        new iam.PolicyStatement({
          sid: 'TablesCreate',
          actions: ['dynamodb:DescribeTable', 'dynamodb:CreateTable'],
          resources: [events.tableArn, readModel.tableArn, idempotency.tableArn, shadows],
        }),
        new iam.PolicyStatement({
          sid: 'EventsRecovery',
          actions: ['dynamodb:DescribeContinuousBackups', 'dynamodb:UpdateContinuousBackups'],
          resources: [events.tableArn],
        }),
        new iam.PolicyStatement({
          sid: 'IdempotencyExpiry',
          actions: ['dynamodb:DescribeTimeToLive', 'dynamodb:UpdateTimeToLive'],
          resources: [idempotency.tableArn],
        }),
        new iam.PolicyStatement({
          sid: 'ReplayReadsEvents',
          actions: ['dynamodb:Scan', 'dynamodb:Query', 'dynamodb:BatchGetItem'],
          resources: [events.tableArn],
        }),
        new iam.PolicyStatement({
          sid: 'ReplayRepairsViews',
          actions: ['dynamodb:Scan', 'dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:PutItem', 'dynamodb:DeleteItem'],
          resources: [readModel.tableArn],
        }),
        new iam.PolicyStatement({
          sid: 'ReplayBuildsShadows',
          actions: ['dynamodb:Scan', 'dynamodb:BatchGetItem', 'dynamodb:PutItem'],
          resources: [shadows],
        }),
      ],
    });
    acknowledgeWildcardResource(
      this.policy,
      shadows,
      'orders replay --into NAME creates and writes a shadow read model whose name the operator picks ' +
        'when it runs; this prefix is what confines it to tables named after the read model and a dash ' +
        '(<ORDERS_TABLE>-v2), never the events or idempotency table.',
    );
  }
}
