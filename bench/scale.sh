#!/usr/bin/env bash
# Scale: a workspace of N (default 100) deployables, all Express services made by the node-service
# generator (one generated with `nx g`, the rest copies with the name replaced), every target inferred by
# the @buildonce/nx plugin. Printed side by side, each next to its baseline measured in the same run:
#   1. inference: the plugin's createNodesV2 over the N package.json files (goal < 100 ms), and the whole
#      project graph (`nx show projects`, graph cache off, median of 3) with the plugin vs without it;
#   2. `nx run-many -t publish` with everything already published vs `nx run-many -t build` with
#      everything cached (goal <= 1.5x; median of 3 each; publish runs as one Nx batch process);
#   3. `nx affected -t promote --env=dev` with 1 of N changed vs `nx run <that one>:promote --env=dev`
#      (goal <= 1.2x); both promote a new, already published version; median of 3 each.
# Embedded file store; the Nx cache starts empty in the temp workspace, so the first publish is cold
# without --skip-nx-cache (which would also leave the cache empty for the cached-build measure).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
N="${N:-100}"
export N
export NX_DAEMON=false NX_NO_CLOUD=true NX_TUI=false CI=true FORCE_COLOR=0
unset BUILDONCE_STORE
# shellcheck source=bench/lib/common.sh
. "$repo/bench/lib/common.sh"
work=""
trap '[ -n "$work" ] && [ -z "${KEEP:-}" ] && rm -rf "$work"' EXIT
bench_workspace scale
export NX_CACHE_DIRECTORY="$work/.nx-cache"

log="$work/nx.log"
nxq() { npx nx "$@" --output-style=stream >>"$log" 2>&1 || { tail -40 "$log"; exit 1; }; }
ms() { date +%s%3N; }
# timed CMD...: runs it quietly, prints its wall time (ms); fails the bench when it fails
timed() { local t0 t1; t0=$(ms); "$@" >>"$log" 2>&1 || { tail -40 "$log"; exit 1; }; t1=$(ms); echo $((t1 - t0)); }
median3() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
ratio() { node -e "process.stdout.write((${1}/${2}).toFixed(2))"; }
name() { printf 'svc-%03d' "$1"; }

# --- setup (not timed): N generated services, committed ---
nxq run executors:bundle
npx nx g ./tools/executors:node-service "$(name 0)" --skipInstall --no-interactive >>"$log" 2>&1 || { tail -40 "$log"; exit 1; }
for i in $(seq 1 $((N - 1))); do
  cp -r "apps/$(name 0)" "apps/$(name "$i")"
  grep -rl "$(name 0)" "apps/$(name "$i")" | xargs sed -i "s/$(name 0)/$(name "$i")/g"
done
git add -A && git -c user.email=b@b -c user.name=bench commit -qm "$N services"
[ "$(npx nx show projects --with-target=promote 2>>"$log" | grep -c '^svc-')" = "$N" ] || { echo "expected $N services with a promote target"; exit 1; }

# --- 1. inference ---
echo "[scale] inference" >&2
# shellcheck disable=SC2016 # a JavaScript program: its ${…} are JavaScript template literals
infer_ms=$(node -e '
  const { createNodesV2 } = require("./tools/executors/dist/index.js");
  const files = require("child_process").execFileSync("git", ["ls-files", "apps/*/package.json"], { encoding: "utf8" }).trim().split("\n");
  const ctx = { workspaceRoot: process.cwd(), nxJsonConfiguration: require("./nx.json") };
  (async () => {
    await createNodesV2[1](files, {}, ctx);   // warm-up (module loads, first reads)
    const t0 = process.hrtime.bigint();
    const r = await createNodesV2[1](files, {}, ctx);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const n = r.filter(([, res]) => Object.keys(res.projects ?? {}).length).length;
    if (n < Number(process.env.N)) throw new Error(`inferred ${n} projects, expected at least ${process.env.N}`);
    process.stdout.write(ms.toFixed(1));
  })().catch((e) => { console.error(e); process.exit(1); });
')
graph() { NX_CACHE_PROJECT_GRAPH=false timed npx nx show projects; }
with=$(median3 "$(graph)" "$(graph)" "$(graph)")
cp nx.json nx.json.with
node -e 'const f="nx.json",j=require("./"+f);j.plugins=(j.plugins||[]).filter(p=>!String(p.plugin??p).includes("tools/executors"));require("fs").writeFileSync(f,JSON.stringify(j,null,2))'
without=$(median3 "$(graph)" "$(graph)" "$(graph)")
mv nx.json.with nx.json

# --- 2. everything published vs everything cached ---
echo "[scale] publish" >&2; cold_publish=$(timed npx nx run-many -t publish --projects='svc-*' --output-style=stream)
builds=() publishes=()
for _ in 1 2 3; do
  builds+=("$(timed npx nx run-many -t build --projects='svc-*' --output-style=stream)")
  publishes+=("$(timed npx nx run-many -t publish --projects='svc-*' --output-style=stream)")
done
cached_build=$(median3 "${builds[@]}")
published=$(median3 "${publishes[@]}")
grep -q "already published" "$log" || { echo "publish of published versions printed no 'already published'"; exit 1; }

# --- 3. affected promote (1 of N changed) vs that one project's promote ---
one=$(name $((N / 2)))
change() { echo "// change $1" >>"apps/$one/src/app.ts"; git -c user.email=b@b -c user.name=bench commit -qam "change $one ($1)"; nxq run "$one:publish"; }
# median of 3 of each (one run of each is within the noise of a shared 2-core machine), alternating
echo "[scale] promote" >&2
singles=() affecteds=()
for i in 1 2 3; do
  change "s$i"; singles+=("$(timed npx nx run "$one:promote" --env=dev)")
  change "a$i"; affecteds+=("$(timed npx nx affected -t promote --env=dev --base=HEAD~1)")
done
single=$(median3 "${singles[@]}")
affected=$(median3 "${affecteds[@]}")
[ "$(find .buildonce/deploy/dev -mindepth 1 -maxdepth 1 | wc -l)" = 1 ] || { echo "affected promoted more than $one"; exit 1; }

printf '\n%-62s %10s %10s %7s %s\n' "measure ($N deployables)" "this" "baseline" "ratio" "goal"
printf '%-62s %8s ms %10s %7s %s\n' "plugin inference (createNodesV2, $N package.json)" "$infer_ms" "-" "-" "< 100 ms"
printf '%-62s %8s ms %7s ms %7s %s\n' "project graph: with plugin vs without" "$with" "$without" "$(ratio "$with" "$without")" "-"
printf '%-62s %8s ms %7s ms %7s %s\n' "run-many publish (all published) vs run-many build (cached)" "$published" "$cached_build" "$(ratio "$published" "$cached_build")" "<= 1.5x"
printf '%-62s %8s ms %7s ms %7s %s\n' "affected promote (1 of $N changed) vs run <one>:promote" "$affected" "$single" "$(ratio "$affected" "$single")" "<= 1.2x"
printf '%-62s %8s ms %10s %7s %s\n' "(info) cold run-many publish (empty Nx cache, empty store)" "$cold_publish" "-" "-" "-"
