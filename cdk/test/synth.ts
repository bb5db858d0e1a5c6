import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { configFromNode, FUNCTION_NAMES } from '../lib/config';
import { OrdersStack } from '../lib/orders-stack';

/**
 * A directory standing in for `target/lambda`: `<function>/bootstrap.zip` for each function,
 * so the stack synthesizes without the arm64 build. Synth only hashes and copies the files.
 */
export function placeholderAssets(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'orders-cdk-assets-'));
  for (const name of FUNCTION_NAMES) {
    fs.mkdirSync(path.join(dir, name));
    fs.writeFileSync(path.join(dir, name, 'bootstrap.zip'), `placeholder for ${name}: not deployable\n`);
  }
  return dir;
}

const assets = placeholderAssets();

/** cdk.json's context (its feature flags above all), so the tests synthesize what `cdk synth` does. */
const cdkJsonContext: Record<string, unknown> = JSON.parse(
  fs.readFileSync(path.join(__dirname, '..', 'cdk.json'), 'utf8'),
).context;

export interface Synthesized {
  stack: OrdersStack;
  template: Template;
}

/**
 * Synthesizes the stack as `cdk synth -c key=value ...` would, with placeholder assets;
 * `before` may change it first (synthesis runs the aspects, e.g. lib/nag.ts's, once).
 */
export function synth(context: Record<string, string> = {}, before?: (stack: OrdersStack) => void): Synthesized {
  const app = new App({ context: { ...cdkJsonContext, assetDir: assets, ...context } });
  const stack = new OrdersStack(app, 'Orders-test', { config: configFromNode(app.node) });
  before?.(stack);
  return { stack, template: Template.fromStack(stack) };
}

/** The logical ID of a construct's CloudFormation resource. */
export function logicalId(stack: Stack, construct: { node: { defaultChild?: unknown } }): string {
  return stack.getLogicalId(construct.node.defaultChild as never);
}

/**
 * A resource reference as a short string: `Logical.Arn`, `Logical.StreamArn`,
 * `Logical.Arn/index/*`, or `*`. Lets tests compare policies by what they point at.
 */
export function describeResource(resource: unknown): string {
  if (typeof resource === 'string') return resource;
  const value = resource as Record<string, unknown>;
  if (Array.isArray(value['Fn::GetAtt'])) return (value['Fn::GetAtt'] as string[]).join('.');
  if (typeof value.Ref === 'string') return value.Ref;
  if (Array.isArray(value['Fn::Join'])) {
    const [separator, parts] = value['Fn::Join'] as [string, unknown[]];
    return parts.map(describeResource).join(separator);
  }
  return JSON.stringify(resource);
}

/** Every `action on resource` pair the role's inline policies allow, sorted. */
export function grantsOf(template: Template, roleLogicalId: string): string[] {
  const pairs: string[] = [];
  const policies = template.findResources('AWS::IAM::Policy');
  for (const policy of Object.values(policies)) {
    const roles = (policy.Properties.Roles as { Ref: string }[]).map((role) => role.Ref);
    if (!roles.includes(roleLogicalId)) continue;
    for (const statement of policy.Properties.PolicyDocument.Statement) {
      expect(statement.Effect).toBe('Allow');
      const actions = [statement.Action].flat() as string[];
      const resources = [statement.Resource].flat();
      for (const action of actions) {
        for (const resource of resources) pairs.push(`${action} on ${describeResource(resource)}`);
      }
    }
  }
  return pairs.sort();
}
