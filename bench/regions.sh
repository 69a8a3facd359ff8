#!/usr/bin/env bash
# Multi-region promotion on moto_server, ROUNDS rounds (default 3), medians: one version of rust-scorer
# (a BENCH_MIB MiB zip, default 16) promoted to
#   one:   an environment in one region (us-east-1, the home store's);
#   cold:  an environment in 3 regions (us-east-1 on the home store, eu-west-1 and ap-southeast-2 with
#          their own stores, which do not hold the version yet: two server-side copies, verified);
#   warm:  another 3-region environment right after, the region stores already holding the version
#          (what S3 replication or an earlier promotion leaves: two HEADs per object, no copy);
# next to `aws s3 cp --source-region` of the same bytes to the two region buckets (in parallel, as
# promotion copies them). Every promotion runs in its own process (bundled with esbuild, as the plugin's
# executors are), each round with a new version. Goals: warm <= 1.5 x one; cold <= 2 x one + the cp time.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=bench/lib/common.sh
. "$repo/bench/lib/common.sh"
mib="${BENCH_MIB:-16}"
rounds="${ROUNDS:-3}"
for tool in moto_server aws python3; do command -v "$tool" >/dev/null || { echo "bench/regions.sh needs $tool"; exit 1; }; done
work="$(mktemp -d /tmp/buildonce-bench-regions-XXXXXX)"
moto_pid=""
cleanup() { [ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
start_moto
cd "$work"
"$repo/node_modules/.bin/esbuild" "$repo/bench/lib/regions.ts" --bundle --platform=node --target=node20 --log-level=warning \
  --external:'@aws-sdk/*' --outfile="$work/regions.js"
helper() { NODE_PATH="$repo/node_modules" NODE_NO_WARNINGS=1 node "$work/regions.js" "$@"; }
field() { node -p "JSON.parse(process.argv[1]).$2" "$1"; }
median() { tr ' ' '\n' <<<"$*" | grep -v '^$' | sort -n | awk '{a[NR]=$1} END{print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }
ms() { date +%s%3N; }

# --- setup, not timed: buckets in their regions, IAM role, the function of each environment in each region ---
aws s3api create-bucket --bucket bench-home >/dev/null
for region in eu-west-1 ap-southeast-2; do
  aws s3api create-bucket --bucket "bench-$region" --region "$region" --create-bucket-configuration "LocationConstraint=$region" >/dev/null
done
cat >buildonce.json <<'JSON'
{ "store": "s3://bench-home/team",
  "environments": [
    { "name": "one", "requires": [] },
    { "name": "cold", "requires": [], "regions": { "us-east-1": {}, "eu-west-1": { "store": "s3://bench-eu-west-1/team" }, "ap-southeast-2": { "store": "s3://bench-ap-southeast-2/team" } } },
    { "name": "warm", "requires": [], "regions": { "us-east-1": {}, "eu-west-1": { "store": "s3://bench-eu-west-1/team" }, "ap-southeast-2": { "store": "s3://bench-ap-southeast-2/team" } } }
  ] }
JSON
export BUILDONCE_STORE=""
role=$(aws iam create-role --role-name bench-lambda --assume-role-policy-document '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}' --query Role.Arn --output text)
python3 -c 'import zipfile;z=zipfile.ZipFile("placeholder.zip","w");z.writestr("bootstrap","placeholder");z.close()'
fn() { aws lambda create-function --region "$1" --function-name "rust-scorer-$2" --runtime provided.al2023 --role "$role" --handler bootstrap --architectures arm64 --zip-file fileb://placeholder.zip >/dev/null; }
fn us-east-1 one
for region in us-east-1 eu-west-1 ap-southeast-2; do fn "$region" cold; fn "$region" warm; done

one_ms="" cold_ms="" warm_ms="" cp_ms=""
for r in $(seq 1 "$rounds"); do
  version="70$r"
  mkdir -p "v$r"
  head -c "$((mib * 1024 * 1024))" /dev/urandom >"v$r/bootstrap.zip"
  [ "$(helper publish "v$r" "$version")" = published ] || { echo "publish of $version failed"; exit 1; }
  out=$(helper promote "v$r" one) && one_ms="$one_ms $(field "$out" ms)"
  out=$(helper promote "v$r" cold) && cold_ms="$cold_ms $(field "$out" ms)"
  [ "$(field "$out" 'copies["eu-west-1"]')/$(field "$out" 'copies["ap-southeast-2"]')" = copied/copied ] || { echo "cold promotion did not copy: $out"; exit 1; }
  out=$(helper promote "v$r" warm) && warm_ms="$warm_ms $(field "$out" ms)"
  [ "$(field "$out" 'copies["eu-west-1"]')/$(field "$out" 'copies["ap-southeast-2"]')" = present/present ] || { echo "warm promotion copied: $out"; exit 1; }
  # the same bytes with the AWS CLI: server-side copies to both region buckets, in parallel
  src="s3://bench-home/team/artifacts/rust-scorer/$version/bootstrap.zip"
  t0=$(ms)
  aws s3 cp --only-show-errors --source-region us-east-1 --region eu-west-1 "$src" "s3://bench-eu-west-1/cli$r/bootstrap.zip" & p1=$!
  aws s3 cp --only-show-errors --source-region us-east-1 --region ap-southeast-2 "$src" "s3://bench-ap-southeast-2/cli$r/bootstrap.zip" & p2=$!
  wait "$p1" "$p2"
  t1=$(ms)
  cp_ms="$cp_ms $((t1 - t0))"
done

one=$(median "$one_ms") cold=$(median "$cold_ms") warm=$(median "$warm_ms") cp=$(median "$cp_ms")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a / b}'; }
printf 'rust-scorer %d MiB, %d rounds, medians (each round: ms)\n' "$mib" "$rounds"
printf 'promote to 1 region (us-east-1):                               %6d ms  (%s)\n' "$one" "${one_ms# }"
printf 'promote to 3 regions, cold (2 server-side copies, verified):   %6d ms  (%s)\n' "$cold" "${cold_ms# }"
printf 'promote to 3 regions, warm (replicas present, verified):       %6d ms  (%s)\n' "$warm" "${warm_ms# }"
printf 'aws s3 cp --source-region of the same bytes to both regions:   %6d ms  (%s)\n' "$cp" "${cp_ms# }"
printf 'warm / one:               %s  (goal <= 1.50)\n' "$(ratio "$warm" "$one")"
printf 'cold / (2 x one + cp):    %s  (goal <= 1.00)\n' "$(ratio "$cold" "$((2 * one + cp))")"
