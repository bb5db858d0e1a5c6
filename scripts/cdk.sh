#!/usr/bin/env bash
# The CDK app in cdk/: install its npm dependencies from the lockfile, then test it offline.
#
#   ./scripts/cdk.sh install   npm ci in cdk/ (aws-cdk-lib, the aws-cdk CLI, TypeScript, Jest,
#                              cdk-nag), and cfn-lint (PyPI, pinned) into tools/cfn-lint/.venv
#   ./scripts/cdk.sh test      type-check, the assertion tests with cdk-nag's AwsSolutions pack
#                              (test/nag.test.ts), then `cdk synth` with no AWS credentials, no
#                              Docker and no network, of the default stack and of one with every
#                              option set (cdk-nag runs again there, as a validation plugin), and
#                              cfn-lint on both templates. Any finding that is not acknowledged
#                              in code fails it.
#
# The tests and the synth use placeholder bootstrap zips, so they need no arm64 build: synth
# only hashes and copies the assets. To deploy, build the real ones (see the README).
set -euo pipefail
cd "$(dirname "$0")/../cdk"

say() { printf 'cdk: %s\n' "$*" >&2; }
die() { printf 'cdk: error: %s\n' "$*" >&2; exit 1; }

# No update checks, telemetry or notices: they would reach out to the internet.
export CDK_DISABLE_VERSION_CHECK=1 CDK_DISABLE_CLI_TELEMETRY=true npm_config_update_notifier=false

install() {
    command -v npm >/dev/null || die "npm is needed (Node.js 20+): apt-get install nodejs npm"
    local major
    major="$(node -p 'process.versions.node.split(".")[0]')"
    ((major >= 20)) || die "Node.js 20+ is needed (aws-cdk-lib's minimum), found $(node --version)"
    say "npm ci ($(node --version), npm $(npm --version 2>/dev/null))"
    npm ci --no-audit --no-fund --loglevel=error
    ../scripts/cfn-lint.sh install
}

# Runs "$@" with no network and no AWS credentials, so anything that tries to reach AWS fails.
offline() {
    local -a clean_env=(env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN
        -u AWS_PROFILE -u AWS_REGION -u AWS_DEFAULT_REGION AWS_EC2_METADATA_DISABLED=true
        AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null)
    if unshare --net true 2>/dev/null; then
        unshare --net "${clean_env[@]}" "$@"
    else
        # Without the right to make a network namespace (not root), the credentials are still
        # gone; the synth is checked below for what it would have needed.
        say "warning: 'unshare --net' is not permitted here; synthesizing with the network up"
        "${clean_env[@]}" "$@"
    fi
}

run_tests() {
    [[ -d node_modules ]] || die "cdk/node_modules is missing: run ./scripts/cdk.sh install"
    say "tsc --noEmit"
    npx --no-install tsc --noEmit
    local assets out nag_summary
    assets="$(mktemp -d)"
    out="$(mktemp -d)"
    nag_summary="$out/cdk-nag-summary.json"
    trap 'rm -rf "$assets" "$out"' RETURN

    say "jest"
    CDK_NAG_SUMMARY="$nag_summary" npx --no-install jest --ci
    node -e '
        const fs = require("fs");
        if (!fs.existsSync(process.argv[1])) { console.error("cdk: error: test/nag.test.ts wrote no cdk-nag summary"); process.exit(1); }
        const s = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
        const rules = new Set(s.acknowledgments.map((a) => a.rule.replace(/\[.*/, "")));
        console.error(`cdk-nag: 0 unsuppressed findings (AwsSolutions, errors and warnings) in ${s.variants.length} ` +
            `stack variants; ${s.acknowledgments.length} suppressions (${[...rules].sort().join(", ")}), each with ` +
            `its reason, covering ${s.acknowledgedFindings} findings`);
    ' "$nag_summary"

    for fn in command-api query-api projector publisher; do
        mkdir -p "$assets/$fn"
        printf 'placeholder for %s: not deployable\n' "$fn" >"$assets/$fn/bootstrap.zip"
    done
    # The default stack, and one with every option: canary deployments, the JWT authorizer, the
    # alarm e-mail, CORS and a shadow read model. bin/orders.ts has cdk-nag check each.
    local -a everything=(-c canary=true -c jwtIssuer=https://issuer.example.com/ -c jwtAudience=orders-api
        -c alarmEmail=oncall@example.com -c corsAllowOrigins=https://shop.example.com
        -c readModelTable=orders-read-model-v2)
    local -a templates=()
    local variant
    for variant in default everything; do
        local -a context=()
        [[ $variant == everything ]] && context=("${everything[@]}")
        say "cdk synth ($variant), offline"
        offline npx --no-install cdk synth --quiet --no-notices --output "$out/$variant" \
            -c assetDir="$assets" "${context[@]}"
        check_template "$out/$variant/Orders-dev.template.json"
        templates+=("$out/$variant/Orders-dev.template.json")
    done

    say "cfn-lint on the ${#templates[@]} templates, offline"
    offline ../scripts/cfn-lint.sh lint "${templates[@]}"
}

# The template has the service's resources, and no account id: nothing was looked up.
check_template() {
    local template="$1"
    [[ -s $template ]] || die "cdk synth wrote no $template"
    node -e '
        const t = require(process.argv[1]);
        const types = {};
        for (const r of Object.values(t.Resources)) types[r.Type] = (types[r.Type] || 0) + 1;
        const needed = ["AWS::DynamoDB::Table", "AWS::Lambda::Function", "AWS::ApiGatewayV2::Api",
            "AWS::Lambda::EventSourceMapping", "AWS::Events::EventBus", "AWS::CloudWatch::Alarm"];
        const missing = needed.filter((type) => !types[type]);
        if (missing.length) { console.error("missing from the template: " + missing); process.exit(1); }
        // An environment-agnostic template: no account or region was looked up.
        if (/\b\d{12}\b/.test(JSON.stringify(t.Resources))) { console.error("an account id in the template"); process.exit(1); }
        console.error(`cdk: synthesized ${Object.keys(t.Resources).length} resources: ` +
            Object.entries(types).map(([k, v]) => `${v} ${k}`).join(", "));
    ' "$template"
}

case "${1:-}" in
    install) install ;;
    test) run_tests ;;
    *) die "usage: $0 install|test" ;;
esac
