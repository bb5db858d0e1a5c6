import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as codedeploy from 'aws-cdk-lib/aws-codedeploy';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { bootstrapZip, FunctionName } from './config';
import { acknowledgeGrantWildcards } from './nag';

export interface RustFunctionProps {
  readonly name: FunctionName;
  readonly description: string;
  /** Where `<name>/bootstrap.zip` is. */
  readonly assetDir: string;
  readonly memorySize: number;
  readonly timeout: Duration;
  readonly environment: Record<string, string>;
  readonly logRetentionDays: number;
  /** Shift traffic to a new version 10 % for 5 minutes, rolled back on errors (CodeDeploy). */
  readonly canary?: boolean;
}

/**
 * One of the service's Rust functions: the `bootstrap` that `cargo lambda build --arm64`
 * makes, on `provided.al2023` and Graviton, with its own role, log group and `live` alias.
 *
 * The role starts empty: it gets the log group and X-Ray here, and each table, stream, queue
 * or bus the function uses is granted by the stack, so a role holds exactly what its code
 * calls.
 */
export class RustFunction extends Construct {
  readonly function: lambda.Function;
  readonly role: iam.Role;
  /** Every trigger and integration targets the alias, so a deployment can shift it. */
  readonly alias: lambda.Alias;
  readonly logGroup: logs.LogGroup;
  /** Errors of the alias: the canary's rollback trigger. */
  readonly aliasErrors: cloudwatch.Alarm | undefined;

  constructor(scope: Construct, id: string, props: RustFunctionProps) {
    super(scope, id);
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `${props.name}: least privilege, see lib/orders-stack.ts`,
    });
    // cdk-nag: the X-Ray and ListStreams "*" and a table's index/* are acknowledged from what
    // the role is really granted at synth; any other wildcard is a finding (lib/nag.ts).
    acknowledgeGrantWildcards(this.role);
    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetentionDays as logs.RetentionDays,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // Only this log group, instead of AWSLambdaBasicExecutionRole's logs on every group.
    this.logGroup.grantWrite(this.role);

    this.function = new lambda.Function(this, 'Function', {
      description: props.description,
      runtime: lambda.Runtime.PROVIDED_AL2023,
      architecture: lambda.Architecture.ARM_64,
      handler: 'bootstrap',
      code: lambda.Code.fromAsset(bootstrapZip(props.assetDir, props.name)),
      memorySize: props.memorySize,
      timeout: props.timeout,
      role: this.role,
      environment: props.environment,
      // Lambda sets AWS_LAMBDA_LOG_FORMAT=JSON and AWS_LAMBDA_LOG_LEVEL, which the functions
      // read (orders-lambda), so the code logs JSON at the level set here.
      loggingFormat: lambda.LoggingFormat.JSON,
      applicationLogLevelV2: lambda.ApplicationLogLevel.INFO,
      systemLogLevelV2: lambda.SystemLogLevel.WARN,
      logGroup: this.logGroup,
      tracing: lambda.Tracing.ACTIVE,
    });
    // cfn-lint W3005 (redundant DependsOn): CDK makes the function depend on its role and on the
    // role's default policy, so that it is not created before the role holds its grants (Lambda
    // checks them, e.g. when the stream's event source mapping is created). The role half is
    // implied by the Role GetAtt too, which is all W3005 reports: harmless, and CDK's standard
    // output. Ignored on this resource only.
    (this.function.node.defaultChild as lambda.CfnFunction).addMetadata('cfn-lint', {
      config: { ignore_checks: ['W3005'] },
    });

    this.alias = new lambda.Alias(this, 'Live', {
      aliasName: 'live',
      version: this.function.currentVersion,
    });

    if (props.canary) {
      this.aliasErrors = new cloudwatch.Alarm(this, 'CanaryErrors', {
        alarmDescription: `${props.name}: errors on the live alias during a deployment roll it back`,
        metric: this.alias.metricErrors({ period: Duration.minutes(1), statistic: 'Sum' }),
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      const deployment = new codedeploy.LambdaDeploymentGroup(this, 'Deployment', {
        alias: this.alias,
        deploymentConfig: codedeploy.LambdaDeploymentConfig.CANARY_10PERCENT_5MINUTES,
        alarms: [this.aliasErrors],
        autoRollback: { failedDeployment: true, stoppedDeployment: true, deploymentInAlarm: true },
      });
      Validations.of(deployment.role).acknowledge({
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSCodeDeployRoleForLambdaLimited]',
        reason:
          "CodeDeploy's own service-role policy for Lambda deployments, in its narrowest (Limited) form: " +
          'Get/UpdateAlias and GetProvisionedConcurrencyConfig to shift traffic, DescribeAlarms for the ' +
          'rollback alarm, InvokeFunction only on hooks named CodeDeployHook_*, S3 reads only of AppSpec ' +
          'objects under */CodeDeploy/* or tagged UseWithCodeDeploy, no sns:Publish. AWS keeps ' +
          'it in step with what CodeDeploy calls; a hand-written copy would drift.',
      });
    }
  }
}
