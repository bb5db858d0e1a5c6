import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpJwtAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { OrdersConfig } from './config';

/** The routes of DESIGN §4 (commands) and §5 (queries). */
export const COMMAND_ROUTES = ['/orders', '/orders/{id}/confirm', '/orders/{id}/cancel', '/orders/{id}/ship'];
export const QUERY_ROUTES = ['/orders', '/orders/{id}', '/orders/{id}/events'];

export interface OrdersApiProps {
  readonly commands: lambda.IFunction;
  readonly queries: lambda.IFunction;
  readonly config: OrdersConfig;
}

/**
 * The HTTP API (API Gateway v2): POSTs to `command-api`, GETs to `query-api`, on a `$default`
 * stage with throttling and a JSON access log. Unknown routes get API Gateway's own 404.
 */
export class OrdersApi extends Construct {
  readonly httpApi: apigwv2.HttpApi;
  readonly stage: apigwv2.HttpStage;
  readonly accessLog: logs.LogGroup;

  constructor(scope: Construct, id: string, props: OrdersApiProps) {
    super(scope, id);
    const { config } = props;
    const authorizer = config.jwt
      ? new HttpJwtAuthorizer('Jwt', config.jwt.issuer, { jwtAudience: config.jwt.audience })
      : undefined;

    this.httpApi = new apigwv2.HttpApi(this, 'Http', {
      description: `Orders API (${config.environment})`,
      // Our own stage below, to set its throttling and access log.
      createDefaultStage: false,
      defaultAuthorizer: authorizer,
      corsPreflight:
        config.corsAllowOrigins.length === 0
          ? undefined
          : {
              allowOrigins: config.corsAllowOrigins,
              allowMethods: [apigwv2.CorsHttpMethod.GET, apigwv2.CorsHttpMethod.POST],
              allowHeaders: ['authorization', 'content-type', 'idempotency-key', 'if-match'],
              exposeHeaders: ['etag', 'location', 'idempotent-replayed', 'retry-after'],
              maxAge: Duration.hours(1),
            },
    });

    this.accessLog = new logs.LogGroup(this, 'AccessLog', {
      retention: config.logRetentionDays as logs.RetentionDays,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.stage = new apigwv2.HttpStage(this, 'DefaultStage', {
      httpApi: this.httpApi,
      stageName: '$default',
      autoDeploy: true,
      throttle: config.throttle,
      accessLogSettings: {
        destination: new apigwv2.LogGroupLogDestination(this.accessLog),
        format: apigateway.AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            ip: '$context.identity.sourceIp',
            requestTime: '$context.requestTime',
            method: '$context.httpMethod',
            path: '$context.path',
            routeKey: '$context.routeKey',
            status: '$context.status',
            responseLength: '$context.responseLength',
            latencyMs: '$context.responseLatency',
            integrationLatencyMs: '$context.integrationLatency',
            integrationError: '$context.integrationErrorMessage',
            authorizerError: '$context.authorizer.error',
          }),
        ),
      },
    });

    const commands = new HttpLambdaIntegration('Commands', props.commands);
    const queries = new HttpLambdaIntegration('Queries', props.queries);
    for (const path of COMMAND_ROUTES) {
      this.httpApi.addRoutes({ path, methods: [apigwv2.HttpMethod.POST], integration: commands });
    }
    for (const path of QUERY_ROUTES) {
      this.httpApi.addRoutes({ path, methods: [apigwv2.HttpMethod.GET], integration: queries });
    }
    if (authorizer === undefined) {
      // With jwtIssuer and jwtAudience every route has the JWT authorizer, and this is not said.
      Validations.of(this.httpApi).acknowledge({
        id: 'AwsSolutions-APIG4',
        reason:
          'No authorizer only when the deployment names no identity provider: the JWT authorizer is ' +
          'optional (DESIGN §8), since the issuer and audience belong to the environment, not to this ' +
          'app. -c jwtIssuer=... -c jwtAudience=... puts it on every route; without them the API is for ' +
          'a development stack or a caller that authenticates in front of it.',
      });
    }
  }

  /** The base URL clients call, e.g. `https://abc123.execute-api.eu-west-1.amazonaws.com/`. */
  get url(): string {
    return this.stage.url;
  }
}
