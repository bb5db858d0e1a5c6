#!/usr/bin/env node
import { App } from 'aws-cdk-lib';
import { ConfigError, configFromNode } from '../lib/config';
import { OrdersStack } from '../lib/orders-stack';

const app = new App();
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
