#!/usr/bin/env node
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ConfigError, configFromNode } from '../lib/config';
import { OrdersStack } from '../lib/orders-stack';

const app = new App();
// cdk-nag's AwsSolutions pack checks every synth and deploy: a finding that is not
// acknowledged in code (Validations.of(construct).acknowledge, with a reason) fails it.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
try {
  const config = configFromNode(app.node);
  new OrdersStack(app, `Orders-${config.environment}`, {
    config,
    description: `Orders: event-sourced order service (${config.environment})`,
    // Account and region come from the CLI's credentials at deploy time; the template does not
    // depend on them, so `cdk synth` needs none.
  });
} catch (error) {
  // A bad context value or a missing build is the user's to fix: say what, without a stack trace.
  if (!(error instanceof ConfigError)) throw error;
  console.error(`error: ${error.message}`);
  process.exit(1);
}
