#!/usr/bin/env bash
# Promotion overhead: wall time of `nx run-many -t promote --env=prod` for rust-scorer (Lambda) and
# express-api (EC2 pointer in SSM) against moto_server, next to the time of the bare AWS calls that
# promotion makes, issued one by one with the aws CLI (same calls, same order, the two projects in
# parallel as nx runs them), and their ratio. Then the time verification adds: the same promotion to two
# more environments after staging, `plain` (no checks) and `verified` (a `command` check in buildonce.json
# `verify`), back to back, with the check's own durationMs from the ledger. Last, rust-scorer alone through
# a 2-step Lambda canary (10 % then 50 %, 3 s each): `canary-plain` without checks, `canary-checked` with one
# alarm and one metric check (errorRate of the executed version) measured every 1 s, and the CloudWatch calls
# per check per interval that the ledger's analysis records.
#
# Setup (not timed), in a temp copy of the workspace: moto_server, bucket, IAM role, one Lambda function
# per environment (as IaC would), publish both projects once, promote them to dev and staging.
# Timed: the prod promotion through nx (includes nx start-up and the build cache hits that give the
# versions), then the bare calls. Requires moto_server, aws, cargo.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
export NX_DAEMON=false NX_NO_CLOUD=true NX_TUI=false
export BUILDONCE_CARGO_OFFLINE_REGISTRY="${BUILDONCE_CARGO_OFFLINE_REGISTRY-/usr/share/cargo/registry}"
for tool in moto_server aws cargo; do command -v "$tool" >/dev/null || { echo "bench/promote.sh needs $tool"; exit 1; }; done
# shellcheck source=bench/lib/common.sh
. "$repo/bench/lib/common.sh"
work="" moto_pid=""
cleanup() { [ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null; [ -n "$work" ] && rm -rf "$work"; }
trap cleanup EXIT
bench_workspace promote
# an environment like prod but verified by a command check (node start-up + exit 0)
node -e 'const f="buildonce.json",c=JSON.parse(require("fs").readFileSync(f,"utf8"));c.environments.push({name:"plain",requires:["staging"]},{name:"verified",requires:["staging"],verify:{kind:"command",command:["node","-e","process.exit(0)"]}});require("fs").writeFileSync(f,JSON.stringify(c,null,2))'
# two environments with a 2-step canary: without checks, and with one alarm + one metric check every 1 s
node -e 'const f="buildonce.json",c=JSON.parse(require("fs").readFileSync(f,"utf8"));const strategy={canary:{steps:[{percent:10,minutes:0.05},{percent:50,minutes:0.05}]}};c.environments.push({name:"canary-plain",requires:["staging"],strategy},{name:"canary-checked",requires:["staging"],strategy,verify:[{kind:"alarm",projects:["rust-scorer"],alarms:["{project}-{env}-errors"],intervalSeconds:1},{kind:"metric",projects:["rust-scorer"],metric:"errorRate",max:0.05,minSamples:10,intervalSeconds:1}]});require("fs").writeFileSync(f,JSON.stringify(c,null,2))'
git add -A && git -c user.email=b@b -c user.name=bench commit -qm 'bench: verified environment'
start_moto
export BUILDONCE_STORE="s3://bench/team" NX_CACHE_DIRECTORY="$work/.nx-cache"
bucket=bench prefix=team

# --- setup (IaC + publish + dev/staging), not timed ---
aws s3api create-bucket --bucket "$bucket" >/dev/null
role=$(aws iam create-role --role-name bench-lambda --assume-role-policy-document '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}' --query Role.Arn --output text)
python3 -c 'import zipfile;z=zipfile.ZipFile("placeholder.zip","w");z.writestr("bootstrap","placeholder");z.close()'
for fn in rust-scorer-dev rust-scorer-staging rust-scorer-prod rust-scorer-plain rust-scorer-verified rust-scorer-bare rust-scorer-canary-plain rust-scorer-canary-checked; do
  aws lambda create-function --function-name "$fn" --runtime provided.al2023 --role "$role" --handler bootstrap --architectures arm64 --zip-file fileb://placeholder.zip >/dev/null
done
# the canary environments already run an earlier version (version 1, as IaC left it), so the promotion canaries against it
for e in canary-plain canary-checked; do
  aws lambda publish-version --function-name "rust-scorer-$e" >/dev/null
  aws lambda create-alias --function-name "rust-scorer-$e" --name "$e" --function-version 1 >/dev/null
done
aws cloudwatch put-metric-alarm --alarm-name rust-scorer-canary-checked-errors --namespace AWS/Lambda --metric-name Errors --statistic Sum --period 60 --evaluation-periods 1 --threshold 1 --comparison-operator GreaterThanThreshold
aws cloudwatch set-alarm-state --alarm-name rust-scorer-canary-checked-errors --state-value OK --state-reason bench

nxq() { npx nx "$@" --output-style=stream >>"$work/nx.log" 2>&1 || { tail -30 "$work/nx.log"; exit 1; }; }
nxq run-many -t publish --projects=rust-scorer,express-api
nxq run-many -t promote --projects=rust-scorer,express-api --env=dev
nxq run-many -t promote --projects=rust-scorer,express-api --env=staging
scorer=$(node -p 'require("./dist/apps/rust-scorer/artifact.json").version')
api=$(node -p 'require("./dist/apps/express-api/artifact.json").version')

ms() { date +%s%3N; }

# --- timed: promotion through nx ---
t0=$(ms)
npx nx run-many -t promote --projects=rust-scorer,express-api --env=prod --output-style=stream >"$work/prod.log" 2>&1 || { cat "$work/prod.log"; exit 1; }
t1=$(ms)
grep -q "\[rust-scorer\] promoted $scorer to prod" "$work/prod.log" && grep -q "\[express-api\] promoted $api to prod" "$work/prod.log" || { cat "$work/prod.log"; exit 1; }
alias_sha=$(aws lambda get-function-configuration --function-name rust-scorer-prod --qualifier prod --query CodeSha256 --output text)
want_sha=$(node -p 'Buffer.from(require("./dist/apps/rust-scorer/artifact.json").files[0].sha256,"hex").toString("base64")')
[ "$alias_sha" = "$want_sha" ] || { echo "alias prod runs $alias_sha, artifact is $want_sha"; exit 1; }
promote_ms=$((t1 - t0))

t2=$(ms)
npx nx run-many -t promote --projects=rust-scorer,express-api --env=prod --output-style=stream >"$work/noop.log" 2>&1 || { cat "$work/noop.log"; exit 1; }
t3=$(ms)
noop_ms=$((t3 - t2))

# --- timed: the bare AWS calls of that promotion, with the aws CLI ---
calls=0
c() { aws "$@" >/dev/null 2>&1 || true; }
art() { echo "$prefix/artifacts/$1/$2/$3"; }
rel="$prefix/bare-releases"
now=$(date -u +%FT%TZ)
echo '{"state":"held"}' >lock.json
echo "{\"seq\":1,\"at\":\"$now\"}" >entry.json
bare_scorer() {
  c s3api get-object --bucket "$bucket" --key "$prefix/releases/rust-scorer/prod/current.json" /dev/null      # no-op check
  c s3api get-object --bucket "$bucket" --key "$(art rust-scorer "$scorer" manifest.json)" /dev/null          # verify: manifest
  c s3api head-object --bucket "$bucket" --key "$(art rust-scorer "$scorer" bootstrap.zip)" --checksum-mode ENABLED  # verify: file sha256
  c s3api list-objects-v2 --bucket "$bucket" --prefix "$prefix/releases/rust-scorer/staging/history/"        # policy: staging history
  c s3api get-object --bucket "$bucket" --key "$prefix/releases/rust-scorer/staging/current.json" /dev/null  # policy: newest entry
  c lambda get-function-configuration --function-name rust-scorer-bare                                         # preflight
  c s3api put-object --bucket "$bucket" --key "$rel/rust-scorer/lock.json" --body lock.json --if-none-match '*'  # lock
  c lambda update-function-code --function-name rust-scorer-bare --s3-bucket "$bucket" --s3-key "$(art rust-scorer "$scorer" bootstrap.zip)"
  c lambda wait function-updated-v2 --function-name rust-scorer-bare
  c lambda publish-version --function-name rust-scorer-bare
  c lambda get-alias --function-name rust-scorer-bare --name prod
  c lambda create-alias --function-name rust-scorer-bare --name prod --function-version 1
  c s3api put-object --bucket "$bucket" --key "$rel/rust-scorer/history/0000000001.json" --body entry.json --if-none-match '*'
  c s3api put-object --bucket "$bucket" --key "$rel/rust-scorer/current.json" --body entry.json --if-none-match '*'
  c s3api put-object --bucket "$bucket" --key "$rel/rust-scorer/lock.json" --body lock.json                  # release
}
bare_api() {
  c s3api get-object --bucket "$bucket" --key "$prefix/releases/express-api/prod/current.json" /dev/null
  c s3api get-object --bucket "$bucket" --key "$(art express-api "$api" manifest.json)" /dev/null
  c s3api head-object --bucket "$bucket" --key "$(art express-api "$api" express-api-deployment.tar.gz)" --checksum-mode ENABLED
  c s3api list-objects-v2 --bucket "$bucket" --prefix "$prefix/releases/express-api/staging/history/"
  c s3api get-object --bucket "$bucket" --key "$prefix/releases/express-api/staging/current.json" /dev/null
  c s3api put-object --bucket "$bucket" --key "$rel/express-api/lock.json" --body lock.json --if-none-match '*'
  c ssm put-parameter --name /bench-bare/prod/express-api --type String --overwrite --value "{\"bucket\":\"$bucket\",\"key\":\"$(art express-api "$api" express-api-deployment.tar.gz)\",\"version\":\"$api\",\"sha256\":\"x\"}"
  c s3api put-object --bucket "$bucket" --key "$rel/express-api/history/0000000001.json" --body entry.json --if-none-match '*'
  c s3api put-object --bucket "$bucket" --key "$rel/express-api/current.json" --body entry.json --if-none-match '*'
  c s3api put-object --bucket "$bucket" --key "$rel/express-api/lock.json" --body lock.json
}
calls=$((15 + 10))
t4=$(ms)
bare_scorer & p1=$!
bare_api & p2=$!
wait "$p1" "$p2"
t5=$(ms)
bare_ms=$((t5 - t4))

# --- timed: the same promotion to an environment without checks, then to one with a command check ---
t10=$(ms)
npx nx run-many -t promote --projects=rust-scorer,express-api --env=plain --output-style=stream >"$work/plain.log" 2>&1 || { cat "$work/plain.log"; exit 1; }
t11=$(ms)
plain_ms=$((t11 - t10))
t8=$(ms)
npx nx run-many -t promote --projects=rust-scorer,express-api --env=verified --output-style=stream >"$work/verified.log" 2>&1 || { cat "$work/verified.log"; exit 1; }
t9=$(ms)
grep -q "\[rust-scorer\] promoted $scorer to verified" "$work/verified.log" && grep -q "\[express-api\] promoted $api to verified" "$work/verified.log" || { cat "$work/verified.log"; exit 1; }
verified_ms=$((t9 - t8))
check_ms() { aws s3api get-object --bucket "$bucket" --key "$prefix/releases/$1/verified/current.json" "$work/cur.json" >/dev/null && node -p 'const v=require(process.argv[1]).verification; v && v.passed ? v.durationMs : "missing"' "$work/cur.json"; }
scorer_check=$(check_ms rust-scorer)
api_check=$(check_ms express-api)

# --- timed: rust-scorer through a 2-step canary, without and with alarm + metric checks ---
# the new version (2) serves traffic with 0.1 % errors, as Lambda reports it per executed version; seeded
# now (not during setup) so it lies in the window the metric check reads (the last minute or two)
dims="FunctionName=rust-scorer-canary-checked,Resource=rust-scorer-canary-checked:canary-checked,ExecutedVersion=2"
aws cloudwatch put-metric-data --namespace AWS/Lambda --metric-name Invocations --dimensions "$dims" --value 1000 --unit Count
aws cloudwatch put-metric-data --namespace AWS/Lambda --metric-name Errors --dimensions "$dims" --value 1 --unit Count
t12=$(ms)
npx nx run rust-scorer:promote --env=canary-plain --output-style=stream >"$work/canary-plain.log" 2>&1 || { cat "$work/canary-plain.log"; exit 1; }
t13=$(ms)
npx nx run rust-scorer:promote --env=canary-checked --output-style=stream >"$work/canary-checked.log" 2>&1 || { cat "$work/canary-checked.log"; exit 1; }
t14=$(ms)
grep -q "\[rust-scorer\] promoted $scorer to canary-checked" "$work/canary-checked.log" || { cat "$work/canary-checked.log"; exit 1; }
canary_plain_ms=$((t13 - t12))
canary_checked_ms=$((t14 - t13))
aws s3api get-object --bucket "$bucket" --key "$prefix/releases/rust-scorer/canary-checked/current.json" "$work/canary.json" >/dev/null
# per check: measurements, CloudWatch calls, calls per interval (one measurement per interval)
# shellcheck disable=SC2016 # JavaScript template literals, not shell expansions
canary_calls=$(node -p 'const a=require(process.argv[1]).verification.analysis; a.checks.map(c=>`${c.check}: ${c.measurements} measurements, ${c.calls} calls, ${(c.calls/c.measurements).toFixed(2)} per interval`).join("; ")' "$work/canary.json")
canary_max=$(node -p 'const a=require(process.argv[1]).verification.analysis; Math.max(...a.checks.map(c=>c.calls/c.measurements))' "$work/canary.json")
canary_n=$(node -p 'require(process.argv[1]).verification.analysis.measurements.length' "$work/canary.json")
awk -v m="$canary_max" 'BEGIN{exit !(m <= 2)}' || { echo "more than 2 CloudWatch calls per check per interval: $canary_calls"; exit 1; }

t6=$(ms); for _ in 1 2 3 4 5; do aws sts get-caller-identity >/dev/null 2>&1 || true; done; t7=$(ms)
per_call=$(( (t7 - t6) / 5 ))

printf 'promote rust-scorer (lambda) + express-api (ec2) to prod via nx:  %6d ms\n' "$promote_ms"
printf 'same again, already current (no-op):                             %6d ms\n' "$noop_ms"
printf 'bare AWS calls of that promotion (%d aws CLI calls, 2 in parallel): %6d ms\n' "$calls" "$bare_ms"
printf '  (one trivial aws CLI call, i.e. CLI start-up + 1 request:          %6d ms)\n' "$per_call"
printf 'ratio promote / bare:                                             %6.2f\n' "$(awk -v a="$promote_ms" -v b="$bare_ms" 'BEGIN{printf "%.2f", a/b}')"
printf 'promote both to an environment without checks (plain):          %6d ms\n' "$plain_ms"
printf 'promote both to an environment with a command check (verified):  %6d ms\n' "$verified_ms"
printf '  verification adds (verified - plain):                           %6d ms\n' "$((verified_ms - plain_ms))"
printf '  check durationMs recorded in the ledger (rust-scorer / express-api): %s / %s ms\n' "$scorer_check" "$api_check"
printf '2-step canary of rust-scorer (10%% then 50%%, 3 s each), no checks:  %6d ms\n' "$canary_plain_ms"
printf 'same with 1 alarm + 1 metric check every 1 s:                    %6d ms\n' "$canary_checked_ms"
printf '  checks add (checked - plain), over %d measurements:             %6d ms\n' "$canary_n" "$((canary_checked_ms - canary_plain_ms))"
printf '  CloudWatch calls: %s (limit 2 per check per interval)\n' "$canary_calls"
