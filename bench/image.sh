#!/usr/bin/env bash
# Container-image deployable (apps/rust-scorer-image) numbers, each next to a baseline measured in the same run:
#   build      oci-image build of the image (rust-scorer:build a cache hit)     vs  rust-scorer:build (zip) with cargo warm
#   size       image bytes (all layers + config) and our added layer            vs  bootstrap.zip bytes
#   push       nx publish cold: blobs uploaded + time                            vs  skopeo copy oci:… docker://… of the same layout
#   re-push    nx publish warm: blobs uploaded (must be 0) + time
#   promote    nx promote --env=dev, Lambda PackageType Image on moto           vs  the zip deployable's promote --env=dev
# Setup (not timed) in a temp copy of the workspace: docker-registry on a free loopback port with the stand-in
# Lambda base, moto_server (S3 store, IAM role, Lambda functions as IaC would create them).
# Requires docker-registry, skopeo, moto_server, aws, cargo.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
export NX_DAEMON=false NX_NO_CLOUD=true NX_TUI=false
export BUILDONCE_CARGO_OFFLINE_REGISTRY="${BUILDONCE_CARGO_OFFLINE_REGISTRY-/usr/share/cargo/registry}"
for tool in docker-registry skopeo moto_server aws cargo; do command -v "$tool" >/dev/null || { echo "bench/image.sh needs $tool (tools/scripts/setup.sh)"; exit 1; }; done
# shellcheck source=bench/lib/common.sh
. "$repo/bench/lib/common.sh"
work="" moto_pid="" reg_pid=""
cleanup() {
  [ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null
  [ -n "$reg_pid" ] && kill "$reg_pid" 2>/dev/null
  [ -n "$work" ] && rm -rf "$work"
}
trap cleanup EXIT
bench_workspace image
start_moto
ms() { date +%s%3N; }
nxq() { npx nx "$@" --output-style=stream >>"$work/nx.log" 2>&1 || { tail -30 "$work/nx.log"; exit 1; }; }

# --- registry + stand-in base (not timed) ---
rport=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
mkdir -p "$work/.registry/data"
printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:%s\n  secret: bench\n' "$work/.registry/data" "$rport" >"$work/.registry/config.yml"
docker-registry serve "$work/.registry/config.yml" >"$work/.registry/log" 2>&1 & reg_pid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$rport/v2/" >/dev/null && break; sleep 0.1; done
base=$(node -r @swc-node/register tools/scripts/image-base.ts "127.0.0.1:$rport")
sed -i "s#127.0.0.1:5000/lambda/provided:al2023@sha256:[0-9a-f]*#$base#" apps/rust-scorer-image/project.json
git add -A && git -c user.email=b@b -c user.name=bench commit -qm base
export BUILDONCE_REGISTRY="127.0.0.1:$rport/rust-scorer" BUILDONCE_STORE="s3://bench/team" NX_CACHE_DIRECTORY="$work/.nx-cache"
aws s3api create-bucket --bucket bench >/dev/null
role=$(aws iam create-role --role-name bench-lambda --assume-role-policy-document '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}' --query Role.Arn --output text)
aws lambda create-function --function-name rust-scorer-image-dev --package-type Image --code "ImageUri=127.0.0.1:$rport/placeholder:latest" --role "$role" --architectures arm64 >/dev/null
python3 -c 'import zipfile;z=zipfile.ZipFile("placeholder.zip","w");z.writestr("bootstrap","placeholder");z.close()'
aws lambda create-function --function-name rust-scorer-dev --runtime provided.al2023 --role "$role" --handler bootstrap --architectures arm64 --zip-file fileb://placeholder.zip >/dev/null
nxq run rust-scorer:build   # cargo cold build, not timed

# --- build ---
t0=$(ms); nxq run rust-scorer-image:build --skip-nx-cache --excludeTaskDependencies; t1=$(ms)
t2=$(ms); nxq run rust-scorer:build --skip-nx-cache --excludeTaskDependencies; t3=$(ms)
img_build=$((t1 - t0)) zip_build=$((t3 - t2))
read -r img_size layer_size digest < <(node -e '
  const fs=require("fs"),m=JSON.parse(fs.readFileSync("dist/apps/rust-scorer-image/image-manifest.json","utf8"));
  const a=require("./dist/apps/rust-scorer-image/artifact.json");
  const total=m.layers.reduce((s,l)=>s+l.size,m.config.size);
  console.log(total, m.layers[m.layers.length-1].size, a.image.digest)')
zip_size=$(stat -c %s dist/apps/rust-scorer/bootstrap.zip)

# --- push cold / warm, skopeo baseline ---
t0=$(ms); npx nx run rust-scorer-image:publish --output-style=stream >"$work/cold.log" 2>&1 || { cat "$work/cold.log"; exit 1; }; t1=$(ms)
t2=$(ms); npx nx run rust-scorer-image:publish --output-style=stream >"$work/warm.log" 2>&1 || { cat "$work/warm.log"; exit 1; }; t3=$(ms)
blobs() { grep -o 'uploaded [0-9]* blob(s)' "$1" | head -1 | grep -o '[0-9]*'; }
cold_blobs=$(blobs "$work/cold.log") warm_blobs=$(blobs "$work/warm.log")
mounted=$(grep -o 'mounted [0-9][0-9]*;' "$work/cold.log" | head -1 | grep -o '[0-9][0-9]*')
[ "$warm_blobs" = 0 ] || { echo "warm publish uploaded $warm_blobs blob(s)"; cat "$work/warm.log"; exit 1; }
cold_ms=$((t1 - t0)) warm_ms=$((t3 - t2))
t0=$(ms); skopeo copy -q --dest-tls-verify=false "oci:dist/apps/rust-scorer-image/oci" "docker://127.0.0.1:$rport/skopeo-baseline:x" >/dev/null; t1=$(ms)
skopeo_ms=$((t1 - t0))
sk_digest=$(skopeo inspect --tls-verify=false "docker://127.0.0.1:$rport/skopeo-baseline:x" --format '{{.Digest}}')
[ "$sk_digest" = "$digest" ] || { echo "skopeo sees $sk_digest, build says $digest"; exit 1; }

# --- promote (image vs zip) ---
nxq run rust-scorer:publish
t0=$(ms); npx nx run rust-scorer-image:promote --env=dev --output-style=stream >"$work/promote.log" 2>&1 || { cat "$work/promote.log"; exit 1; }; t1=$(ms)
t2=$(ms); npx nx run rust-scorer:promote --env=dev --output-style=stream >"$work/promote-zip.log" 2>&1 || { cat "$work/promote-zip.log"; exit 1; }; t3=$(ms)
uri=$(aws lambda get-function --function-name rust-scorer-image-dev --qualifier dev --query Code.ImageUri --output text)
[ "$uri" = "127.0.0.1:$rport/rust-scorer@$digest" ] || { echo "alias dev runs $uri"; exit 1; }

printf '\n%-34s %14s   %s\n' "rust-scorer-image ($digest)" "value" "baseline (same run)"
printf '%-34s %11s ms   %s ms  rust-scorer:build (zip, cargo warm)\n' "build (oci-image, no Docker)" "$img_build" "$zip_build"
printf '%-34s %11s B    %s B  bootstrap.zip (our layer: %s B)\n' "image size (layers + config)" "$img_size" "$zip_size" "$layer_size"
printf '%-34s %11s      uploaded, %s mounted, %s ms   skopeo copy of the same layout: %s ms\n' "publish cold: blobs" "$cold_blobs" "${mounted:-0}" "$cold_ms" "$skopeo_ms"
printf '%-34s %11s      uploaded, %s ms\n' "publish warm: blobs" "$warm_blobs" "$warm_ms"
printf '%-34s %11s ms   %s ms  rust-scorer promote --env=dev (zip)\n' "promote --env=dev (Lambda Image)" "$((t1 - t0))" "$((t3 - t2))"
