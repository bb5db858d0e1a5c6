import * as fs from 'fs';
import { PolicyValidationPluginReport, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks } from 'cdk-nag';
import { synth } from './synth';

// cdk-nag's AwsSolutions pack (DESIGN §8) on every stack the tests synthesize: no finding may be
// left unacknowledged, errors and warnings alike, and every acknowledgment must still match a
// finding and give its reason. Acknowledgments live next to their resources, in lib/
// (`Validations.of(construct).acknowledge`; the computed ones in lib/nag.ts).
//
// cdk-nag 3 is a policy-validation plugin: bin/orders.ts registers it on the app, so `cdk synth`
// fails on the same findings. Here the pack checks each stack directly (`validateScope`).

const VARIANTS: Record<string, Record<string, string>> = {
  default: {},
  canary: { canary: 'true' },
  jwt: { jwtIssuer: 'https://issuer.example.com/', jwtAudience: 'orders-api' },
  alarmEmail: { alarmEmail: 'oncall@example.com' },
  readModelTable: { readModelTable: 'orders-read-model-v2' },
  cors: { corsAllowOrigins: 'https://shop.example.com' },
  everything: {
    canary: 'true',
    jwtIssuer: 'https://issuer.example.com/',
    jwtAudience: 'orders-api',
    alarmEmail: 'oncall@example.com',
    readModelTable: 'orders-read-model-v2',
    corsAllowOrigins: 'https://shop.example.com',
  },
};

interface Finding {
  rule: string;
  severity: string;
  path: string;
  description: string;
}

interface Acknowledgment {
  rule: string;
  path: string;
  reason: string;
}

function findingsOf(report: PolicyValidationPluginReport): Finding[] {
  return report.violations.flatMap((violation) =>
    violation.violatingResources.map((resource) => ({
      rule: violation.ruleName,
      severity: violation.severity ?? 'error',
      path: resource.constructPath ?? '?',
      description: violation.description,
    })),
  );
}

/** The findings no acknowledgment covers. */
function unacknowledged(stack: Stack): Finding[] {
  return findingsOf(new AwsSolutionsChecks(undefined, { verbose: true }).validateScope(stack));
}

/** Every finding, acknowledged or not: the pack with its acknowledgment lookup turned off. */
function allFindings(stack: Stack): Finding[] {
  const pack = new AwsSolutionsChecks(undefined, { verbose: true });
  const internals = pack as unknown as { isAcknowledged?: unknown };
  if (typeof internals.isAcknowledged !== 'function') {
    throw new Error('cdk-nag no longer has NagPack.isAcknowledged: update allFindings() for this version');
  }
  internals.isAcknowledged = () => false;
  return findingsOf(pack.validateScope(stack));
}

/** The AwsSolutions acknowledgments recorded on the stack's constructs. */
function acknowledgmentsOf(stack: Stack): Acknowledgment[] {
  const found = new Map<string, Acknowledgment>();
  for (const construct of stack.node.findAll()) {
    for (const entry of construct.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
      for (const [key, reason] of Object.entries(entry.data as Record<string, string>)) {
        const rule = key.replace(/^annotation::/i, '');
        if (!rule.startsWith('AwsSolutions-')) continue;
        found.set(`${construct.node.path} ${rule}`, { rule, path: construct.node.path, reason });
      }
    }
  }
  return [...found.values()];
}

const describeFinding = (f: Finding) => `${f.severity} ${f.rule} at ${f.path}: ${f.description}`;

const acknowledged = new Map<string, Acknowledgment>();
const acknowledgedFindings = new Set<string>();

describe.each(Object.entries(VARIANTS))('cdk-nag AwsSolutions, %s', (name, context) => {
  const { stack } = synth(context);

  test('no unacknowledged error or warning', () => {
    const findings = unacknowledged(stack);
    expect(findings.filter((f) => f.severity === 'error').map(describeFinding)).toEqual([]);
    expect(findings.filter((f) => f.severity === 'warning').map(describeFinding)).toEqual([]);
    expect(findings.map(describeFinding)).toEqual([]);
  });

  test('every acknowledgment has a reason and still matches a finding', () => {
    const all = allFindings(stack);
    const acknowledgments = acknowledgmentsOf(stack);
    const stale: string[] = [];
    for (const ack of acknowledgments) {
      expect(`${ack.rule}: ${ack.reason}`).toMatch(/: \S.{39,}$/); // a sentence, not a placeholder
      const covered = all.filter((f) => f.rule === ack.rule && (f.path === ack.path || f.path.startsWith(`${ack.path}/`)));
      if (covered.length === 0) stale.push(`${ack.rule} at ${ack.path}`);
      for (const f of covered) acknowledgedFindings.add(`${name} ${f.rule} ${f.path}`);
      acknowledged.set(`${ack.path} ${ack.rule}`, ack);
    }
    expect(stale).toEqual([]);
  });
});

describe('the computed IAM5 acknowledgments (lib/nag.ts) are narrow', () => {
  test('a "*" resource for an action that has a resource type, and the indexes of a table not granted, are findings', () => {
    const { stack } = synth({}, (s) => {
      const role = s.functions.commands.role;
      role.addToPolicy(new iam.PolicyStatement({ actions: ['dynamodb:GetItem'], resources: ['*'] }));
      role.addToPolicy(
        new iam.PolicyStatement({
          actions: ['dynamodb:Query'],
          resources: [`arn:${s.partition}:dynamodb:${s.region}:${s.account}:table/other/index/*`],
        }),
      );
    });
    const rules = unacknowledged(stack)
      .filter((f) => f.rule.startsWith('AwsSolutions-IAM5'))
      .map((f) => `${f.rule} at ${f.path}`);
    expect(rules.sort()).toEqual(
      [
        'AwsSolutions-IAM5[Resource::*] at Orders-test/CommandApi/Role/DefaultPolicy/Resource',
        'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:dynamodb:<AWS::Region>:<AWS::AccountId>:table/other/index/*] ' +
          'at Orders-test/CommandApi/Role/DefaultPolicy/Resource',
      ].sort(),
    );
  });

  test('a wildcard action is a finding', () => {
    const { stack } = synth({}, (s) =>
      s.functions.publisher.role.addToPolicy(
        new iam.PolicyStatement({ actions: ['events:*'], resources: [s.bus.bus.eventBusArn] }),
      ),
    );
    const rules = unacknowledged(stack).filter((f) => f.rule.startsWith('AwsSolutions-IAM5'));
    expect(rules.map((f) => `${f.rule} at ${f.path}`)).toEqual([
      'AwsSolutions-IAM5[Action::events:*] at Orders-test/Publisher/Role/DefaultPolicy/Resource',
    ]);
  });
});

afterAll(() => {
  // scripts/cdk.sh prints its summary line from this.
  const file = process.env.CDK_NAG_SUMMARY;
  if (!file) return;
  const summary = {
    variants: Object.keys(VARIANTS),
    acknowledgments: [...acknowledged.values()].sort((a, b) => `${a.path}${a.rule}`.localeCompare(`${b.path}${b.rule}`)),
    acknowledgedFindings: acknowledgedFindings.size,
  };
  fs.writeFileSync(file, JSON.stringify(summary, null, 2));
});
